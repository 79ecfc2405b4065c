"""send: the git base the series goes on (the user's tree, or a repository
made once from the Debian tree), and the series imported onto it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from harness import paths
from harness.errors import HarnessError
from harness.proc import require
from harness.send.common import (
    BASE_BRANCH,
    BASE_IDENT,
    BRANCH,
    GIT_TIMEOUT_S,
    PATCHES,
    Runner,
    _git_ok,
    _git_path,
    _ticking,
    git,
)
from harness.send.identity import Identity
from harness.series import series_names


def _pc_state(tree: Path) -> tuple[()] | tuple[str, tuple[tuple[str, int | None], ...]]:
    """What says whether quilt pushed or popped in `tree` meanwhile."""
    pc = tree / ".pc"
    if not pc.is_dir():
        return ()
    entries: list[tuple[str, int | None]] = []
    for p in sorted(pc.iterdir()):
        try:
            entries.append((p.name, p.stat().st_mtime_ns))
        except OSError:
            entries.append((p.name, None))
    applied = pc / "applied-patches"
    return (applied.read_text() if applied.exists() else "", tuple(entries))


def debian_base(tree: Path, label: str, parent: Runner,
                patches: Path = PATCHES) -> tuple[Path, str]:
    """The git repository (with a work tree) holding `tree` without the quilt
    series, made once per tree under ~/.cache/memcg-bpf/send/<tree name>/
    (log: create.log there). `tree` itself is only read."""
    tree = tree.resolve()
    home = paths.cache_root() / "send" / tree.name
    repo, meta = home / "repo", home / "base.json"
    if meta.exists() and (repo / ".git").is_dir():
        commit = json.loads(meta.read_text()).get("commit", "")
        if commit and _git_ok(repo, "cat-file", "-e", f"{commit}^{{commit}}"):
            return repo, commit
    home.mkdir(parents=True, exist_ok=True)
    run = Runner(log=home / "create.log", env=parent.env, prog=parent.prog,
                 commands=parent.commands, timings=parent.timings)
    run.log.write_text("")
    tmp = home / "repo.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    prog, t0 = run.prog, time.monotonic()
    before = _pc_state(tree)
    prog.maybe(f"copying {tree} to make the base repository (once per tree)", force=True)
    with _ticking(prog, "copying the tree"):
        run.must(["cp", "-a", "--reflink=auto", f"{tree}/.", str(tmp)], home, "copying the tree")
    if _pc_state(tree) != before:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HarnessError(f"{tree} changed while it was copied (quilt pushed or popped)",
                           hint="rerun when no `harness series/check/run` works on that tree")
    applied = tmp / ".pc" / "applied-patches"
    if applied.exists() and applied.read_text().strip():
        require("quilt", "quilt")
        prog.maybe("quilt pop -a in the copy (the tree itself is not touched)", force=True)
        env = dict(run.env, QUILT_PATCHES=str(patches.resolve()), QUILT_PC=".pc",
                   QUILTRC="/dev/null", LC_ALL="C")
        run.must(["quilt", "pop", "-a", "-f", "-q"], tmp, "quilt pop -a in the copy", env=env)
    shutil.rmtree(tmp / ".pc", ignore_errors=True)
    run.must(["git", "init", "-q", "-b", BASE_BRANCH, str(tmp)], home, "git init")
    for key, value in (("gc.auto", "0"), ("maintenance.auto", "false"),
                       ("core.looseCompression", "1")):
        git(tmp, "config", key, value)
    count = [0]

    def added(line: str) -> None:
        if line.startswith("add '"):
            count[0] += 1
            prog.maybe(f"git add: {count[0]} files")

    prog.maybe("git add of every file (a minute or two for a kernel tree)", force=True)
    run.must(["git", "add", "-A", "-f", "--verbose", "."], tmp, "git add", on_line=added)
    treeid = git(tmp, "write-tree").strip()
    # No path or date in it: the same tree gives the same commit everywhere.
    message = f"{label}\n\nThe package's tree without the quilt series, made by `harness send`.\n"
    commit = git(tmp, "commit-tree", treeid, env=dict(os.environ, **BASE_IDENT),
                 input=message).strip()
    git(tmp, "update-ref", f"refs/heads/{BASE_BRANCH}", commit)
    git(tmp, "reset", "-q")
    if repo.exists():
        shutil.rmtree(repo)
    tmp.rename(repo)
    meta.write_text(json.dumps({"commit": commit, "tree": str(tree), "label": label,
                                "files": count[0],
                                "seconds": round(time.monotonic() - t0, 1)}, indent=2) + "\n")
    prog.maybe(f"base repository {repo}: {count[0]} files, commit {commit[:12]}", force=True)
    return repo, commit


def _reset_own_repo(repo: Path) -> None:
    """Undo whatever an interrupted run left in a repository the harness owns."""
    for name in ("rebase-apply", "rebase-merge"):
        p = _git_path(repo, name)
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
    for name in ("CHERRY_PICK_HEAD", "MERGE_HEAD", "REVERT_HEAD"):
        p = _git_path(repo, name)
        if p.exists():
            p.unlink()
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-fdq")


def user_base(kernel_dir: Path, rev: str | None) -> tuple[Path, str, str]:
    """(repo, base commit, what to check out again afterwards) of the user's
    tree, which must be a clean git checkout."""
    tree = kernel_dir.resolve()
    if not tree.is_dir():
        raise HarnessError(f"--kernel-dir {kernel_dir}: no such directory")
    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "--show-toplevel"],
                       capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    if r.returncode != 0 or Path(r.stdout.strip()).resolve() != tree:
        raise HarnessError(f"--kernel-dir {tree} is not the top of a git checkout",
                           hint="send needs your kernel tree as a git repository; without "
                           "--kernel-dir it makes one from the harness's Debian tree")
    busy = [n for n in ("rebase-apply", "rebase-merge", "MERGE_HEAD", "CHERRY_PICK_HEAD",
                        "REVERT_HEAD") if _git_path(tree, n).exists()]
    if busy:
        raise HarnessError(f"{tree}: a git operation is in progress ({', '.join(busy)})",
                           hint="finish or abort it first")
    dirty = git(tree, "status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        raise HarnessError(
            f"{tree} has uncommitted changes:\n{dirty[:1000]}",
            hint="commit or stash them; if the harness applied the series there: "
            f"python3 -m harness series pop --kernel-dir {tree}")
    base = rev or "HEAD"
    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "-q",
                        f"{base}^{{commit}}"], capture_output=True, text=True,
                       timeout=GIT_TIMEOUT_S)
    if r.returncode != 0:
        raise HarnessError(f"--base {base}: no such commit in {tree}")
    original = git(tree, "symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
    return tree, r.stdout.strip(), original or git(tree, "rev-parse", "HEAD").strip()


def check_patches(patches: Path) -> list[str]:
    """The series' patch names; each must have From: and Subject: headers
    (git quiltimport would otherwise ask for an author on stdin)."""
    names = series_names(patches)
    if not names:
        raise HarnessError(f"{patches}/series lists no patches")
    for name in names:
        p = patches / name
        if not p.is_file():
            raise HarnessError(f"{patches}/series lists {name}, which does not exist")
        head = p.read_text(errors="replace").split("\n\n", 1)[0]
        missing = [h for h in ("From:", "Subject:")
                   if not re.search(rf"^{h}\s*\S", head, re.M)]
        if missing:
            raise HarnessError(f"{name}: no {' or '.join(missing)} header at its top",
                               hint="a patch starts with 'From: Name <address>' and "
                               "'Subject: [PATCH] ...' lines, then a blank line")
    return names


def import_series(repo: Path, base: str, patches: Path, run: Runner,
                  force: bool = False) -> list[str]:
    """git quiltimport of the series on branch BRANCH, at `base`; its commits.
    `force`: the repository is the harness's own (checkout -f)."""
    run.must(["git", "checkout", "-q", *(["-f"] if force else []), "-B", BRANCH, base], repo,
             f"git checkout -B {BRANCH}")
    patches = patches.resolve()
    rc, out = run.run(["git", "quiltimport", "--patches", str(patches),
                       "--series", str(patches / "series")], repo, what="git quiltimport")
    if rc != 0:
        shutil.rmtree(_git_path(repo, "rebase-apply"), ignore_errors=True)
        git(repo, "reset", "-q", "--hard", base)
        names = [n for n in series_names(patches) if re.search(rf"^{re.escape(n)}$", out, re.M)]
        errors = [x for x in out.splitlines() if x.startswith(("error:", "fatal:"))]
        raise HarnessError(f"git quiltimport failed at {names[-1] if names else '?'}:\n"
                           + "\n".join(errors[:10] or out.splitlines()[-10:]), log=str(run.log))
    return git(repo, "rev-list", "--reverse", f"{base}..HEAD").split()


def add_signoffs(repo: Path, base: str, ident: Identity, run: Runner,
                 reset_author: bool = False) -> list[str]:
    """Append the sender's Signed-off-by to each commit of base..HEAD unless
    that exact trailer is there already; other trailers are kept as they are.
    With reset_author, the sender becomes the author too."""
    branch = git(repo, "symbolic-ref", "-q", "HEAD").strip()
    old_tip = git(repo, "rev-parse", "HEAD").strip()
    parent = base
    for c in git(repo, "rev-list", "--reverse", f"{base}..HEAD").split():
        an, ae, ad = git(repo, "show", "-s", "--format=%an%n%ae%n%ad", "--date=raw", c
                         ).splitlines()[:3]
        msg = git(repo, "show", "-s", "--format=%B", c).rstrip() + "\n"
        msg = git(repo, "interpret-trailers", "--where", "end", "--if-exists", "addIfDifferent",
                  "--trailer", ident.signoff(), input=msg)
        env = dict(run.env, GIT_AUTHOR_NAME=an, GIT_AUTHOR_EMAIL=ae, GIT_AUTHOR_DATE=ad)
        if reset_author:
            env.update(GIT_AUTHOR_NAME=ident.name, GIT_AUTHOR_EMAIL=ident.email)
        parent = git(repo, "commit-tree", f"{c}^{{tree}}", "-p", parent, env=env,
                     input=msg.rstrip() + "\n").strip()
    git(repo, "update-ref", "-m", "send: add Signed-off-by", branch, parent, old_tip)
    return git(repo, "rev-list", "--reverse", f"{base}..HEAD").split()
