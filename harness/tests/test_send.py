"""harness send on a synthetic tree and a 2-patch quilt series (no network)."""

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import send
from harness.errors import HarnessError
from harness.series import UPSTREAM
from harness.source import SourceInfo

try:
    send.b4_argv()
    HAVE_B4 = True
except HarnessError:
    HAVE_B4 = False

needs_b4 = pytest.mark.skipif(not (HAVE_B4 and shutil.which("quilt")),
                              reason=f"needs b4 ({send.B4_PIN}) and quilt")

ORIG = "".join(f"line{i}\n" for i in range(1, 11))
P1 = """\
From: memcg-bpf project <memcg-bpf@example.org>
Subject: [PATCH] mm: memcontrol: change line 2

The first change.

Link: https://example.org/1
Reviewed-by: Some Reviewer <reviewer@example.org>
---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,4 +1,4 @@
 line1
-line2
+LINE2
 line3
 line4
"""
P2 = """\
From: memcg-bpf project <memcg-bpf@example.org>
Subject: [PATCH] mm: add bpf_memcontrol.h

The second change; WARNME makes the stub checkpatch warn.

Signed-off-by: Test Sender <sender@example.org>
Reviewed-by: Other Reviewer <other@example.org>
---
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -7,4 +7,4 @@
 line7
 line8
-line9
+LINE9
 line10
--- /dev/null
+++ b/mm/bpf_memcontrol.h
@@ -0,0 +1,2 @@
+/* SPDX-License-Identifier: GPL-2.0 */
+int memcg_bpf(void);
"""
COVER = "memcg: a synthetic series\n\nThe cover letter's text.\n"
CHECKPATCH = """\
#!/bin/sh
if grep -q WARNME; then echo "-:12: WARNING: WARNME found"; fi
exit 0
"""
GET_MAINTAINER = """\
#!/bin/sh
case " $* " in
*" --nol "*) echo "Maint Ainer <maint@example.org>" ;;
*) echo "linux-mm@kvack.example.org" ;;
esac
"""
SENDER = "Test Sender <sender@example.org>"
SOB = f"Signed-off-by: {SENDER}"


def sh(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def make_tree(d: Path) -> Path:
    """A tiny 'kernel' tree: mm/memcontrol.c, Kconfig, MAINTAINERS, script stubs."""
    (d / "mm").mkdir(parents=True)
    (d / "scripts").mkdir()
    (d / "mm" / "memcontrol.c").write_text(ORIG)
    (d / "Kconfig").write_text("# a kernel tree (b4 looks for it)\n")
    (d / "MAINTAINERS").write_text("MEMORY CONTROLLER\nM:\tMaint Ainer <maint@example.org>\n")
    for name, text in (("checkpatch.pl", CHECKPATCH), ("get_maintainer.pl", GET_MAINTAINER)):
        (d / "scripts" / name).write_text(text)
        (d / "scripts" / name).chmod(0o755)
    return d


def make_patches(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "0001-change-line-2.patch").write_text(P1)
    (d / "0002-add-header.patch").write_text(P2)
    (d / "series").write_text("0001-change-line-2.patch\n0002-add-header.patch\n")
    (d / "cover-letter.txt").write_text(COVER)
    return d


@dataclass
class GitEnv:
    dir: Path
    config: Path


@dataclass
class Flow:
    res: dict[str, Any]  # send.json
    repo: Path
    base: str
    patches: Path
    out: Path
    mails: Path
    wt: Path


@pytest.fixture(scope="module")
def gitenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitEnv]:
    """git and b4 see only this identity and config; no real ~/.cache."""
    d = tmp_path_factory.mktemp("gitenv")
    (d / "home").mkdir()
    cfg = d / "gitconfig"
    cfg.write_text("[user]\n\tname = Test Sender\n\temail = sender@example.org\n"
                   "[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(d / "home"))
        mp.setenv("XDG_CACHE_HOME", str(d / "home" / ".cache"))
        mp.setenv("GIT_CONFIG_GLOBAL", str(cfg))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("MEMCG_BPF_CACHE", str(d / "cache"))
        for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                  "GIT_COMMITTER_EMAIL", "EMAIL", "GIT_CONFIG_COUNT", "GIT_DIR",
                  "GIT_WORK_TREE", "MEMCG_BPF_OUT"):
            mp.delenv(k, raising=False)
        yield GitEnv(dir=d, config=cfg)


def git_repo(d: Path) -> tuple[Path, str]:
    make_tree(d)
    sh("git", "init", "-q", str(d))
    sh("git", "-C", str(d), "add", "-A")
    sh("git", "-C", str(d), "commit", "-q", "-m", "Linux 7.3 (synthetic)")
    return d, sh("git", "-C", str(d), "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def flow(gitenv: GitEnv, tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """send() once on a user git tree; the tests look at what it left."""
    d = tmp_path_factory.mktemp("flow")
    repo, base = git_repo(d / "linux")
    patches = make_patches(d / "patches")
    out = d / "out"
    res = send.send(send.SendOptions(kernel_dir=repo, patches=patches,
                                     cover=patches / "cover-letter.txt", out_dir=out))
    return Flow(res=res, repo=repo, base=base, patches=patches, out=out,
                mails=out / "mails", wt=Path(res["round_trip"]["worktree"]))


def mail(flow: Flow, k: int) -> str:
    return next(flow.mails.glob(f"{k:04d}-*.eml")).read_text()


@needs_b4
def test_send_writes_mails_and_report(flow: Flow) -> None:
    res = flow.res
    assert res["status"] == "PASS", res
    assert [Path(f).name for f in res["files"]] == [
        "0000-memcg-a-synthetic-series.eml", "0001-mm-memcontrol-change-line-2.eml",
        "0002-mm-add-bpf_memcontrol-h.eml"]
    assert res["to"] == ["Maint Ainer <maint@example.org>"]
    assert "linux-mm@kvack.example.org" in res["cc"]
    assert res["check"]["summary"] == {"success": 1, "warning": 1, "error": 0}
    assert res["check"]["counts"] == {"error": 0, "warning": 1, "check": 0, "other": 0}
    # the patches' author (the project) did not sign off: an error checkpatch
    # --mailback only reports on patches with another problem
    assert res["check"]["author_signoff_missing"] == ["mm: memcontrol: change line 2",
                                                      "mm: add bpf_memcontrol.h"]
    assert res["check"]["status"] == "FAIL"
    issues = [x for v in res["check"]["issues"].values() for x in v]
    assert any("WARNME found" in x for x in issues)
    assert "Success: 1, Warning: 1, Error: 0" in (flow.out / "check.txt").read_text()
    assert res["round_trip"] == {"ok": True, "differences": [], "worktree": str(flow.wt)}
    assert json.loads((flow.out / "send.json").read_text())["status"] == "PASS"
    cmds = "\n".join(res["commands"])
    for step in ("git quiltimport", "prep --enroll", "prep --edit-cover", "prep --auto-to-cc",
                 "prep --check", "send -o"):
        assert step in cmds
    assert not res["sent"]
    # the user's tree is back where it was, clean; the series is on the branch
    assert sh("git", "-C", str(flow.repo), "symbolic-ref", "--short", "HEAD").strip() == "master"
    assert sh("git", "-C", str(flow.repo), "status", "--porcelain") == ""
    log = sh("git", "-C", str(flow.repo), "log", "--format=%an|%s", f"{flow.base}..{send.BRANCH}")
    assert log.splitlines() == ["memcg-bpf project|mm: add bpf_memcontrol.h",
                                "memcg-bpf project|mm: memcontrol: change line 2",
                                "Test Sender|memcg: a synthetic series"]  # b4's cover commit


@needs_b4
def test_trailers_survive_and_signoff_added_once(flow: Flow) -> None:
    m1, m2 = mail(flow, 1), mail(flow, 2)
    assert "From: memcg-bpf project <memcg-bpf@example.org>\n\nThe first change." in m1
    assert ("Link: https://example.org/1\nReviewed-by: Some Reviewer <reviewer@example.org>\n"
            f"{SOB}\n---\n") in m1
    # the sender's sign-off was there already: not added again, order kept
    assert m2.count(SOB) == 1
    assert f"{SOB}\nReviewed-by: Other Reviewer <other@example.org>\n---\n" in m2


@needs_b4
def test_cover_letter_and_base_in_mail_0(flow: Flow) -> None:
    m0 = mail(flow, 0)
    assert "Subject: [PATCH 0/2] memcg: a synthetic series" in m0
    assert "The cover letter's text." in m0
    assert f"base-commit: {flow.base}" in m0
    assert "EDITME" not in m0


def corrupt(src: Path, dst: Path, kind: str) -> Path:
    shutil.copytree(src, dst)
    m1 = next(dst.glob("0001-*.eml"))
    text = m1.read_text()
    if kind == "drop":
        next(dst.glob("0002-*.eml")).unlink()
    elif kind == "context":
        m1.write_text(text.replace("\n line3\n", "\n lineX\n"))
    elif kind == "content":
        m1.write_text(text.replace("\n+LINE2\n", "\n+LINE7\n"))
    elif kind == "trailer":
        m1.write_text(text.replace("Reviewed-by: Some Reviewer", "Reviewed-by: Someone Else"))
    assert kind == "none" or m1.read_text() != text or kind == "drop"
    return dst


@needs_b4
@pytest.mark.parametrize("kind,expect", [
    ("none", None),
    ("drop", "mail 2/2 is missing"),
    ("context", "git am fails at mail 1/2"),
    ("content", "tree from the mails differs from memcg-bpf/send: M mm/memcontrol.c"),
    ("trailer", "patch 1 (mm: memcontrol: change line 2): message differs"),
])
def test_round_trip(flow: Flow, tmp_path: Path, kind: str, expect: str | None) -> None:
    mails = corrupt(flow.mails, tmp_path / "mails", kind)
    diffs = send.round_trip(mails, flow.repo, [send.BRANCH, flow.patches], worktree=flow.wt,
                            log=tmp_path / "rt.log")
    if expect is None:
        assert diffs == []
    else:
        assert any(expect in d for d in diffs), diffs
    if kind == "content":  # quilt's result disagrees too
        assert any("differs from quilt push -a" in d for d in diffs), diffs


@needs_b4
def test_round_trip_against_quilt_only(flow: Flow, tmp_path: Path) -> None:
    """The other kind of expectation alone: a quilt patches directory."""
    assert send.round_trip(flow.mails, flow.repo, flow.patches, worktree=flow.wt,
                           log=tmp_path / "rt.log") == []
    other = make_patches(tmp_path / "other")
    (other / "0001-change-line-2.patch").write_text(P1.replace("+LINE2", "+LINE3"))
    diffs = send.round_trip(flow.mails, flow.repo, other, worktree=flow.wt,
                            log=tmp_path / "rt.log")
    assert diffs and "quilt push -a" in diffs[0], diffs


def test_identity_missing_is_refused(
        gitenv: GitEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    with pytest.raises(HarnessError) as ei:
        send.identity()
    msg = str(ei.value)
    assert "user.name and user.email not set" in msg
    assert 'git config --global user.name "Your Name"' in msg
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Env Sender")
    with pytest.raises(HarnessError, match="user.email not set"):
        send.identity()
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "env@example.org")
    assert str(send.identity()) == "Env Sender <env@example.org>"


def test_send_without_identity_changes_nothing(
        gitenv: GitEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, base = git_repo(tmp_path / "linux")
    patches = make_patches(tmp_path / "patches")
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("[init]\n\tdefaultBranch = master\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    with pytest.raises(HarnessError, match="no git identity"):
        send.send(send.SendOptions(kernel_dir=repo, patches=patches,
                                   cover=patches / "cover-letter.txt", out_dir=tmp_path / "o"))
    assert sh("git", "-C", str(repo), "branch", "--list", send.BRANCH) == ""


def test_user_tree_must_be_clean_git(gitenv: GitEnv, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="not the top of a git checkout"):
        send.user_base(make_tree(tmp_path / "plain"), None)
    repo, base = git_repo(tmp_path / "linux")
    assert send.user_base(repo, None) == (repo.resolve(), base, "master")
    with pytest.raises(HarnessError, match="no such commit"):
        send.user_base(repo, "v99")
    (repo / "mm" / "memcontrol.c").write_text("changed\n")
    with pytest.raises(HarnessError, match="uncommitted changes") as ei:
        send.user_base(repo, None)
    assert "series pop" in str(ei.value)


def test_patch_headers_checked(tmp_path: Path) -> None:
    patches = make_patches(tmp_path / "p")
    assert send.check_patches(patches) == ["0001-change-line-2.patch", "0002-add-header.patch"]
    (patches / "0002-add-header.patch").write_text(P2.split("\n", 1)[1])  # no From:
    with pytest.raises(HarnessError, match="0002-add-header.patch: no From: header"):
        send.check_patches(patches)


def test_signoff_and_reset_author(gitenv: GitEnv, tmp_path: Path) -> None:
    repo, base = git_repo(tmp_path / "linux")
    patches = make_patches(tmp_path / "patches")
    ident = send.identity(repo)
    run = send.Runner(log=tmp_path / "l.log", env=dict(os.environ, **ident.committer_env()))
    send.import_series(repo, base, patches, run)
    commits = send.add_signoffs(repo, base, ident, run, reset_author=True)
    assert len(commits) == 2
    for c in commits:
        body = sh("git", "-C", str(repo), "show", "-s", "--format=%an <%ae>%n%B", c)
        assert body.startswith(SENDER) and body.count(SOB) == 1
    # once more: still one sign-off each
    again = send.add_signoffs(repo, base, ident, run)
    assert all(sh("git", "-C", str(repo), "show", "-s", "--format=%B", c).count(SOB) == 1
               for c in again)


def quilt_tree(tmp_path: Path) -> Path:
    """A Debian-like tree (no git) with the series pushed by quilt."""
    tree = make_tree(tmp_path / "trees" / "linux-source-7.3_7.3.4-1_abc")
    patches = make_patches(tmp_path / "patches")
    sh("quilt", "push", "-a", "-q", cwd=tree,
       env=dict(os.environ, QUILT_PATCHES=str(patches), QUILTRC="/dev/null"))
    assert (tree / "mm" / "bpf_memcontrol.h").exists()
    return tree


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not shutil.which("quilt"), reason="quilt not installed")
def test_debian_base_from_quilt_tree(gitenv: GitEnv, tmp_path: Path) -> None:
    tree = quilt_tree(tmp_path)
    before = snapshot(tree)
    run = send.Runner(log=tmp_path / "l.log", env=dict(os.environ))
    label = "Linux 7.3.4 (Debian linux-source-7.3 7.3.4-1)"
    repo, commit = send.debian_base(tree, label, run)
    assert snapshot(tree) == before  # only read
    files = sh("git", "-C", str(repo), "ls-tree", "-r", "--name-only", commit).split()
    assert "mm/bpf_memcontrol.h" not in files and not any(f.startswith(".pc") for f in files)
    assert "scripts/checkpatch.pl" in files
    assert sh("git", "-C", str(repo), "show", f"{commit}:mm/memcontrol.c") == ORIG
    assert sh("git", "-C", str(repo), "log", "-1", "--format=%s", commit).strip() == label
    assert sh("git", "-C", str(repo), "status", "--porcelain") == ""
    meta = json.loads((repo.parent / "base.json").read_text())
    assert meta["commit"] == commit and meta["files"] == len(files)
    # made once: the second call finds it
    stamp = (repo.parent / "create.log").stat().st_mtime_ns
    assert send.debian_base(tree, label, run) == (repo, commit)
    assert (repo.parent / "create.log").stat().st_mtime_ns == stamp
    # the same tree gives the same commit (fixed author and date)
    shutil.rmtree(repo.parent)
    assert send.debian_base(tree, label, run)[1] == commit


@needs_b4
def test_send_from_debian_tree_and_cli(
        gitenv: GitEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default path (no --kernel-dir), through add_parser/cmd_send."""
    tree = quilt_tree(tmp_path)
    info = SourceInfo(tree=str(tree), kernelversion="7.3.4", origin="debian-package",
                      package_version="7.3.4-1")
    monkeypatch.setattr(send.source, "resolve", lambda *a, **k: info)
    patches = tmp_path / "patches"
    ap = argparse.ArgumentParser()
    send.add_parser(ap.add_subparsers(dest="verb"))
    args = ap.parse_args(["send", "--patches", str(patches), "--cover-letter",
                          str(patches / "cover-letter.txt"), "--out", str(tmp_path / "o")])
    assert send.cmd_send(args) == 0
    res = json.loads((tmp_path / "o" / "send.json").read_text())
    assert res["status"] == "PASS" and res["round_trip"]["ok"]
    # by default the sender is the author: signed off, no in-body From: in the mails
    assert res["check"]["author_signoff_missing"] == []
    assert res["check"]["status"] == "WARN"
    assert "\nFrom: memcg-bpf project" not in Path(res["files"][1]).read_text()
    assert res["base"]["label"] == "Linux 7.3.4 (Debian linux-source-7.3 7.3.4-1)"
    assert len(res["files"]) == 3
    assert set(res["timings"]) >= {"base_repo", "import", "b4_check", "round_trip"}
    # the steps are stage records, as every verb's stages are, in report.json
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    st = {s["stage"]: s["status"] for s in rep["stages"]}
    assert st["send-round-trip"] == "PASS" and st["send-b4-check"] == "PASS"
    assert st["send-check-report"] == "PASS" and rep["status"] == "PASS"
    assert (tmp_path / "o" / "send-import.json").exists()
    # a second run reuses the base repository and gives the same base commit
    assert send.cmd_send(args) == 0
    assert json.loads((tmp_path / "o" / "send.json").read_text())["base"] == res["base"]
    # a missing cover letter is an error, reported in send.json
    args.cover = tmp_path / "nope.txt"
    assert send.cmd_send(args) == 2
    res = json.loads((tmp_path / "o" / "send.json").read_text())
    assert res["status"] == "ERROR" and "cover letter" in res["error"]


def test_parse_b4_check() -> None:
    out = ("Checking patches using:\n  ./scripts/checkpatch.pl -q --terse\n---\n"
           "\x1b[32m●\x1b[0m 0123456789ab: mm: one\n"
           "\x1b[31m●\x1b[0m 123456789abc: mm: two\n"
           "  \x1b[31m●\x1b[0m checkpatch.pl: 10: ERROR: trailing whitespace\n"
           "  \x1b[33m●\x1b[0m checkpatch.pl: 12: WARNING: line length\n"
           "---\nSuccess: 1, Warning: 1, Error: 1\n")
    r = send.parse_b4_check(out)
    assert r.summary == {"success": 1, "warning": 1, "error": 1} and r.status == "FAIL"
    assert r.counts() == {"error": 1, "warning": 1, "check": 0, "other": 0}
    assert r.issues == {"0123456789ab: mm: one": [],
                        "123456789abc: mm: two": ["checkpatch.pl: 10: ERROR: trailing whitespace",
                                                  "checkpatch.pl: 12: WARNING: line length"]}
    with pytest.raises(HarnessError):
        send.parse_b4_check("Traceback ...")
    noisy = out.replace("---\nSuccess", "  \x1b[31m●\x1b[0m checkpatch.pl: Traceback (most "
                        "recent call last):\n---\nSuccess")
    assert send.parse_b4_check(noisy).counts()["other"] == 1


def test_spdxcheck_problem_named(tmp_path: Path) -> None:
    repo, _ = git_repo(tmp_path / "linux")
    (repo / "scripts" / "spdxcheck.py").write_text("")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "python3").write_text("#!/bin/sh\nexit 1\n")
    (bin_ / "python3").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}")
    problem = send.spdxcheck_problem(repo, env)
    assert problem is not None and "python3-ply python3-git" in problem
    shutil.rmtree(repo / ".git")  # checkpatch runs spdxcheck.py only in a git tree
    assert send.spdxcheck_problem(repo, env) is None


def test_recipients_decoded(tmp_path: Path) -> None:
    m = tmp_path / "0000-cover.eml"
    m.write_bytes(b"From: A <a@example.org>\nSubject: [PATCH 0/1] x\n"
                  b"To: =?utf-8?q?Michal_Koutn=C3=BD?= <mkoutny@example.org>, \n"
                  b" b@example.org\nCc: list@example.org, b@example.org\n\nbody\n")
    assert send.recipients([m]) == (["Michal Koutn\u00fd <mkoutny@example.org>", "b@example.org"],
                                    ["list@example.org"])


def test_really_send_needs_round_trip_and_terminal(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = send.Runner(log=tmp_path / "l.log", env=dict(os.environ))
    with pytest.raises(HarnessError, match="do not round-trip"):
        send.really_send(tmp_path, ["b4"], run, ["mail 2/2 is missing"])
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    with pytest.raises(HarnessError, match="needs a terminal"):
        send.really_send(tmp_path, ["b4"], run, [])
    assert run.commands == []  # b4 never ran


def test_base_needs_kernel_dir(gitenv: GitEnv, tmp_path: Path) -> None:
    patches = make_patches(tmp_path / "patches")
    with pytest.raises(HarnessError, match="--base goes with --kernel-dir"):
        send.send(send.SendOptions(base="v7.3", patches=patches,
                                   cover=patches / "cover-letter.txt", out_dir=tmp_path / "o"))


def test_upstream_needs_kernel_dir(gitenv: GitEnv, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="goes on your bpf-next checkout"):
        send.send(send.SendOptions(upstream=True, patches=UPSTREAM,
                                   cover=UPSTREAM / "cover-letter.txt",
                                   out_dir=tmp_path / "o"))


@needs_b4
def test_send_upstream_part_on_a_tree_with_its_context(gitenv: GitEnv, tmp_path: Path) -> None:
    """--upstream on a git tree with the upstream part's context (its hunks'
    pre-images, see test_upstream_part): eleven mails, signed off by the sender,
    that git am back to quilt push -a of patches/upstream."""
    from harness.tests.test_upstream_part import preimage_tree
    d = tmp_path / "linux"
    preimage_tree(d)
    make_tree_stubs(d)
    sh("git", "init", "-q", str(d))
    sh("git", "-C", str(d), "add", "-A")
    sh("git", "-C", str(d), "commit", "-q", "-m", "bpf-next (synthetic: the part's context)")
    res = send.send(send.SendOptions(kernel_dir=d, upstream=True, patches=UPSTREAM,
                                     cover=UPSTREAM / "cover-letter.txt",
                                     out_dir=tmp_path / "out"))
    assert res["status"] == "PASS", res["round_trip"]
    assert len(res["files"]) == 12  # the cover letter and eleven patches
    subjects = [c["subject"] for c in res["commits"]]
    assert subjects[0] == "mm: memcontrol: keep the memory.high delay from overflowing"
    assert subjects[1] == "bpf: cgroup: let a cgroup struct_ops type decide who may attach"
    assert subjects[2] == "bpf: cgroup: add CGROUP_MEMCG_OPS"
    first = Path(res["files"][1]).read_text()
    assert "Signed-off-by: Test Sender <sender@example.org>" in first
    cover = Path(res["files"][0]).read_text()
    assert "checked by applying it" in cover and "not by building it" in cover
    two = Path(res["files"][4]).read_text()
    assert "Suggested-by: Hui Zhu <zhuhui@kylinos.cn>" in two


def make_tree_stubs(d: Path) -> None:
    (d / "scripts").mkdir(exist_ok=True)
    (d / "Kconfig").write_text("# a kernel tree (b4 looks for it)\n")
    if not (d / "MAINTAINERS").exists():
        (d / "MAINTAINERS").write_text("MEMORY CONTROLLER\nM:\tMaint Ainer <maint@example.org>\n")
    for name, text in (("checkpatch.pl", CHECKPATCH), ("get_maintainer.pl", GET_MAINTAINER)):
        (d / "scripts" / name).write_text(text)
        (d / "scripts" / name).chmod(0o755)
