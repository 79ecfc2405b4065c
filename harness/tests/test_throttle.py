"""The throttling experiment's pure parts: stress-ng YAML, onset delay,
statistics, table, plot, parsing of the guest's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import throttle as th
from harness.errors import HarnessError

DATA = Path(__file__).parent / "data"


def test_stress_ng_rate_real_yaml():
    # stress-ng 0.19.02's --yaml output (its build-info section is not YAML)
    rate = th.stress_ng_rate((DATA / "stress-ng-0.19.02.yaml").read_text())
    assert rate == pytest.approx(86029.313208)


def test_stress_ng_rate_without_vm_metrics():
    with pytest.raises(HarnessError):
        th.stress_ng_rate("---\nmetrics:\n    - stressor: cpu\n      bogo-ops: 1\n")


def sample(t, scan, events, some=0):
    return {"t": t, "high": {"pgscan": scan, "high_events": 0, "pressure": {}},
            "low": {"pgscan": 0, "high_events": events, "pressure": {"some": some}}}


def test_onset_delay():
    s = [sample(0.0, 5, 2), sample(0.1, 5, 2), sample(0.2, 9, 2), sample(0.5, 20, 3)]
    assert th.onset_delay(s) == pytest.approx(0.3)
    assert th.onset_delay([sample(0.0, 5, 2), sample(0.1, 5, 2)]) is None  # no scans
    assert th.onset_delay([]) is None


def yaml_for(rate):
    return ("---\nsystem-info:\n      cpus: 2\n\nmetrics:\n    - stressor: vm\n"
            f"      bogo-ops: 10\n      bogo-ops-per-second-real-time: {rate}\n\n...\n")


def write_guest_output(d: Path, runs: list[tuple[str, int, dict]]):
    recs = []
    for name, rep, rates in runs:
        sides = list(rates)
        for side, rate in rates.items():
            (d / f"{name}-{rep}-{side}.yaml").write_text(yaml_for(rate))
        recs.append({"scenario": name, "repeat": rep, "sides": sides,
                     "rc": {s: 0 for s in sides}, "stress_log": {},
                     "yaml": {s: f"{name}-{rep}-{s}.yaml" for s in sides},
                     "samples": [sample(0.0, 0, 0, 0), sample(1.0, 10, 0, 0),
                                 sample(1.5, 20, 4, 2_000_000)] if len(sides) == 2 else []})
    (d / "runs.json").write_text(json.dumps({"env": {"nproc": 2}, "runs": recs}))


def test_parse_summarize_table_plot(tmp_path):
    runs = []
    for rep in range(3):
        runs += [("high_alone", rep, {"high": 100 + rep}),
                 ("low_alone", rep, {"low": 90 + rep}),
                 ("both_none", rep, {"high": 40 + rep, "low": 38}),
                 ("both_policy", rep, {"high": 95 - rep, "low": 3})]
    write_guest_output(tmp_path, runs)
    env, parsed = th.parse_runs(tmp_path)
    assert env == {"nproc": 2} and len(parsed) == 12
    assert parsed[2].onset_s == pytest.approx(0.5) and parsed[2].low_high_events == 4
    assert parsed[2].low_stall_s == 2.0
    summ = th.summarize(parsed, ["high_alone", "low_alone", "both_none", "both_policy"])
    assert summ["high_alone"]["high"]["median"] == 101
    assert summ["both_policy"]["high"]["ratio_to_alone"] == pytest.approx(94 / 101)
    assert summ["both_policy"]["low"]["ratio_to_alone"] == pytest.approx(3 / 91)
    assert summ["both_none"]["high"]["min"] == 40 and summ["both_none"]["high"]["max"] == 42
    rows = th.table_rows(summ)
    assert rows[3][0] == "both, BPF sample policy" and rows[3][2] == "0.93"
    png = th.plot(summ, tmp_path / "p.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_stressor_and_policy_are_errors(tmp_path):
    write_guest_output(tmp_path, [("both_none", 0, {"high": 1.0, "low": 1.0})])
    data = json.loads((tmp_path / "runs.json").read_text())
    data["runs"][0]["rc"]["low"] = 1
    data["runs"][0]["stress_log"] = {"low": "stress-ng: error: no memory"}
    data["runs"].append({"scenario": "both_policy", "repeat": 0, "sides": ["high", "low"],
                         "policy_error": "memcg: loading the BPF object failed"})
    (tmp_path / "runs.json").write_text(json.dumps(data))
    _, runs = th.parse_runs(tmp_path)
    assert "low: stress-ng rc 1" in runs[0].error and "high" in runs[0].rates
    assert runs[1].error.startswith("policy not attached")
    with pytest.raises(HarnessError):
        th.parse_runs(tmp_path / "missing")


def test_params_validate():
    th.Params(scenarios=list(th.SHORT_SCENARIOS)).validate()
    with pytest.raises(HarnessError):
        th.Params(scenarios=["both_magic"]).validate()
    assert "--over-high" in th.Params().guest_args()
