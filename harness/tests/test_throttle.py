"""The throttling experiment's pure parts: stress-ng YAML, onset delay,
statistics, table, plot, parsing of the guest's output."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.studies import throttle as th
from harness.studies import throttle_report as thr

DATA = Path(__file__).parent / "data"


def test_stress_ng_rate_real_yaml() -> None:
    # stress-ng 0.19.02's --yaml output (its build-info section is not YAML)
    rate = th.stress_ng_rate((DATA / "stress-ng-0.19.02.yaml").read_text())
    assert rate == pytest.approx(86029.313208)


def test_stress_ng_rate_without_vm_metrics() -> None:
    with pytest.raises(HarnessError):
        th.stress_ng_rate("---\nmetrics:\n    - stressor: cpu\n      bogo-ops: 1\n")


def sample(t: float, scan: int, events: int, some: int = 0, high_cur: int = 0,
           low_cur: int = 0) -> dict[str, Any]:
    return {"t": t, "high": {"pgscan": scan, "high_events": 0, "pressure": {},
                             "current": high_cur, "swap": 0},
            "low": {"pgscan": 0, "high_events": events, "pressure": {"some": some},
                    "current": low_cur, "swap": 0}}


def test_onset_delay() -> None:
    s = [sample(0.0, 5, 2), sample(0.1, 5, 2), sample(0.2, 9, 2), sample(0.5, 20, 3)]
    assert th.onset_delay(s) == pytest.approx(0.3)
    assert th.onset_delay([sample(0.0, 5, 2), sample(0.1, 5, 2)]) is None  # no scans
    assert th.onset_delay([]) is None


def yaml_for(rate: float) -> str:
    return ("---\nsystem-info:\n      cpus: 2\n\nmetrics:\n    - stressor: vm\n"
            f"      bogo-ops: 10\n      bogo-ops-per-second-real-time: {rate}\n\n...\n")


def write_guest_output(d: Path, runs: Sequence[tuple[str, int, Mapping[str, float]]]) -> None:
    recs: list[dict[str, Any]] = []
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


def test_parse_summarize_table_plot(tmp_path: Path) -> None:
    runs: list[tuple[str, int, dict[str, float]]] = []
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
    rows = thr.table_rows(summ)
    assert rows[3][0] == "both, BPF sample policy" and rows[3][2] == "0.93"
    png = thr.plot(summ, tmp_path / "p.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_stressor_and_policy_are_errors(tmp_path: Path) -> None:
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


POLICY_LOG = """memcg: attached to /sys/fs/cgroup/low (cgroup id 5): 262144 pages ...
memcg: 105.250: triggered (1 time(s))
memcg: 107.900: released
memcg: 108.125: triggered (2 time(s))
memcg: detached; triggered 2 time(s), first at 105.250 s (CLOCK_MONOTONIC), 77 call(s) ...
"""


def test_policy_periods() -> None:
    periods, total = th.policy_periods(POLICY_LOG, t0=100.0)
    assert periods == [[5.25, 7.9], [8.125, None]] and total == 2
    assert th.policy_periods("memcg: attached ...\n", 0.0) == ([], None)  # killed, no summary
    v1 = "memcg: 41.121: triggered 1 time(s), 4 throttling call(s)\n"
    assert th.policy_periods(v1, 40.0) == ([[1.121, 1.121]], None)
    assert th.policy_periods("memcg: detached; triggered 0 time(s), first at 0.000 s", 0.0) \
        == ([], 0)


def test_helped_classification_and_every_run(tmp_path: Path) -> None:
    runs = [("both_none", 0, {"high": 500, "low": 500}),
            ("both_none", 1, {"high": 610, "low": 490}),
            ("both_policy", 0, {"high": 4000, "low": 400}),
            ("both_policy", 1, {"high": 1200, "low": 450})]  # 1200 < 2 x 610
    write_guest_output(tmp_path, runs)
    _, parsed = th.parse_runs(tmp_path)
    summ = th.summarize(parsed, ["both_none", "both_policy"])
    assert [r.helped for r in parsed] == [None, None, True, False]
    assert summ["both_policy"]["helped"] == [1, 2] and "helped" not in summ["both_none"]
    assert thr.table_rows(summ)[1][5] == "1/2"
    rows = thr.run_rows(parsed)
    assert [r[4] for r in rows] == ["", "", "yes", "NO"]
    assert len(rows[0]) == len(thr.RUN_HEADERS)
    png = thr.plot_traces(parsed, tmp_path / "t.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_params_validate() -> None:
    th.Params(scenarios=list(th.SHORT_SCENARIOS)).validate()
    with pytest.raises(HarnessError):
        th.Params(scenarios=["both_magic"]).validate()
    assert "--over-high" in th.Params().guest_args()
    th.Params(scenarios=list(th.MECHANISM_SCENARIOS)).validate()
    with pytest.raises(HarnessError, match="fall"):
        th.Params(fall=1.5).validate()
    p = th.Params(scenarios=["both_none", "policy_detach"], repeats=2, seconds=20)
    assert p.estimate_s() == 2 * (24 + 30) + 60
    assert p.timeout_s() == p.estimate_s() * 2 + 300 + 2 * (150 + 8 + 40 + 2)


def detach_run(trigger: float | None = 5.0, detached: float = 12.0,
               low_cur: Callable[[float], int] | None = None,
               events: Callable[[float], int] | None = None, nr: int | None = 1,
               end: float | None = None) -> th.Run:
    """A policy_detach Run: 20 s of 100 ms samples; low_cur(t) and events(t)
    give low's memory.current (MiB) and memory.high events; the policy
    triggered at `trigger` until `end`, detached at `detached`."""
    at = 99.0 if trigger is None else trigger
    low_cur = low_cur or (lambda t: 200 if t < at + 1 or t > detached + 2 else 100)
    events = events or (lambda t: 0 if t < at else int(10 * (min(t, detached) - at)))
    samples = [sample(i / 10, 0, events(i / 10), low_cur=low_cur(i / 10) << 20)
               for i in range(200)]
    return th.Run("policy_detach", 0, {}, samples=samples,
                  triggers=[[trigger, end]] if trigger is not None else [], nr_triggers=nr,
                  detached_s=detached, detach_sent_s=detached - 0.05)


def test_mechanism_detach_passes_and_each_broken_part_fails() -> None:
    assert th.mechanism_failures(detach_run()) == []
    # the hook returning 0: triggered, but low neither gets events nor shrinks
    broken = th.mechanism_failures(detach_run(low_cur=lambda t: 200, events=lambda t: 0))
    assert any("no memory.high event" in f for f in broken)
    assert any("fell only to 200 MiB" in f for f in broken)
    # never triggered, or only after the detach
    assert "did not trigger" in th.mechanism_failures(detach_run(trigger=None, nr=0))[0]
    assert "did not trigger" in th.mechanism_failures(detach_run(trigger=13.0))[0]
    # released well before the detach: the detach shows nothing
    idle = th.mechanism_failures(detach_run(end=7.0))
    assert any("not triggered when it was detached" in f for f in idle)
    # an event in the sample stamped just before the trigger's time counts,
    # also one stamped well before it (a slow reading on a loaded host)
    assert th.mechanism_failures(detach_run(
        events=lambda t: 0 if t < 4.95 else 1)) == []
    assert th.mechanism_failures(detach_run(
        events=lambda t: 0 if t < 4.6 else 1)) == []
    # the detach did not stop it: events go on, low stays small
    on = th.mechanism_failures(detach_run(
        low_cur=lambda t: 200 if t < 6 else 100, events=lambda t: int(10 * max(0, t - 5))))
    assert any("after the detach at 12.0 s" in f for f in on)
    assert any("did not grow again" in f for f in on)
    # no summary line from the sample
    assert "no detach summary" in th.mechanism_failures(detach_run(nr=None))[0]
    assert th.mechanism_failures(th.Run("policy_detach", 0, {}, error="boom")) == ["boom"]


def idle_run(scanned: int = 1500, triggers: Sequence[list[float | None]] = (), nr: int = 0,
             events: int = 0, reached: float | None = 3.0) -> th.Run:
    samples = [sample(i / 10, scanned * i // 199, events * i // 199) for i in range(200)]
    return th.Run("idle_policy", 0, {}, samples=samples, triggers=list(triggers),
                  nr_triggers=nr, low_high_events=events,
                  reached={"high_scanned_s": reached})


def test_mechanism_idle() -> None:
    assert th.mechanism_failures(idle_run()) == []
    # a trigger that counts anyone's scans of high's pages fires here
    f = th.mechanism_failures(idle_run(triggers=[[6.0, 9.0]], nr=1, events=40))
    assert "triggered 1 time(s) while high was idle" in f[0] and "40 memory.high" in f[1]
    # no reclaim reached high: the run cannot tell
    assert "shows nothing" in th.mechanism_failures(idle_run(scanned=0, reached=None))[0]
    assert "shows nothing" in th.mechanism_failures(idle_run(reached=None))[0]


def test_mechanism_detach_low_dips_before_it_grows_again() -> None:
    # seen in a real run: global reclaim went on taking low's pages for 3 s
    # after the detach (high still faulting its pages back in), then low grew
    def cur(t: float) -> int:
        return 200 if t < 8 else 140 if t < 12.5 else 83 if t < 15 else 141
    assert th.mechanism_failures(detach_run(low_cur=cur)) == []
    # the samples after the guest stopped the stressors (at 19 s) show the
    # kill, not the policy
    killed = detach_run(low_cur=lambda t: 0 if t > 19 else cur(t))
    assert "did not grow again" in " ".join(th.mechanism_failures(killed))
    killed.stopped_s = 19.0
    assert th.mechanism_failures(killed) == []
