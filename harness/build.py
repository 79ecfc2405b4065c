"""config and build: a minimal .config from kernel-config/, an O= build with ccache."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import kconfig, locks, paths
from harness.errors import ChangeFailed, HarnessError
from harness.proc import Progress, run_logged, tail
from harness.toolchain import CLANG, LLC, LLVM_STRIP, Toolchain

FRAGMENTS = paths.REPO / "kernel-config"
# the kernels performance numbers come from: no lockdep, PROVE_RCU, ...
NODEBUG_CONFIG = "kernel-config/extra/nodebug.config"
GUEST_TOOLS_SRC = paths.REPO / "harness" / "guest" / "memcg_ops_check"
# read after the BPF selftests' Makefile: libarena built under OUTPUT
SELFTESTS_MK = paths.REPO / "harness" / "guest" / "selftests-outoftree.mk"
# what the BPF selftests' Makefile would otherwise write into the source
# tree, which every build directory shares (its test_kmods/ and libarena/):
# removed before each selftests build, so that none of it can reach a guest
IN_TREE_ARTEFACTS = {
    "tools/testing/selftests/bpf/test_kmods": (
        "*.ko", "*.o", "*.mod", "*.mod.c", ".*.cmd", "Module.symvers", "modules.order"),
    "tools/testing/selftests/bpf/libarena": ("*.skel.h", "*.bpf.o", "*.linked*.o"),
}
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
    """make -j: --jobs ($MEMCG_BPF_JOBS), else the CPUs this process may
    run on (its affinity, as a CI runner's cgroup or taskset sets it) + 1."""
    env = os.environ.get("MEMCG_BPF_JOBS", "")
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0)) + 1


# What each build step returns (and its stage record's details, asdict()).

@dataclass
class ConfigResult:
    changed: bool  # .config replaced (a rebuild follows)
    options: int  # requested options verified in .config
    key: str  # of the fragments, the series and the toolchain
    fragments: list[str] = field(default_factory=list)  # when merged anew

    def summary(self) -> str:
        return (f"{self.options} options verified"
                f"{', .config updated' if self.changed else ', unchanged'}")


@dataclass
class BuildResult:
    duration_s: float = 0.0
    log: str = ""
    targets: list[str] = field(default_factory=list)  # a partial build's, else []
    compiled: int = 0  # whole builds: objects compiled this run
    objects: int = 0
    release: str = ""
    image: str = ""
    image_sha256: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def summary(self) -> str:
        if self.targets:
            return f"compiled {' '.join(self.targets)} ({self.duration_s}s)"
        return f"{self.release}: {self.compiled} compiled, {self.objects} objects"


@dataclass
class GuestToolsResult:
    skipped: str | None = None  # why nothing was built
    dir: str | None = None
    program: str | None = None  # memcg_ops_check
    sample: str | None = None  # samples/bpf/memcg, where the tree has it
    duration_s: float = 0.0

    def summary(self) -> str:
        also = " and samples/bpf/memcg" if self.sample else ""
        return self.skipped or f"memcg_ops_check{also} built ({self.duration_s}s)"


@dataclass
class SelftestsBuildResult:
    dir: str
    test_progs: str
    test_memcontrol: str
    required: list[str]  # the series' BPF tests, which must build
    skipped_objects: int  # objects the permissive build skipped
    duration_s: float
    bpf: bool = True  # test_progs built too, not only test_memcontrol

    def summary(self) -> str:
        if not self.bpf:
            return f"test_memcontrol, {self.duration_s:.0f}s"
        return (f"test_progs ({', '.join(self.required) or 'no series tests'}; "
                f"{self.skipped_objects} objects skipped) and test_memcontrol, "
                f"{self.duration_s:.0f}s")


@dataclass
class KernelBuild:
    tree: Path
    build: Path
    toolchain: Toolchain
    log_dir: Path

    def _lock(self) -> None:
        """The tree (no push or pop while we build from it) and the build
        directory are ours until this process exits (harness/locks.py)."""
        locks.hold(self.tree, "kernel tree")
        locks.hold(self.build, "build directory")

    def _wrap(self, argv: list[str], cwd: Path | None = None) -> list[str]:
        self._lock()
        return self.toolchain.wrap(argv, env=make_env(), cwd=cwd or self.tree,
                                   binds=[self.tree, self.build, ccache_dir(),
                                          FRAGMENTS.resolve(), GUEST_TOOLS_SRC.resolve(),
                                          SELFTESTS_MK.parent.resolve()])

    # -- config -----------------------------------------------------------
    def config(self, fragments: list[Path], series_digest: str,
               verify_only: list[Path] | None = None) -> ConfigResult:
        """Merge fragments on allnoconfig; replace .config only if it changed
        (so an unchanged config never triggers a rebuild); verify it: every
        option, or only those of `verify_only` (for configs that turn off
        something the others need, e.g. CONFIG_BPF_SYSCALL=n)."""
        self.build.mkdir(parents=True, exist_ok=True)
        self._lock()
        requested = kconfig.load_fragments(verify_only or fragments)
        kconfig.load_fragments(fragments)  # every fragment must parse and say why
        key = paths.short_hash(*(f.read_text() for f in fragments), series_digest,
                               self.toolchain.kind, str(self.toolchain.root))
        stamp = self.build / ".harness-config-key"
        dot = self.build / ".config"
        if dot.exists() and stamp.exists() and stamp.read_text().strip() == key:
            kconfig.verify(requested, dot)
            return ConfigResult(changed=False, options=len(requested), key=key)
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
            (self.build / ".harness-build.json").unlink(missing_ok=True)  # not this config's
            shutil.copy2(tmp / ".config", dot)
        shutil.rmtree(tmp)
        stamp.write_text(key + "\n")
        return ConfigResult(changed=changed, options=len(requested), key=key,
                            fragments=[f.name for f in fragments])

    # -- build ------------------------------------------------------------
    def build_kernel(self, targets: list[str] | None = None, timeout: float = 3000,
                     extra: list[str] | None = None, log_name: str = "build.log"
                     ) -> BuildResult:
        if not (self.build / ".config").exists():
            raise HarnessError("no .config in the build directory", hint="run: harness config")
        log = self.log_dir / log_name
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

        record = self.build / ".harness-build.json"
        if not targets:
            # a build that fails or is killed leaves no record of the last good
            # one: the image on disk is no longer known to match the tree
            record.unlink(missing_ok=True)
        argv = ["make", f"O={self.build}", f"-j{jobs()}", "CC=ccache gcc",
                "HOSTCC=ccache gcc", *(extra or []), *(targets or ["all"])]
        prog.maybe(f"make -j{jobs()} in {self.build} (log: {log})", force=True)
        r = run_logged(self._wrap(argv), log, timeout=timeout, on_line=on_line)
        if r.timed_out:
            raise HarnessError(f"kernel build timed out after {timeout:.0f}s", log=str(log))
        if r.returncode != 0:
            errors = [x for x in log.read_text(errors="replace").splitlines()
                      if "error:" in x or "Error " in x][:15]
            raise ChangeFailed("kernel build failed:\n" + ("\n".join(errors) or tail(log)),
                               log=str(log))
        if targets:  # a partial build: no image to describe
            return BuildResult(targets=targets, duration_s=round(r.duration_s, 1), log=str(log))
        objs = sum(1 for p in self.build.rglob("*.o")
                   if guest_tools_dir(self.build) not in p.parents)
        counts.write_text(f"{objs}\n")
        image = self.build / "arch/x86/boot/bzImage"
        release = (self.build / "include/config/kernel.release").read_text().strip()
        prog.maybe(f"done: {compiled} compiled this run, {objs} objects in tree, "
                   f"{release}", force=True)
        info = BuildResult(compiled=compiled, objects=objs, release=release, image=str(image),
                           image_sha256=paths.file_sha256(image),
                           duration_s=round(r.duration_s, 1), log=str(log))
        record.write_text(info.to_json())
        return info

    def build_libbpf(self, log_name: str = "libbpf.log") -> BuildResult:
        """tools/lib/bpf of the tree (the series changes libbpf), -Werror as
        upstream builds it, into the build directory."""
        out = self.build / "libbpf"
        out.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / log_name
        r = run_logged(self._wrap(["make", "-C", str(self.tree / "tools/lib/bpf"),
                                   f"OUTPUT={out}/", f"-j{jobs()}", "BUILD_STATIC_ONLY=1"]),
                       log, timeout=900)
        if r.returncode != 0:
            errors = [x for x in log.read_text(errors="replace").splitlines()
                      if "error" in x][:10]
            raise ChangeFailed("libbpf build failed:\n" + ("\n".join(errors) or tail(log)),
                               log=str(log))
        return BuildResult(targets=["tools/lib/bpf"], duration_s=round(r.duration_s, 1),
                           log=str(log))

    # -- guest tools ------------------------------------------------------
    def build_guest_tools(self) -> GuestToolsResult:
        """The memcg_bpf_ops check program, or a skip if the kernel has no
        memcg_bpf_ops (an empty or different series)."""
        out = guest_tools_dir(self.build)
        if not kernel_has_memcg_bpf_ops(self.build):
            (out / "memcg_ops_check").unlink(missing_ok=True)
            return GuestToolsResult(skipped="the kernel has no memcg_bpf_ops "
                                    "(series not applied?)")
        out.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "guest-tools.log"
        script = guest_tools_script(self.tree, self.build, GUEST_TOOLS_SRC, out, jobs())
        r = run_logged(self._wrap(["sh", "-c", script]), log, timeout=1800)
        if r.returncode != 0:
            raise ChangeFailed(f"building the guest check program failed:\n{tail(log, 20)}",
                               log=str(log))
        sample = out / "memcg"
        return GuestToolsResult(dir=str(out), program=str(out / "memcg_ops_check"),
                                sample=str(sample) if sample.exists() else None,
                                duration_s=round(r.duration_s, 1))


    # -- selftests -------------------------------------------------------
    def build_selftests(self, bpf: bool = True) -> SelftestsBuildResult:
        """The upstream BPF selftests runner (test_progs, the standard build:
        every test the tree has, those our config or toolchain cannot build
        skipped by BPF_STRICT_BUILD=0) and the cgroup test_memcontrol.

        The tests of the series are required: the permissive build would
        silently drop a memcg_ops test that does not compile, so any
        SKIP-BPF/SKIP-SKEL/SKIP-TEST of theirs is an error here."""
        out = selftests_dir(self.build)
        bpf_out, cg_out = out / "bpf", out / "cgroup"
        bpf_out.mkdir(parents=True, exist_ok=True)
        cg_out.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "selftests-build.log"
        required = required_bpf_tests(self.tree) if bpf else []
        prog = Progress("selftests", every=20)
        counts = {"CLNG-BPF": 0, "TEST-OBJ": 0, "SKIP": 0}

        def on_line(line: str) -> None:
            word = line.split()[0] if line.split() else ""
            if word in counts or word.startswith("SKIP-"):
                counts["SKIP" if word.startswith("SKIP-") else word] += 1
                prog.maybe(f"{counts['CLNG-BPF']} BPF objects, {counts['TEST-OBJ']} test "
                           f"objects, {counts['SKIP']} skipped; now {line.strip()}")

        self._lock()  # the tree: no other build writes or reads it meanwhile
        removed = clean_in_tree_artefacts(self.tree)
        stale = forget_objects_using(bpf_out, self.tree)
        if removed or stale:
            prog.maybe(f"removed {removed} files an earlier build left in the source "
                       f"tree's selftests (test_kmods/, libarena/); {stale} objects that "
                       "used them will be rebuilt", force=True)
        kmods = kconfig_has(self.build, "CONFIG_MODULES")
        script = selftests_script(self.tree, self.build, out, jobs(), bpf=bpf,
                                  modules=kmods)
        prog.maybe(f"test_progs and test_memcontrol in {out} (log: {log})", force=True)
        r = run_logged(self._wrap(["sh", "-c", script]), log, timeout=3600, on_line=on_line)
        text = log.read_text(errors="replace")
        if r.returncode != 0:
            errors = [x for x in text.splitlines() if "error" in x.lower()][-15:]
            raise ChangeFailed("selftests build failed:\n" + ("\n".join(errors) or tail(log)),
                               log=str(log))
        dropped = sorted({m.group(1) for m in _SKIPPED.finditer(text)
                          if any(m.group(1).startswith(t) for t in required)})
        missing = [t for t in required if not (bpf_out / f"{t}.test.o").exists()]
        # the series' infrastructure test needs bpf_testmod.ko
        if bpf and required and kmods and not (bpf_out / "bpf_testmod.ko").exists():
            missing.append("bpf_testmod.ko")
        if bpf and kmods:
            check_test_modules(bpf_out, self.build)
        if dropped or missing:
            errors = [x for x in text.splitlines()
                      if any(t in x for t in required) and "error" in x][:15]
            what = ", ".join(dropped or missing)
            raise ChangeFailed(f"the series' BPF selftests did not build ({what}):\n"
                               + "\n".join(errors), log=str(log))
        prog.maybe(f"done in {r.duration_s:.0f}s: {counts['CLNG-BPF']} BPF objects and "
                   f"{counts['TEST-OBJ']} test objects compiled, {counts['SKIP']} skipped "
                   "(options or toolchain we lack)", force=True)
        return SelftestsBuildResult(dir=str(out), test_progs=str(bpf_out / "test_progs"),
                                    test_memcontrol=str(cg_out / "test_memcontrol"),
                                    required=required, skipped_objects=counts["SKIP"],
                                    duration_s=round(r.duration_s, 1), bpf=bpf)


# "  SKIP-BPF     memcg_ops.bpf.o", "  SKIP-TEST    memcg_ops.test.o"
_SKIPPED = re.compile(r"^\s*SKIP-(?:BPF|SKEL|TEST|LSKEL)\s+(\S+)", re.M)


def clean_in_tree_artefacts(tree: Path) -> int:
    """Remove IN_TREE_ARTEFACTS from the source tree; how many there were."""
    n = 0
    for sub, globs in IN_TREE_ARTEFACTS.items():
        d = tree / sub
        for g in globs:
            for f in d.glob(g):
                if f.is_file():
                    f.unlink()
                    n += 1
    return n


def forget_objects_using(out: Path, tree: Path) -> int:
    """Delete the objects under `out` (and their make dependency files) that
    depend on a file of IN_TREE_ARTEFACTS' directories that is gone: make
    would otherwise stop with "No rule to make target" for the vanished
    header. How many."""
    dirs = [str(tree / sub) + "/" for sub in IN_TREE_ARTEFACTS]
    n = 0
    for dep in out.rglob("*.d"):
        text = dep.read_text(errors="replace")
        if not any(d in text for d in dirs):
            continue
        gone = [t for t in text.replace("\\\n", " ").split()
                if t.startswith(tuple(dirs)) and not Path(t.rstrip(":")).exists()]
        if gone:
            dep.unlink()
            dep.with_suffix(".o").unlink(missing_ok=True)
            n += 1
    return n


def module_vermagic(ko: Path) -> str:
    """A module's vermagic (its .modinfo string "vermagic=...")."""
    data = ko.read_bytes()
    i = data.find(b"\0vermagic=")
    if i < 0:
        raise HarnessError(f"{ko} has no vermagic: not a kernel module?")
    return data[i + 10:data.index(b"\0", i + 1)].decode(errors="replace")


def check_test_modules(bpf_out: Path, build: Path) -> None:
    """The test modules beside test_progs are this build's: their vermagic
    names its release, and each is the one Kbuild built for it (MO=). One
    built for another kernel is refused here, with the reason, instead of
    failing to load in the guest and showing up as failed tests."""
    release = (build / "include/config/kernel.release").read_text().strip()
    built = selftests_dir(build) / "test_kmods"
    for m in TEST_KMODS:
        ko = bpf_out / f"{m}.ko"
        if not ko.exists():
            continue
        magic = module_vermagic(ko)
        if magic.split()[0] != release:
            raise HarnessError(f"{ko} was built for {magic.split()[0]}, not for this "
                               f"build's {release}: refusing to boot with it",
                               hint=f"remove {ko} and build again")
        own = built / f"{m}.ko"
        if own.exists() and own.read_bytes() != ko.read_bytes():
            raise HarnessError(f"{ko} is not the module Kbuild built for {build} "
                               f"({own}): refusing to boot with it",
                               hint=f"remove {ko} and build again")


# the BPF selftests' test modules (tools/testing/selftests/bpf/test_kmods)
TEST_KMODS = ("bpf_testmod", "bpf_test_no_cfi", "bpf_test_modorder_x",
              "bpf_test_modorder_y", "bpf_test_rqspinlock")


def selftests_script(tree: Path, build: Path, out: Path, jobs_: int, *, bpf: bool,
                     modules: bool) -> str:
    """Shell script (run in the toolchain) that builds test_progs, its test
    modules and test_memcontrol with every artefact under `out` (the build
    directory's), nothing in the shared source tree:

    - the test modules with Kbuild's MO= (an external module's output
      directory) against this build (O=), never against /lib/modules, then
      copied beside test_progs; the selftests' own rules, which build them in
      the source tree's test_kmods/, are dropped (TEST_KMOD_TARGETS empty);
    - test_progs with SELFTESTS_MK read after its Makefile, so libarena's
      skeletons are generated in out/bpf/libarena;
    - no ccache for the selftests: with CCACHE_BASEDIR its dependency files
      name sources relative to the object's directory, which breaks make."""
    sdir = tree / "tools/testing/selftests"
    bpf_out, cg_out, kmod_out = out / "bpf", out / "cgroup", out / "test_kmods"
    q = shlex.quote
    lines = ["set -e"]
    if bpf and modules:
        lines += [
            f"mkdir -p {q(str(kmod_out))}",
            shlex.join(["make", "-C", str(tree), f"O={build}", f"-j{jobs_}",
                        f"M={sdir / 'bpf/test_kmods'}", f"MO={kmod_out}",
                        "EXTRA_CFLAGS=", "EXTRA_LDFLAGS=", "modules"]),
            # cp -p: an unchanged module keeps its time (no spurious rsync)
            *(f"cmp -s {q(str(kmod_out / (m + '.ko')))} {q(str(bpf_out / (m + '.ko')))} "
              f"|| cp -p {q(str(kmod_out / (m + '.ko')))} {q(str(bpf_out / (m + '.ko')))}"
              for m in TEST_KMODS),
        ]
    if bpf:
        arena = bpf_out / "libarena"
        # the Makefile's own test: libarena_asan only where clang has BPF arena ASAN
        lines += [
            f"asan=; if echo 'int x;' | {CLANG} --target=bpf -fsanitize=kernel-address "
            "-mllvm -asan-shadow-addr-space=1 -x c -c - -o /dev/null 2>/dev/null; "
            f"then asan={q('LIBARENA_ASAN_SKEL=' + str(arena / 'libarena_asan.skel.h'))}; fi",
            shlex.join([
                "make", "-C", str(sdir / "bpf"), "-f", "Makefile", "-f", str(SELFTESTS_MK),
                f"OUTPUT={bpf_out}", f"VMLINUX_BTF={build / 'vmlinux'}", f"-j{jobs_}",
                f"CLANG={CLANG}", f"LLC={LLC}", f"LLVM_STRIP={LLVM_STRIP}",
                "BPF_STRICT_BUILD=0", "SKIP_DOCS=1", "SKIP_LLVM=1", f"O={build}",
                "TEST_KMOD_TARGETS=", f"LIBARENA_SKEL={arena / 'libarena.skel.h'}",
            ]) + " $asan test_progs",
        ]
    lines.append(shlex.join(["make", "-C", str(sdir / "cgroup"), f"OUTPUT={cg_out}",
                             f"{cg_out}/test_memcontrol"]))
    return "\n".join(lines)


SERIES_BPF_TESTS = ("memcg_ops*.c", "cgroup_struct_ops.c")


def required_bpf_tests(tree: Path) -> list[str]:
    """The test_progs tests of the series (prog_tests/memcg_ops*.c and
    cgroup_struct_ops.c), those the tree has."""
    d = tree / "tools/testing/selftests/bpf/prog_tests"
    return sorted({p.stem for g in SERIES_BPF_TESTS for p in d.glob(g)})


def kconfig_has(build: Path, option: str) -> bool:
    """`option`=y in the build's .config."""
    dot = build / ".config"
    return dot.exists() and f"\n{option}=y\n" in "\n" + dot.read_text()


def selftests_dir(build: Path) -> Path:
    return guest_tools_dir(build) / "selftests"


def guest_tools_dir(build: Path) -> Path:
    return build / "harness-guest"


def guest_tools_script(tree: Path, build: Path, src: Path, out: Path, jobs_: int) -> str:
    """Shell script (run in the toolchain) that builds the guest's check
    program against the tree's own libbpf and the built kernel's BTF. Every
    path is quoted for the shell ('a b'/x is the path a b/x)."""
    q = shlex.quote
    lib, sample = q(str(out / "libbpf-root")), q(str(tree / "samples" / "bpf"))
    t, b, sd, o = q(str(tree)), q(str(build)), q(str(src)), q(str(out))
    inc = f"-I{o} -I{lib}/include -I{t}/tools/include/uapi"
    return "\n".join([
        "set -e",
        f"mkdir -p {o}/libbpf",
        f"make -s -C {t}/tools/lib/bpf OUTPUT={o}/libbpf/ DESTDIR={lib} prefix= "
        f"BUILD_STATIC_ONLY=1 -j{jobs_} install",
        f"bpftool btf dump file {b}/vmlinux format c > {o}/vmlinux.h",
        f"{CLANG} -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 {inc} "
        f"-c {sd}/memcg_ops_check.bpf.c -o {o}/memcg_ops_check.bpf.o",
        f"bpftool gen skeleton {o}/memcg_ops_check.bpf.o name memcg_ops_check "
        f"> {o}/memcg_ops_check.skel.h",
        f"gcc -O2 -Wall {inc} {sd}/memcg_ops_check.c {lib}/lib64/libbpf.a -lelf -lz "
        f"-o {o}/memcg_ops_check",
        f"{CLANG} -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 {inc} "
        f"-c {sd}/sigagent.bpf.c -o {o}/sigagent.bpf.o",
        f"bpftool gen skeleton {o}/sigagent.bpf.o name sigagent > {o}/sigagent.skel.h",
        f"gcc -O2 -Wall -Werror {inc} {sd}/sigagent.c {lib}/lib64/libbpf.a -lelf -lz "
        f"-o {o}/sigagent",
        f"gcc -O2 -Wall -Werror {sd}/membench.c -o {o}/membench",
        f"gcc -O2 -Wall -Werror -pthread {sd}/wsload.c -o {o}/wsload",
        f"gcc -O2 -Wall -Werror -pthread {sd}/reqload.c -o {o}/reqload",
        # the series' sample (samples/bpf/memcg), if the tree has it
        f"if [ -f {sample}/memcg.bpf.c ]; then",
        f"  {CLANG} -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 {inc} "
        f"-c {sample}/memcg.bpf.c -o {o}/memcg.bpf.o",
        f"  bpftool gen skeleton {o}/memcg.bpf.o name memcg > {o}/memcg.skel.h",
        f"  gcc -O2 -Wall -Werror {inc} {sample}/memcg.c {lib}/lib64/libbpf.a -lelf -lz "
        f"-o {o}/memcg",
        f"else rm -f {o}/memcg; fi",
    ])


def kernel_has_memcg_bpf_ops(build: Path) -> bool:
    """Whether the built kernel has memcg_bpf_ops (the series is applied),
    judged from its symbol table."""
    smap = build / "System.map"
    return smap.exists() and " __memcg_bpf_nr_pages_over_high\n" in smap.read_text()


def built_info(build: Path) -> BuildResult:
    """The record of the last whole build of `build` (removed when a build
    starts, written when one succeeds)."""
    p = build / ".harness-build.json"
    if not p.exists():
        raise HarnessError(f"no built kernel in {build}", hint="run: harness build")
    known = set(BuildResult.__dataclass_fields__)
    info = BuildResult(**{k: v for k, v in json.loads(p.read_text()).items() if k in known})
    info.image = str(build / "arch/x86/boot/bzImage")  # valid if the cache moved
    return info
