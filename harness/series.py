"""The quilt series in patches/: apply, status, pop.

The tree is changed only through quilt (`.pc/` keeps the originals), so any
state can be undone. `apply` is idempotent: a stamp of the series content
in `.pc/` says what is applied; a changed series is popped and re-pushed.
A patch that fails to apply is named with its file and hunk, and the tree
is popped back to clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import locks, paths
from harness.errors import ChangeFailed, HarnessError
from harness.proc import Result, require, run_logged

PATCHES = paths.REPO / "patches"
# The memcg part rebased on upstream (bpf-next): what `send --upstream`
# mails and `series --check-apply DIR` applies to a tree of the user's.
UPSTREAM = PATCHES / "upstream"
STAMP = ".harness-series"
PATCH_STAMP = ".harness-patches.json"  # each pushed patch's digest


@dataclass
class PatchFailure:
    patch: str
    files: list[str] = field(default_factory=list)
    hunks: list[str] = field(default_factory=list)  # "mm/memcontrol.c: Hunk #2 FAILED at 120."

    def describe(self) -> str:
        where = "; ".join(self.hunks) or ", ".join(self.files) or "see log"
        return f"patch {self.patch} does not apply: {where}"


def series_names(patches: Path = PATCHES) -> list[str]:
    """Patch names listed in patches/series (comments and blanks ignored)."""
    series = patches / "series"
    if not series.exists():
        return []
    names = []
    for line in series.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.split()[0])
    return names


def series_digest(patches: Path = PATCHES) -> str:
    names = series_names(patches)
    parts: list[str | bytes] = ["\n".join(names)]
    for n in names:
        p = patches / n
        if not p.exists():
            raise HarnessError(f"patches/series lists {n}, which does not exist")
        parts.append(p.read_bytes())
    return paths.short_hash(*parts, n=16)


def series_files(patches: Path = PATCHES) -> list[str]:
    """The paths the series' patches touch (their `+++ b/` lines)."""
    files: set[str] = set()
    for n in series_names(patches):
        for line in (patches / n).read_text(errors="replace").splitlines():
            if line.startswith("+++ b/"):
                files.add(line[6:].split("\t")[0].strip())
    return sorted(files)


@contextmanager
def keep_mtimes(tree: Path, files: list[str]) -> Iterator[None]:
    """Give each file that has the same content after the block as before
    it its old mtime back. quilt pop and push rewrite every file they
    touch; without this, a `check` (which pops the series and pushes it
    again) would make the next build recompile everything that includes
    include/linux/bpf.h, although nothing changed."""
    def digest(p: Path) -> bytes:
        return hashlib.sha256(p.read_bytes()).digest()

    before = {}
    for f in files:
        p = tree / f
        if p.is_file():
            before[p] = (p.stat().st_mtime_ns, digest(p))
    try:
        yield
    finally:
        for p, (mtime, old) in before.items():
            try:
                if p.stat().st_mtime_ns != mtime and digest(p) == old:
                    os.utime(p, ns=(mtime, mtime))
            except OSError:
                pass  # gone: the next build sees that anyway


def series_digest_prefix(n: int, patches: Path = PATCHES) -> str:
    """Digest of the first n patches (config keys of `check` builds)."""
    names = series_names(patches)[:n]
    return paths.short_hash("\n".join(names), *((patches / x).read_bytes() for x in names),
                            n=16)


def parse_push_failure(output: str) -> PatchFailure | None:
    """Find the failing patch, files and hunks in `quilt push` output."""
    m = re.search(r"Patch (\S+) does not apply", output)
    if not m:
        return None
    failure = PatchFailure(patch=os.path.basename(m.group(1)))
    current = None
    for line in output.splitlines():
        pm = re.match(r"^patching file (.+)$", line)
        if pm:
            current = pm.group(1).strip().strip("'\"")
            continue
        if re.match(r"^Hunk #\d+ FAILED", line) and current:
            failure.hunks.append(f"{current}: {line.strip()}")
            if current not in failure.files:
                failure.files.append(current)
        cm = re.match(r"^can't find file to patch", line)
        if cm:
            failure.hunks.append(line.strip())
        rm = re.search(r"rejects in file (.+)$", line)
        if rm and rm.group(1) not in failure.files:
            failure.files.append(rm.group(1).strip())
    # "Hunk #1 succeeded at 10 with fuzz 2." is a failure under --fuzz=0
    # only if quilt says so; nothing to add here.
    return failure


def copy_touched(tree: Path, files: list[str], dst: Path) -> tuple[list[str], list[str]]:
    """Copy the `files` (series_files()) that `tree` has to `dst`, keeping
    their paths; (copied, missing: new files, or files a patch lacks)."""
    copied, missing = [], []
    for f in files:
        src = tree / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
            copied.append(f)
        else:
            missing.append(f)
    return copied, missing


def already_applied(tree: Path, patches: Path = PATCHES) -> bool:
    """Whether `tree` already has the whole series, applied outside quilt
    (git am, a branch): every patch reverse-applies cleanly, last first.
    Tried on a copy of the files the series touches, so the tree is not
    changed."""
    import subprocess
    names = series_names(patches)
    if not names:
        return False
    with tempfile.TemporaryDirectory(prefix="series-reverse-") as tmp:
        copy_touched(tree, series_files(patches), Path(tmp))
        for n in reversed(names):
            r = subprocess.run(["patch", "-p1", "-R", "-s", "-f", "--no-backup-if-mismatch",
                                "-F0", "-d", tmp, "-i", str((patches / n).resolve())],
                               capture_output=True, timeout=300)
            if r.returncode != 0:
                return False
    return True



@dataclass
class SeriesStatus:
    series: list[str]  # patches/series
    applied: list[str]  # quilt applied
    unapplied: list[str]
    in_sync: bool  # all applied, and the tree's copy of the series is this one

def quilt_env(patches: Path) -> dict[str, str]:
    """quilt's environment for the series in `patches`: no ~/.quiltrc, .pc
    in the tree, C messages (which the parsers read)."""
    return dict(os.environ, QUILT_PATCHES=str(patches), QUILT_PC=".pc",
                QUILTRC="/dev/null", LC_ALL="C")


class Quilt:
    def __init__(self, tree: Path, log: Path, patches: Path = PATCHES):
        self.tree = tree
        self.log = log
        self.patches = patches.resolve()
        self.env = quilt_env(self.patches)
        require("quilt", "quilt")
        require("patch", "patch")
        locks.hold(tree, "kernel tree")  # no two runs push or pop at once

    def _adopt(self) -> None:
        """quilt records the patches directory of a tree's first push in
        .pc/.quilt_patches and prefers it to QUILT_PATCHES: a cached tree
        first pushed from another checkout (a CI clone in /tmp, say) would
        silently get that checkout's series. Point it at ours."""
        pc = self.tree / ".pc"
        if pc.is_dir():
            (pc / ".quilt_patches").write_text(f"{self.patches}\n")
            (pc / ".quilt_series").write_text("series\n")

    def _run(self, *args: str) -> tuple[Result, str]:
        self._adopt()
        r = run_logged(["quilt", *args], self.log, cwd=self.tree, env=self.env,
                       append=True, timeout=600)
        return r, self.log.read_text(errors="replace")

    def applied(self) -> list[str]:
        pc = self.tree / ".pc" / "applied-patches"
        if not pc.exists():
            return []
        return [x.strip() for x in pc.read_text().splitlines() if x.strip()]

    def stamp(self) -> str | None:
        p = self.tree / ".pc" / STAMP
        return p.read_text().strip() if p.exists() else None

    def pop_all(self) -> None:
        if not self.applied():
            return
        r, _ = self._run("pop", "-a", "-f", "-q")
        if r.returncode not in (0, 2):
            raise HarnessError("quilt pop -a failed; the tree needs a look", log=str(self.log))
        for f in (STAMP, PATCH_STAMP):
            (self.tree / ".pc" / f).unlink(missing_ok=True)

    def push_all(self) -> str:
        """Apply the whole series with no fuzz; returns 'applied'/'unchanged'.

        When the series changed, only the patches from the first changed one
        on are popped and pushed again, so that editing the top of the series
        does not touch (and rebuild) what the patches below it change."""
        names = series_names(self.patches)
        digest = series_digest(self.patches)
        if self.applied() == names and self.stamp() == digest:
            return "unchanged"
        keep = self._unchanged_prefix(names)
        if len(self.applied()) > keep:
            self._pop_to(keep)
        if not names:
            return "empty"
        if len(self.applied()) == len(names):
            self._write_stamp(names, digest)
            return "applied"
        start = self.log.stat().st_size if self.log.exists() else 0
        r, out = self._run("push", "-a", "--fuzz=0")
        out = out[start:]
        if r.returncode != 0:
            failure = parse_push_failure(out)
            self.pop_all()
            if not self.applied() and already_applied(self.tree, self.patches):
                raise HarnessError(
                    f"{self.tree} already has the series (every patch of {self.patches} "
                    "reverse-applies cleanly): it was applied outside quilt",
                    hint="build it as it is with --series none", log=str(self.log))
            msg = failure.describe() if failure else f"quilt push -a failed (rc {r.returncode})"
            raise ChangeFailed(msg + "; the tree was popped back to clean", log=str(self.log))
        if self.applied() != names:
            got = len(self.applied())
            self.pop_all()
            raise HarnessError(f"quilt applied {got} of the {len(names)} "
                               f"patches of {self.patches}/series", log=str(self.log))
        self._write_stamp(names, digest)
        return "applied"

    def _patch_digests(self, names: list[str]) -> dict[str, str]:
        return {n: paths.short_hash((self.patches / n).read_bytes(), n=16) for n in names}

    def _write_stamp(self, names: list[str], digest: str) -> None:
        (self.tree / ".pc" / STAMP).write_text(digest + "\n")
        (self.tree / ".pc" / PATCH_STAMP).write_text(
            json.dumps(self._patch_digests(names), indent=1) + "\n")

    def _unchanged_prefix(self, names: list[str]) -> int:
        """How many of the applied patches are, in order, the first patches
        of the series with the same content as when they were pushed."""
        try:
            pushed = json.loads((self.tree / ".pc" / PATCH_STAMP).read_text())
        except (OSError, ValueError):
            return 0
        now = self._patch_digests(names)
        keep = 0
        for applied, name in zip(self.applied(), names, strict=False):
            if applied != name or pushed.get(name) != now[name]:
                break
            keep += 1
        return keep

    def _pop_to(self, keep: int) -> None:
        if keep == 0:
            self.pop_all()
            return
        target = self.applied()[keep - 1]
        r, _ = self._run("pop", "-f", "-q", target)
        if r.returncode not in (0, 2) or len(self.applied()) != keep:
            raise HarnessError(f"quilt pop {target} failed; the tree needs a look",
                               log=str(self.log))
        for f in (STAMP, PATCH_STAMP):
            (self.tree / ".pc" / f).unlink(missing_ok=True)

    def push_next(self) -> None:
        """Apply the next patch of the series (no fuzz); named on failure."""
        start = self.log.stat().st_size if self.log.exists() else 0
        r, out = self._run("push", "--fuzz=0")
        if r.returncode != 0:
            failure = parse_push_failure(out[start:])
            raise ChangeFailed((failure.describe() if failure else "quilt push failed"),
                               log=str(self.log))
        names = series_names(self.patches)
        if self.applied() == names:
            self._write_stamp(names, series_digest(self.patches))

    def status(self) -> SeriesStatus:
        names = series_names(self.patches)
        applied = self.applied()
        digest = series_digest(self.patches)
        return SeriesStatus(
            series=names, applied=applied, unapplied=[n for n in names if n not in applied],
            in_sync=applied == names and (not names or self.stamp() == digest))


@dataclass
class ApplyCheck:
    tree: str
    patches: str
    applied: list[str] = field(default_factory=list)  # patches that applied
    offsets: list[str] = field(default_factory=list)  # "patch: file: Hunk #n succeeded at ..."
    failure: str = ""  # PatchFailure.describe(), when one does not apply
    copied: list[str] = field(default_factory=list)  # the files read from the tree
    missing: list[str] = field(default_factory=list)  # touched files the tree lacks


def check_apply(tree: Path, log: Path, patches: Path = UPSTREAM) -> ApplyCheck:
    """Apply the series in `patches` with `quilt push -a --fuzz=0` to a copy
    of the files of `tree` it touches (the tree itself is only read).
    Raises ChangeFailed naming the patch, file and hunk that does not
    apply; returns what applied, and the hunks that needed an offset."""
    tree, patches = Path(tree).resolve(), Path(patches).resolve()
    if not tree.is_dir():
        raise HarnessError(f"{tree}: no such directory",
                           hint="pass the top of a kernel tree, e.g. a bpf-next checkout")
    names = series_names(patches)
    if not names:
        raise HarnessError(f"{patches}/series lists no patch")
    files = series_files(patches)
    if not any((tree / f).is_file() for f in files):
        raise HarnessError(f"{tree} has none of the files the series changes: it is not "
                           "the top of a kernel tree",
                           hint="pass the top of a kernel tree, e.g. a bpf-next checkout")
    require("quilt", "quilt")
    require("patch", "patch")
    res = ApplyCheck(tree=str(tree), patches=str(patches))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix="memcg-bpf-check-apply-") as tmp:
        work = Path(tmp)
        res.copied, res.missing = copy_touched(tree, files, work)
        r = run_logged(["quilt", "push", "-a", "--fuzz=0"], log, cwd=work,
                       env=quilt_env(patches),
                       append=True, timeout=600)
        out = log.read_text(errors="replace")
        applied = work / ".pc" / "applied-patches"
        if applied.exists():
            res.applied = [x.strip() for x in applied.read_text().splitlines() if x.strip()]
    current_patch, current_file = "", ""
    for line in out.splitlines():
        m = re.match(r"^Applying patch (\S+)", line)
        if m:
            current_patch = os.path.basename(m.group(1))
        m = re.match(r"^patching file (.+)$", line)
        if m:
            current_file = m.group(1).strip().strip("'\"")
        if re.match(r"^Hunk #\d+ succeeded at .*offset", line):
            res.offsets.append(f"{current_patch}: {current_file}: {line.strip()}")
    if r.returncode != 0 or res.applied != names:
        failure = parse_push_failure(out)
        res.failure = (failure.describe() if failure
                       else f"quilt push -a --fuzz=0 failed (rc {r.returncode})")
        raise ChangeFailed(f"{res.failure} ({len(res.applied)} of {len(names)} patches of "
                           f"{patches} applied to {tree})",
                           hint="the series needs a rebase on that tree", log=str(log))
    return res
