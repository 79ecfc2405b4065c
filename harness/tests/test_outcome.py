"""One outcome: the exit status, report.json's status and the KCIDB export
agree on every path, including a verb that stops before or between its
stages (each raise site of harness-v2 review's N1) and an exception from
a bug (N3): ERROR, exit 2, an "error" stage with the message, and for a
bug the traceback in logs/traceback.log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness import cli, kcidb, pipeline, verbs
from harness.build import BuildResult
from harness.source import SourceInfo


def outcome(tmp_path: Path, argv: list[str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    out = tmp_path / "o"
    rc = cli.main([*argv, "--out", str(out)])
    rep = json.loads((out / "report.json").read_text())
    data = kcidb.from_run(out)
    return rc, rep, data


def check_error(rc: int, rep: dict[str, Any], data: dict[str, Any], text: str,
                status: str = "ERROR") -> dict[str, Any]:
    assert rc == {"ERROR": 2, "FAIL": 1}[status]
    assert rep["status"] == status
    err: list[dict[str, Any]] = [s for s in rep["stages"] if s["stage"] == "error"]
    assert len(err) == 1 and err[0]["status"] == status and text in err[0]["summary"]
    tests = {t["path"]: t["status"] for t in data["tests"]}
    assert tests.get("harness.error") == status
    assert kcidb.validate(data) is None
    return err[0]


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """prepare() and the nodebug kernels build nothing: the build directory
    is an empty one, without guest tools."""
    b = tmp_path / "build"
    b.mkdir()
    monkeypatch.setattr(pipeline.Pipeline, "prepare", lambda self, *a, **k: BuildResult())
    monkeypatch.setattr(pipeline.Pipeline, "nodebug", lambda self, *a, **k: self)
    monkeypatch.setattr(pipeline.Pipeline, "build_dir", property(lambda self: b))
    src = SourceInfo(tree=str(tmp_path), kernelversion="7.3.4", origin="user-tree")
    monkeypatch.setattr(pipeline.Pipeline, "source", lambda self, fetch=True: src)
    return b


def test_study_parameters_checked_before_any_stage(tmp_path: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["throttle", "--repeats", "0"])
    check_error(rc, rep, data, "repeats")


def test_write_baseline_without_unpatched(tmp_path: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["test", "--write-baseline"])
    check_error(rc, rep, data, "--write-baseline needs --unpatched")
    # the stages it did not reach are SKIP, not PASS
    assert {s["stage"]: s["status"] for s in rep["stages"]}["build"] == "SKIP"


def test_vm_script_that_does_not_exist(tmp_path: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["vm", "--script", str(tmp_path / "nope.sh")])
    check_error(rc, rep, data, "no such file")


def test_check_with_series_none(tmp_path: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["check", "--series", "none",
                                       "--kernel-dir", str(tmp_path)])
    check_error(rc, rep, data, "needs --series quilt")


def test_throttle_without_the_policy_program(tmp_path: Path, no_build: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["throttle", "--short", "--scenarios", "both_policy"])
    check_error(rc, rep, data, "no policy program")


def test_experiment_without_the_sample(tmp_path: Path, no_build: Path) -> None:
    rc, rep, data = outcome(tmp_path, ["experiment"])
    check_error(rc, rep, data, "no sample program")


def test_zero_policy_without_the_check_program(tmp_path: Path, no_build: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rc, rep, data = outcome(tmp_path, ["test"])
    check_error(rc, rep, data, "--zero-policy needs the guest check program")


def test_an_exception_from_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(pl: pipeline.Pipeline, req: object) -> verbs.VerbResult:
        no_results: dict[str, verbs.VerbResult] = {}
        return no_results["no such key"]
    monkeypatch.setitem(verbs.VERBS, "config", bug)  # cli.VERBS is this dict
    rc, rep, data = outcome(tmp_path, ["config"])
    err = check_error(rc, rep, data, "KeyError")
    assert "Traceback" in Path(err["log"]).read_text()
    assert err["details"]["type"] == "KeyError"


def test_a_change_failure_outside_a_stage_is_fail(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import ChangeFailed

    def fails(pl: pipeline.Pipeline, req: object) -> NoReturn:
        raise ChangeFailed("the series does not build")
    monkeypatch.setitem(verbs.VERBS, "config", fails)  # cli.VERBS is this dict
    rc, rep, data = outcome(tmp_path, ["config"])
    check_error(rc, rep, data, "does not build", status="FAIL")


def test_an_error_inside_a_stage_adds_no_error_stage(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import HarnessError

    def source(self: pipeline.Pipeline, fetch: bool = True) -> NoReturn:
        with self.stage("source"):
            raise HarnessError("no tree")
    monkeypatch.setattr(pipeline.Pipeline, "source", source)
    rc, rep, _ = outcome(tmp_path, ["config"])
    assert rc == 2 and rep["status"] == "ERROR"
    assert [s["stage"] for s in rep["stages"] if s["status"] == "ERROR"] == ["source"]


def test_a_bug_outside_a_pipeline_verb_exits_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.json").write_text('{"stages": [')  # truncated
    assert cli.main(["report", "--kcidb", "--out", str(out)]) == 2
    assert "JSONDecodeError" in capsys.readouterr().err


def test_relative_paths_reach_the_suites_absolute(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """N4: the suites' pytest runs in the repository with Options.to_env():
    a relative --kernel-dir, --build-dir or --fragment given in another
    directory must arrive resolved against the caller's directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.config").write_text("# why\nCONFIG_X=y\n")
    args = cli.make_parser().parse_args(
        ["build", "--kernel-dir", "../linux", "--build-dir", "b", "--fragment", "my.config",
         "--out", "o"])
    env = cli.options(args).to_env()
    assert env["MEMCG_BPF_KERNEL_DIR"] == str(tmp_path.parent / "linux")
    assert env["MEMCG_BPF_BUILD_DIR"] == str(tmp_path / "b")
    assert env["MEMCG_BPF_FRAGMENTS"] == str(tmp_path / "my.config")
    assert env["MEMCG_BPF_OUT"] == str(tmp_path / "o")


def test_kernel_args_reach_the_probe_and_survive_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """N7: the KVM probe boots with the run's --kernel-arg, and an argument
    with a quoted space keeps it on its way to the suites."""
    from harness import vm
    from harness.options import Options
    opts = Options(out=tmp_path, kernel_args=['dyndbg="file mm/* +p"', "no5lvl"])
    monkeypatch.setattr("os.environ", {**__import__("os").environ, **opts.to_env()})
    assert Options.from_env().kernel_args == opts.kernel_args
    seen: list[list[str] | None] = []

    def probe_kvm(k: Path, r: Path | None, log: Path,
                  append: list[str] | None = None) -> tuple[bool, str]:
        seen.append(append)
        return True, "ok"
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: True)
    monkeypatch.setattr(vm, "probe_kvm", probe_kvm)
    assert vm.choose_accel("auto", tmp_path / "bzImage", None, tmp_path,
                           ["no5lvl"])[0] == "kvm"
    assert seen == [["no5lvl"]]
