"""harness bench: what the memcg_bpf_ops hook costs on the charge path.

Two kernels built from the same tree with the same config, which has no
debug options (kernel-config/extra/nodebug.config): without the series
("unpatched") and with it. They boot in turn, `boots` times each; in every
boot harness/guest/bench.py runs membench `reps` times per variant and
workload, in a shuffled order. Each variant's runs are compared with the
unpatched kernel's: the ratio of the medians of ns per page, with a 95 %
bootstrap interval. Every run is kept and plotted.

With `srcu`, a third kernel is built: the series with an SRCU-fast read
side around the callbacks (SRCU_READ_SIDE below), the protection the RFC
had, on top of the RCU that the effective arrays need anyway. Its zero and
active variants measure what SRCU would add to the series' hook.
"""

from __future__ import annotations

import json
import random
import statistics
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import build as kbuild
from harness.errors import HarnessError

NODEBUG = kbuild.NODEBUG_CONFIG
VARIANTS = ("unpatched", "nothing", "unrelated", "zero", "active")
SRCU_VARIANTS = ("srcu-zero", "srcu-active")
WORKLOADS = ("fault", "over_high", "batch")
# --icount: QEMU's instruction counter drives the guest's clocks, one
# nanosecond per instruction, and never in real time: a run's ns per page
# is then the instructions it took, not a boot's luck with the host.
ICOUNT_QEMU_OPTS = ["-icount", "shift=0,sleep=off"]
# The variant a kernel's boots run, by kernel.
KERNEL_VARIANTS = {"unpatched": ("unpatched",),
                   "patched": ("nothing", "unrelated", "zero", "active"),
                   "srcu": SRCU_VARIANTS}
# (what, compared with): the ns per page a variant adds over another.
ADDED = {"active": "nothing", "srcu-zero": "zero", "srcu-active": "active"}
DESCRIPTION = {
    "unpatched": "the kernel without the series",
    "nothing": "patched, no policy attached",
    "unrelated": "patched, a policy (N = 0) on another cgroup",
    "zero": "patched, a policy answering N = 0 on the measured cgroup",
    "active": "patched, a policy answering N = 1 on it (an episode, held at memory.min)",
    "srcu-zero": "as zero, on the series with an SRCU-fast read side added",
    "srcu-active": "as active, on the series with an SRCU-fast read side added",
}

# The read side the RFC had, for `--srcu`: srcu_read_lock_fast() around the
# walk in __memcg_bpf_nr_pages_over_high(), in addition to the rcu_read_lock()
# that the infrastructure's effective arrays need (they are kfree_rcu()d).
# Only the read side: a kernel built with it is for measuring, and detaching
# in it waits for no SRCU grace period. (file, text, replacement) each.
SRCU_READ_SIDE = [
    ("mm/bpf_memcontrol.c", "/**\n * __memcg_bpf_nr_pages_over_high - ",
     "DEFINE_STATIC_SRCU_FAST(memcg_bpf_srcu);\n\n"
     "/**\n * __memcg_bpf_nr_pages_over_high - "),
    ("mm/bpf_memcontrol.c",
     "unsigned long __memcg_bpf_nr_pages_over_high(struct mem_cgroup *memcg)\n{\n",
     "unsigned long __memcg_bpf_nr_pages_over_high(struct mem_cgroup *memcg)\n{\n"
     "\tstruct srcu_ctr __percpu *scp;\n"),
    ("mm/bpf_memcontrol.c",
     "\trcu_read_lock();\n\t/*\n\t * No policy applies in a removed cgroup.",
     "\tscp = srcu_read_lock_fast(&memcg_bpf_srcu);\n"
     "\trcu_read_lock();\n\t/*\n\t * No policy applies in a removed cgroup."),
    ("mm/bpf_memcontrol.c",
     "\t\tmemcg_bpf_ops_exit();\n\t}\n\trcu_read_unlock();\n\n\treturn nr;\n}\n",
     "\t\tmemcg_bpf_ops_exit();\n\t}\n\trcu_read_unlock();\n"
     "\tsrcu_read_unlock_fast(&memcg_bpf_srcu, scp);\n\n\treturn nr;\n}\n"),
    ("mm/bpf_memcontrol.c", "#include <linux/sched.h>\n",
     "#include <linux/sched.h>\n#include <linux/srcu.h>\n"),
]


def edit_tree(tree: Path, edits: list[tuple[str, str, str]]) -> dict[Path, str]:
    """Apply `edits` to `tree`; return the original texts, for restore_tree().
    Each text must occur exactly once: a series that moved on fails here,
    not with a kernel that silently measures something else."""
    orig: dict[Path, str] = {}
    new: dict[Path, str] = {}
    for rel, old, repl in edits:
        f = tree / rel
        text = new[f] if f in new else f.read_text()
        orig.setdefault(f, f.read_text())
        if text.count(old) != 1:
            raise HarnessError(f"bench --srcu: {rel} has {text.count(old)} copies of the "
                               f"text to edit (want 1): {old.splitlines()[0]!r}; update "
                               "SRCU_READ_SIDE in harness/studies/bench.py for this series")
        new[f] = text.replace(old, repl)
    for f, text in new.items():
        f.write_text(text)
    return orig


def restore_tree(orig: dict[Path, str]) -> None:
    for f, text in orig.items():
        f.write_text(text)


@dataclass
class BenchParams:
    # boots of each kernel, and runs per variant and workload per boot
    boots: int = 2
    reps: int = 5
    # one run: seconds, and membench's working set in MB
    secs: float = 1.0
    mb: int = 32
    seed: int = 1  # of the shuffled order
    # the guest
    memory: str = "1G"
    cpus: int = 2
    srcu: bool = False  # a third kernel, with an SRCU-fast read side
    icount: bool = False  # deterministic guest time (ICOUNT_QEMU_OPTS), one vCPU

    @property
    def kernels(self) -> tuple[str, ...]:
        return ("unpatched", "patched", "srcu") if self.srcu else ("unpatched", "patched")

    @property
    def variants(self) -> tuple[str, ...]:
        return VARIANTS + (SRCU_VARIANTS if self.srcu else ())

    def expected_runs(self) -> int:
        return self.boots * self.reps * len(WORKLOADS) * len(self.variants)

    def validate(self) -> None:
        if self.boots < 1 or self.reps < 1 or self.secs <= 0 or self.mb < 1:
            raise HarnessError("bench: --boots, --reps, --mb must be >= 1 and --secs > 0")

    def guest_args(self, kernel: str, boot: int) -> list[str]:
        return ["--kernel", kernel, "--reps", str(self.reps), "--secs", str(self.secs),
                "--mb", str(self.mb), "--seed", str(self.seed * 1000 + boot),
                "--boot", str(boot)]

    def timeout_s(self) -> float:
        # under icount a guest second takes several host seconds
        slow = 12 if self.icount else 4
        return 300 + slow * len(VARIANTS) * len(WORKLOADS) * self.reps * (self.secs + 2)

    @property
    def qemu_opts(self) -> list[str]:
        return list(ICOUNT_QEMU_OPTS) if self.icount else []

    @property
    def guest_cpus(self) -> int:
        return 1 if self.icount else self.cpus


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


def parse_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """The runs of the guest's runs.jsonl files (a JSON object a line), of
    those that exist: a boot that died leaves its runs so far, or none."""
    runs = []
    for p in paths:
        if p.exists():
            runs += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return runs


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per workload and variant: runs, median, ratio to unpatched
    with its interval; for the variants in ADDED, the ns per page they add
    over the variant they are compared with (active over nothing, the SRCU
    kernel's over the series')."""
    rows = []
    for w in WORKLOADS:
        base = [r["ns_per_page"] for r in runs if r["workload"] == w
                and r["variant"] == "unpatched"]
        for v in VARIANTS + SRCU_VARIANTS:
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
            other = [r["ns_per_page"] for r in runs if r["workload"] == w
                     and r["variant"] == ADDED.get(v)]
            if other:
                pt, lo, hi = bootstrap_diff(xs, other, seed=7)
                row |= {"added_over": ADDED[v], "added_ns_per_page": round(pt, 1),
                        "added_ci": [round(lo, 1), round(hi, 1)],
                        "added_ns_per_batch": round(64 * pt)}
            rows.append(row)
    return rows


TABLE_HEADERS = ["workload", "variant", "runs", "median ns/page", "ratio to unpatched",
                 "95 % interval", "contains 1.00", "±"]


def table_rows(summary: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for r in summary:
        has = "ratio" in r
        out.append([r["workload"], r["variant"], r["runs"], r["median_ns_per_page"],
                     f"{r['ratio']:.4f}" if has else "1 (baseline)",
                     f"{r['ci_low']:.4f} .. {r['ci_high']:.4f}" if has else "",
                     ("yes" if r["ci_contains_1"] else "NO") if has else "",
                     f"{r['ci_halfwidth_pct']:.2f} %" if has else ""])
    return out


def plot(runs: list[dict[str, Any]], summary: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    variants = [v for v in VARIANTS + SRCU_VARIANTS if any(r["variant"] == v for r in runs)]
    fig, axes = plt.subplots(1, len(WORKLOADS), squeeze=False,
                             figsize=(max(6.0, 1.15 * len(variants)) * len(WORKLOADS), 4.5))
    for ax, w in zip(axes[0], WORKLOADS, strict=True):
        for i, v in enumerate(variants):
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
        ax.set_xticks(range(len(variants)), variants, fontsize=7)
        ax.set_title(w)
        ax.set_ylabel("ns per page (every run; marker = boot)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_json(params: BenchParams, runs: list[dict[str, Any]], summary: list[dict[str, Any]],
            env: dict[str, Any]) -> dict[str, Any]:
    return {"params": asdict(params), "variants": DESCRIPTION, "summary": summary,
            "runs": runs} | env
