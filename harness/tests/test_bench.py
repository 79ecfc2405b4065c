"""harness.bench: the statistics and the report, on synthetic runs."""
import json
import random

from harness import bench as hb
from harness.bench import BenchParams


def runs_for(medians: dict[str, float], n: int = 10, noise: float = 0.01, seed: int = 3):
    rng = random.Random(seed)
    out = []
    for w in hb.WORKLOADS:
        for v, m in medians.items():
            for i in range(n):
                out.append({"workload": w, "variant": v, "kernel": "unpatched" if v ==
                            "unpatched" else "patched", "boot": i % 2, "order": i, "rep": i,
                            "ns_per_page": m * (1 + rng.uniform(-noise, noise)),
                            "pages": 1000, "high_events": 0})
    return out


def test_bootstrap_ratio_of_equal_samples_contains_one():
    xs = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.0]
    pt, lo, hi = hb.bootstrap_ratio(xs, list(reversed(xs)))
    assert pt == 1.0 and lo <= 1.0 <= hi and hi - lo < 0.02


def test_bootstrap_ratio_sees_a_ten_percent_cost():
    base = [100.0 + i % 3 for i in range(10)]
    slow = [110.0 + i % 3 for i in range(10)]
    pt, lo, hi = hb.bootstrap_ratio(slow, base)
    assert 1.08 < lo <= pt <= hi < 1.12


def test_bootstrap_diff():
    pt, lo, hi = hb.bootstrap_diff([12.0] * 5, [10.0] * 5)
    assert (pt, lo, hi) == (2.0, 2.0, 2.0)


def test_summarize_ratios_and_added_cost():
    runs = runs_for({"unpatched": 1000, "nothing": 1000, "unrelated": 1000,
                     "zero": 1000, "active": 1100})
    rows = {(r["workload"], r["variant"]): r for r in hb.summarize(runs)}
    assert "ratio" not in rows[("fault", "unpatched")]
    for v in ("nothing", "unrelated", "zero"):
        r = rows[("fault", v)]
        assert r["runs"] == 10 and r["ci_contains_1"], r
    act = rows[("over_high", "active")]
    assert not act["ci_contains_1"] and act["ratio"] > 1.05
    assert 80 < act["added_ns_per_page"] < 120
    assert act["added_ns_per_batch"] == round(64 * act["added_ns_per_page"])
    assert act["boots"] == [0, 1]


def test_table_plot_and_json(tmp_path):
    runs = runs_for({v: 1000 for v in hb.VARIANTS}, n=4)
    summary = hb.summarize(runs)
    rows = hb.table_rows(summary)
    assert len(rows) == len(hb.WORKLOADS) * len(hb.VARIANTS)
    assert rows[0][4] == "1 (baseline)"
    png = hb.plot(runs, summary, tmp_path / "b.png", "t")
    assert png.stat().st_size > 1000
    data = hb.to_json(BenchParams(), runs, summary, {"config": hb.NODEBUG})
    assert json.loads(json.dumps(data))["config"] == hb.NODEBUG
    assert len(data["runs"]) == len(runs)


def test_params():
    p = BenchParams(boots=2, reps=5)
    assert p.guest_args("patched", 1)[:2] == ["--kernel", "patched"]
    assert "--seed" in p.guest_args("patched", 1)
    try:
        BenchParams(reps=0).validate()
    except Exception as e:
        assert "--reps" in str(e)
    else:
        raise AssertionError("reps=0 accepted")


def test_parse_runs(tmp_path):
    f = tmp_path / "runs.jsonl"
    f.write_text(json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}) + "\n")
    assert hb.parse_runs([f, tmp_path / "missing.jsonl"]) == [{"a": 1}, {"a": 2}]
