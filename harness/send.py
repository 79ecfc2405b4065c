"""send: turn the quilt series into mails with b4, and check they apply.

1. A git base: the user's kernel tree (--kernel-dir, a clean git checkout;
   the series goes on branch memcg-bpf/send at --base, default HEAD), or a
   repository made once from the harness's Debian tree: a copy of the tree
   with the quilt series popped (the tree itself is only read), committed as
   "Linux 7.3.4 (Debian linux-source-7.3 ...)" under
   ~/.cache/memcg-bpf/send/<tree>/repo.
2. `git quiltimport` of patches/series onto the base (author and subject from
   each patch's From:/Subject:), then the sender's Signed-off-by (the git
   identity b4 uses: user.name/user.email) appended to every commit unless it
   is already among its trailers; other trailers stay as written in patches/.
3. b4: `prep --enroll BASE`, the cover letter from patches/cover-letter.txt
   (b4's own `prep --edit-cover`, with an editor that copies the file),
   `prep --auto-to-cc` (scripts/get_maintainer.pl), `prep --check`
   (scripts/checkpatch.pl), `send -o DIR` (writes the mails, sends nothing).
4. Round trip: the mails are applied with `git am` on a clean checkout of
   the base (a git worktree); the result must equal, tree and commit
   messages, the imported branch, and, tree, `quilt push -a` of patches/.

Nothing is sent unless --really-send is given; then b4 asks for confirmation
itself (b4 send has no option that skips its prompt).
"""

from __future__ import annotations

import argparse
import difflib
import email.parser
import email.policy
import email.utils
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths, source
from harness.errors import HarnessError
from harness.proc import Progress, require, run_logged, tail
from harness.series import parse_push_failure, series_names

B4_VERSION = "0.15.2"
B4_PIN = f"b4=={B4_VERSION}"
BRANCH = "memcg-bpf/send"
BASE_BRANCH = "base"  # the base commit's branch in a repository made from the Debian tree
PATCHES = paths.REPO / "patches"
COVER = PATCHES / "cover-letter.txt"
MAGIC_MARKER = "--- b4-submit-tracking ---"  # b4's cover-letter commit
# git on a kernel tree (a full commit of 90k files takes minutes on a slow disk)
GIT_TIMEOUT_S = 1800
# The base commit of a repository made from the Debian tree: fixed author and
# date, so that the same tree always gives the same commit (and base-commit:).
BASE_IDENT = {"GIT_AUTHOR_NAME": "memcg-bpf harness", "GIT_AUTHOR_EMAIL": "memcg-bpf@example.org",
              "GIT_COMMITTER_NAME": "memcg-bpf harness",
              "GIT_COMMITTER_EMAIL": "memcg-bpf@example.org",
              "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
              "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PATCH_NO = re.compile(r"\[[^\]]*\bPATCH\b[^\]]*?\b(\d+)/(\d+)\]")
_BASE_COMMIT = re.compile(r"^base-commit: ([0-9a-f]{7,64})\s*$", re.M)
_CHECK_SUMMARY = re.compile(r"Success: (\d+), Warning: (\d+), Error: (\d+)")
_IDENT_HINT = ('git config --global user.name "Your Name" && '
               'git config --global user.email you@example.org  (the sender signs off '
               'every patch: the harness never invents an identity)')


# -- identity ------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def signoff(self) -> str:
        return f"Signed-off-by: {self}"

    def committer_env(self) -> dict[str, str]:
        return {"GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


def _git_config(key: str, cwd: Path | None, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True,
                       text=True, env=env, timeout=GIT_TIMEOUT_S)
    return r.stdout.strip() if r.returncode == 0 else ""


def identity(cwd: Path | None = None, env: dict[str, str] | None = None) -> Identity:
    """The sender, resolved as b4 does: git config user.name/user.email (of
    the repository at `cwd`, else global and system), then GIT_COMMITTER_*,
    GIT_AUTHOR_* (and EMAIL); an error naming the missing setting otherwise."""
    env = dict(os.environ if env is None else env)
    where = cwd if cwd is not None else paths.cache_root()  # outside any repository
    name = (_git_config("user.name", where, env) or env.get("GIT_COMMITTER_NAME", "")
            or env.get("GIT_AUTHOR_NAME", "")).strip()
    mail = (_git_config("user.email", where, env) or env.get("GIT_COMMITTER_EMAIL", "")
            or env.get("GIT_AUTHOR_EMAIL", "") or env.get("EMAIL", "")).strip().strip("<>")
    missing = [k for k, v in (("user.name", name), ("user.email", mail)) if not v]
    if missing:
        raise HarnessError(
            f"no git identity for the Signed-off-by: {' and '.join(missing)} not set",
            hint=_IDENT_HINT)
    if "@" not in mail or any(c in name + mail for c in "<>\n"):
        raise HarnessError(f"git identity {name!r} <{mail}> is not a usable name/address",
                           hint=_IDENT_HINT)
    return Identity(name, mail)


# -- small helpers -------------------------------------------------------------

def b4_argv() -> list[str]:
    """The b4 of this Python environment (the pinned one), else PATH's."""
    local = Path(sys.executable).with_name("b4")
    if local.exists():
        return [str(local)]
    found = shutil.which("b4")
    if found:
        return [found]
    raise HarnessError("'b4' not found",
                       hint=f"install it into the harness's environment: pip install {B4_PIN}")


def b4_version(b4: list[str]) -> str:
    r = subprocess.run([*b4, "--version"], capture_output=True, text=True, timeout=120)
    return (r.stdout.strip() or r.stderr.strip()).splitlines()[-1] if r.returncode == 0 else "?"


def git(repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                       env=env, input=input, timeout=GIT_TIMEOUT_S)
    if check and r.returncode != 0:
        raise HarnessError(f"git {' '.join(args)} failed in {repo}:\n{r.stderr.strip()}")
    return r.stdout


def _git_ok(repo: Path, *args: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          timeout=GIT_TIMEOUT_S).returncode == 0


def _git_path(repo: Path, name: str) -> Path:
    p = Path(git(repo, "rev-parse", "--git-path", name).strip())
    return p if p.is_absolute() else repo / p


def _config_env(env: dict[str, str], pairs: dict[str, str]) -> dict[str, str]:
    """env plus git config settings of command-line strength (GIT_CONFIG_COUNT)."""
    env = dict(env)
    n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    for key, value in pairs.items():
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
        n += 1
    env["GIT_CONFIG_COUNT"] = str(n)
    return env


@contextmanager
def _ticking(prog: Progress, text: str, every: float = 15.0) -> Iterator[None]:
    """Print `text` with the elapsed time every `every` s while a silent command runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            prog.maybe(text, force=True)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


@dataclass
class Runner:
    """Runs the steps' commands: logged, timed, and listed for the report."""
    log: Path
    env: dict[str, str]
    prog: Progress = field(default_factory=lambda: Progress("send"))
    commands: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, argv: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None,
            timeout: float = 1800, what: str = "", on_line=None) -> tuple[int, str]:
        self.commands.append(f"(cd {cwd} && {shlex.join(str(a) for a in argv)})")
        start = self.log.stat().st_size if self.log.exists() else 0
        r = run_logged(argv, self.log, cwd=cwd, env=env or self.env, timeout=timeout,
                       append=True, on_line=on_line)
        with open(self.log, "rb") as f:
            f.seek(start)
            out = f.read().decode(errors="replace")
        out = out.split("\n", 1)[1] if "\n" in out else ""  # drop the "$ argv" line
        if r.timed_out:
            raise HarnessError(f"{what or argv[0]} timed out after {timeout:.0f}s",
                               log=str(self.log))
        return r.returncode, _ANSI.sub("", out)

    def must(self, argv: Sequence[str], cwd: Path, what: str, **kw) -> str:
        rc, out = self.run(argv, cwd, what=what, **kw)
        if rc != 0:
            raise HarnessError(f"{what} failed (rc {rc}):\n{out.strip()[-2000:]}",
                               log=str(self.log))
        return out

    @contextmanager
    def step(self, name: str, text: str) -> Iterator[None]:
        self.prog.maybe(text, force=True)
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)


# -- the base ------------------------------------------------------------------

def _pc_state(tree: Path) -> tuple:
    """What says whether quilt pushed or popped in `tree` meanwhile."""
    pc = tree / ".pc"
    if not pc.is_dir():
        return ()
    entries = []
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


# -- the branch ----------------------------------------------------------------

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


# -- b4 ------------------------------------------------------------------------

@dataclass
class CheckResult:
    summary: dict[str, int]  # b4's own: success (patches), warning and error (lines)
    issues: dict[str, list[str]]  # "sha: subject" -> the check's lines for that patch
    output: str
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """checkpatch's ERROR/WARNING/CHECK lines; "other" is anything else
        b4 reported (e.g. a helper script's traceback on stderr, which b4
        counts as an error)."""
        counts = {"error": 0, "warning": 0, "check": 0, "other": 0}
        for lines in self.issues.values():
            for line in lines:
                m = re.search(r"\b(ERROR|WARNING|CHECK): ", line)
                counts[m.group(1).lower() if m else "other"] += 1
        return counts

    @property
    def status(self) -> str:
        c = self.counts()
        if c["error"]:
            return "FAIL"
        return "WARN" if c["warning"] or c["check"] or c["other"] else "PASS"


def parse_b4_check(output: str) -> CheckResult:
    """`b4 prep --check` output: per-patch lines, indented issues, a summary."""
    text = _ANSI.sub("", output)
    m = _CHECK_SUMMARY.search(text)
    if not m:
        raise HarnessError("b4 prep --check printed no summary:\n" + text[-1000:])
    summary = {"success": int(m.group(1)), "warning": int(m.group(2)), "error": int(m.group(3))}
    issues: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        pm = re.match(r"^\S+ ([0-9a-f]{7,}: .*)$", line)
        if pm:
            current = pm.group(1)
            issues[current] = []
        elif current and re.match(r"^\s+\S+ ", line):
            issues[current].append(line.strip().split(" ", 1)[1])
        elif line.startswith("---") and current:
            current = None
    return CheckResult(summary, issues, text)


def spdxcheck_problem(repo: Path, env: dict[str, str]) -> str | None:
    """In a git tree checkpatch runs scripts/spdxcheck.py with the python3 of
    PATH, which needs the modules ply and git; without them each SPDX line
    gives a traceback, which b4 counts as an error."""
    if not (repo / ".git").exists() or not (repo / "scripts" / "spdxcheck.py").exists():
        return None
    py = shutil.which("python3", path=env.get("PATH"))
    if not py:
        return None
    r = subprocess.run([py, "-c", "import ply, git"], capture_output=True, text=True, env=env,
                       timeout=120)
    if r.returncode == 0:
        return None
    return (f"checkpatch's SPDX check cannot run: scripts/spdxcheck.py needs the Python modules "
            f"ply and git in {py} (Debian: apt-get install python3-ply python3-git); its "
            "tracebacks are in the check output")


def author_signoff_missing(repo: Path, commits: Sequence[str]) -> list[str]:
    """Subjects of commits whose author did not sign off. checkpatch reports
    that as an ERROR, but with --mailback (as b4 runs it) only on patches that
    have another problem too."""
    missing = []
    for c in commits:
        ae, subject, body = git(repo, "show", "-s", "--format=%ae%x1f%s%x1f%B", c).split("\x1f", 2)
        if not re.search(rf"^Signed-off-by:.*<{re.escape(ae)}>\s*$", body, re.M | re.I):
            missing.append(subject)
    return missing


def b4_prepare(repo: Path, base: str, cover: Path, b4: list[str], run: Runner) -> CheckResult:
    """b4 prep: enroll the branch, set the cover letter, To/Cc, check."""
    with run.step("b4_enroll", "b4 prep --enroll"):
        run.must([*b4, "--offline-mode", "-c", "b4.prep-cover-strategy=commit", "prep",
                  "--enroll", base], repo, "b4 prep --enroll")
    with run.step("b4_cover", f"b4 prep --edit-cover (from {cover})"):
        # b4's own editing path, with an "editor" that copies the file in:
        # core.editor outranks $EDITOR in b4, so set that (command-line scope).
        env = _config_env(run.env, {"core.editor": f"cp -- {shlex.quote(str(cover.resolve()))}"})
        out = run.must([*b4, "--offline-mode", "prep", "--edit-cover"], repo,
                       "b4 prep --edit-cover", env=env)
        if "Cover letter updated" not in out:
            raise HarnessError(f"b4 did not take the cover letter from {cover}:\n{out.strip()}")
    getm = repo / "scripts" / "get_maintainer.pl"
    with run.step("b4_auto_to_cc", "b4 prep --auto-to-cc"):
        if os.access(getm, os.X_OK):
            run.must([*b4, "--offline-mode", "prep", "--auto-to-cc"], repo, "b4 prep --auto-to-cc")
        else:
            run.prog.maybe(f"no executable {getm}: To/Cc not computed", force=True)
    note = spdxcheck_problem(repo, run.env)
    if note:
        run.prog.maybe(f"warning: {note}", force=True)
    with run.step("b4_check", "b4 prep --check (checkpatch)"):
        out = run.must([*b4, "--offline-mode", "prep", "--check"], repo, "b4 prep --check")
    result = parse_b4_check(out)
    result.notes += [note] if note else []
    return result


def b4_write_mails(repo: Path, mails: Path, b4: list[str], run: Runner) -> list[Path]:
    """b4 send -o: the mails as b4 would send them, written to `mails`.

    --no-sign: patatt signing needs a key, and the web endpoint (which b4
    picks in a kernel tree without sendemail.smtpserver) insists on signing;
    an inert smtpserver (never run with -o) keeps b4 off that path."""
    if mails.exists():
        shutil.rmtree(mails)
    with run.step("b4_send_o", f"b4 send -o {mails}"):
        run.must([*b4, "--offline-mode", "-c", "sendemail.smtpserver=/bin/false", "send",
                  "-o", str(mails.resolve()), "--no-sign"], repo, "b4 send -o")
    files = sorted(mails.glob("*.eml"))
    if not files:
        raise HarnessError(f"b4 send -o wrote no mails to {mails}", log=str(run.log))
    return files


def read_mail(path: Path):
    with open(path, "rb") as f:
        return email.parser.BytesParser(policy=email.policy.default).parse(f)


def recipients(files: Sequence[Path]) -> tuple[list[str], list[str]]:
    """To and Cc of the series: the cover letter's, plus any per-patch Cc."""
    to: list[str] = []
    cc: list[str] = []
    seen: set[str] = set()
    for f in files:
        msg = read_mail(f)
        for dest, key in ((to, "To"), (cc, "Cc")):
            for header in msg.get_all(key, []):
                for a in header.addresses:
                    if a.addr_spec and a.addr_spec not in seen:
                        seen.add(a.addr_spec)
                        dest.append(f"{a.display_name} <{a.addr_spec}>" if a.display_name
                                    else a.addr_spec)
    return to, cc


# -- round trip ----------------------------------------------------------------

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
        files = set()
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
            if err:
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


# -- the verb ------------------------------------------------------------------

@dataclass
class SendOptions:
    kernel_dir: Path | None = None
    base: str | None = None
    patches: Path = PATCHES
    cover: Path = COVER
    out_dir: Path = field(default_factory=lambda: paths.default_out() / "send")
    reset_author: bool = False
    really_send: bool = False


def _print_summary(res: dict) -> None:
    print(f"\nbranch {res['branch']} in {res['repo']} (base {res['base']['commit'][:12]}: "
          f"{res['base']['label']})")
    print(f"mails ({len(res['files'])}) in {Path(res['files'][0]).parent}:")
    for f in res["files"]:
        print(f"  {Path(f).name}")
    print("To: " + (", ".join(res["to"]) or "(none)"))
    print("Cc: " + (", ".join(res["cc"]) or "(none)"))
    chk = res["check"]
    s, c = chk["summary"], chk["counts"]
    print(f"b4 prep --check: {chk['status']}: checkpatch {c['error']} errors, {c['warning']} "
          f"warnings, {c['check']} checks, {c['other']} other lines (b4's summary: "
          f"Success: {s['success']}, Warning: {s['warning']}, Error: {s['error']}); "
          f"output: {chk['file']}")
    for subject, lines in chk["issues"].items():
        for line in lines:
            if (re.search(r"\b(ERROR|WARNING|CHECK): ", line)
                    and "by nominal patch author" not in line):  # listed below, for all
                print(f"  {subject[:50]}: {line}")
    for subject in chk["author_signoff_missing"]:
        print(f"  {subject[:50]}: the author has no Signed-off-by (checkpatch ERROR; "
              "without --keep-author the sender is the author and signs off)")
    for note in chk["notes"]:
        print(f"  note: {note}")
    rt = res["round_trip"]
    print("round trip (git am of the mails vs the branch and quilt push -a): "
          + ("OK" if rt["ok"] else "FAILED"))
    for d in rt["differences"]:
        print(f"  {d}")


def send(opts: SendOptions) -> dict:
    """The whole flow; returns what send.json holds. Its status is PASS when
    the mails were written and round-trip; check.status (PASS/WARN/FAIL) is
    checkpatch's verdict, reported beside it."""
    out = opts.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "send.log"
    log.write_text("")
    (out / "send.json").unlink(missing_ok=True)
    require("git", "git")
    names = check_patches(opts.patches)
    if not opts.cover.is_file():
        raise HarnessError(f"cover letter {opts.cover} not found",
                           hint="its first line is the subject of mail 0/N, then a blank line "
                           "and the text (lines starting with # are b4 comments: write >#)")
    if opts.base and opts.kernel_dir is None:
        raise HarnessError("--base goes with --kernel-dir (the Debian tree's base is the "
                           "tree without the series)")
    user = None
    if opts.kernel_dir is not None:
        repo, base, user = user_base(opts.kernel_dir, opts.base)
        ident = identity(repo)
    else:
        ident = identity()  # before minutes of base making
    b4 = b4_argv()
    version = b4_version(b4)
    if version != B4_VERSION:
        print(f"warning: b4 {version}; the harness is tested with {B4_PIN}", file=sys.stderr)
    run = Runner(log=log, env=dict(os.environ, **ident.committer_env(), GIT_EDITOR="true"))
    res: dict = {"status": "FAIL", "b4": {"version": version, "argv": b4},
                 "identity": str(ident), "branch": BRANCH, "series": names,
                 "sent": False, "log": str(log)}
    try:
        if user is None:
            info = source.resolve(None, log, fetch=False)
            label = (f"Linux {info.kernelversion} (Debian {source.PACKAGE} "
                     f"{info.package_version})" if info.package_version
                     else f"Linux {info.kernelversion}")
            with run.step("base_repo", "base repository"):
                repo, base = debian_base(Path(info.tree), label, run, opts.patches)
            _reset_own_repo(repo)
        else:
            label = git(repo, "log", "-1", "--format=%h %s", base).strip()
        res.update(repo=str(repo), base={"commit": base, "label": label})
        with run.step("import", f"git quiltimport of {len(names)} patches"):
            import_series(repo, base, opts.patches, run, force=user is None)
            commits = add_signoffs(repo, base, ident, run, opts.reset_author)
        res["commits"] = [{"sha": c, "subject": git(repo, "log", "-1", "--format=%s", c).strip()}
                          for c in commits]
        check = b4_prepare(repo, base, opts.cover, b4, run)
        (out / "check.txt").write_text(check.output)
        unsigned = author_signoff_missing(repo, commits)
        status = "FAIL" if unsigned else check.status
        res["check"] = {"status": status, "counts": check.counts(), "summary": check.summary,
                        "issues": check.issues, "author_signoff_missing": unsigned,
                        "notes": check.notes, "file": str(out / "check.txt")}
        files = b4_write_mails(repo, out / "mails", b4, run)
        res["files"] = [str(f) for f in files]
        res["to"], res["cc"] = recipients(files)
        key = "user-" + paths.short_hash(str(repo)) if user else repo.parent.name
        wt = paths.cache_root() / "send" / key / "roundtrip"
        with run.step("round_trip", "round trip: git am of the mails on the base"):
            diffs = round_trip(out / "mails", repo, [BRANCH, opts.patches.resolve()],
                               base=base, worktree=wt, log=log, env=run.env)
        res["round_trip"] = {"ok": not diffs, "differences": diffs, "worktree": str(wt)}
        # the verdict is the mails'; checkpatch's is reported beside it (the
        # series has known false positives, e.g. on `__u32 :32;` padding)
        res["status"] = "PASS" if not diffs else "FAIL"
        res["commands"], res["timings"] = run.commands, run.timings
        _print_summary(res)
        if opts.really_send:
            if status == "FAIL":
                print("\nnote: b4 prep --check reports errors (above); b4 will not stop you",
                      flush=True)
            res["sent"] = really_send(repo, b4, run, diffs)
        return res
    finally:
        res.setdefault("commands", run.commands)
        res.setdefault("timings", run.timings)
        if user is not None:
            git(repo, "checkout", "-q", user, check=False)
        (out / "send.json").write_text(json.dumps(res, indent=2, default=str) + "\n")


def really_send(repo: Path, b4: list[str], run: Runner, diffs: list[str]) -> bool:
    """`b4 send` for real, on a terminal: b4 shows the recipients and asks."""
    if diffs:
        raise HarnessError("not sending: the mails do not round-trip (see above)")
    if not sys.stdin.isatty():
        raise HarnessError("--really-send needs a terminal: b4 asks for confirmation")
    print(f"\nb4 send in {repo}: b4 lists the recipients and asks before sending", flush=True)
    run.commands.append(f"(cd {repo} && {shlex.join([*b4, 'send'])})")
    r = subprocess.run([*b4, "send"], cwd=repo, env=run.env, timeout=3600)
    if r.returncode != 0:
        raise HarnessError(f"b4 send exited with {r.returncode}; nothing or not everything "
                           "was sent (see b4's messages above)")
    return True


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("send", help="the series as mails: a git branch, b4 prep/--check, "
                       "b4 send -o, and a git am round trip (sends nothing without "
                       "--really-send)")
    p.add_argument("--kernel-dir", type=Path,
                   help="your kernel git tree (clean); default: a repository made once "
                   "from the harness's Debian tree")
    p.add_argument("--base", help=f"with --kernel-dir: the commit to put {BRANCH} on "
                   "(default: HEAD)")
    p.add_argument("--patches", type=Path, default=PATCHES, help="the quilt series directory")
    p.add_argument("--cover-letter", type=Path, default=COVER, dest="cover",
                   help="cover letter: subject line, blank line, text (default: %(default)s)")
    p.add_argument("--out-dir", type=Path, default=paths.default_out() / "send",
                   help="where mails/, send.json and the logs go (default: %(default)s)")
    p.add_argument("--keep-author", action="store_true",
                   help="keep the From: of patches/ (the project) as the patches' author; by "
                   "default the sender is the author, as checkpatch wants the author's "
                   "Signed-off-by and a project address cannot sign off")
    p.add_argument("--really-send", action="store_true",
                   help="then run b4 send for real (b4 shows the recipients and asks)")
    return p


def cmd_send(args: argparse.Namespace) -> int:
    opts = SendOptions(kernel_dir=args.kernel_dir, base=args.base, patches=args.patches,
                       cover=args.cover, out_dir=args.out_dir, reset_author=not args.keep_author,
                       really_send=args.really_send)
    try:
        res = send(opts)
    except HarnessError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        report = opts.out_dir / "send.json"
        try:
            data = json.loads(report.read_text()) if report.exists() else {}
        except ValueError:
            data = {}
        data.update(status="ERROR", error=str(e))
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(data, indent=2, default=str) + "\n")
        log = opts.out_dir / "send.log"
        if log.exists() and "log:" not in str(e):
            print(f"log: {log}\n{tail(log, 15)}", file=sys.stderr)
        return 2
    print(f"\nreport: {opts.out_dir / 'send.json'}")
    return 0 if res["status"] == "PASS" else 1
