"""harness.studies.experiment: planning, metrics, statistics and verdicts, on
synthetic runs whose answers are known."""
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.studies import experiment as ex
from harness.studies import experiment_report as exr
from harness.studies import experiment_stats as st

T0 = 1000.0


def progress(rate_of: Callable[[float], float], a: float, b: float,
             step: float = 0.01) -> list[list[int]]:
    """wsload-style [ns, cumulative pages] samples for a rate function."""
    out, n, t = [], 0.0, a
    while t <= b + 1e-9:
        out.append([int(t * 1e9), int(n)])
        n += rate_of(t) * step
        t += step
    return out


def s2_run(arm: str = "none", rep: int = 0, *, high_gain: float = 1.0,
           release_after: float | None = None, onset_after: float | None = None,
           low_idle: float = 100_000, boot: int = 0) -> dict[str, Any]:
    """An s2 run: populate 2 s, active1 10 s, idle 10 s, active2 10 s.
    The lows run at 100k pages/s except while throttled: from onset_after
    s into active1/active2 until release_after s into idle."""
    ph = [["populate", T0, T0 + 2], ["active1", T0 + 2, T0 + 12], ["idle", T0 + 12, T0 + 22],
          ["active2", T0 + 22, T0 + 32]]

    def low(t: float) -> float:
        if onset_after is not None:
            if T0 + 2 + onset_after <= t < T0 + 12:
                return 1000
            if T0 + 22 + onset_after <= t:
                return 1000
            if T0 + 12 <= t < T0 + 12 + (release_after if release_after is not None else 99):
                return 1000
        if T0 + 12 <= t < T0 + 22:
            return low_idle
        return 100_000

    def high(t: float) -> float:
        return 0 if T0 + 12 <= t < T0 + 22 else 50_000 * high_gain

    passes = [[int((T0 + 2 + 0.1 * i) * 1e9), int(2e6 if i % 50 else 40e6)] for i in range(300)]
    samples = [{"t": T0 + 0.1 * i, "high": {"current": 100 << 20, "pressure": {
        "some": int(i * 0.1 * 0.2e6), "full": int(i * 0.1 * 0.1e6)}},
        "lows": {"current": 50 << 20, "pressure": {}},
        "low1": {"current": 50 << 20, "pressure": {}}} for i in range(321)]
    return {"scenario": "s2", "arm": arm, "rep": rep, "boot": boot, "t0": T0, "phases": ph,
            "params": {}, "samples": samples,
            "tasks": {"high": {"samples": progress(high, T0, T0 + 32.5)},
                      "probe": {"passes": passes},
                      "low1": {"samples": progress(low, T0, T0 + 32.5)}}}


def test_cells_spread_repeats_over_boots_and_shuffle() -> None:
    p = ex.Params(scenarios=["s1", "s2"], arms=["none", "sample"], repeats=5, boots=2)
    b0, b1 = p.cells(0), p.cells(1)
    assert len(b0) == 2 * 2 * 3 and len(b1) == 2 * 2 * 2
    reps = sorted({c["rep"] for c in b0}) + sorted({c["rep"] for c in b1})
    assert reps == [0, 1, 2, 3, 4]
    assert b0 != sorted(b0, key=lambda c: (c["scenario"], c["arm"], c["rep"]))  # shuffled
    assert p.cells(0) == b0  # the same seed, the same order
    s3 = next(c for c in ex.Params(scenarios=["s3"]).cells(0))
    assert s3["params"]["high_mb"] == 150 and s3["params"]["grow_mb"] == 350
    s4 = next(c for c in ex.Params(scenarios=["s4"]).cells(0))
    assert s4["params"]["low_mb"] == [100, 150, 200] and "grow_mb" not in s4["params"]
    json.dumps(b0)


def test_params_refuse_unknown_arms_and_scenarios() -> None:
    for bad in (dict(scenarios=["s9"]), dict(arms=["mlow"]), dict(arms=["frobnicate"]),
                dict(arms=["agent:3"]), dict(repeats=0)):
        with pytest.raises(HarnessError):
            ex.Params(**bad).validate()
    ex.Params(arms=["mlow:150M", "mhigh:0", "detach"]).validate()


def test_swap_is_disk_or_zram_and_a_sitting_parameter() -> None:
    ex.Params(swap="zram").validate()
    ex.Params(swap="none").validate()  # no swap at all: anon memory cannot be reclaimed
    with pytest.raises(HarnessError, match="disk .*, zram .* or none"):
        ex.Params(swap="nvme").validate()
    p = ex.Params(scenarios=["s3"], swap="zram")
    ex.set_params(p, ["swap=disk"])
    assert p.swap == "disk"
    # the same for every run of a sitting: not a cell parameter
    assert "swap" not in p.cells(0)[0]["params"]


def test_zram_swap_in_the_guest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.guest import disk
    calls: list[list[str]] = []
    sysfs = tmp_path / "zram0"
    sysfs.mkdir()
    (sysfs / "disksize").write_text("0")
    real = Path

    def fake_path(*a: str) -> Path:
        return sysfs if a == ("/sys/block", "zram0") else real(*a)

    monkeypatch.setattr(disk, "Path", fake_path)
    def fake_run(argv: list[str], **kw: Any) -> object:
        calls.append(argv)
        return type("R", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(subprocess, "run", fake_run)  # disk.subprocess: this module
    assert disk.zram_on(512) == ""
    assert (sysfs / "disksize").read_text() == "512M"
    assert calls == [["mkswap", "/dev/zram0"], ["swapon", "/dev/zram0"]]
    monkeypatch.setattr(disk, "Path", lambda *a: tmp_path / "none")
    assert "CONFIG_ZRAM" in disk.zram_on(512)


def test_phase_throughput_pressure_and_probe() -> None:
    m = ex.run_metrics(s2_run())
    a1 = m["phases"]["active1"]
    assert a1["high"] == pytest.approx(50_000, rel=0.01)
    assert a1["low"] == pytest.approx(100_000, rel=0.01)
    assert m["phases"]["idle"]["high"] == pytest.approx(0, abs=100)  # one 10 ms edge
    assert a1["high_some"] == pytest.approx(0.2, rel=0.05)
    assert a1["high_full"] == pytest.approx(0.1, rel=0.05)
    # one pass in 50 is 40 ms, the rest 2 ms: p99 of a phase's 100 passes is 40
    assert a1["probe_p99_ms"] == pytest.approx(40)


def test_onset_and_release_resolved_to_the_bin() -> None:
    m = ex.run_metrics(s2_run("sample", onset_after=0.3, release_after=1.2))
    assert m["onset_s"] == pytest.approx(0.3, abs=ex.STEP_S + 0.001)
    assert m["release_s"] == pytest.approx(1.2, abs=ex.STEP_S + 0.001)


def test_a_policy_that_never_releases_has_no_release_time() -> None:
    # the lows throttled throughout the idle phase: measured against the
    # free rate of the no-policy runs, not against their own idle phase
    runs = [s2_run("none", i) for i in range(3)] + [s2_run("always", 0, onset_after=0.0,
                                                           release_after=99)]
    ms = ex.all_metrics(runs)
    assert ms[-1]["release_s"] is None
    assert ms[0]["onset_s"] is None  # no policy: the lows are never throttled


def test_verdicts_tell_a_helping_policy_from_the_controls() -> None:
    runs = [s2_run("none", i) for i in range(5)]
    runs += [s2_run("sample", i, high_gain=3.0, onset_after=0.2, release_after=1.0)
             for i in range(4)]
    runs += [s2_run("sample", 4, high_gain=1.0)]  # one miss in five
    runs += [s2_run("always", i, high_gain=3.0, onset_after=0.0, release_after=99)
             for i in range(5)]
    runs += [s2_run("noop", i) for i in range(5)]
    p = ex.Params(scenarios=["s2"], arms=["none", "sample", "always", "noop"])
    v = {(x["arm"], x["rule"]): x for x in st.verdicts(runs, ex.all_metrics(runs), p)}
    assert v[("sample", "gain")]["good"] == 4 and v[("sample", "gain")]["pass"]
    assert v[("sample", "conserve")]["pass"]
    assert v[("always", "gain")]["pass"] and not v[("always", "conserve")]["pass"]
    assert not v[("noop", "gain")]["pass"] and v[("noop", "conserve")]["pass"]
    # the experiment's verdict: the sample passes, the controls fail their rule
    assert st.judge(list(v.values())) == []


def test_judge_names_a_failing_policy_and_a_control_that_passes() -> None:
    def rule(arm: str, name: str, ok: bool) -> dict[str, Any]:
        return {"scenario": "s2", "arm": arm, "rule": name, "good": 9 if ok else 1,
                "runs": 10, "pass": ok}
    assert st.judge([rule("sample", "gain", True), rule("noop", "gain", False),
                     rule("always", "gain", True), rule("always", "conserve", False),
                     rule("mlow:150M", "conserve", False), rule("detach", "gain", False),
                     rule("detach", "recover", True)]) == []
    bad = st.judge([rule("sample:16384", "conserve", False), rule("noop", "gain", True),
                    rule("always", "conserve", True), rule("detach", "recover", False),
                    rule("reclaim", "gain", False)])
    assert st.judged([rule("mlow:150M", "conserve", False), rule("detach", "gain", False)]) == 0
    assert st.judged([rule("sample", "gain", True), rule("noop", "conserve", True)]) == 1
    assert bad == ["s2 sample:16384 conserve 1/10 fails",
                   "s2 noop gain 9/10 passes: the rule does not tell it from a policy",
                   "s2 always conserve 9/10 passes: the rule does not tell it from a policy",
                   "s2 detach recover 1/10 fails", "s2 reclaim gain 1/10 fails"]


def test_summary_table_and_plots(tmp_path: Path) -> None:
    runs = [s2_run("none", i) for i in range(3)] + [s2_run("sample", i, high_gain=2.5,
                                                           onset_after=0.2, release_after=1)
                                                    for i in range(3)]
    runs.append({"scenario": "s2", "arm": "sample", "rep": 3, "error": "high did not populate"})
    p = ex.Params(scenarios=["s2"], arms=["none", "sample"])
    ms = ex.all_metrics(runs)
    summary = st.summarize(runs, ms, p)
    row = next(r for r in summary if r["arm"] == "sample")
    assert row["runs"] == 4 and row["phases"]["active2"]["high"]["n"] == 3
    assert list(row["phases"]) == ["populate", "active1", "idle", "active2"]
    assert row["onset_s"]["missing"] == 1
    text = exr.table_rows(summary)
    assert text[0][:4] == ["s2", "none", 3, "populate"]
    rr = exr.run_rows(runs, ms)
    assert any("did not populate" in r[-1] for r in rr)
    assert exr.plot(runs, ms, p, tmp_path / "a.png", "t").stat().st_size > 1000
    assert exr.plot_timelines(runs, p, tmp_path / "b.png", "t").stat().st_size > 1000


def test_binned_interpolates_and_skips_gaps() -> None:
    s = progress(lambda t: 1000.0, 0.0, 1.0)
    b = ex.binned(s, 0.0, 1.0)
    assert len(b) == 20 and all(v == pytest.approx(1000, rel=0.05) for _, v in b)
    assert ex.binned(s, 2.0, 3.0) == []


def test_set_params() -> None:
    p = ex.Params()
    ex.set_params(p, ["active_s=6", "over_high=1024", "low_mb_s4=50,60", "agent_trigger=some 1 2"])
    assert (p.active_s, p.over_high, p.low_mb_s4, p.agent_trigger) == (6.0, 1024, [50, 60],
                                                                       "some 1 2")
    for bad in (["nope=1"], ["active_s"], ["repeats=x"], ["arms=none"]):
        with pytest.raises(HarnessError):
            ex.set_params(ex.Params(), bad)


def test_detach_rule_wants_events_before_none_after_and_regrowth() -> None:
    none = [s2_run("none", i) for i in range(3)]

    def detached(rep: int, events_after: bool, regrow: bool = True) -> dict[str, Any]:
        r = s2_run("detach", rep, onset_after=0.0, release_after=99)
        # detach in the middle of active1 (T0 + 7)
        r["marks"] = [[T0 + 7.0, "detach"], [T0 + 7.1, "detached"]]
        for i, x in enumerate(r["samples"]):
            t = x["t"]
            x["lows"]["high_events"] = min(i, 70) + (i - 70 if events_after and i > 90 else 0)
            x["lows"]["current"] = (10 + (t - T0 - 7.1) * 5 * regrow if t > T0 + 7.1
                                    else 100) * 2**20
        return r
    p = ex.Params(scenarios=["s2"], arms=["none", "detach"])
    for runs, want in ((none + [detached(i, False) for i in range(3)], True),
                       (none + [detached(i, True) for i in range(3)], False),
                       (none + [detached(i, False, regrow=False) for i in range(3)], False)):
        ms = ex.all_metrics(runs)
        v = {(x["arm"], x["rule"]): x for x in st.verdicts(runs, ms, p)}
        assert v[("detach", "recover")]["pass"] is want, (v[("detach", "recover")], ms[-1])
    assert ms[-1]["lows_before_detach"] == pytest.approx(1000, rel=0.25)


def test_s3_onset_needs_the_lows_free_in_the_small_phase() -> None:
    def s3_run(arm: str, throttled_from: float) -> dict[str, Any]:
        ph = [["populate", T0, T0 + 2], ["small", T0 + 2, T0 + 12], ["large", T0 + 12, T0 + 22]]
        low = progress(lambda t: 1000 if t >= throttled_from else 100_000, T0, T0 + 22.5)
        high = progress(lambda t: 50_000, T0, T0 + 22.5)
        return {"scenario": "s3", "arm": arm, "rep": 0, "t0": T0, "phases": ph, "samples": [],
                "tasks": {"high": {"samples": high}, "probe": {"passes": []},
                          "low1": {"samples": low}}}
    runs = [s3_run("none", 99e9), s3_run("sample", T0 + 12.4), s3_run("always", T0)]
    ms = ex.all_metrics(runs)
    assert ms[0].get("onset_s") is None
    assert ms[1]["onset_s"] == pytest.approx(0.4, abs=ex.STEP_S + 0.001)
    assert ms[2]["onset_s"] is None  # throttled all along: no onset


def test_refault_time_is_until_high_has_its_memory_back() -> None:
    r = s2_run("sample")
    for x in r["samples"]:  # high: 100 MiB; 40 MiB in idle; back in 1.5 s of active2
        t = x["t"] - T0
        x["high"]["current"] = (40 << 20 if 12 <= t < 23.5 else 100 << 20)
    assert ex.run_metrics(r)["refault_s"] == pytest.approx(1.5, abs=0.11)
    for x in r["samples"]:  # never back within active2
        if x["t"] - T0 >= 12:
            x["high"]["current"] = 40 << 20
    assert ex.run_metrics(r)["refault_s"] is None
    assert ex.run_metrics(s2_run("mlow:100M"))["refault_s"] == 0.0  # never lost it


def test_targets_compare_at_equal_terms() -> None:
    """The sample against the best static setting that conserves as well
    (none: high 50k) and the best that protects high as well (mlow: lows
    1k in idle); onset and release against the agent's."""
    runs = [s2_run("none", i) for i in range(3)]
    runs += [s2_run("mlow:100M", i, high_gain=4.0, onset_after=0.0, release_after=99)
             for i in range(3)]
    runs += [s2_run("sample", i, high_gain=3.0, onset_after=0.05, release_after=0.5)
             for i in range(3)]
    runs += [s2_run("agent", i, high_gain=3.0, onset_after=0.8, release_after=6.0)
             for i in range(3)]
    p = ex.Params(scenarios=["s2"], arms=["none", "mlow:100M", "sample", "agent"])
    t = {x["target"]: x for x in st.targets(runs, ex.all_metrics(runs), p)}
    eq_cons = t["high at equal conservation"]
    assert eq_cons["value"] == pytest.approx(3.0, rel=0.02) and eq_cons["pass"]
    assert "against none" in eq_cons["detail"]
    # at equal protection: no static setting protects high as well (mlow's
    # high is 4x, the sample's 3x): mlow's lows are the ones to beat
    eq_prot = t["lows at equal protection"]
    assert "against mlow:100M" in eq_prot["detail"] and eq_prot["pass"]
    assert t["onset"]["pass"] and t["release"]["pass"]
    assert t["onset vs agent"]["value"] == pytest.approx(16, rel=0.3)
    assert t["release vs agent"]["pass"]
    # the agent is not a BPF arm: no targets of its own
    assert {x["arm"] for x in st.targets(runs, ex.all_metrics(runs), p)} == {"sample"}


def test_sample_arm_takes_its_own_answer() -> None:
    ex.Params(arms=["sample:16384"]).validate()
    for bad in ("sample:x", "sample:", "none:1"):
        with pytest.raises(HarnessError):
            ex.Params(arms=[bad]).validate()


def test_reclaim_and_alone_arms() -> None:
    ex.Params(arms=["reclaim", "reclaim:32", "alone"]).validate()
    for bad in ("reclaim:x", "alone:1"):
        with pytest.raises(HarnessError):
            ex.Params(arms=[bad]).validate()
    # s1: the lows against their alone throughput; the BPF arms get targets
    runs = []
    for arm, gain in (("alone", 0.0), ("oracle", 3.0), ("reclaim", 2.8), ("none", 1.0)):
        for i in range(3):
            r = s2_run(arm, i, high_gain=gain)
            r["scenario"] = "s1"
            r["phases"] = [["populate", T0, T0 + 2], ["contended", T0 + 2, T0 + 32]]
            runs.append(r)
    p = ex.Params(scenarios=["s1"], arms=["none", "alone", "oracle", "reclaim"])
    t = {x["target"]: x for x in st.targets(runs, ex.all_metrics(runs), p)}
    assert t["high / oracle's"]["value"] == pytest.approx(2.8 / 3, rel=0.02)
    assert t["high / oracle's"]["pass"]
    assert t["lows / alone"]["pass"]
    vs = st.verdicts(runs, ex.all_metrics(runs), p)
    assert "alone" not in {x["arm"] for x in vs}
    # high's 1 MB working set alone sets no floor for what "starved" is
    for r in runs:
        if r["arm"] == "alone":
            r["tasks"]["high"]["samples"] = progress(lambda t: 5e6, T0, T0 + 32.5)
    v = {(x["arm"], x["rule"]): x for x in st.verdicts(runs, ex.all_metrics(runs), p)}
    assert v[("reclaim", "gain")]["good"] == 3 and v[("oracle", "gain")]["pass"]


def test_a_starved_side_is_not_compared_at_equal_terms() -> None:
    """A policy that starves the lows in idle (as memory.low does) is
    compared with the best static setting, and a 2x gain at thrashing
    level is no gain."""
    runs = [s2_run("none", i, high_gain=0.0002) for i in range(3)]  # high thrashes: 10/s
    runs += [s2_run("mlow:100M", i, high_gain=1.0, low_idle=50) for i in range(3)]
    runs += [s2_run("sample", i, high_gain=0.0006, low_idle=40) for i in range(3)]
    p = ex.Params(scenarios=["s2"], arms=["none", "mlow:100M", "sample"])
    ms = ex.all_metrics(runs)
    t = {x["target"]: x for x in st.targets(runs, ms, p)}
    assert "against mlow:100M" in t["high at equal conservation"]["detail"]
    assert not t["high at equal conservation"]["pass"]
    v = {(x["arm"], x["rule"]): x for x in st.verdicts(runs, ms, p)}
    assert v[("sample", "gain")]["good"] == 0  # 3x of thrashing is not a gain
    assert v[("mlow:100M", "gain")]["good"] == 3


def test_compact_keeps_the_metrics_and_every_second() -> None:
    runs = [s2_run("none", 0), s2_run("sample", 0)]
    data: dict[str, Any] = {"params": {}, "metrics": ex.all_metrics(runs), "runs": runs}
    small = exr.compact(data)
    assert small["metrics"][0]["phases"]["active1"]["high"] == pytest.approx(
        data["metrics"][0]["phases"]["active1"]["high"], abs=0.001)
    r = small["runs"][1]
    assert "tasks" not in r and r["arm"] == "sample" and r["phases"] == runs[1]["phases"]
    assert len(r["samples"]) == 33  # 32.1 s of 100 ms samples, one a second
    assert r["samples"][0][:3] == [T0, 100, 50] and small["sample_columns"][1] == "high MiB"
    assert len(json.dumps(small)) < len(json.dumps(data)) / 5


def test_policy_switching_times_from_the_sample_and_the_agent() -> None:
    r = s2_run("sample")
    r["helper"] = {"lines": [[T0 + 3, "memcg: attached to ..."],
                             [T0 + 3.1, "memcg: 1003.050: triggered (1 time(s)); so far ..."],
                             [T0 + 12.6, "memcg: 1012.500: released"],
                             [T0 + 22.2, "memcg: 1022.040: triggered (2 time(s)); so far ..."]]}
    m = ex.run_metrics(r)
    assert m["policy_onset_s"] == pytest.approx(0.04) and m["policy_release_s"] == 0.5
    a = s2_run("agent")
    a["helper"] = {"lines": [[0, '{"t": 1010.0, "action": "throttle"}'],
                             [0, '{"t": 1025.0, "action": "release"}'], [0, "not json"]]}
    m = ex.run_metrics(a)
    # on when active2 began: onset 0; never released in idle: None
    assert m["policy_onset_s"] == 0.0 and m["policy_release_s"] is None
    assert "policy_onset_s" not in ex.run_metrics(s2_run("none"))


def test_one_boot_at_a_time_runs_that_boots_share() -> None:
    p = ex.Params(scenarios=["s2"], arms=["none", "oracle:evict"], repeats=5, boots=2,
                  only_boot=1)
    p.validate()
    assert p.boots_to_run() == [1] and p.cells(1) == ex.Params(
        scenarios=["s2"], arms=["none", "oracle:evict"], repeats=5, boots=2).cells(1)
    assert p.estimate_s() == pytest.approx(2 * 2 * p.run_estimate_s("s2"))
    assert "only_boot" not in p.cells(1)[0]["params"]
    for bad in (dict(only_boot=2), dict(arms=["oracle:x"])):
        with pytest.raises(HarnessError):
            ex.Params(**bad).validate()


def test_a_phase_ending_just_after_the_last_sample_has_a_rate() -> None:
    s = progress(lambda t: 1000.0, 0.0, 1.0)  # last sample at 1.00 s
    assert ex._rate(s, 0.5, 1.015) == pytest.approx(1000, rel=0.05)
    assert ex._rate(s, 0.5, 1.1) is None  # not a task that ended early


def test_reanalyze_merges_kept_summaries_of_more_arms(tmp_path: Path) -> None:
    """selftests/results/ keeps summary.json (compact); --reanalyze of two
    of them, run apart with other arms, judges the union as one run would."""
    from dataclasses import asdict

    from harness.options import Options
    from harness.pipeline import Pipeline
    from harness.studies.run import reanalyze_experiment

    def kept(path: Path, arms: list[str], runs: list[dict[str, Any]], **params: Any) -> Path:
        p = ex.Params(scenarios=["s2"], arms=arms, repeats=4, **params)
        data = {"params": asdict(p), "env": {"accel": "tcg"}, "runs": runs,
                "metrics": ex.all_metrics(runs)}
        path.write_text(json.dumps(exr.compact(data)))
        return path

    controls = [s2_run(a, i, boot=i % 2) for a in ("none", "noop") for i in range(4)]
    sample = [s2_run("sample", i, boot=i % 2, high_gain=3.0, onset_after=0.2,
                     release_after=1.0) for i in range(4)]
    a = kept(tmp_path / "a.json", ["none", "noop"], controls)
    b = kept(tmp_path / "b.json", ["sample", "none"], sample)
    pl = Pipeline(Options(out=tmp_path / "o"))
    r = reanalyze_experiment(pl, [a, b])
    v = {(x["arm"], x["rule"]): x for x in r.verdicts}
    assert v[("sample", "gain")]["good"] == 4 and not v[("noop", "gain")]["pass"]
    assert pl.records[-1].status == "PASS" and "12 runs of 12" in pl.records[-1].summary
    data = json.loads((tmp_path / "o" / "experiment" / "results.json").read_text())
    assert data["params"]["arms"] == ["none", "noop", "sample"]
    ab = kept(tmp_path / "ab.json", ["noop", "sample:1024"], [s2_run("sample:1024", 0)])
    merged = reanalyze_experiment(Pipeline(Options(out=tmp_path / "o4")), [b, ab])
    assert isinstance(merged.summary, list)  # the experiment's: a row per cell
    assert [x["arm"] for x in merged.summary] == ["sample", "sample:1024", "none", "noop"]
    assert data["env"]["reanalyzed_from"] == [str(a), str(b)]
    assert data["env"]["hosts"] == [None, None]  # summaries of before the host was kept
    assert sorted({x["boot"] for x in data["runs"] if x["arm"] == "sample"}) == [2, 3]
    # boots that collide (both sources have 0 and 1) are numbered on, and each
    # run keeps the sitting it came from; the table says it mixes sittings
    sits = {x["sitting"] for x in data["runs"]}
    assert sits == {"a.json", "b.json"}
    assert {x["sitting"] for x in data["runs"] if x["boot"] in (2, 3)} == {"b.json"}
    assert data["sittings"] == {"a.json": [0, 1], "b.json": [2, 3]}
    table = (tmp_path / "o" / "experiment" / "table.txt").read_text()
    assert "these runs come from 2 sittings; compare arms only within one" in table
    assert "sitting 2 (b.json): sample\n" in table
    # the cgroup samples survive the round trip (one a second)
    assert len(data["runs"][0]["samples"]) == 33
    # what ran with other parameters does not merge, and says which
    c = kept(tmp_path / "c.json", ["sample"], sample, idle_s=30.0)
    with pytest.raises(HarnessError, match="idle_s 30.0, not 10.0"):
        reanalyze_experiment(Pipeline(Options(out=tmp_path / "o2")), [a, c])
    (tmp_path / "d.json").write_text('{"runs": []}')
    with pytest.raises(HarnessError, match="not an experiment's summary"):
        reanalyze_experiment(Pipeline(Options(out=tmp_path / "o3")), [tmp_path / "d.json"])


def test_the_machine_is_recorded() -> None:
    import os

    from harness import host
    m = host.machine()
    assert m["cpus"] == os.cpu_count() and m["date"].startswith("20") and m["kernel"]


def test_sigagent_arm_is_the_samples_control() -> None:
    """sigagent[:nb] is accepted; a BPF arm gets targets against it at equal
    terms, and its JSON log gives its switching times, as the agent's."""
    ex.Params(arms=["sigagent", "sigagent:nb"]).validate()
    for bad in ("sigagent:x", "sigagent:", "sigagent:1"):
        with pytest.raises(HarnessError):
            ex.Params(arms=[bad]).validate()
    runs = [s2_run("none", i) for i in range(3)]
    runs += [s2_run("sample", i, high_gain=3.0, onset_after=0.05, release_after=0.5)
             for i in range(3)]
    runs += [s2_run("sigagent", i, high_gain=2.0, onset_after=0.1, release_after=0.6)
             for i in range(3)]
    p = ex.Params(scenarios=["s2"], arms=["none", "sample", "sigagent"])
    tg = st.targets(runs, ex.all_metrics(runs), p)
    t = {x["target"]: x for x in tg}
    vs = t["high vs sigagent at equal conservation"]
    assert vs["value"] == pytest.approx(1.5, rel=0.05) and "against sigagent" in vs["detail"]
    assert {x["arm"] for x in tg} == {"sample"}
    # without a sigagent arm, no such rows
    p2 = ex.Params(scenarios=["s2"], arms=["none", "sample"])
    assert not [x for x in st.targets(runs, ex.all_metrics(runs), p2) if "sigagent" in
                x["target"]]
    rec = {"helper": {"lines": [
        [1.0, '{"t": 1.0, "action": "armed", "pages": 262144}'],
        [5.2, '{"t": 5.1, "action": "throttle", "write_start": 5.15, "write_end": 5.9}'],
        [5.3, '{"t": 5.25, "action": "event"}'],
        [8.0, '{"t": 7.9, "action": "release", "why": "period over"}']]}}
    assert ex.policy_switches(rec) == [(5.1, True), (7.9, False)]


def test_intervals_resample_boots_then_runs() -> None:
    """Two boots that disagree: the two-stage interval covers both boots'
    medians, the runs-as-independent one is narrower (issue 28, item 5)."""
    xs = [100.0 + i for i in range(10)] + [300.0 + i for i in range(10)]
    boots = [0] * 10 + [1] * 10
    med, lo, hi = st.median_ci(xs, boots=boots)
    _, lo1, hi1 = st.median_ci(xs)
    assert lo <= 105 and hi >= 300  # either boot alone is a possible world
    assert hi - lo > hi1 - lo1
    assert st.median_ci(xs[:10], boots=boots[:10]) == st.median_ci(xs[:10])  # one boot


def test_summary_has_boot_medians_and_sittings() -> None:
    runs: list[dict[str, Any]] = [
        {"scenario": "s1", "arm": "none", "boot": b, "rep": i, "sitting": "2026-12-07"}
        for b in (0, 1) for i in range(3)]
    metrics = [{"phases": {"contended": {"high": float(100 * (b + 1) + i)}}}
               for b in (0, 1) for i in range(3)]
    params = ex.Params(scenarios=["s1"], arms=["none"])
    row = st.summarize(runs, metrics, params)[0]
    assert row["phases"]["contended"]["high"]["boots"] == {"0": 101.0, "1": 201.0}
    assert row["sittings"] == ["2026-12-07"]
    assert st.sittings(runs) == {"2026-12-07": [0, 1]}


def test_a_table_of_two_sittings_says_so() -> None:
    summary = [{"arm": "a", "sittings": ["x"]}, {"arm": "b", "sittings": ["x", "y"]}]
    note = exr.sittings_note(summary)
    assert "2 sittings" in note and "sitting 2 (y): b" in note
    assert exr.sittings_note([{"arm": "a", "sittings": ["x"]}]) == ""


def test_ratio_ci_is_two_stage() -> None:
    a = [(100.0 + i, 0) for i in range(5)] + [(300.0 + i, 1) for i in range(5)]
    b = [(100.0 + i, 0) for i in range(5)] + [(102.0 + i, 1) for i in range(5)]
    pt, lo, hi = st.ratio_ci(a, b)
    assert lo < 1.2 and hi > 2.5  # a's boots disagree: the ratio may be ~1 or ~3
    one = st.ratio_ci([(x, 0) for x, _ in a], [(x, 0) for x, _ in b])
    assert one[2] - one[1] < hi - lo
