"""patches/upstream, the memcg part rebased on upstream, and
`harness series --check-apply DIR`.

The upstream files the part was rebased on are not kept here (they are
upstream's code; the cover letter names each repository and commit), so
these tests build a tree from the patches' own pre-images: every hunk that
applies to the base contributes its context and removed lines, at its line
number. That checks what can be checked without the upstream tree: the eleven
patches apply in order with --fuzz=0 to a tree that has their context, a
changed context line is found and named, the user's tree is never written,
and the code they add is the tested series' code."""

import difflib
import re
import shutil
from pathlib import Path

import pytest

from harness import paths, series
from harness.errors import ChangeFailed, HarnessError

needs_quilt = pytest.mark.skipif(not shutil.which("quilt"), reason="quilt not installed")

UP = series.UPSTREAM
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
Hunk = tuple[int, list[str], list[str], list[str]]  # a hunk, as parse() returns it


def parse(patch: Path) -> dict[str, list[Hunk]]:
    """{file: [(old start, old side, added lines, new side)]} of a patch."""
    files: dict[str, list[Hunk]] = {}
    cur: list[Hunk] | None = None
    hunk: Hunk | None = None
    body = patch.read_text().split("\n---\n", 1)[1]
    for line in body.splitlines():
        if line.startswith("+++ b/"):
            cur = files.setdefault(line[6:].split("\t")[0], [])
            hunk = None
            continue
        if line.startswith("--- "):
            continue
        m = HUNK.match(line)
        if m and cur is not None:
            hunk = (int(m.group(1)), [], [], [])
            cur.append(hunk)
            continue
        if hunk is None:
            continue
        if line.startswith((" ", "-")) or line == "":
            hunk[1].append(line[1:])
        if line.startswith((" ", "+")) or line == "":
            hunk[3].append(line[1:])
        if line.startswith("+"):
            hunk[2].append(line[1:])
    return files


def contains(big: list[str], small: list[str]) -> bool:
    n = len(small)
    return any(big[i:i + n] == small for i in range(len(big) - n + 1))


def preimage_tree(root: Path, patches: Path = UP) -> Path:
    """A tree with each file touched by the series made of the old sides of
    the hunks that apply to the base (not of those that apply to what an
    earlier patch wrote), each at its line number, filler lines between."""
    written: dict[str, list[list[str]]] = {}
    blocks: dict[str, list[tuple[int, list[str]]]] = {}
    created: set[str] = set()  # files a patch of the series creates
    for name in series.series_names(patches):
        hunks_of = parse(patches / name)
        for f, hunks in hunks_of.items():
            for start, old, _, _ in hunks:
                if start == 0 and not old:
                    created.add(f)
                    continue  # a new file
                if f in created:
                    continue  # all of it is the series' lines
                if any(contains(w, old) for w in written.get(f, [])):
                    continue  # against an earlier patch's lines
                blocks.setdefault(f, []).append((start, old))
        for f, hunks in hunks_of.items():
            written.setdefault(f, []).extend(new for _, _, added, new in hunks if added)
    for f, bl in blocks.items():
        out: list[str] = []
        for start, old in sorted(bl):
            while len(out) < start - 1:
                out.append(f"/* filler {len(out) + 1} */")
            out.extend(old)
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(out) + "\n")
    return root


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_upstream_series_lists_eleven_patches_that_exist() -> None:
    names = series.series_names(UP)
    assert len(names) == 11
    assert (UP / "cover-letter.txt").is_file()


@needs_quilt
def test_upstream_part_applies_to_its_preimage_and_the_tree_is_only_read(tmp_path: Path) -> None:
    tree = preimage_tree(tmp_path / "tree")
    before = snapshot(tree)
    res = series.check_apply(tree, tmp_path / "check-apply.log")
    assert res.applied == series.series_names(UP)
    assert "mm/bpf_memcontrol.h" in res.missing  # a new file
    assert "mm/memcontrol.c" in res.copied
    assert snapshot(tree) == before


@needs_quilt
def test_a_changed_context_line_is_named(tmp_path: Path) -> None:
    tree = preimage_tree(tmp_path / "tree")
    p = tree / "mm" / "memcontrol.c"
    text = p.read_text()
    # a line that 0005 replaces, in reclaim_high(), changed upstream
    old = "\t\tif (page_counter_read(&memcg->memory) <=\n\t\t    READ_ONCE(memcg->memory.high))\n"
    assert old in text
    p.write_text(text.replace(old, old.replace("<=", "< ")))
    before = snapshot(tree)
    with pytest.raises(ChangeFailed) as e:
        series.check_apply(tree, tmp_path / "check-apply.log")
    msg = str(e.value)
    assert "0005-mm-memcontrol-apply-memcg_nr_pages_over_high" in msg
    assert "mm/memcontrol.c: Hunk #" in msg and "FAILED" in msg
    assert "4 of 11 patches" in msg
    assert snapshot(tree) == before


@needs_quilt
def test_the_73_context_is_refused(tmp_path: Path) -> None:
    """The part is not the 7.3 series: 7.3's enum has no CGROUP_TCP_SOCK_OPS."""
    tree = preimage_tree(tmp_path / "tree")
    p = tree / "include" / "linux" / "bpf-cgroup-defs.h"
    p.write_text(p.read_text().replace("CGROUP_TCP_SOCK_OPS,", "CGROUP_BPF_TESTMOD_OPS,"))
    with pytest.raises(ChangeFailed, match=r"0003-bpf-cgroup-add-CGROUP_MEMCG_OPS.*"
                       r"bpf-cgroup-defs.h: Hunk #1 FAILED"):
        series.check_apply(tree, tmp_path / "check-apply.log")


def test_not_a_tree_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no such directory"):
        series.check_apply(tmp_path / "nope", tmp_path / "log")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="none of the files"):
        series.check_apply(tmp_path / "empty", tmp_path / "log")


# The 7.3 series' memcg part (7-17) and the upstream part (1-11) add the
# same code, but
# for these lines: CGROUP_MEMCG_OPS goes next to upstream's
# CGROUP_TCP_SOCK_OPS, and bpf_memcontrol_init() keeps upstream's early
# return (it registers a second kfunc set first).
# The verdict patches (9-11 there, 15-17 here) add 7.3's lines unchanged:
# where upstream differs (try_charge_memcg() ending in `return 0;`, the
# bpf_proactive_reclaim kfunc above the ops in bpf_memcontrol.c, a shorter
# struct mem_cgroup prefix), only their context and line numbers do.
PAIRS = {1: 7, 2: 8, 3: 9, 4: 10, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 16, 11: 17}
ALLOWED = {
    # who may attach: upstream's cgroup_bpf_struct_ops_attach() primes the
    # link before the cgroup lookup and unwinds through "cleanup", 7.3's
    # looks up first and unwinds through "out_free"; the !CONFIG_BPF_JIT
    # stub and the attach function's kernel-doc are 7.3's only (that part
    # of upstream's bpf.h was not available; upstream's function has none)
    2: ({"", "\t\t\t\t\t\t       struct cgroup *cgrp,", "\t\t\t\t\t\t       struct file *dir)",
         "\t\tgoto out_free;", "\t\treturn -EBADF;", "\tif (err)", "\tif (fd_empty(dir))",
         "\treturn -EOPNOTSUPP;", "\tstruct bpf_cgroup_struct_ops_link *st_link = NULL;",
         "\tstruct bpf_prog_list *pl = NULL;", " *",
         " * The type's &bpf_struct_ops.cgroup_may_attach, if any, decides first",
         " * whether the current task may attach the map there.",
         "static inline int bpf_struct_ops_map_cgroup_may_attach(struct bpf_map *map,",
         "{", "}"},
        {"\t\tcgroup_put(cgrp);", "\t\terr = -EBADF;", "\t\tgoto cleanup;", "\tif (err) {",
         "\tif (fd_empty(dir)) {", "\t}"}),
    3: ({"\treturn atype == CGROUP_BPF_TESTMOD_OPS || atype == CGROUP_MEMCG_OPS;"},
        {"\treturn atype == CGROUP_TCP_SOCK_OPS || atype == CGROUP_MEMCG_OPS;"}),
    4: ({"", "\tint err, err2 = 0;", "{", "static int __init bpf_memcontrol_init(void)",
         "\terr2 = register_bpf_struct_ops(&bpf_memcg_bpf_ops, "
         "memcg_bpf_ops);", "\tif (err2)", '\t\tpr_warn("error while registering '
         'memcg_bpf_ops: %d", err2);', "\treturn err ?: err2;"},
        {"\tif (err) {", "\t\treturn err;", "\t}", "", "\terr = register_bpf_struct_ops("
         "&bpf_memcg_bpf_ops, memcg_bpf_ops);", "\tif (err)", '\t\tpr_warn("error while '
         'registering memcg_bpf_ops: %d\\n", err);',
         # "{", "int err;" and bpf_memcontrol_init()'s first line: where each
         # diff took them as context (the same lines nearby), the other
         # counts them as added
         "{", "\tint err;"}),
    # the lease kfuncs' registration, in 7.3's err2 and upstream's err; the
    # tracepoint's include before upstream's "internal.h" (the same line)
    5: ({"\terr2 = err2 ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING,",
         "\terr2 = err2 ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_SYSCALL,",
         "\t\t\t\t\t\t &bpf_memcg_lease_kfunc_set);", "\tif (err2)",
         '\t\tpr_warn("error while registering memcg_bpf_ops kfuncs: %d", err2);'},
        {"\terr = err ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING,",
         "\terr = err ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_SYSCALL,",
         "\t\t\t\t\t       &bpf_memcg_lease_kfunc_set);", "\tif (err)",
         '\t\tpr_warn("error while registering memcg_bpf_ops kfuncs: %d\\n", err);'}),
}


def added_lines(p: Path) -> list[str]:
    return [x for hunks in parse(p).values() for _, _, added, _ in hunks for x in added]


@pytest.mark.parametrize("up", sorted(PAIRS))
def test_upstream_part_adds_the_tested_code(up: int) -> None:
    upn = series.series_names(UP)[up - 1]
    ours = series.series_names(paths.REPO / "patches")[PAIRS[up] - 1]
    assert upn.split("-", 1)[1] == ours.split("-", 1)[1], "same subject"
    a = added_lines(paths.REPO / "patches" / ours)
    b = added_lines(UP / upn)
    allowed_ours, allowed_up = ALLOWED.get(up, (set(), set()))
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            assert set(a[i1:i2]) <= allowed_ours, (op, a[i1:i2], b[j1:j2])
            assert set(b[j1:j2]) <= allowed_up, (op, a[i1:i2], b[j1:j2])

def test_upstream_messages_do_not_speak_of_the_73_backport() -> None:
    for name in series.series_names(UP):
        head = (UP / name).read_text().split("\n---\n", 1)[0]
        for word in ("7.3", "prerequisite", "CGROUP_BPF_TESTMOD_OPS", "bpf_testmod"):
            assert word not in head, (name, word)
