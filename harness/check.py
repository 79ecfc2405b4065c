"""check: what a maintainer's bots check of a series before reading it.

- checkpatch.pl --strict on every patch (--no-signoff: the patches carry the
  project's author line; `send` adds the sender's Signed-off-by);
- every prefix of the series builds (bisectability), incrementally in a
  build directory of its own, with the project's config;
- no new W=1 warnings in the C files the series touches (compared with the
  same files before the series);
- the whole series builds with CONFIG_BPF_SYSCALL=n and with CONFIG_MEMCG=n
  (kernel-config/extra/no-*.config).

The tree is left with the whole series applied, as `series apply` leaves it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import build as kbuild
from harness import series
from harness.errors import HarnessError
from harness.record import FAIL, PASS, SKIP

EXTRA = kbuild.FRAGMENTS / "extra"
CONFIG_VARIANTS = {"no-bpf-syscall": EXTRA / "no-bpf-syscall.config",
                   "no-memcg": EXTRA / "no-memcg.config"}
_TOTAL = re.compile(r"total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?"
                    r"(\d+) lines checked")
_WARNING = re.compile(r"^(\S+\.[ch]):\d+:\d+: (warning|error): (.*)$")


@dataclass
class Item:
    kind: str  # checkpatch, prefix, w1, config
    name: str
    status: str = PASS
    summary: str = ""
    details: dict = field(default_factory=dict)


def parse_checkpatch(text: str, rc: int = 1) -> tuple[int, int, int]:
    """(errors, warnings, checks) from checkpatch's total line; with --terse
    a clean patch prints nothing at all (and exits 0)."""
    m = _TOTAL.search(text)
    if not m and rc == 0 and not text.strip():
        return 0, 0, 0
    if not m:
        raise HarnessError("checkpatch printed no total line:\n" + text[-500:])
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


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


def new_warnings(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict:
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
    def __init__(self, pipeline, *, prefixes: bool = True, configs: bool = True):
        self.pl = pipeline
        self.prefixes = prefixes
        self.configs = configs
        self.items: list[Item] = []

    def _build_dir(self, suffix: str) -> Path:
        base = kbuild.default_build_dir(self.pl.tree)
        return base.parent / f"check-{base.name}-{suffix}"

    def _kb(self, suffix: str) -> kbuild.KernelBuild:
        return kbuild.KernelBuild(tree=self.pl.tree, build=self._build_dir(suffix),
                                  toolchain=self.pl.toolchain(), log_dir=self.pl.opts.logs)

    def checkpatch(self, names: list[str]) -> None:
        script = self.pl.tree / "scripts" / "checkpatch.pl"
        for n in names:
            r = subprocess.run(["perl", str(script), "--strict", "--no-signoff", "--terse",
                                "--showfile", "--no-tree", str(series.PATCHES / n)],
                               capture_output=True, text=True)
            e, w, c = parse_checkpatch(r.stdout + r.stderr, r.returncode)
            issues = [x for x in r.stdout.splitlines() if ": ERROR:" in x or ": WARNING:" in x
                      or ": CHECK:" in x]
            self.items.append(Item("checkpatch", n, PASS if e + w + c == 0 else FAIL,
                                   f"{e} errors, {w} warnings, {c} checks",
                                   {"issues": issues}))

    def _try_build(self, kind: str, name: str, kb: kbuild.KernelBuild, frags: list[Path],
                   digest: str, verify_only: list[Path] | None = None) -> None:
        try:
            kb.config(frags, digest, verify_only=verify_only)
            info = kb.build_kernel(log_name=f"check-{kind}-{name}.log"[:120])
            self.items.append(Item(kind, name, PASS, f"built ({info['compiled']} compiled, "
                                   f"{info['duration_s']}s)", info))
        except HarnessError as e:
            self.items.append(Item(kind, name, FAIL, str(e).splitlines()[0],
                                   {"error": str(e)}))

    def _w1(self, kb: kbuild.KernelBuild, files: list[str], label: str) -> dict:
        objs = [f[:-2] + ".o" for f in files if (self.pl.tree / f).exists()]
        if not objs:
            return {}
        log_name = f"check-w1-{label}.log"
        try:
            kb.build_kernel(targets=objs, extra=["W=1"], log_name=log_name)
        except HarnessError:
            pass  # the prefix build reports compile failures
        return warnings_by_file((self.pl.opts.logs / log_name).read_text(errors="replace"),
                                files)

    def run(self) -> list[Item]:
        names = series.series_names()
        if not names:
            self.items.append(Item("series", "empty", SKIP, "no patches in patches/series"))
            return self.items
        self.checkpatch(names)
        frags = kbuild.default_fragments(self.pl.opts.fragments)
        q = series.Quilt(self.pl.tree, self.pl.opts.logs / "series.log")
        texts = [(series.PATCHES / n).read_text(errors="replace") for n in names]
        files = touched_c_files(texts)
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
        return self.items


def items_dict(items: list[Item]) -> list[dict]:
    return [asdict(i) for i in items]


def stage_status(items: list[Item]) -> str:
    return FAIL if any(i.status == FAIL for i in items) else PASS
