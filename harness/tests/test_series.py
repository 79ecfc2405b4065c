import shutil
from pathlib import Path

import pytest

from harness import series
from harness.errors import HarnessError

ORIG = "line1\nline2\nline3\nline4\nline5\nline6\nline7\n"
GOOD = """\
From: Test <t@example.org>
Subject: [PATCH] good

---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,3 +1,3 @@
 line1
-line2
+LINE2
 line3
"""
BAD = """\
Subject: [PATCH] bad

---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -5,3 +5,3 @@
 nope5
-nope6
+NOPE6
 nope7
"""

needs_quilt = pytest.mark.skipif(not shutil.which("quilt"), reason="quilt not installed")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "tree"
    (t / "mm").mkdir(parents=True)
    (t / "mm/memcontrol.c").write_text(ORIG)
    return t


def make_series(tmp_path: Path, patches: dict[str, str]) -> Path:
    p = tmp_path / "patches"
    p.mkdir(exist_ok=True)
    for name, text in patches.items():
        (p / name).write_text(text)
    (p / "series").write_text("# comment\n" + "".join(f"{n}\n" for n in patches))
    return p


def test_parse_real_quilt_failure(data: Path) -> None:
    f = series.parse_push_failure((data / "quilt-push-fail.txt").read_text())
    assert f is not None
    assert f.patch == "0002-bad.patch"
    assert f.files == ["mm/memcontrol.c"]
    assert f.hunks == ["mm/memcontrol.c: Hunk #1 FAILED at 5."]
    assert "0002-bad.patch does not apply: mm/memcontrol.c: Hunk #1" in f.describe()


def test_parse_success_output_is_none() -> None:
    assert series.parse_push_failure("Applying patch a.patch\npatching file x\n") is None


def test_series_names_ignore_comments(tmp_path: Path) -> None:
    p = make_series(tmp_path, {"a.patch": GOOD})
    (p / "series").write_text("# c\n\na.patch -p1 # trailing\n")
    assert series.series_names(p) == ["a.patch"]


def test_series_lists_missing_patch(tmp_path: Path) -> None:
    p = make_series(tmp_path, {"a.patch": GOOD})
    (p / "series").write_text("a.patch\nmissing.patch\n")
    with pytest.raises(HarnessError, match="missing.patch"):
        series.series_digest(p)


@needs_quilt
def test_apply_is_idempotent_and_pop_restores(tmp_path: Path, tree: Path) -> None:
    p = make_series(tmp_path, {"0001-good.patch": GOOD})
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    assert q.push_all() == "applied"
    assert "LINE2" in (tree / "mm/memcontrol.c").read_text()
    assert q.push_all() == "unchanged"
    assert q.status().in_sync
    q.pop_all()
    assert (tree / "mm/memcontrol.c").read_text() == ORIG


@needs_quilt
def test_changed_series_is_repushed(tmp_path: Path, tree: Path) -> None:
    p = make_series(tmp_path, {"0001-good.patch": GOOD})
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    q.push_all()
    (p / "0001-good.patch").write_text(GOOD.replace("+LINE2", "+Line2"))
    assert not q.status().in_sync
    assert q.push_all() == "applied"
    assert "Line2" in (tree / "mm/memcontrol.c").read_text()


@needs_quilt
def test_failing_patch_named_and_tree_left_clean(tmp_path: Path, tree: Path) -> None:
    p = make_series(tmp_path, {"0001-good.patch": GOOD, "0002-bad.patch": BAD})
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    with pytest.raises(HarnessError) as ei:
        q.push_all()
    msg = str(ei.value)
    assert "0002-bad.patch does not apply" in msg
    assert "mm/memcontrol.c: Hunk #1 FAILED at 5." in msg
    assert (tree / "mm/memcontrol.c").read_text() == ORIG
    assert q.applied() == []


@needs_quilt
def test_fuzz_is_refused(tmp_path: Path, tree: Path) -> None:
    (tree / "mm/memcontrol.c").write_text(ORIG.replace("line3", "LINE-3"))
    p = make_series(tmp_path, {"0001-good.patch": GOOD})
    with pytest.raises(HarnessError, match="does not apply"):
        series.Quilt(tree, tmp_path / "q.log", patches=p).push_all()


@needs_quilt
def test_empty_series(tmp_path: Path, tree: Path) -> None:
    p = tmp_path / "patches"
    p.mkdir()
    (p / "series").write_text("# nothing yet\n")
    assert series.Quilt(tree, tmp_path / "q.log", patches=p).push_all() == "empty"


SECOND = """\
Subject: [PATCH] second

---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -3,3 +3,3 @@
 line3
-line4
+LINE4
 line5
"""


@needs_quilt
def test_tree_first_pushed_from_another_checkout(tmp_path: Path, tree: Path) -> None:
    """quilt remembers the first patches dir in .pc/.quilt_patches; a tree
    first pushed from another clone must still get this clone's series."""
    (tmp_path / "other").mkdir()
    (tmp_path / "ours").mkdir()
    other = make_series(tmp_path / "other", {"0001-good.patch": GOOD})
    series.Quilt(tree, tmp_path / "q.log", patches=other).push_all()
    ours = make_series(tmp_path / "ours", {"0001-good.patch": GOOD, "0002-second.patch": SECOND})
    q = series.Quilt(tree, tmp_path / "q.log", patches=ours)
    assert q.push_all() == "applied"
    assert q.applied() == ["0001-good.patch", "0002-second.patch"]
    assert "LINE4" in (tree / "mm/memcontrol.c").read_text()


OTHER_FILE = """\
Subject: [PATCH] other file

---
--- a/mm/other.c
+++ b/mm/other.c
@@ -1,1 +1,1 @@
-x
+y
"""


@needs_quilt
def test_changing_a_later_patch_leaves_earlier_ones_alone(tmp_path: Path, tree: Path) -> None:
    """Only the changed patch and those above it are re-pushed: the files of
    the patches below keep their mtime, so nothing of theirs rebuilds."""
    import os
    (tree / "mm/other.c").write_text("x\n")
    p = make_series(tmp_path, {"0001-good.patch": GOOD, "0002-other.patch": OTHER_FILE})
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    assert q.push_all() == "applied"
    os.utime(tree / "mm/memcontrol.c", (1000, 1000))
    (p / "0002-other.patch").write_text(OTHER_FILE.replace("+y", "+z"))
    assert q.push_all() == "applied"
    assert (tree / "mm/other.c").read_text() == "z\n"
    assert (tree / "mm/memcontrol.c").stat().st_mtime == 1000
    assert q.status().in_sync and q.push_all() == "unchanged"
    # a change in the first patch re-pushes everything
    (p / "0001-good.patch").write_text(GOOD.replace("+LINE2", "+Line2"))
    assert q.push_all() == "applied"
    assert "Line2" in (tree / "mm/memcontrol.c").read_text()
    assert (tree / "mm/other.c").read_text() == "z\n"


def test_series_files(tmp_path: Path) -> None:
    p = make_series(tmp_path, {"0001-good.patch": GOOD, "0002-bad.patch": BAD})
    assert series.series_files(p) == ["mm/memcontrol.c"]


@needs_quilt
def test_pop_and_push_keep_the_mtime_of_unchanged_files(tmp_path: Path, tree: Path) -> None:
    """What `check` does to the tree (pop all, push again) must not make
    the next build recompile: same content, same mtime."""
    import os
    p = make_series(tmp_path, {"0001-good.patch": GOOD})
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    q.push_all()
    f = tree / "mm/memcontrol.c"
    os.utime(f, ns=(10**18, 10**18))
    with series.keep_mtimes(tree, series.series_files(p)):
        q.pop_all()
        q.push_all()
        assert f.stat().st_mtime_ns != 10**18  # quilt rewrote it
    assert f.stat().st_mtime_ns == 10**18
    # a file whose content changed keeps its new mtime
    with series.keep_mtimes(tree, ["mm/memcontrol.c"]):
        f.write_text("changed\n")
    assert f.stat().st_mtime_ns != 10**18


THIRD = """\
Subject: [PATCH] third

---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,5 +1,5 @@
 line1
 LINE2
-line3
+LINE3
 line4
 line5
"""


@needs_quilt
def test_a_tree_that_already_has_the_series_is_told_so(tmp_path: Path, tree: Path) -> None:
    """A developer's tree with the series applied by git am: quilt's push
    fails, and the message says what to do instead of a bare failure."""
    from harness.errors import ChangeFailed
    p = make_series(tmp_path, {"0001-good.patch": GOOD, "0002-third.patch": THIRD})
    (tree / "mm/memcontrol.c").write_text(ORIG.replace("line2", "LINE2")
                                          .replace("line3", "LINE3"))
    before = (tree / "mm/memcontrol.c").read_text()
    assert series.already_applied(tree, p)
    q = series.Quilt(tree, tmp_path / "q.log", patches=p)
    with pytest.raises(HarnessError, match="already has the series") as ei:
        q.push_all()
    assert not isinstance(ei.value, ChangeFailed) and "--series none" in str(ei.value)
    assert (tree / "mm/memcontrol.c").read_text() == before  # nothing changed
    # only half of it: not "already applied", a patch that does not apply
    (tree / "mm/memcontrol.c").write_text(ORIG.replace("line2", "LINE2"))
    assert not series.already_applied(tree, p)
