"""The BPF selftests build writes only into its build directory: the
script's make lines, the cleaning of what older builds left in the shared
source tree, and harness/guest/selftests-outoftree.mk run by make on a
miniature of the selftests' libarena rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import build as kbuild


def test_script_builds_modules_with_mo_and_drops_in_tree_rules(tmp_path: Path) -> None:
    tree, build, out = tmp_path / "tree", tmp_path / "build", tmp_path / "build/sel"
    s = kbuild.selftests_script(tree, build, out, 3, bpf=True, modules=True)
    lines = s.splitlines()
    kmod = next(x for x in lines if " modules" in x and "MO=" in x)
    assert f"-C {tree} " in kmod and f"O={build} " in kmod
    assert f"M={tree}/tools/testing/selftests/bpf/test_kmods" in kmod
    assert f"MO={out}/test_kmods" in kmod
    for m in kbuild.TEST_KMODS:  # copied beside test_progs, from the MO= directory
        assert any(f"cp -p {out}/test_kmods/{m}.ko {out}/bpf/{m}.ko" in x for x in lines)
    tp = next(x for x in lines if x.endswith("test_progs"))
    assert f"-f Makefile -f {kbuild.SELFTESTS_MK}" in tp
    assert " TEST_KMOD_TARGETS= " in tp
    assert f"LIBARENA_SKEL={out}/bpf/libarena/libarena.skel.h" in tp
    assert "$asan" in tp and "LIBARENA_ASAN_SKEL=" + str(out) in s
    # the modules come before test_progs, test_memcontrol last
    assert lines.index(kmod) < lines.index(tp) < len(lines) - 1
    assert lines[-1].endswith(f"{out}/cgroup/test_memcontrol")


def test_script_without_modules_or_bpf(tmp_path: Path) -> None:
    s = kbuild.selftests_script(tmp_path, tmp_path, tmp_path / "o", 2, bpf=True,
                                modules=False)
    assert "MO=" not in s and "test_progs" in s
    s = kbuild.selftests_script(tmp_path, tmp_path, tmp_path / "o", 2, bpf=False,
                                modules=True)
    assert "MO=" not in s and "test_progs" not in s and "test_memcontrol" in s


def _fake_tree(tree: Path) -> tuple[list[Path], list[Path]]:
    kmods = tree / "tools/testing/selftests/bpf/test_kmods"
    arena = tree / "tools/testing/selftests/bpf/libarena"
    sources = [kmods / "Makefile", kmods / "bpf_testmod.c", kmods / "bpf_testmod.h",
               kmods / ".gitignore", arena / "Makefile", arena / "src/buddy.bpf.c",
               arena / "include/libarena/common.h"]
    built = [kmods / "bpf_testmod.ko", kmods / "bpf_testmod.o", kmods / "bpf_testmod.mod",
             kmods / "bpf_testmod.mod.c", kmods / ".bpf_testmod.o.cmd",
             kmods / "Module.symvers", kmods / "modules.order",
             arena / "libarena.skel.h", arena / "buddy.bpf.o", arena / "x.linked1.o"]
    for f in sources + built:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    return sources, built


def test_clean_in_tree_artefacts_removes_build_output_only(tmp_path: Path) -> None:
    sources, built = _fake_tree(tmp_path)
    assert kbuild.clean_in_tree_artefacts(tmp_path) == len(built)
    assert all(f.exists() for f in sources)
    assert not any(f.exists() for f in built)
    assert kbuild.clean_in_tree_artefacts(tmp_path) == 0


def test_objects_that_used_a_removed_header_are_forgotten(tmp_path: Path) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    _fake_tree(tree)
    arena = tree / "tools/testing/selftests/bpf/libarena"
    out.mkdir()
    stale, fresh = out / "libarena.test", out / "buddy.test"
    stale.with_suffix(".d").write_text(
        f"{stale}.o: prog_tests/libarena.c \\\n {arena}/libarena.skel.h \\\n"
        f" {arena}/include/libarena/common.h\n")
    fresh.with_suffix(".d").write_text(f"{fresh}.o: prog_tests/buddy.c \\\n"
                                       f" {arena}/include/libarena/common.h\n")
    for t in (stale, fresh):
        t.with_suffix(".o").write_text("obj")
    kbuild.clean_in_tree_artefacts(tree)  # the skeleton goes
    assert kbuild.forget_objects_using(out, tree) == 1
    assert not stale.with_suffix(".d").exists() and not stale.with_suffix(".o").exists()
    assert fresh.with_suffix(".d").exists() and fresh.with_suffix(".o").exists()


# The selftests' libarena rules as in 7.3 (tools/testing/selftests/bpf/
# Makefile and libarena/Makefile), reduced to what the .mk file relies on:
# a skeleton rule that runs "make -C libarena", whose Makefile writes its
# output to the directory it runs in and finds its sources through LIBARENA.
MINI_BPF_MAKEFILE = """\
OUTPUT ?= $(CURDIR)
LIBARENA_SKEL := libarena/libarena.skel.h
LIBARENA_MAKE_ARGS = Q="@"
all: $(OUTPUT)/test_progs
$(OUTPUT)/test_progs: $(LIBARENA_SKEL)
\t@echo built > $@
$(LIBARENA_SKEL): $(wildcard libarena/src/*)
\t+$(MAKE) -C libarena libarena.skel.h $(LIBARENA_MAKE_ARGS)
"""
MINI_LIBARENA_MAKEFILE = """\
LIBARENA=$(abspath .)
vpath %.bpf.c $(LIBARENA)/src
libarena.skel.h: buddy.bpf.o
\t@echo skeleton > $@
%.bpf.o: %.bpf.c
\t@cp $< $@
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_outoftree_mk_builds_libarena_under_output(tmp_path: Path) -> None:
    bpf, out = tmp_path / "bpf", tmp_path / "out"
    (bpf / "libarena/src").mkdir(parents=True)
    (bpf / "Makefile").write_text(MINI_BPF_MAKEFILE)
    (bpf / "libarena/Makefile").write_text(MINI_LIBARENA_MAKEFILE)
    (bpf / "libarena/src/buddy.bpf.c").write_text("int x;\n")
    before = sorted(p for p in bpf.rglob("*"))
    out.mkdir()
    r = subprocess.run(["make", "-C", str(bpf), "-f", "Makefile", "-f", str(kbuild.SELFTESTS_MK),
                        f"OUTPUT={out}", f"LIBARENA_SKEL={out}/libarena/libarena.skel.h", "all"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "libarena/libarena.skel.h").read_text() == "skeleton\n"
    assert (out / "libarena/buddy.bpf.o").exists() and (out / "test_progs").exists()
    assert sorted(p for p in bpf.rglob("*")) == before, "make wrote into the source dir"
    # without the override the miniature does build in the source dir: the
    # test would notice the .mk file doing nothing
    r = subprocess.run(["make", "-C", str(bpf), f"OUTPUT={out}", "all"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and (bpf / "libarena/libarena.skel.h").exists()


def _module(path: Path, vermagic: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF...\0license=GPL\0vermagic=" + vermagic.encode()
                     + b"\0name=bpf_testmod\0")


def test_a_module_of_another_kernel_is_refused(tmp_path: Path) -> None:
    from harness.errors import HarnessError
    build = tmp_path / "build"
    (build / "include/config").mkdir(parents=True)
    (build / "include/config/kernel.release").write_text("7.3.4\n")
    sel = kbuild.selftests_dir(build)
    _module(sel / "test_kmods/bpf_testmod.ko", "7.3.4 SMP preempt mod_unload ")
    _module(sel / "bpf/bpf_testmod.ko", "7.3.4 SMP preempt mod_unload ")
    kbuild.check_test_modules(sel / "bpf", build)  # this build's: fine
    _module(sel / "bpf/bpf_testmod.ko", "7.3.4-isolation SMP preempt mod_unload ")
    with pytest.raises(HarnessError, match="built for 7.3.4-isolation, not for this build's"):
        kbuild.check_test_modules(sel / "bpf", build)
    # same release string, other bytes (another config of the same release)
    _module(sel / "bpf/bpf_testmod.ko", "7.3.4 SMP preempt mod_unload  ")
    with pytest.raises(HarnessError, match="not the module Kbuild built"):
        kbuild.check_test_modules(sel / "bpf", build)
