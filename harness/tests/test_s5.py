"""S5, who pays memory.high (issue 26): the guest's pod and service, the
host's metrics, summary, targets, table and plot."""

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.studies import experiment as ex
from harness.studies import experiment_report as exr
from harness.studies import experiment_stats as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guest"))  # as the guest runs it
from harness.guest import experiment as ge  # noqa: E402

T0 = 1000.0


def progress(rate: float, a: float, b: float, step: float = 0.01) -> list[list[int]]:
    """wsload-style [ns, cumulative pages] samples at a constant rate."""
    n = int((b - a) / step + 1e-6) + 1
    return [[int((a + i * step) * 1e9), int(rate * i * step)] for i in range(n)]


def s5_run(arm: str = "none", rep: int = 0, *, lat: list[float] | None = None,
           low_rate: float = 10_000, killed_at: float | None = None, boot: int = 0,
           pod_peak_mb: int = 300, over_mb: float = 40) -> dict[str, Any]:
    """An s5 run of 20 s: two lows at low_rate pages/s each (the second
    OOM-killed at killed_at s, if given), the pod at 160M + over_mb at its
    most, 10 memory.high events a second."""
    lat = lat if lat is not None else [1.0 + (i % 100) / 100 for i in range(400)]
    end = T0 + 20
    samples = [{"t": T0 + 0.1 * i,
                "pod": {"current": int((160 + over_mb * (i == 100)) * 2**20),
                        "high_events": i, "high_events_local": i // 2,
                        "pressure": {"some": int(i * 0.1 * 0.5e6),
                                     "full": int(i * 0.1 * 0.25e6)}},
                "high": {"current": 80 << 20, "pressure": {"some": int(i * 0.1 * 0.1e6)}},
                "lows": {"current": 200 << 20, "pressure": {}}} for i in range(201)]
    k2 = T0 + killed_at if killed_at is not None else end
    return {"scenario": "s5", "arm": arm, "rep": rep, "boot": boot, "t0": T0,
            "phases": [["contended", T0, end]],
            "params": {"pod_high": "160M", "pod_max": "320M"}, "samples": samples,
            "pod": {"peak": pod_peak_mb << 20,
                    "events": {"pod": {"high": 200, "oom_kill": 1 if killed_at else 0},
                               "lows": {"oom_kill": 1 if killed_at else 0},
                               "low2": {"oom_kill": 1 if killed_at else 0}}},
            "tasks": {"high": {"rc": 0, "lat_ms": lat, "late": 3, "unserved": 2,
                               "requests": len(lat)},
                      "low1": {"samples": progress(low_rate, T0, end)},
                      "low2": {"samples": progress(low_rate, T0, k2)}}}


def test_s5_metrics() -> None:
    lat = [float(i) for i in range(1, 1001)]  # 1 .. 1000 ms
    m = ex.run_metrics(s5_run(lat=lat, killed_at=10))
    c = m["phases"]["contended"]
    # reqload's rank: round(q * (n - 1))
    assert (c["svc_p50_ms"], c["svc_p99_ms"], c["svc_p999_ms"], c["svc_max_ms"]) == \
        (501.0, 990.0, 999.0, 1000.0)
    assert c["svc_requests"] == 1000 and c["svc_late"] == 3 and c["svc_unserved"] == 2
    # the killed low counts what it did (10 s of 20): 10k + 5k pages/s
    assert c["low"] == pytest.approx(15_000, rel=0.01)
    assert c["lows_oom_kills"] == 1  # the lows' parent counts its subtree's, once
    assert c["pod_peak_mb"] == 300 and c["pod_over_high_mb"] == pytest.approx(40)
    # its own events (memory.events.local), not its subtree's
    assert c["pod_high_events"] == 100
    assert c["pod_some"] == pytest.approx(0.5) and c["pod_full"] == pytest.approx(0.25)
    assert c["high_some"] == pytest.approx(0.1) and c["high"] is None
    # never above high: 0, not negative
    assert ex.run_metrics(s5_run(over_mb=-10))["phases"]["contended"]["pod_over_high_mb"] == 0


def test_a_failed_service_is_an_error() -> None:
    r = s5_run()
    r["tasks"]["high"] = {"rc": 1, "lines": [[T0, "ready"], [T0 + 1, "mmap: Cannot allocate "
                                                          "memory"]]}
    assert "the service failed: rc 1" in ex.run_metrics(r)["error"]
    assert "mmap" in ex.run_metrics(r)["error"]


def test_s5_params_are_s5s_alone() -> None:
    p = ex.Params(scenarios=["s1", "s5"], arms=["none", "mlow:100M+mhigh:90M"])
    p.validate()
    s5, s1 = p.cell_params("s5"), p.cell_params("s1")
    assert s5["low_mb"] == [150, 150, 150, 150] and s5["pod_high"] == "160M"
    assert s5["svc_req_kb"] == 4096 and s5["low_nice"] == 19
    # the other scenarios' records are what they were before s5
    assert not set(ex.S5_PARAMS) & set(s1) and s1["low_mb"] == 250
    with pytest.raises(HarnessError, match="only mlow:SIZE and mhigh:SIZE combine"):
        ex.Params(arms=["mlow:100M+agent"]).validate()
    with pytest.raises(HarnessError, match="only mlow"):
        ex.Params(arms=["mlow:+mhigh:90M"]).validate()


def test_s5_summary_targets_table_and_plot(tmp_path: Path) -> None:
    fast = [1.0] * 98 + [3.0] * 2  # p99: rank 98 of 100
    slow = [1.0] * 95 + [2000.0] * 5
    runs = [s5_run("none", i, lat=fast, boot=i % 2) for i in range(4)]
    runs += [s5_run("mhigh:90M", i, lat=slow, low_rate=2_000, boot=i % 2) for i in range(4)]
    runs += [s5_run("agent", i, lat=slow, boot=i % 2) for i in range(4)]
    runs += [s5_run("sample", i, lat=[0.2] * 100, low_rate=9_000, boot=i % 2)
             for i in range(4)]
    p = ex.Params(scenarios=["s5"], arms=["none", "mhigh:90M", "agent", "sample"])
    ms = ex.all_metrics(runs)
    summary = st.summarize(runs, ms, p)
    none = next(r for r in summary if r["arm"] == "none")["phases"]["contended"]
    assert none["svc_p99_ms"]["median"] == 3.0 and none["svc_p99_ms"]["n"] == 4
    t = {x["target"]: x for x in st.targets(runs, ms, p) if x["arm"] == "sample"}
    # the best static arrangement is none (p99 3 ms, not 2 s): 15x
    assert t["service p99 vs best static"]["value"] == pytest.approx(15)
    assert "against none" in t["service p99 vs best static"]["detail"]
    assert t["service p99 vs best static"]["pass"]
    assert t["lows vs best static"]["value"] == pytest.approx(0.9)
    assert not t["lows vs best static"]["pass"]
    assert t["service p99 vs agent"]["value"] == pytest.approx(10_000)
    assert t["pod above memory.high, most of any run (MiB)"]["value"] == pytest.approx(40)
    rows = exr.s5_table_rows(summary)
    assert [r[0] for r in rows] == p.arms and rows[1][3].startswith("2000.0 [")
    assert st.verdicts(runs, ms, p) == []  # s5 has no per-run rule yet
    assert exr.plot(runs, ms, p, tmp_path / "a.png", "t").stat().st_size > 1000
    assert exr.plot_timelines(runs, p, tmp_path / "b.png", "t").stat().st_size > 1000


@pytest.fixture()
def cgroot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The guest's cgroup paths under tmp_path; rmdir removes the files a
    real cgroup directory would not hold."""
    monkeypatch.setattr(ge, "CG", tmp_path)
    monkeypatch.setattr(ge, "POD", tmp_path / "pod")
    monkeypatch.setattr(os, "sync", lambda: None)
    real = ge.write
    monkeypatch.setattr(ge, "write", lambda p, v: None if str(p).startswith("/proc") else
                        real(p, v))
    rmdir = os.rmdir

    def rm(d: Path) -> None:  # a cgroup's files go with it
        for f in Path(d).iterdir():
            if f.is_file():
                f.unlink()
        rmdir(d)
    monkeypatch.setattr(os, "rmdir", rm)
    return tmp_path


def test_reset_puts_s5s_cgroups_in_the_pod_and_takes_it_away(cgroot: Path) -> None:
    cgs = ge.reset(2, {"memory.high": "160M", "memory.max": "320M"})
    pod = cgroot / "pod"
    assert ge.HIGH == pod / "high" and ge.LOWS == pod / "lows"
    assert cgs == {"high": pod / "high", "lows": pod / "lows", "low1": pod / "lows/low1",
                   "low2": pod / "lows/low2", "pod": pod}
    assert (pod / "memory.high").read_text() == "160M"
    assert (pod / "memory.max").read_text() == "320M"
    assert (pod / "cgroup.subtree_control").read_text() == "+memory"
    assert (pod / "high/cgroup.freeze").read_text() == "1"
    ge.arm_setup("mlow:100M+mhigh:90M", {}, cgroot)
    assert (pod / "high/memory.low").read_text() == "100M"
    assert (pod / "lows/memory.high").read_text() == "90M"
    cgs = ge.reset(1)
    assert not pod.exists() and ge.HIGH == cgroot / "high" and "pod" not in cgs


def test_the_service_runs_in_its_cgroup_and_is_read(tmp_path: Path) -> None:
    tools, cg = tmp_path / "tools dir", tmp_path / "a cg"
    tools.mkdir()
    cg.mkdir()
    (cg / "cgroup.procs").write_text("")
    out = {"requests": 2, "late": 0, "lat_ms": [1.5, 2.5], "p99_ms": 2.5}
    # a reqload: ready, then its arguments once it has the go
    (tools / "reqload").write_text(f"#!/bin/sh\necho ready >&2\nread go\necho \"$@\" >&2\n"
                                   f"echo '{json.dumps(out)}'\n")
    os.chmod(tools / "reqload", 0o755)
    p = {"svc_threads": 2, "svc_req_kb": 4096, "svc_ws_mb": 60, "svc_rate": 10.0, "run_s": 1.0}
    svc = ge.Service(tools, cg, tmp_path / "svc.json", p)
    assert svc.wait_ready(30)
    assert not svc.wait(0.3)  # no go yet
    svc.go()
    assert svc.wait(30)
    d = svc.finish()
    assert d["rc"] == 0 and d["lat_ms"] == [1.5, 2.5]
    assert [x for _, x in d["lines"]] == [
        "ready", "-t 2 -k 4096 -w 60 -r 10.0 -s 1.0 -g"]
    assert int((cg / "cgroup.procs").read_text()) > 0  # it put itself there
    # one that does not end is killed, and says so
    (tools / "reqload").write_text("#!/bin/sh\nexec sleep 600\n")
    svc = ge.Service(tools, cg, tmp_path / "svc2.json", p)
    assert not svc.wait_ready(0.3) and not svc.wait(0.3)
    assert svc.finish()["rc"] == "killed: still running at the run's end"


def test_a_low_runs_niced_in_its_cgroup(tmp_path: Path) -> None:
    """s5's lows: wsload under nice -n 19, in its cgroup; the other
    scenarios' tasks as before (nice 0)."""
    tools, cg = tmp_path / "tools dir", tmp_path / "a cg"
    tools.mkdir()
    cg.mkdir()
    (cg / "cgroup.procs").write_text("")
    (tools / "wsload").write_text('#!/bin/sh\necho "$(nice) $*"\n')
    os.chmod(tools / "wsload", 0o755)
    for nice in (19, 0):
        t = ge.Task(tools, cg, tmp_path / "o.json", "--mb", "150", nice=nice)
        assert t.proc.wait(timeout=30) == 0
        t.reader.join(timeout=10)
        base = os.nice(0)
        assert [x for _, x in t.lines] == [f"{min(19, base + nice)} --mb 150 --out "
                                           f"{tmp_path / 'o.json'}"]
        assert int((cg / "cgroup.procs").read_text()) > 0


def test_the_slack_is_the_kernels() -> None:
    """s5_slack_mb() is patch 15's slack: memory.high / 8, at least 16
    batches of 64 pages (4 MiB); the pod target is judged against it."""
    assert ex.s5_slack_mb("160M") == 20 and ex.s5_slack_mb("1G") == 128
    assert ex.s5_slack_mb("16M") == 4 and ex.s5_slack_mb("33554432") == 4
    runs = [s5_run("none", i, boot=i % 2) for i in range(2)]
    runs += [s5_run("whopays", i, over_mb=mb, boot=i % 2) for i, mb in enumerate((19.5, 20.5))]
    p = ex.Params(scenarios=["s5"], arms=["none", "whopays"])
    ms = ex.all_metrics(runs)
    t = {x["target"]: x for x in st.targets(runs, ms, p) if x["arm"] == "whopays"}
    pod = t["pod above memory.high, most of any run (MiB)"]
    assert pod["value"] == pytest.approx(20.5) and pod["goal"] == "<= 20 (slack)"
    assert pod["pass"] is False and pod["detail"] == "above the slack in 1 of 2 runs"
    runs[-1] = s5_run("whopays", 1, over_mb=19.9, boot=1)
    ms = ex.all_metrics(runs)
    t = {x["target"]: x for x in st.targets(runs, ms, p) if x["arm"] == "whopays"}
    assert t["pod above memory.high, most of any run (MiB)"]["pass"] is True


def test_whopays_is_an_s5_arm_alone_or_with_static_knobs(cgroot: Path) -> None:
    ex.Params(scenarios=["s5"], arms=["none", "whopays", "mlow:100M+whopays"]).validate()
    with pytest.raises(HarnessError, match="s5's alone"):
        ex.Params(scenarios=["s1", "s5"], arms=["whopays"]).validate()
    with pytest.raises(HarnessError, match="with one whopays"):
        ex.Params(scenarios=["s5"], arms=["whopays+whopays"]).validate()
    with pytest.raises(HarnessError, match="with one whopays"):
        ex.Params(scenarios=["s5"], arms=["whopays+agent"]).validate()
    with pytest.raises(HarnessError, match="unknown arm 'whopays:1'"):
        ex.Params(scenarios=["s5"], arms=["whopays:1"]).validate()
    # in the guest: the sample's --who-pays on the pod and the service
    ge.reset(1, {"memory.high": "160M", "memory.max": "320M"})
    tools = cgroot / "tools"
    tools.mkdir()
    (tools / "memcg").write_text('#!/bin/sh\necho "attached $*"\nexec sleep 60\n')
    os.chmod(tools / "memcg", 0o755)
    h = ge.arm_setup("mlow:100M+whopays", {}, tools)
    assert h is not None
    try:
        pod = cgroot / "pod"
        assert h.first.strip() == f"attached --who-pays {pod} {pod / 'high'}"
        assert (pod / "high/memory.low").read_text() == "100M"
    finally:
        h.stop()
    # a BPF arm for the targets, static only without the helper
    assert st.is_bpf_arm("mlow:100M+whopays") and not st.is_static_arm("mlow:100M+whopays")
    assert st.is_static_arm("mlow:100M+mhigh:90M") and not st.is_bpf_arm("mhigh:90M")
