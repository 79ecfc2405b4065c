"""harness bench: what the memcg_bpf_ops hook costs on the charge path.

Two kernels built from the same tree with the same config, which has no
debug options (kernel-config/extra/nodebug.config): without the series
("unpatched") and with it. They boot in turn, `boots` times each; in every
boot harness/guest/bench.py runs membench `reps` times per variant and
workload, in a shuffled order. Each variant's runs are compared with the
unpatched kernel's: the ratio of the medians of ns per page, with a 95 %
bootstrap interval. Every run is kept and plotted.
"""

from __future__ import annotations

import json
import random
import statistics
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError

NODEBUG = "kernel-config/extra/nodebug.config"
VARIANTS = ("unpatched", "nothing", "unrelated", "zero", "active")
WORKLOADS = ("fault", "over_high")
DESCRIPTION = {
    "unpatched": "the kernel without the series",
    "nothing": "patched, no policy attached",
    "unrelated": "patched, a policy (N = 0) on another cgroup",
    "zero": "patched, a policy answering N = 0 on the measured cgroup",
    "active": "patched, a policy answering N = 1 on it (an episode, held at memory.min)",
}


@dataclass
class BenchParams:
    boots: int = 2
    reps: int = 5
    secs: float = 1.0
    mb: int = 32
    seed: int = 1
    memory: str = "1G"
    cpus: int = 2

    def validate(self) -> None:
        if self.boots < 1 or self.reps < 1 or self.secs <= 0 or self.mb < 1:
            raise HarnessError("bench: --boots, --reps, --mb must be >= 1 and --secs > 0")

    def guest_args(self, kernel: str, boot: int) -> list[str]:
        return ["--kernel", kernel, "--reps", str(self.reps), "--secs", str(self.secs),
                "--mb", str(self.mb), "--seed", str(self.seed * 1000 + boot),
                "--boot", str(boot)]

    def timeout_s(self) -> float:
        return 300 + 4 * len(VARIANTS) * len(WORKLOADS) * self.reps * (self.secs + 2)


def bootstrap_ratio(xs: list[float], base: list[float], n: int = 4000,
                    seed: int = 0) -> tuple[float, float, float]:
    """median(xs) / median(base), and a 95 % percentile bootstrap interval
    (both samples resampled with replacement, `n` times)."""
    if not xs or not base:
        raise ValueError("bootstrap_ratio needs two non-empty samples")
    rng = random.Random(seed)
    point = statistics.median(xs) / statistics.median(base)
    ratios = sorted(statistics.median(rng.choices(xs, k=len(xs))) /
                    statistics.median(rng.choices(base, k=len(base))) for _ in range(n))
    return point, ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]


def bootstrap_diff(xs: list[float], base: list[float], n: int = 4000,
                   seed: int = 0) -> tuple[float, float, float]:
    """median(xs) - median(base), with a 95 % bootstrap interval."""
    rng = random.Random(seed)
    point = statistics.median(xs) - statistics.median(base)
    diffs = sorted(statistics.median(rng.choices(xs, k=len(xs))) -
                   statistics.median(rng.choices(base, k=len(base))) for _ in range(n))
    return point, diffs[int(0.025 * n)], diffs[int(0.975 * n) - 1]


def parse_runs(paths: list[Path]) -> list[dict]:
    runs = []
    for p in paths:
        if p.exists():
            runs += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return runs


def summarize(runs: list[dict]) -> list[dict]:
    """One row per workload and variant: runs, median, ratio to unpatched
    with its interval; for `active`, the ns per page it adds over `nothing`."""
    rows = []
    for w in WORKLOADS:
        base = [r["ns_per_page"] for r in runs if r["workload"] == w
                and r["variant"] == "unpatched"]
        nothing = [r["ns_per_page"] for r in runs if r["workload"] == w
                   and r["variant"] == "nothing"]
        for v in VARIANTS:
            xs = [r["ns_per_page"] for r in runs if r["workload"] == w and r["variant"] == v]
            if not xs:
                continue
            row = {"workload": w, "variant": v, "runs": len(xs),
                   "median_ns_per_page": round(statistics.median(xs), 1),
                   "boots": sorted({r["boot"] for r in runs if r["workload"] == w
                                    and r["variant"] == v})}
            if base and v != "unpatched":
                pt, lo, hi = bootstrap_ratio(xs, base, seed=zlib.crc32(f"{w}{v}".encode()))
                row |= {"ratio": round(pt, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4),
                        "ci_contains_1": lo <= 1.0 <= hi,
                        "ci_halfwidth_pct": round(50 * (hi - lo), 2)}
            if v == "active" and nothing:
                pt, lo, hi = bootstrap_diff(xs, nothing, seed=7)
                row |= {"added_ns_per_page": round(pt, 1),
                        "added_ci": [round(lo, 1), round(hi, 1)],
                        "added_ns_per_batch": round(64 * pt)}
            rows.append(row)
    return rows


TABLE_HEADERS = ["workload", "variant", "runs", "median ns/page", "ratio to unpatched",
                 "95 % interval", "contains 1.00", "±"]


def table_rows(summary: list[dict]) -> list[list]:
    out = []
    for r in summary:
        has = "ratio" in r
        out.append([r["workload"], r["variant"], r["runs"], r["median_ns_per_page"],
                     f"{r['ratio']:.4f}" if has else "1 (baseline)",
                     f"{r['ci_low']:.4f} .. {r['ci_high']:.4f}" if has else "",
                     ("yes" if r["ci_contains_1"] else "NO") if has else "",
                     f"{r['ci_halfwidth_pct']:.2f} %" if has else ""])
    return out


def plot(runs: list[dict], summary: list[dict], path: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(6 * len(WORKLOADS), 4.5),
                             squeeze=False)
    for ax, w in zip(axes[0], WORKLOADS, strict=True):
        for i, v in enumerate(VARIANTS):
            pts = [r for r in runs if r["workload"] == w and r["variant"] == v]
            for r in pts:  # every run, jittered, one marker per boot
                ax.plot(i + 0.25 * ((r["order"] * 7919 % 100) / 100 - 0.5), r["ns_per_page"],
                        "os^dv"[r["boot"] % 5], color=f"C{r['boot'] % 10}", alpha=0.6, ms=4)
            if pts:
                med = statistics.median(r["ns_per_page"] for r in pts)
                ax.hlines(med, i - 0.3, i + 0.3, color="k")
                row = next((s for s in summary if s["workload"] == w and s["variant"] == v),
                           {})
                if "ratio" in row:
                    ax.annotate(f"{row['ratio']:.3f}\n[{row['ci_low']:.3f}, "
                                f"{row['ci_high']:.3f}]", (i, med), fontsize=7,
                                xytext=(0, 12), textcoords="offset points", ha="center")
        ax.set_xticks(range(len(VARIANTS)), VARIANTS, fontsize=8)
        ax.set_title(w)
        ax.set_ylabel("ns per page (every run; marker = boot)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_json(params: BenchParams, runs: list[dict], summary: list[dict], env: dict) -> dict:
    return {"params": asdict(params), "variants": DESCRIPTION, "summary": summary,
            "runs": runs} | env
