from pathlib import Path
from typing import NoReturn

import pytest

from harness import check
from harness.errors import HarnessError
from harness.record import Status

CHECKPATCH = """\
patches/0002.patch:135: ERROR: space prohibited before that ':' (ctx:WxV)
patches/0002.patch:456: CHECK: Prefer using the BIT macro
total: 1 errors, 0 warnings, 1 checks, 383 lines checked
"""
PATCH = """\
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1 +1 @@
--- /dev/null
+++ b/mm/bpf_memcontrol.h
--- a/tools/lib/bpf/libbpf.c
+++ b/tools/lib/bpf/libbpf.c
--- a/kernel/bpf/cgroup.c
+++ b/kernel/bpf/cgroup.c
"""
W1 = """\
  CC      mm/memcontrol.o
/t/linux/mm/memcontrol.c:2500:12: warning: no previous prototype for 'f' [-Wmissing-prototypes]
/t/trees/linux/mm/memcontrol.c:2600:1: warning: unused variable 'x' [-Wunused-variable]
/t/trees/linux/include/linux/memcontrol.h:10:1: warning: in a header
/t/trees/linux/kernel/bpf/cgroup.c:12:3: warning: same as before [-Wfoo]
"""


def test_parse_checkpatch() -> None:
    assert check.parse_checkpatch(CHECKPATCH) == (1, 0, 1)
    assert check.parse_checkpatch("total: 0 errors, 0 warnings, 12 lines checked") == (0, 0, 0)
    assert check.parse_checkpatch("", 0) == (0, 0, 0)  # --terse, clean
    with pytest.raises(HarnessError):
        check.parse_checkpatch("perl: cannot open", 2)


def test_touched_c_files_skips_tools_and_headers() -> None:
    assert check.touched_c_files([PATCH]) == ["mm/memcontrol.c", "kernel/bpf/cgroup.c"]


def test_new_w1_warnings_ignore_line_numbers_and_old_ones() -> None:
    files = ["mm/memcontrol.c", "kernel/bpf/cgroup.c"]
    before = check.warnings_by_file(
        "/x/mm/memcontrol.c:2400:1: warning: unused variable 'x' [-Wunused-variable]\n"
        "/x/kernel/bpf/cgroup.c:10:3: warning: same as before [-Wfoo]\n", files)
    after = check.warnings_by_file(W1, files)
    assert len(after["mm/memcontrol.c"]) == 2
    assert check.new_warnings(before, after) == {
        "mm/memcontrol.c": ["warning: no previous prototype for 'f' [-Wmissing-prototypes]"]}


def test_checkpatch_exceptions(tmp_path: Path) -> None:
    from harness.check import load_exceptions, split_excepted
    f = tmp_path / "exc"
    f.write_text("# comment\n0002-* | space prohibited before that ':' | uapi idiom\n")
    exc = load_exceptions(f)
    issues = ["a.h:1: ERROR: space prohibited before that ':' (ctx:WxV)",
              "a.c:2: WARNING: line length of 101 exceeds 100 columns"]
    counted, excepted = split_excepted("0002-bpf-x.patch", issues, exc)
    assert counted == [issues[1]] and excepted == [issues[0] + "  [excepted: uapi idiom]"]
    # the glob is per patch: the same finding elsewhere counts
    assert split_excepted("0004-mm.patch", issues, exc)[0] == issues
    f.write_text("0002-* | no reason\n")
    with pytest.raises(HarnessError):
        load_exceptions(f)


def test_touched_dirs_and_libbpf() -> None:
    from harness.check import touched_dirs, touches_libbpf
    assert touched_dirs(["mm/memcontrol.c", "mm/bpf_memcontrol.c", "kernel/bpf/syscall.c"]) \
        == ["mm/", "kernel/bpf/"]
    assert touches_libbpf(["--- a/tools/lib/bpf/libbpf.c\n+++ b/tools/lib/bpf/libbpf.c\n"])
    assert not touches_libbpf(["+++ b/mm/memcontrol.c\n"])


def test_the_extra_configs_include_bpf_jit_off() -> None:
    """M2 of the v2 review: kernel/bpf/cgroup.o did not build with
    CONFIG_BPF_JIT=n; the config matrix builds it so."""
    from harness import check
    frag = check.CONFIG_VARIANTS["no-bpf-jit"]
    assert "CONFIG_BPF_JIT=n" in frag.read_text().splitlines()
    assert set(check.CONFIG_VARIANTS) == {"no-bpf-syscall", "no-memcg", "no-cgroup-bpf",
                                          "no-bpf-jit"}


def test_a_lifetime_failure_is_a_check_item(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """check --lifetime: the lifetime tests' failures (or an error booting
    that kernel) become a FAIL item of the check, not a lost result."""
    from harness import check, pipeline
    from harness.errors import HarnessError
    from harness.options import Options
    from harness.results import Verdict
    from harness.source import SourceInfo
    pl = pipeline.Pipeline(Options(out=tmp_path))
    pl._src = SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
    monkeypatch.setattr(pl, "series", lambda action="apply": None)
    monkeypatch.setattr(pl, "toolchain", lambda: None)
    monkeypatch.setattr(check.SeriesCheck, "run", lambda self: [])

    def failing() -> list[str]:
        pl.verdicts = [Verdict("test_progs", "cgroup_struct_ops/fail_nth", Status.FAIL, "leak"),
                       Verdict("test_progs", "cgroup_struct_ops/close_rmdir_race", Status.PASS)]
        return ["cgroup_struct_ops/fail_nth: leak"]
    monkeypatch.setattr(pl, "lifetime", failing)
    items = pl.check(lifetime=True)
    assert [(i.kind, i.status) for i in items] == [("lifetime", "FAIL")]
    assert "1/2 tests pass" in items[0].summary
    assert "leak" in items[0].details["issues"][0]

    def erroring() -> NoReturn:
        raise HarnessError("guest hung")
    monkeypatch.setattr(pl, "lifetime", erroring)
    items = pl.check(lifetime=True)
    assert [(i.kind, i.status) for i in items] == [("lifetime", "FAIL")]
    assert "guest hung" in items[0].summary


def test_a_splat_fails_the_lifetime_check_when_every_test_passes(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """A KASAN report fails the boot's stage, not a test: lifetime() must
    report it (v3's B1 mutation passed close_rmdir_race with a KASAN report
    on the console)."""
    from harness import pipeline
    from harness.options import Options
    from harness.record import FAIL, StageRecord
    from harness.results import Verdict

    pl = pipeline.Pipeline(Options(out=tmp_path))
    monkeypatch.setattr(pipeline.Pipeline, "prepare", lambda self: None)

    def selftests(self: pipeline.Pipeline, run: pipeline.SelftestsRun) -> list[str]:
        filters = run.filters
        assert list(filters) == list(pipeline.Pipeline.LIFETIME_TESTS)
        assert run.name == "lifetime" and not run.memcontrol
        assert "no5lvl" in self.opts.kernel_args
        assert self.opts.build_dir is not None
        assert self.opts.build_dir.name.endswith("-lifetime")
        self.verdicts = [Verdict("test_progs", f, Status.PASS) for f in filters]
        self.records.append(StageRecord("lifetime", FAIL, summary="kernel splat in the "
                                        "guest: kasan: BUG: KASAN: slab-use-after-free"))
        return []
    monkeypatch.setattr(pipeline.Pipeline, "selftests", selftests)
    monkeypatch.setattr(pipeline.Pipeline, "tree", property(lambda self: tmp_path / "linux"))
    bad = pl.lifetime()
    assert len(bad) == 1 and "slab-use-after-free" in bad[0]
