"""harness.studies.bench: the statistics and the report, on synthetic runs."""
import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.studies import bench as hb
from harness.studies.bench import BenchParams


def runs_for(medians: dict[str, float], n: int = 10, noise: float = 0.01, seed: int = 3
             ) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for w in hb.WORKLOADS:
        for v, m in medians.items():
            for i in range(n):
                out.append({"workload": w, "variant": v, "kernel": "unpatched" if v ==
                            "unpatched" else "patched", "boot": i % 2, "order": i, "rep": i,
                            "ns_per_page": m * (1 + rng.uniform(-noise, noise)),
                            "pages": 1000, "high_events": 0})
    return out


def test_bootstrap_ratio_of_equal_samples_contains_one() -> None:
    xs = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.0]
    pt, lo, hi = hb.bootstrap_ratio(xs, list(reversed(xs)))
    assert pt == 1.0 and lo <= 1.0 <= hi and hi - lo < 0.02


def test_bootstrap_ratio_sees_a_ten_percent_cost() -> None:
    base = [100.0 + i % 3 for i in range(10)]
    slow = [110.0 + i % 3 for i in range(10)]
    pt, lo, hi = hb.bootstrap_ratio(slow, base)
    assert 1.08 < lo <= pt <= hi < 1.12


def test_bootstrap_diff() -> None:
    pt, lo, hi = hb.bootstrap_diff([12.0] * 5, [10.0] * 5)
    assert (pt, lo, hi) == (2.0, 2.0, 2.0)


def test_summarize_ratios_and_added_cost() -> None:
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


def test_table_plot_and_json(tmp_path: Path) -> None:
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


def test_params() -> None:
    p = BenchParams(boots=2, reps=5)
    assert p.guest_args("patched", 1)[:2] == ["--kernel", "patched"]
    assert "--seed" in p.guest_args("patched", 1)
    try:
        BenchParams(reps=0).validate()
    except Exception as e:
        assert "--reps" in str(e)
    else:
        raise AssertionError("reps=0 accepted")


def test_parse_runs(tmp_path: Path) -> None:
    f = tmp_path / "runs.jsonl"
    f.write_text(json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}) + "\n")
    assert hb.parse_runs([f, tmp_path / "missing.jsonl"]) == [{"a": 1}, {"a": 2}]


def test_srcu_variants_are_compared_with_the_series(tmp_path: Path) -> None:
    runs = runs_for({"unpatched": 1000, "nothing": 1000, "unrelated": 1000, "zero": 1000,
                     "active": 1000, "srcu-zero": 1000, "srcu-active": 1050})
    rows = {(r["workload"], r["variant"]): r for r in hb.summarize(runs)}
    sa = rows[("fault", "srcu-active")]
    assert sa["added_over"] == "active" and 30 < sa["added_ns_per_page"] < 70
    assert rows[("fault", "srcu-zero")]["added_over"] == "zero"
    assert "added_over" not in rows[("fault", "zero")]
    assert hb.plot(runs, hb.summarize(runs), tmp_path / "b.png", "t").stat().st_size > 1000
    p = BenchParams(boots=2, reps=3, srcu=True)
    assert p.kernels == ("unpatched", "patched", "srcu")
    assert p.expected_runs() == 2 * 3 * 3 * 7  # boots x reps x workloads x variants
    assert BenchParams(boots=2, reps=3).expected_runs() == 2 * 3 * 3 * 5


def test_icount_bench_boots_tcg_with_qemus_instruction_counter() -> None:
    """--icount: guest time is QEMU's instruction count (-icount shift=0,
    sleep=off, given to vng as one --qemu-opts value, last), one vCPU."""
    from harness import vm
    p = BenchParams(icount=True)
    assert p.qemu_opts == ["-icount", "shift=0,sleep=off"] and p.guest_cpus == 1
    assert BenchParams().qemu_opts == [] and BenchParams().guest_cpus == 2
    assert p.timeout_s() > BenchParams().timeout_s()
    req = vm.VmRequest(kernel=Path("/k"), command="true", out_dir=Path("/o"),
                       qemu_opts=p.qemu_opts, cpus=p.guest_cpus, force_9p=True)
    argv = vm.vng_argv(req)
    assert argv[-1] == "--qemu-opts=-icount shift=0,sleep=off"
    assert argv[argv.index("--cpus") + 1] == "1"
    assert "--qemu-opts" not in " ".join(vm.vng_argv(vm.VmRequest(
        kernel=Path("/k"), command="true", out_dir=Path("/o"), force_9p=True)))


def test_icount_refuses_kvm() -> None:
    from harness import cli
    from harness.errors import HarnessError
    args = cli.make_parser().parse_args(["bench", "--icount", "--accel", "kvm"])
    with pytest.raises(HarnessError, match="TCG"):
        cli.request(args)


SRC = """#include <linux/sched.h>

/**
 * __memcg_bpf_nr_pages_over_high - ask
 */
unsigned long __memcg_bpf_nr_pages_over_high(struct mem_cgroup *memcg)
{
\tunsigned long nr = 0;

\trcu_read_lock();
\t/*
\t * No policy applies in a removed cgroup. Its effective arrays are
\t */
\tif (x) {
\t\tmemcg_bpf_ops_exit();
\t}
\trcu_read_unlock();

\treturn nr;
}
"""


def test_srcu_read_side_edit_and_restore(tmp_path: Path) -> None:
    f = tmp_path / "mm" / "bpf_memcontrol.c"
    f.parent.mkdir()
    f.write_text(SRC)
    orig = hb.edit_tree(tmp_path, hb.SRCU_READ_SIDE)
    text = f.read_text()
    assert text.index("DEFINE_STATIC_SRCU_FAST(memcg_bpf_srcu);") < text.index("/**") < \
        text.index("unsigned long __memcg_bpf") < text.index("struct srcu_ctr __percpu *scp;")
    lock = text.index("scp = srcu_read_lock_fast(&memcg_bpf_srcu);")
    assert lock < text.index("rcu_read_lock();") < text.index("rcu_read_unlock();") < \
        text.index("srcu_read_unlock_fast(&memcg_bpf_srcu, scp);")
    assert "#include <linux/srcu.h>" in text
    hb.restore_tree(orig)
    assert f.read_text() == SRC


def test_srcu_read_side_refuses_a_tree_that_moved_on(tmp_path: Path) -> None:
    f = tmp_path / "mm" / "bpf_memcontrol.c"
    f.parent.mkdir()
    f.write_text(SRC.replace("\trcu_read_unlock();\n", "\tsrcu_read_unlock(&s, i);\n"))
    try:
        hb.edit_tree(tmp_path, hb.SRCU_READ_SIDE)
    except HarnessError as e:
        assert "SRCU_READ_SIDE" in str(e) and "0 copies" in str(e)
    else:
        raise AssertionError("an edit that does not apply was accepted")
    assert "scp" not in f.read_text()  # nothing written: all or nothing


def test_the_icount_table_is_the_kept_runs() -> None:
    """docs/bench.md's icount table and the README's bounds, recomputed from
    selftests/results/bench-icount.json with summarize()."""
    import re

    from harness import paths
    data = json.loads((paths.REPO / "selftests/results/bench-icount.json").read_text())
    assert data["icount"] == ["-icount", "shift=0,sleep=off"] and data["vcpus"] == 1
    rows = hb.summarize(data["runs"])
    doc = (paths.REPO / "docs/bench.md").read_text()
    for r in rows:
        ratio = "1 (baseline)" if r["variant"] == "unpatched" else f"{r['ratio']:.4f}"
        line = (f"| {r['workload']} | {r['variant']} | {r['runs']} | "
                f"{r['median_ns_per_page']} | {ratio} |")
        assert line in doc, line
        if r["variant"] != "unpatched":
            assert f"{line} {r['ci_low']:.4f} .. {r['ci_high']:.4f} |" in doc
    free = [r for r in rows if r["variant"] in ("nothing", "unrelated")]
    lo, hi = min(r["ci_low"] for r in free), max(r["ci_high"] for r in free)
    assert lo >= 0.99 and hi <= 1.01  # the +-1 % claim
    readme = " ".join((paths.REPO / "README.md").read_text().split())
    assert f"within {lo:.4f} .. {hi:.4f} of the unpatched kernel" in readme
    zero = max(r["ci_high"] for r in rows if r["variant"] == "zero")
    assert f"intervals up to {zero:.4f}" in readme
    assert re.search(r"medians within \+0\.16 %", readme)
    assert max(r["ratio"] for r in rows if r["variant"] == "zero") < 1.0017
