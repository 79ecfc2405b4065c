"""config and build: a minimal .config from kernel-config/, an O= build with ccache."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import kconfig, paths
from harness.errors import HarnessError
from harness.proc import Progress, run_logged, tail
from harness.toolchain import Toolchain

FRAGMENTS = paths.REPO / "kernel-config"
# Kbuild's quiet-mode lines: "  CC      mm/memcontrol.o"
_KBUILD_LINE = re.compile(r"^\s+(CC|AS|LD|AR|BTF|BTFIDS|HOSTCC|HOSTLD|GEN|OBJCOPY|"
                          r"CC \[M\]|LDS|VDSO\w*|ZSTD\d*|XZKERN|MKPIGGY|KSYMS|"
                          r"CHK|UPD|SYNC|WRAP|PAHOLE|DESCEND|INSTALL)\s+(\S+)")


def default_fragments(extra: list[Path] | None = None) -> list[Path]:
    """kernel-config/*.config in name order, then any extra fragments."""
    frags = sorted(FRAGMENTS.glob("*.config"))
    for e in extra or []:
        if not e.exists():
            raise HarnessError(f"config fragment {e} does not exist")
        frags.append(e.resolve())
    return frags


def default_build_dir(tree: Path) -> Path:
    return paths.cache_root() / "build" / paths.short_hash(str(tree.resolve()))


def ccache_dir() -> Path:
    d = paths.cache_root() / "ccache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def make_env() -> dict[str, str]:
    """Reproducible version strings so ccache hits across rebuilds."""
    return {
        "CCACHE_DIR": str(ccache_dir()),
        "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "5G"),
        "CCACHE_BASEDIR": "/",
        "KBUILD_BUILD_USER": "harness",
        "KBUILD_BUILD_HOST": "memcg-bpf",
        "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
    }


def jobs() -> int:
    return (os.cpu_count() or 2) + 1


@dataclass
class KernelBuild:
    tree: Path
    build: Path
    toolchain: Toolchain
    log_dir: Path

    def _wrap(self, argv: list[str], cwd: Path | None = None) -> list[str]:
        return self.toolchain.wrap(argv, env=make_env(), cwd=cwd or self.tree,
                                   binds=[self.tree, self.build, ccache_dir(),
                                          FRAGMENTS.resolve()])

    # -- config -----------------------------------------------------------
    def config(self, fragments: list[Path], series_digest: str) -> dict:
        """Merge fragments on allnoconfig; replace .config only if it changed
        (so an unchanged config never triggers a rebuild); verify it."""
        self.build.mkdir(parents=True, exist_ok=True)
        requested = kconfig.load_fragments(fragments)
        key = paths.short_hash(*(f.read_text() for f in fragments), series_digest,
                               self.toolchain.kind, str(self.toolchain.root))
        stamp = self.build / ".harness-config-key"
        dot = self.build / ".config"
        if dot.exists() and stamp.exists() and stamp.read_text().strip() == key:
            kconfig.verify(requested, dot)
            return {"changed": False, "options": len(requested), "key": key}
        tmp = self.build.parent / (self.build.name + ".cfgtmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        log = self.log_dir / "config.log"
        argv = ["scripts/kconfig/merge_config.sh", "-n", "-O", str(tmp),
                *[str(f) for f in fragments]]
        r = run_logged(self.toolchain.wrap(argv, env=make_env(), cwd=self.tree,
                                           binds=[self.tree, tmp.parent] +
                                           [f.parent for f in fragments]),
                       log, timeout=900)
        if r.returncode != 0 or not (tmp / ".config").exists():
            raise HarnessError(f"merge_config.sh failed:\n{tail(log)}", log=str(log))
        kconfig.verify(requested, tmp / ".config")
        changed = not dot.exists() or dot.read_bytes() != (tmp / ".config").read_bytes()
        if changed:
            shutil.copy2(tmp / ".config", dot)
        shutil.rmtree(tmp)
        stamp.write_text(key + "\n")
        return {"changed": changed, "options": len(requested), "key": key,
                "fragments": [f.name for f in fragments]}

    # -- build ------------------------------------------------------------
    def build_kernel(self, targets: list[str] | None = None, timeout: float = 5400) -> dict:
        if not (self.build / ".config").exists():
            raise HarnessError("no .config in the build directory", hint="run: harness config")
        log = self.log_dir / "build.log"
        counts = self.build / ".harness-objcount"
        expected = int(counts.read_text()) if counts.exists() else 0
        prog = Progress("build", every=20)
        compiled = 0

        def on_line(line: str) -> None:
            nonlocal compiled
            m = _KBUILD_LINE.match(line)
            if not m:
                return
            if m.group(1).startswith("CC"):
                compiled += 1
            total = f"/~{expected}" if expected else ""
            prog.maybe(f"{compiled}{total} objects compiled, now {m.group(1)} {m.group(2)}")

        argv = ["make", f"O={self.build}", f"-j{jobs()}", "CC=ccache gcc",
                "HOSTCC=ccache gcc", *(targets or ["all"])]
        prog.maybe(f"make -j{jobs()} in {self.build} (log: {log})", force=True)
        r = run_logged(self._wrap(argv), log, timeout=timeout, on_line=on_line)
        if r.timed_out:
            raise HarnessError(f"kernel build timed out after {timeout:.0f}s", log=str(log))
        if r.returncode != 0:
            errors = [x for x in log.read_text(errors="replace").splitlines()
                      if "error:" in x or "Error " in x][:15]
            raise HarnessError("kernel build failed:\n" + ("\n".join(errors) or tail(log)),
                               log=str(log))
        objs = sum(1 for _ in self.build.rglob("*.o"))
        counts.write_text(f"{objs}\n")
        image = self.build / "arch/x86/boot/bzImage"
        release = (self.build / "include/config/kernel.release").read_text().strip()
        prog.maybe(f"done: {compiled} compiled this run, {objs} objects in tree, "
                   f"{release}", force=True)
        info = {"compiled": compiled, "objects": objs, "release": release,
                "image": str(image), "image_sha256": paths.file_sha256(image),
                "duration_s": round(r.duration_s, 1)}
        (self.build / ".harness-build.json").write_text(json.dumps(info, indent=2) + "\n")
        return info


def built_info(build: Path) -> dict:
    p = build / ".harness-build.json"
    if not p.exists():
        raise HarnessError(f"no built kernel in {build}", hint="run: harness build")
    return json.loads(p.read_text())
