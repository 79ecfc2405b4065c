"""check: what a maintainer's bots check of a series before reading it.

- checkpatch.pl --strict on every patch (--no-signoff: the patches carry the
  project's author line; `send` adds the sender's Signed-off-by);
- every prefix of the series builds (bisectability), incrementally in a
  build directory of its own, with the project's config;
- no new W=1 warnings in the C files the series touches (compared with the
  same files before the series);
- the whole series builds with CONFIG_BPF_SYSCALL=n, with CONFIG_MEMCG=n,
  with CONFIG_CGROUP_BPF=n and with CONFIG_BPF_JIT=n
  (kernel-config/extra/no-*.config).

`quick` is the variant CI can afford cold: instead of whole kernels, each
prefix and each extra config compiles the directories of the C files the
series touches (mm/, kernel/bpf/, kernel/cgroup/ ...: all their objects the
config selects, so header changes are seen there too) and tools/lib/bpf
when the series touches libbpf. It misses breakage outside those
directories and at link time; the full variant catches that.

checkpatch findings the series keeps on purpose are listed, each with its
reason, in patches/checkpatch.exceptions; they are reported, not failed.

The tree is left with the whole series applied, as `series apply` leaves it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import build as kbuild
from harness import series
from harness.errors import HarnessError
from harness.record import FAIL, PASS, SKIP, Status

if TYPE_CHECKING:
    from harness import toolchain

EXTRA = kbuild.FRAGMENTS / "extra"
EXCEPTIONS = series.PATCHES / "checkpatch.exceptions"
CONFIG_VARIANTS = {"no-bpf-syscall": EXTRA / "no-bpf-syscall.config",
                   "no-memcg": EXTRA / "no-memcg.config",
                   "no-cgroup-bpf": EXTRA / "no-cgroup-bpf.config",
                   "no-bpf-jit": EXTRA / "no-bpf-jit.config"}
_TOTAL = re.compile(r"total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?"
                    r"(\d+) lines checked")
_WARNING = re.compile(r"^(\S+\.[ch]):\d+:\d+: (warning|error): (.*)$")


@dataclass
class Item:
    kind: str  # checkpatch, prefix, w1, config
    name: str
    status: Status = PASS
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def parse_checkpatch(text: str, rc: int = 1) -> tuple[int, int, int]:
    """(errors, warnings, checks) from checkpatch's total line; with --terse
    a clean patch prints nothing at all (and exits 0)."""
    m = _TOTAL.search(text)
    if not m and rc == 0 and not text.strip():
        return 0, 0, 0
    if not m:
        raise HarnessError("checkpatch printed no total line:\n" + text[-500:])
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def load_exceptions(path: Path = EXCEPTIONS) -> list[tuple[str, str, str]]:
    """(patch glob, message substring, reason) per line of
    "GLOB | MESSAGE | REASON"; '#' starts a comment."""
    out: list[tuple[str, str, str]] = []
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [x.strip() for x in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise HarnessError(f"{path}:{n}: expected 'PATCH-GLOB | MESSAGE | REASON'")
        out.append((parts[0], parts[1], parts[2]))
    return out


def split_excepted(patch: str, issues: list[str],
                   exceptions: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """(issues that count, issues excepted with their reason)."""
    import fnmatch
    counted, excepted = [], []
    for issue in issues:
        why = next((r for g, m, r in exceptions
                    if fnmatch.fnmatch(patch, g) and m in issue), None)
        if why:
            excepted.append(f"{issue}  [excepted: {why}]")
        else:
            counted.append(issue)
    return counted, excepted


def touched_dirs(files: list[str]) -> list[str]:
    """Kbuild directory targets ("mm/") of the touched C files."""
    dirs = []
    for f in files:
        d = f.rsplit("/", 1)[0] + "/" if "/" in f else ""
        if d and d not in dirs:
            dirs.append(d)
    return dirs


def touches_libbpf(patch_texts: list[str]) -> bool:
    return any(re.search(r"^\+\+\+ b/tools/lib/bpf/", t, re.M) for t in patch_texts)


def touched_c_files(patch_texts: list[str]) -> list[str]:
    """Kernel .c files a series modifies (tools/ and samples/ build apart)."""
    files = []
    for text in patch_texts:
        for m in re.finditer(r"^\+\+\+ b/(\S+\.c)$", text, re.M):
            f = m.group(1)
            if not f.startswith(("tools/", "samples/", "Documentation/")) and f not in files:
                files.append(f)
    return files


def warnings_by_file(log_text: str, files: list[str]) -> dict[str, list[str]]:
    """W=1 compiler warnings per touched file, without line numbers (so that
    moved code compares equal)."""
    out: dict[str, list[str]] = {f: [] for f in files}
    for line in log_text.splitlines():
        m = _WARNING.match(line.strip())
        if not m:
            continue
        for f in files:  # gcc names sources by absolute path in O= builds
            if m.group(1) == f or m.group(1).endswith("/" + f):
                out[f].append(f"{m.group(2)}: {m.group(3)}")
    return out


def new_warnings(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    added = {}
    for f, warns in after.items():
        old = list(before.get(f, []))
        extra = []
        for w in warns:
            if w in old:
                old.remove(w)
            else:
                extra.append(w)
        if extra:
            added[f] = extra
    return added


class SeriesCheck:
    def __init__(self, tree: Path, tc: toolchain.Toolchain, logs: Path,
                 fragments: list[Path], *, prefixes: bool = True, configs: bool = True,
                 quick: bool = False):
        """The checks of the series applied in `tree` (a quilt tree), built
        with `tc`, logs under `logs`, the kernel config from `fragments`
        (as Options.fragments: the extra ones on top of kernel-config/)."""
        self.tree = tree
        self.tc = tc
        self.logs = logs
        self.fragments = fragments
        self.prefixes = prefixes
        self.configs = configs
        self.quick = quick
        self.items: list[Item] = []
        self.dirs: list[str] = []  # quick: the Kbuild directories to compile
        self.libbpf = False

    def _build_dir(self, suffix: str) -> Path:
        base = kbuild.default_build_dir(self.tree)
        return base.parent / f"check-{base.name}-{suffix}{'-quick' if self.quick else ''}"

    def _kb(self, suffix: str) -> kbuild.KernelBuild:
        return kbuild.KernelBuild(tree=self.tree, build=self._build_dir(suffix),
                                  toolchain=self.tc, log_dir=self.logs)

    def checkpatch(self, names: list[str], patches: Path = series.PATCHES,
                   label: str = "") -> None:
        """checkpatch --strict on each patch, with the exceptions listed in
        the series directory's checkpatch.exceptions; `label` prefixes the
        item names of another series (upstream/: the memcg part rebased on
        upstream)."""
        script = self.tree / "scripts" / "checkpatch.pl"
        exceptions = load_exceptions(patches / "checkpatch.exceptions")
        for n in names:
            r = subprocess.run(["perl", str(script), "--strict", "--no-signoff", "--terse",
                                "--showfile", "--no-tree", str(patches / n)],
                               capture_output=True, text=True, timeout=300)
            e, w, c = parse_checkpatch(r.stdout + r.stderr, r.returncode)
            issues = [x for x in r.stdout.splitlines() if ": ERROR:" in x or ": WARNING:" in x
                      or ": CHECK:" in x]
            counted, excepted = split_excepted(n, issues, exceptions)
            if len(issues) != e + w + c:  # every finding must be seen to be excepted
                counted = counted or [f"{e + w + c} findings, {len(issues)} parsed"]
            summary = f"{e} errors, {w} warnings, {c} checks"
            if excepted:
                summary += f" ({len(excepted)} excepted)"
            self.items.append(Item("checkpatch", label + n, FAIL if counted else PASS, summary,
                                   {"issues": counted, "excepted": excepted}))

    def _try_build(self, kind: str, name: str, kb: kbuild.KernelBuild, frags: list[Path],
                   digest: str, verify_only: list[Path] | None = None) -> None:
        try:
            kb.config(frags, digest, verify_only=verify_only)
            log_name = f"check-{kind}-{name}.log"[:120]
            if self.quick:
                info = kb.build_kernel(targets=self.dirs, log_name=log_name)
                details = asdict(info)
                what = " ".join(self.dirs)
                if self.libbpf:
                    details["libbpf"] = asdict(kb.build_libbpf(
                        log_name=f"check-{kind}-{name}-libbpf.log"[:120]))
                    what += " tools/lib/bpf"
                self.items.append(Item(kind, name, PASS, f"compiled {what} "
                                       f"({info.duration_s}s)", details))
                return
            info = kb.build_kernel(log_name=log_name)
            self.items.append(Item(kind, name, PASS, f"built ({info.compiled} compiled, "
                                   f"{info.duration_s}s)", asdict(info)))
        except HarnessError as e:
            self.items.append(Item(kind, name, FAIL, str(e).splitlines()[0],
                                   {"error": str(e)}))

    def _w1(self, kb: kbuild.KernelBuild, files: list[str], label: str) -> dict[str, list[str]]:
        objs = [f[:-2] + ".o" for f in files if (self.tree / f).exists()]
        if not objs:
            return {}
        log_name = f"check-w1-{label}.log"
        try:
            kb.build_kernel(targets=objs, extra=["W=1"], log_name=log_name)
        except HarnessError:
            pass  # the prefix build reports compile failures
        return warnings_by_file((self.logs / log_name).read_text(errors="replace"),
                                files)

    def run(self) -> list[Item]:
        names = series.series_names()
        if not names:
            self.items.append(Item("series", "empty", SKIP, "no patches in patches/series"))
            return self.items
        self.checkpatch(names)
        up = series.series_names(series.UPSTREAM)
        if up:
            self.checkpatch(up, series.UPSTREAM, "upstream/")
        frags = kbuild.default_fragments(self.fragments)
        q = series.Quilt(self.tree, self.logs / "series.log")
        texts = [(series.PATCHES / n).read_text(errors="replace") for n in names]
        files = touched_c_files(texts)
        self.dirs = touched_dirs(files)
        self.libbpf = touches_libbpf(texts)
        with series.keep_mtimes(self.tree, series.series_files()):
            self._prefixes_and_configs(q, names, frags, files)
        return self.items

    def _prefixes_and_configs(self, q: series.Quilt, names: list[str], frags: list[Path],
                              files: list[str]) -> None:
        try:
            if self.prefixes:
                kb = self._kb("prefix")
                q.pop_all()
                self._try_build("prefix", "0-base", kb, frags, "base")
                before = self._w1(kb, files, "base")
                for i, n in enumerate(names, 1):
                    q.push_next()
                    self._try_build("prefix", f"{i}-{n}", kb, frags,
                                    series.series_digest_prefix(i))
                after = self._w1(kb, files, "series")
                added = new_warnings(before, after)
                self.items.append(Item("w1", "touched files", FAIL if added else PASS,
                                       f"{sum(map(len, added.values()))} new W=1 warnings in "
                                       f"{len(files)} touched files",
                                       {"new": added, "files": files}))
            q.push_all()
            if self.configs:
                for label, frag in CONFIG_VARIANTS.items():
                    self._try_build("config", label, self._kb(label), frags + [frag],
                                    series.series_digest(), verify_only=[frag])
        finally:
            q.push_all()


def items_dict(items: list[Item]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]


def stage_status(items: list[Item]) -> Status:
    return FAIL if any(i.status == FAIL for i in items) else PASS
