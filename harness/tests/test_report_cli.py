import json
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness import cli, host, report
from harness.build import _KBUILD_LINE
from harness.errors import HarnessError
from harness.record import Stage, StageRecord, Status

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
errors="0" failures="1" skipped="1" tests="6" time="12.3"></testsuite></testsuites>"""


def test_junit_counts(tmp_path: Path) -> None:
    p = tmp_path / "j.xml"
    p.write_text(JUNIT)
    assert report.junit_counts(p) == {"tests": 6, "failures": 1, "errors": 0, "skipped": 1}


def test_stage_record_written_on_error(tmp_path: Path) -> None:
    try:
        with Stage("build", tmp_path) as rec:
            rec.log = "/x/build.log"
            raise RuntimeError("boom\nmore")
    except RuntimeError:
        pass
    data = json.loads((tmp_path / "build.json").read_text())
    assert data["status"] == "ERROR" and data["summary"] == "boom"


def test_overall_and_table() -> None:
    recs = [StageRecord("a"), StageRecord("b", status=Status.FAIL, summary="bad")]
    assert report.overall(recs) == "FAIL"
    assert "bad" in report.stage_table(recs)


def test_kbuild_progress_regex() -> None:
    m = _KBUILD_LINE.match("  CC      mm/memcontrol.o")
    assert m is not None and m.group(2) == "mm/memcontrol.o"
    assert _KBUILD_LINE.match("  BTF     .btf.vmlinux.bin.o")
    assert not _KBUILD_LINE.match("mm/memcontrol.c:12: warning: x")


def test_cli_bad_kernel_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["source", "--kernel-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "is not a Linux kernel source tree" in capsys.readouterr().err
    assert json.loads((tmp_path / "o/source.json").read_text())["status"] == "ERROR"


def test_doctor_lists_install_command(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which",  # the shutil module harness.host calls
                        lambda t: None if t == "quilt" else "/usr/bin/" + t)
    results = host.checks()
    assert "quilt" in host.missing_packages(results)
    assert host.install_command(["quilt"])[:3] == ["apt-get", "install", "-y"]


def test_cli_vm_missing_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["vm", "--script", str(tmp_path / "nope.sh"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "--script" in capsys.readouterr().err


def test_study_report_names_every_output() -> None:
    from harness.studies.run import StudyResult
    text = StudyResult(table="T", every_run="E", results=Path("r.json"), png=Path("p.png"),
                       traces=Path("t.png")).report()
    assert text.index("T") < text.index("every run:\nE") < text.index("results: r.json")
    assert "plot: p.png" in text and "traces: t.png" in text and "timelines" not in text


def test_every_pipeline_verb_gets_its_own_request() -> None:
    """cli.request() maps each verb's arguments to its request dataclass, and
    options() passes every shared argument by its name (no silent defaults)."""
    from harness import cli, verbs
    from harness.pipeline import PLANS
    from harness.studies import experiment as ex
    from harness.studies import throttle as th
    parse = cli.make_parser().parse_args
    assert set(verbs.VERBS) == set(PLANS) | {"source", "series", "vm", "check",
                                                   "experiment", "bench"}
    req = cli.request(parse(["test", "-t", "memcg_ops", "--no-memcontrol", "--repeat", "3"]))
    assert isinstance(req, verbs.TestRequest)
    assert (req.filters, req.memcontrol, req.repeat, req.zero_policy) == \
        (["memcg_ops"], False, 3, True)
    req = cli.request(parse(["vm", "--cpus", "4", "--", "sh", "-c", "a; b"]))
    assert isinstance(req, verbs.VmRequest)
    assert (req.cpus, req.command) == (4, "sh -c 'a; b'")
    req = cli.request(parse(["check", "--quick", "--no-configs"]))
    assert isinstance(req, verbs.CheckRequest)
    assert (req.quick, req.configs, req.prefixes, req.lifetime) == (True, False, True, False)
    req = cli.request(parse(["check", "--lifetime", "--accel", "tcg"]))
    assert isinstance(req, verbs.CheckRequest)
    assert req.lifetime and not req.quick
    req = cli.request(parse(["throttle", "--short", "--vm-workers", "4", "--nodebug"]))
    assert isinstance(req, verbs.StudyRequest) and isinstance(req.params, th.Params)
    assert req.nodebug and req.params.vm_workers == 4
    req = cli.request(parse(["experiment", "--arms", "none,sample:1024", "--set",
                             "idle_s=30"]))
    assert isinstance(req, verbs.StudyRequest) and isinstance(req.params, ex.Params)
    assert req.params.arms == ["none", "sample:1024"] and req.params.idle_s == 30.0
    req = cli.request(parse(["throttle", "--matrix"]))  # the whole phased matrix
    assert isinstance(req, verbs.StudyRequest) and isinstance(req.params, ex.Params)
    assert req.params.scenarios == ["s1", "s2", "s3", "s4"] and req.params.repeats == 10
    assert len(req.params.arms) == 13 and req.params.boots == 2
    req = cli.request(parse(["throttle", "--matrix", "--repeats", "1"]))  # its short form
    assert isinstance(req, verbs.StudyRequest) and isinstance(req.params, ex.Params)
    assert (req.params.repeats, req.params.boots, len(req.params.arms)) == (1, 1, 13)
    req = cli.request(parse(["throttle"]))
    assert isinstance(req, verbs.StudyRequest) and isinstance(req.params, th.Params)
    assert req.params.repeats == 3
    assert isinstance(cli.request(parse(["build"])), verbs.NoRequest)
    opts = cli.options(parse(["test", "--unpatched", "--kernel-arg", "no5lvl",
                              "--accel", "tcg", "--out", "o"]))
    assert (opts.unpatched, opts.kernel_args, opts.accel) == (True, ["no5lvl"], "tcg")


def test_out_is_relative_to_the_current_directory(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import cli
    monkeypatch.delenv("MEMCG_BPF_OUT", raising=False)
    monkeypatch.chdir(tmp_path)
    first = cli.options(cli.make_parser().parse_args(["build"])).out
    second = cli.options(cli.make_parser().parse_args(["build"])).out
    assert first.parent == second.parent == tmp_path / "out" and first != second
    assert first.name.startswith("build-")
    assert (tmp_path / "out" / "latest").resolve() == second
    args = cli.make_parser().parse_args(["build", "--out", "o2"])
    assert cli.options(args).out == tmp_path / "o2"  # given: used as it is
    monkeypatch.setenv("MEMCG_BPF_OUT", str(tmp_path / "o3"))
    assert cli.options(cli.make_parser().parse_args(["build"])).out == tmp_path / "o3"


def test_vm_command_keeps_its_quoting() -> None:
    from harness.verbs import vm_command
    assert vm_command(["--", "sh", "-c", "echo a b; uname -r"]) == \
        "sh -c 'echo a b; uname -r'"
    assert vm_command(["--", "cat /proc/meminfo | head -3"]) == "cat /proc/meminfo | head -3"
    assert vm_command([]) == vm_command(["--"]) == "uname -r"
    assert vm_command(["--", "grep", "--", "x", "f"]) == "grep -- x f"  # a later -- stays


def test_kconfig_add_and_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import build, cli, kconfig
    monkeypatch.setenv("MEMCG_BPF_JOBS", "0")  # restored (unset) after the test
    args = cli.make_parser().parse_args(
        ["build", "--out", str(tmp_path), "--kconfig-add", "CONFIG_KASAN=y",
         "--kconfig-add", "CONFIG_DEBUG_INFO_BTF=n", "--kconfig-add", 'CONFIG_X="a b"',
         "--jobs", "7"])
    opts = cli.options(args)
    frag = opts.fragments[-1]
    got = kconfig.load_fragments([frag])
    assert got["CONFIG_KASAN"].value == "y" and got["CONFIG_DEBUG_INFO_BTF"].value == "n"
    assert build.jobs() == 7
    for bad in ("KASAN=y", "CONFIG_KASAN", "CONFIG_X=yes please"):
        with pytest.raises(HarnessError, match="--kconfig-add"):
            cli.options(cli.make_parser().parse_args(["build", "--out", str(tmp_path),
                                                      "--kconfig-add", bad]))


def test_report_json_has_reproducer_metadata(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from harness import source
    from harness.options import Options
    from harness.pipeline import Pipeline
    b = tmp_path / "build"
    b.mkdir()
    (b / ".config").write_text("CONFIG_MEMCG=y\n")
    pl = Pipeline(Options(out=tmp_path / "out", build_dir=b))
    pl._src = source.SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
    from harness.record import StageRecord
    pl.records += [
        StageRecord(stage="toolchain", details={"kind": "buildroot", "root": "/r",
                                                "gcc": "gcc 14.2", "pahole": "v1.29",
                                                "clang": "clang 19.1"}),
        StageRecord(stage="vm", details={"qemu": "QEMU 7.2", "vng": "virtme-ng 1.38"})]
    monkeypatch.setattr("sys.argv", ["harness", "build", "--jobs", "3"])

    def no_tools(*a: object, **k: object) -> None:
        raise AssertionError(f"the report ran a tool: {a}")
    monkeypatch.setattr("subprocess.run", no_tools)
    monkeypatch.setattr("subprocess.Popen", no_tools)
    cli.finish(pl, {"x": 1})
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    r = data["reproducer"]
    assert r["argv"] == ["harness", "build", "--jobs", "3"] and data["x"] == 1
    assert r["kernel_config_sha256"] == hashlib.sha256(b"CONFIG_MEMCG=y\n").hexdigest()
    assert r["versions"] | {"python": None} == {
        "python": None, "gcc": "gcc 14.2", "pahole": "v1.29", "clang": "clang 19.1",
        "qemu": "QEMU 7.2", "vng": "virtme-ng 1.38", "toolchain": "buildroot /r"}
    assert r["free_disk"]["build"]["free_gib"] > 0


def test_the_reproducer_without_stages_is_null_not_probed(tmp_path: Path) -> None:
    """Before any stage ran, the versions are unknown: null, not asked."""
    from harness.options import Options
    from harness.report import reproducer
    r = reproducer([], Options(out=tmp_path), None)
    assert {k: v for k, v in r["versions"].items() if k != "python"} == dict.fromkeys(
        ("vng", "qemu", "gcc", "clang", "pahole", "toolchain"))
    assert r["build_dir"] is None and r["kernel_config_sha256"] is None


@pytest.mark.parametrize("exc,code,status", [
    ("ChangeFailed", 1, "FAIL"), ("HarnessError", 2, "ERROR")])
def test_a_patch_that_does_not_apply_is_fail_an_infra_problem_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        exc: str, code: int, status: str) -> None:
    from harness import errors, pipeline
    from harness.source import SourceInfo

    def source(self: pipeline.Pipeline, fetch: bool = True) -> SourceInfo:
        with self.stage("source"):
            self._src = SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
        return self._src

    def series(self: pipeline.Pipeline, action: str = "apply") -> NoReturn:
        with self.stage("series"):
            raise getattr(errors, exc)("0005-x.patch does not apply: mm/memcontrol.c hunk 3")
    def toolchain(self: pipeline.Pipeline) -> None:  # no build root in a unit test
        with self.stage("toolchain"):
            pass
    monkeypatch.setattr(pipeline.Pipeline, "source", source)
    monkeypatch.setattr(pipeline.Pipeline, "toolchain", toolchain)
    monkeypatch.setattr(pipeline.Pipeline, "series", series)
    assert cli.main(["build", "--out", str(tmp_path / "o")]) == code
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    st = {s["stage"]: s["status"] for s in rep["stages"]}
    assert st["source"] == "PASS" and st["series"] == status
    assert st["config"] == st["build"] == st["selftests-build"] == "SKIP"
    assert rep["status"] == status
    assert (tmp_path / "o" / "build.json").exists()  # the SKIP records are written too


def test_verdict_order() -> None:
    from harness.errors import ChangeFailed
    from harness.record import StageRecord as R
    assert cli.verdict([R("a"), R("b", status=Status.SKIP)]) == 0
    assert cli.verdict([R("a", status=Status.FAIL)]) == 1
    assert cli.verdict([R("a", status=Status.FAIL), R("b", status=Status.ERROR)]) == 2
    assert cli.verdict([], ChangeFailed("x")) == 1 and cli.verdict([], HarnessError("x")) == 2


def test_series_none_builds_the_tree_as_it_is(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import series
    from harness.options import Options
    from harness.pipeline import Pipeline
    from harness.source import SourceInfo
    pl = Pipeline(Options(out=tmp_path / "o", series="none"))
    pl._src = SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
    monkeypatch.setattr(series, "Quilt", lambda *a, **k: pytest.fail("quilt used"))
    assert pl.series("apply") is None
    assert pl.records[-1].status == "SKIP" and "as it is" in pl.records[-1].summary
    with pytest.raises(HarnessError, match="--series quilt"):
        pl.series("pop")
    assert Options.from_env().series == "quilt"
    monkeypatch.setenv("MEMCG_BPF_SERIES", "none")
    assert Options.from_env().series == "none"
    assert cli.main(["check", "--series", "none", "--out", str(tmp_path / "c")]) == 2


def test_guest_run_paths_disk_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import toolchain, vm
    from harness.options import Options
    from harness.pipeline import Pipeline
    from harness.source import SourceInfo
    pl = Pipeline(Options(out=tmp_path / "o", build_dir=tmp_path / "b"))
    pl._src = SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
    pl._tc = toolchain.Toolchain("buildroot", root=tmp_path / "root")
    seen: dict[str, Any] = {}
    result = vm.VmResult("tcg", 0, 0, False, tmp_path / "console.log", 1.0, 0.5, [])

    def boot(cmd: str, *, name: str, timeout: float, memory: str, cpus: int,
             disks: list[Path], qemu_opts: list[str] | None = None) -> vm.VmResult:
        seen.update(cmd=cmd, name=name, disks=disks, exists=[d.exists() for d in disks],
                    size=[d.stat().st_size for d in disks])
        return result
    monkeypatch.setattr(pl, "boot", boot)
    (tmp_path / "o" / "x-out" / "results").mkdir(parents=True)
    (tmp_path / "o" / "x-out" / "results" / "stale").write_text("old")
    res, gres = pl.guest_run("x", "bench.py", ["{results}", "--tools {tools}",
                                               "--disk-serial {disk}", "--f {shared}/c.json"],
                             timeout=10, disk_mb=64, files={"c.json": "[]"})
    assert res is result and gres == tmp_path / "o" / "x-out" / "results"
    assert seen["cmd"] == (f"python3 {vm.GUEST_SRC}/harness/guest/bench.py "
                           f"{vm.GUEST_OUT}/results --tools {vm.GUEST_BUILD} "
                           f"--disk-serial {seen['disks'][0]} --f {vm.GUEST_OUT}/c.json")
    assert seen["exists"] == [True] and seen["size"] == [64 << 20]
    assert not seen["disks"][0].exists()  # removed after the boot
    assert (tmp_path / "o" / "x-out" / "c.json").read_text() == "[]"
    assert not (gres / "stale").exists()  # a fresh shared directory


def test_options_takes_each_field_from_its_argument(tmp_path: Path) -> None:
    """Every Options field is set from the argument of that meaning, and
    one no verb gives keeps its default (no silent name matching)."""
    import dataclasses

    from harness import cli
    from harness.options import Options
    frag = tmp_path / "x.config"
    frag.write_text("CONFIG_X=y\n")
    parse = cli.make_parser().parse_args
    opts = cli.options(parse([
        "test", "--unpatched", "--kernel-dir", str(tmp_path / "k"), "--build-dir", "b",
        "--out", str(tmp_path / "o"), "--toolchain", "host", "--fragment", str(frag),
        "--accel", "tcg", "--kernel-arg", "no5lvl", "--kernel-arg", "a=b c",
        "--series", "none"]))
    assert opts == Options(kernel_dir=tmp_path / "k", build_dir=Path("b").resolve(),
                           out=tmp_path / "o", toolchain="host", accel="tcg",
                           fragments=[frag], refresh=False, unpatched=True,
                           kernel_args=["no5lvl", "a=b c"], series="none")
    assert cli.options(parse(["source", "--refresh", "--out", str(tmp_path)])).refresh
    # what each field is set from: no field is left to its default silently
    names = {f.name for f in dataclasses.fields(Options)}
    assert names == {"kernel_dir", "build_dir", "out", "toolchain", "accel", "fragments",
                     "refresh", "unpatched", "kernel_args", "series"}


def test_report_without_a_format_prints_the_runs_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness import cli
    from harness.report import write_json
    recs = [StageRecord("build", summary="1700 objects"),
            StageRecord("selftests-results", Status.FAIL, summary="1 fail",
                        details={"failed": ["test_progs memcg_ops/expiry: 52 events"]})]
    write_json(tmp_path, recs, {})
    assert cli.main(["report", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "status: FAIL" in out and "1700 objects" in out
    assert "selftests-results: test_progs memcg_ops/expiry: 52 events" in out
    assert not (tmp_path / "kcidb.json").exists()
    assert cli.main(["report", "--out", str(tmp_path / "none")]) == 2


def test_jobs_follow_the_affinity_and_version_is_printed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """make -j is the CPUs this process may use + 1 (a CI runner's cgroup or
    taskset), not the machine's; --version names the harness's version."""
    import os

    from harness import __version__, build, cli
    monkeypatch.delenv("MEMCG_BPF_JOBS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert build.jobs() == 4
    with pytest.raises(SystemExit) as e:
        cli.make_parser().parse_args(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"harness {__version__}"


def test_doctor_probes_the_build_it_is_given(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """doctor --probe-kvm --build-dir B boots B's kernel, not the default
    build's (review m14)."""
    from harness import build, toolchain, vm
    b = tmp_path / "build"
    b.mkdir()
    assert f"no built kernel in {b}" in host.kvm_probe_now(b)
    monkeypatch.setattr(build, "built_info", lambda d: build.BuildResult(image=str(d / "bz")))
    root = tmp_path / "root"
    (root / ".harness-complete").parent.mkdir(parents=True)
    (root / ".harness-complete").write_text("")
    monkeypatch.setattr(toolchain, "buildroot_path", lambda: root)
    booted: list[Path] = []

    def probe(kernel: Path, r: Path | None, logs: Path) -> tuple[bool, str]:
        booted.append(kernel)
        return True, "booted"
    monkeypatch.setattr(vm, "probe_kvm", probe)
    assert host.kvm_probe_now(b) == "probe: boots (booted)"
    assert booted == [b / "bz"]
