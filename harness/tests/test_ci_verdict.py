"""ci/test.sh's exit status (harness.ci_verdict): FAIL and ERROR survive
tox, which returns 1 for any failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import ci_verdict


def env(ok: bool, codes: list[int], setup: list[int] | None = None) -> dict[str, Any]:
    return {"result": {"success": ok, "exit_code": 0 if ok else 1, "skipped": False},
            "setup": [{"retcode": c} for c in setup or []],
            "test": [{"command": ["x"], "retcode": c} for c in codes]}


def run(tmp_path: Path, envs: dict[str, dict[str, Any]],
        pytest_status: str | None = None) -> tuple[int, list[str]]:
    res = tmp_path / "tox-result.json"
    res.write_text(json.dumps({"testenvs": {".pkg": env(True, [0]), **envs}}))
    out = tmp_path / "out"
    if pytest_status:
        (out / "pytest").mkdir(parents=True)
        (out / "pytest" / "report.json").write_text(json.dumps({"status": pytest_status}))
    return ci_verdict.verdict(res, out)


def test_all_pass(tmp_path: Path) -> None:
    code, lines = run(tmp_path, {"lint": env(True, [0]), "vm": env(True, [0])})
    assert code == 0 and lines[-1] == "verdict: PASS"


@pytest.mark.parametrize("envs,status,code", [
    ({"unit": env(False, [1])}, None, 1),  # a unit test failed
    ({"unit": env(False, [2])}, None, 2),  # pytest interrupted
    ({"lint": env(False, [1])}, None, 1),
    ({"series": env(False, [0, 1])}, None, 1),  # harness send: FAIL
    ({"series": env(False, [2, 0])}, None, 2),  # harness check: ERROR
    ({"series": env(False, [1, 2])}, None, 2),
    ({"vm": env(False, [1])}, "FAIL", 1),  # a guest test failed
    ({"vm": env(False, [1])}, "ERROR", 2),  # the pipeline stopped for the host
    ({"vm": env(False, [1])}, None, 2),  # no report: nothing judged
    ({"vm": env(False, [1])}, "PASS", 2),  # contradiction: not a verdict
    ({"vm": env(False, [0], setup=[1])}, None, 2),  # pip could not install
    ({"unit": env(False, [1]), "vm": env(False, [1])}, "ERROR", 2),  # ERROR wins
])
def test_the_worst_environment_decides(tmp_path: Path, envs: dict[str, dict[str, Any]],
                                       status: str | None, code: int) -> None:
    got, lines = run(tmp_path, {"lint": env(True, [0]), **envs}, status)
    assert got == code, lines
    assert lines[-1] == f"verdict: {['PASS', 'FAIL', 'ERROR'][code]}"
    assert not any(x.startswith(".pkg") for x in lines)


def test_no_result_json_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci_verdict.main([str(tmp_path / "none.json"), str(tmp_path)]) == 2
    assert "did not get as far" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert ci_verdict.main([str(tmp_path / "bad.json"), str(tmp_path)]) == 2
