"""harness.kcidb: a run as KCIDB JSON, validated with kcidb-io's own schema."""
import json
import shutil
from pathlib import Path

import pytest

from harness import cli, kcidb

kcidb_io = pytest.importorskip("kcidb_io")


@pytest.fixture
def run(tmp_path: Path, data: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(data / "kcidb-run", out)
    res = out / "selftests" / "results.json"
    d = json.loads(res.read_text())
    d["runs"][0]["cases"] += [
        {"suite": "test_progs", "name": "memcg_ops/min_floor", "status": "FAIL",
         "number": "247/12", "message": "min_floor: usage 0.25 MB < memory.min", "run": 1},
        {"suite": "test_progs", "name": "memcg_ops/episode_bound", "status": "SKIP",
         "number": "247/13", "message": "no swap", "run": 0},
        {"suite": "test_memcontrol", "name": "test_memcg_low", "status": "MISSING",
         "message": "", "run": 0},
        {"suite": "test_progs", "name": "bpf_tcp_ca/dctcp_fallback", "status": "KNOWN",
         "message": "", "run": 0}]
    res.write_text(json.dumps(d))
    (out / "junit-selftests.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="selftests.test_smoke" name="test_boots" time="6.1"/>'
        '<testcase classname="selftests.test_throttle" name="test_detach[x/y]" time="1">'
        '<failure message="low did not recover"/></testcase>'
        '<testcase classname="selftests.test_smoke" name="test_kvm" time="0">'
        '<skipped message="no KVM"/></testcase></testsuite></testsuites>')
    return out


def test_export_validates_against_kcidb_io(run: Path) -> None:
    data = kcidb.from_run(run)
    kcidb_io.schema.LATEST.validate(data)  # raises on any schema violation
    assert kcidb_io.schema.LATEST.is_compatible_exactly(data)
    tests = {t["path"]: t for t in data["tests"]}
    assert tests["test_progs.memcg_ops.no_lock_throttle"]["status"] == "PASS"
    assert tests["test_progs.memcg_ops.min_floor"]["status"] == "FAIL"
    assert tests["test_progs.memcg_ops.episode_bound"]["status"] == "SKIP"
    assert tests["test_memcontrol.test_memcg_low"]["status"] == "MISS"
    known = tests["test_progs.bpf_tcp_ca.dctcp_fallback"]
    assert known["status"] == "FAIL" and "known_failure" not in known.get("misc", {})
    # KCIDB's own fields (review N6): the failure's text, where the guest ran,
    # the build's log
    assert tests["test_progs.memcg_ops.min_floor"]["log_excerpt"] == \
        "min_floor: usage 0.25 MB < memory.min"
    env = tests["test_progs.memcg_ops.min_floor"]["environment"]
    assert env["comment"].startswith("QEMU") and env["misc"]["accel"]
    assert tests["pytest.selftests.test_throttle.test_detach_x_y_"]["log_excerpt"] == \
        "low did not recover"
    assert "message" not in tests["test_progs.memcg_ops.min_floor"].get("misc", {})
    assert data["builds"][0]["log_url"] == "file:///tmp/run/x"
    # a known failure is an issue (not the series'), with this run's incident
    (issue,) = data["issues"]
    assert issue["culprit"] == {"code": True, "tool": False, "harness": False}
    assert "without the series" in issue["comment"]
    (inc,) = data["incidents"]
    assert inc["issue_id"] == issue["id"] and inc["test_id"] == known["id"]
    assert inc["present"] is True
    assert kcidb.from_run(run)["issues"][0]["id"] == issue["id"]  # stable across exports
    assert tests["pytest.selftests.test_throttle.test_detach_x_y_"]["status"] == "FAIL"
    assert tests["pytest.selftests.test_smoke.test_kvm"]["status"] == "SKIP"
    assert len({t["id"] for t in data["tests"]}) == len(data["tests"])
    (b,) = data["builds"]
    assert b["status"] == "PASS" and b["checkout_id"] == data["checkouts"][0]["id"]
    assert all(t["build_id"] == b["id"] for t in data["tests"])
    c = data["checkouts"][0]
    assert len(c["patchset_hash"]) == 64 and c["patchset_files"][0]["url"].startswith("file:")


def test_the_validation_is_real(run: Path) -> None:
    """The schema check is not a formality: a wrong status is refused."""
    data = kcidb.from_run(run)
    data["tests"][0]["status"] = "OK"
    assert kcidb.validate(data) is not None
    data["tests"][0]["status"] = "PASS"
    data["tests"][0]["path"] = "a/b"
    assert kcidb.validate(data) is not None


def test_report_verb_writes_it(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--kcidb", "--out", str(run)]) == 0
    assert "1 checkout, 1 build(s), 12 test(s)" in capsys.readouterr().out
    assert kcidb.validate(json.loads((run / "kcidb.json").read_text())) is None


def test_not_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--kcidb", "--out", str(tmp_path)]) == 2
    assert "no report.json" in capsys.readouterr().err
