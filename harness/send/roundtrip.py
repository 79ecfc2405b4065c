"""send: the round trip (the mails applied with git am on a clean checkout
of the base equal the branch and quilt push -a of patches/)."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness import paths
from harness.proc import require
from harness.send.b4 import read_mail
from harness.send.common import (
    _BASE_COMMIT,
    _PATCH_NO,
    GIT_TIMEOUT_S,
    MAGIC_MARKER,
    Runner,
    _git_ok,
    _git_path,
    _ticking,
    git,
)
from harness.series import parse_push_failure, series_names


def _mail_files(mbox_dir: Path) -> list[Path]:
    return sorted(mbox_dir.glob("*.eml")) or sorted(mbox_dir.glob("*.patch"))


def _mail_order(mbox_dir: Path) -> tuple[list[tuple[int, int, Path, str]], list[str]]:
    """The patch mails (not the cover letter) in order, and what is amiss
    with their numbering."""
    files = _mail_files(mbox_dir)
    diffs: list[str] = []
    mails = []
    for f in files:
        subject = str(read_mail(f).get("Subject", ""))
        m = _PATCH_NO.search(subject)
        k, n = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        mails.append((k, n, f, subject))
    if not mails:
        return [], [f"no mails (*.eml) in {mbox_dir}"]
    totals = {n for _, n, _, _ in mails}
    if len(totals) > 1:
        diffs.append(f"the mails disagree on the patch count: {sorted(totals)}")
    total = max(totals)
    numbers = [k for k, _, _, _ in mails]
    for k in range(1, total + 1):
        if k not in numbers:
            diffs.append(f"mail {k}/{total} is missing")
    for k in sorted({k for k in numbers if numbers.count(k) > 1}):
        diffs.append(f"more than one mail {k}/{total}")
    patches = sorted((x for x in mails if x[0] > 0), key=lambda x: x[0])
    return patches, diffs


def _commits(repo: Path, rng: str) -> list[tuple[str, str, str]]:
    """(author, message, sha) of each commit of rng, oldest first, b4's
    cover-letter commit left out."""
    out = git(repo, "log", "--reverse", "--format=%H%x1f%an <%ae>%x1f%B%x1e", rng)
    commits = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, author, msg = rec.split("\x1f", 2)
        if MAGIC_MARKER in msg:
            continue
        commits.append((author, msg.rstrip() + "\n", sha))
    return commits


def _prepare_worktree(repo: Path, wt: Path, base: str, run: Runner) -> None:
    if (wt / ".git").exists() and _git_ok(wt, "rev-parse", "--git-dir"):
        if _git_path(wt, "rebase-apply").exists():
            run.run(["git", "am", "--abort"], wt)
            shutil.rmtree(_git_path(wt, "rebase-apply"), ignore_errors=True)
        shutil.rmtree(wt / ".pc", ignore_errors=True)
        run.must(["git", "checkout", "-q", "-f", "--detach", base], wt, "git checkout (round trip)")
        run.must(["git", "clean", "-fdq"], wt, "git clean (round trip)")
        return
    if wt.exists():
        shutil.rmtree(wt)
    wt.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "prune")
    run.prog.maybe(f"checking out the base in {wt} (once)", force=True)
    with _ticking(run.prog, "checking out the round-trip worktree"):
        run.must(["git", "worktree", "add", "-q", "-f", "--detach", str(wt), base], repo,
                 "git worktree add (round trip)")


def _quilt_tree(wt: Path, base: str, patches: Path, run: Runner) -> tuple[str | None, str]:
    """Tree of `quilt push -a --fuzz=0` of `patches` on the base; or an error."""
    require("quilt", "quilt")
    env = dict(run.env, QUILT_PATCHES=str(patches.resolve()), QUILT_PC=".pc",
               QUILTRC="/dev/null", LC_ALL="C", GIT_LITERAL_PATHSPECS="1")
    try:
        rc, out = run.run(["quilt", "push", "-a", "--fuzz=0", "-q"], wt, env=env)
        if rc != 0:
            failure = parse_push_failure(out)
            return None, (failure.describe() if failure else f"quilt push -a failed: {out[-500:]}")
        pc = wt / ".pc"
        files: set[str] = set()
        for name in series_names(patches):
            d = pc / name
            if d.is_dir():
                files.update(str(p.relative_to(d)) for p in d.rglob("*")
                             if p.is_file() and p.relative_to(d) != Path(".timestamp"))
        if files:
            git(wt, "add", "-A", "-f", "--pathspec-from-file=-", "--pathspec-file-nul",
                input="\0".join(sorted(files)), env=env)
        return git(wt, "write-tree").strip(), ""
    finally:
        # pop restores the files quilt changed (new ones included), then the
        # index goes back to the base
        if (wt / ".pc" / "applied-patches").exists():
            run.run(["quilt", "pop", "-a", "-f", "-q"], wt, env=env)
        shutil.rmtree(wt / ".pc", ignore_errors=True)
        git(wt, "reset", "-q", "--hard", base)


def _tree_diff(repo: Path, a: str, b: str) -> str:
    out = git(repo, "diff-tree", "-r", "--name-status", a, b).split("\n")
    items = [" ".join(x.split("\t")) for x in out if x.strip()]
    return "; ".join(items[:20]) + (f"; ... ({len(items)} files)" if len(items) > 20 else "")


def round_trip(mbox_dir: Path, base_repo: Path, expected: str | Path | Sequence[str | Path], *,
               base: str | None = None, worktree: Path | None = None, log: Path | None = None,
               env: dict[str, str] | None = None) -> list[str]:
    """Apply the mails in `mbox_dir` (as written by `b4 send -o`) with git am
    on a clean checkout of the base in `base_repo`, and compare the result
    with each expectation: a commit-ish of `base_repo` (its tree, and the
    author and message of each commit after the base, b4's cover commit
    left out), or a quilt patches directory (the tree `quilt push -a
    --fuzz=0` gives on the base). The base is `base`, else the mails'
    base-commit: line. Returns the differences found; empty means OK.
    """
    base_repo = base_repo.resolve()
    expectations = [expected] if isinstance(expected, str | Path) else list(expected)
    key = paths.short_hash(str(base_repo))
    wt = worktree or paths.cache_root() / "send" / "roundtrip" / key
    run = Runner(log=log or paths.cache_root() / "send" / f"roundtrip-{key}.log",
                 env=dict(os.environ if env is None else env))
    mails, diffs = _mail_order(Path(mbox_dir))
    if not mails:
        return diffs
    if base is None:
        found = {m.group(1) for f in _mail_files(Path(mbox_dir))
                 for m in _BASE_COMMIT.finditer(f.read_text(errors="replace"))}
        if len(found) != 1:
            return diffs + [f"the mails name {len(found)} base-commit: lines ({sorted(found)}); "
                            "pass the base explicitly"]
        base = found.pop()
    r = subprocess.run(["git", "-C", str(base_repo), "rev-parse", "--verify", "-q",
                        f"{base}^{{commit}}"], capture_output=True, text=True,
                       timeout=GIT_TIMEOUT_S)
    if r.returncode != 0:
        return diffs + [f"base-commit {base} is not in {base_repo}"]
    base = r.stdout.strip()
    _prepare_worktree(base_repo, wt, base, run)

    quilt_trees: dict[Path, tuple[str | None, str]] = {}
    for exp in expectations:
        if isinstance(exp, Path):
            quilt_trees[exp] = _quilt_tree(wt, base, exp, run)

    rc, out = run.run(["git", "am", "--no-3way", "--no-message-id", "--no-scissors",
                       *[str(f) for _, _, f, _ in mails]], wt)
    if rc != 0:
        k = len(re.findall(r"^Applying: ", out, re.M))
        k_mail = mails[k - 1] if 0 < k <= len(mails) else None
        errors = [x for x in out.splitlines() if x.startswith(("error:", "fatal:"))
                  or "does not apply" in x or "Patch failed" in x]
        where = f"mail {k_mail[0]}/{k_mail[1]} ({k_mail[2].name})" if k_mail else "the mails"
        run.run(["git", "am", "--abort"], wt)
        return diffs + [f"git am fails at {where}: " + " | ".join(errors[:4] or [out[-300:]])]
    am_tree = git(wt, "rev-parse", "HEAD^{tree}").strip()
    am_commits = _commits(wt, f"{base}..HEAD")

    for exp in expectations:
        if isinstance(exp, Path):
            qtree, err = quilt_trees[exp]
            if err or qtree is None:  # no tree comes without its error
                diffs.append(f"quilt push -a of {exp}: {err}")
            elif qtree != am_tree:
                diffs.append(f"tree from the mails differs from quilt push -a of {exp}: "
                             + _tree_diff(wt, qtree, am_tree))
            continue
        r = subprocess.run(["git", "-C", str(base_repo), "rev-parse", "--verify", "-q",
                            f"{exp}^{{tree}}"], capture_output=True, text=True,
                           timeout=GIT_TIMEOUT_S)
        if r.returncode != 0:
            diffs.append(f"{exp}: no such commit in {base_repo}")
            continue
        if r.stdout.strip() != am_tree:
            diffs.append(f"tree from the mails differs from {exp}: "
                         + _tree_diff(wt, r.stdout.strip(), am_tree))
        want = _commits(base_repo, f"{base}..{exp}")
        if len(want) != len(am_commits):
            diffs.append(f"the mails give {len(am_commits)} commits, {exp} has {len(want)}")
        for i, ((wa, wm, _), (ga, gm, _)) in enumerate(zip(want, am_commits, strict=False), 1):
            if wa != ga:
                diffs.append(f"patch {i}: author {ga!r} from the mail, {wa!r} in {exp}")
            if wm != gm:
                delta = [x for x in difflib.unified_diff(wm.splitlines(), gm.splitlines(),
                                                         lineterm="", n=0)
                         if not x.startswith(("---", "+++", "@@"))]
                diffs.append(f"patch {i} ({wm.splitlines()[0]}): message differs: "
                             + " | ".join(delta[:6]))
    return diffs
