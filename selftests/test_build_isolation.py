"""Builds of two configs share nothing they write (issue: a KASAN build's
bpf_testmod.ko reached the default kernel's guest through the source tree).

The BPF selftests' Makefile builds its test modules and libarena's
skeletons in the kernel source tree, which every build directory shares;
harness/build.py builds them into the build directory instead (Kbuild's
MO=, harness/guest/selftests-outoftree.mk).

- test_selftests_build_writes_nothing_in_the_tree (every vm run): after a
  selftests build, the source tree's test_kmods/ and libarena/ hold no
  build output, and the test modules beside test_progs are those Kbuild
  built for this build directory.
- test_two_configs_back_to_back (MEMCG_BPF_TWO_CONFIGS=1, or tox -e
  isolation: a second kernel and selftests build, ~25 min warm): builds
  kernel-config/extra/isolation.config (its own build directory, its
  modules' vermagic says "-isolation") after the default, rebuilds the
  default's selftests, and boots the default kernel to run the
  bpf_testmod-based tests there.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from harness import build as kbuild  # noqa: E402
from harness.pipeline import Pipeline, SelftestsRun  # noqa: E402

pytestmark = [pytest.mark.vm, pytest.mark.timeout(5400)]

ISOLATION = REPO / "kernel-config" / "extra" / "isolation.config"
BPF_TESTMOD_TESTS = ["cgroup_struct_ops/attach_detach", "cgroup_struct_ops/inherit_order",
                     "bad_struct_ops", "struct_ops_autocreate"]


def tree_artefacts(tree: Path) -> list[str]:
    return sorted(str(f.relative_to(tree))
                  for sub, globs in kbuild.IN_TREE_ARTEFACTS.items()
                  for g in globs for f in (tree / sub).glob(g))


def vermagic(ko: Path) -> str:
    """The module's vermagic (its .modinfo string "vermagic=...")."""
    data = ko.read_bytes()
    i = data.find(b"\0vermagic=")
    assert i >= 0, f"{ko}: no vermagic in .modinfo"
    return data[i + 10:data.index(b"\0", i + 1)].decode()


def modules_of(build: Path) -> dict[str, bytes]:
    bpf = kbuild.selftests_dir(build) / "bpf"
    return {m: (bpf / f"{m}.ko").read_bytes() for m in kbuild.TEST_KMODS
            if (bpf / f"{m}.ko").exists()}


def test_selftests_build_writes_nothing_in_the_tree(pipeline: Pipeline):
    pipeline.selftests_build()
    assert tree_artefacts(pipeline.tree) == [], \
        "the selftests build wrote into the shared source tree"
    sel = kbuild.selftests_dir(pipeline.build_dir)
    mods = modules_of(pipeline.build_dir)
    assert "bpf_testmod" in mods, "no bpf_testmod.ko beside test_progs"
    for m, data in mods.items():
        built = sel / "test_kmods" / f"{m}.ko"
        assert built.exists() and built.read_bytes() == data, \
            f"{m}.ko beside test_progs is not the one Kbuild built for {pipeline.build_dir}"
    release = (pipeline.build_dir / "include/config/kernel.release").read_text().strip()
    assert vermagic(sel / "bpf" / "bpf_testmod.ko").split()[0] == release


@pytest.mark.skipif(os.environ.get("MEMCG_BPF_TWO_CONFIGS") != "1",
                    reason="builds a second kernel and its selftests (~25 min warm): "
                    "MEMCG_BPF_TWO_CONFIGS=1 or tox -e isolation")
def test_two_configs_back_to_back(pipeline: Pipeline):
    pipeline.selftests_build()
    before = modules_of(pipeline.build_dir)
    release = vermagic(kbuild.selftests_dir(pipeline.build_dir) / "bpf/bpf_testmod.ko")

    base = pipeline.build_dir
    other = Pipeline(dataclasses.replace(
        pipeline.opts, fragments=[*pipeline.opts.fragments, ISOLATION],
        build_dir=base.with_name(base.name + "-isolation"),
        out=pipeline.opts.out / "isolation"))
    other.prepare()
    theirs = vermagic(kbuild.selftests_dir(other.build_dir) / "bpf/bpf_testmod.ko")
    assert "-isolation" in theirs.split()[0] and theirs != release
    assert tree_artefacts(pipeline.tree) == []

    pipeline.selftests_build()  # the default's again, after the other's
    assert modules_of(pipeline.build_dir) == before, \
        "the default's test modules changed after another config's build"
    runs = pipeline.selftests(SelftestsRun(list(BPF_TESTMOD_TESTS), memcontrol=False,
                                         name="isolation"))
    cases = [c for r in runs if r.suite == "test_progs" for c in r.cases]
    failed = [f"{c.name}: {c.status}" for c in cases if c.status != "OK"]
    assert cases and not failed, "\n".join(failed)
    assert {c.name for c in cases} >= set(BPF_TESTMOD_TESTS)
