"""The phased experiment's tables and plots (harness/studies/experiment.py has
the parameters, the metrics, the statistics and the verdicts)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.studies.experiment import (
    DESCRIPTION,
    FREE_PHASE,
    HIGH_PHASE,
    Params,
)
from harness.studies.experiment_stats import metric_values


def fmt(c: dict[str, Any] | None, scale: float = 1.0, digits: int = 0) -> str:
    if not c:
        return "-"
    text = (f"{c['median'] * scale:.{digits}f} [{c['ci'][0] * scale:.{digits}f}, "
            f"{c['ci'][1] * scale:.{digits}f}]")
    if c.get("missing"):  # runs where it was not found: shown, not hidden
        text += f" in {c['n']}/{c['n'] + c['missing']}"
    return text


def fmt_boots(c: dict[str, Any] | None, scale: float = 1.0) -> str:
    """Each boot's median: "b0 1234 b1 2345"."""
    if not c or not c.get("boots"):
        return "-"
    return " ".join(f"b{b} {m * scale:.0f}" for b, m in c["boots"].items())


def sittings_note(summary: list[dict[str, Any]]) -> str:
    """What a table says when its runs come from more than one sitting:
    which, and that arms compare only within one."""
    all_s = sorted({x for row in summary for x in row.get("sittings", [])})
    if len(all_s) < 2:
        return ""
    lines = [f"these runs come from {len(all_s)} sittings; compare arms only within one:"]
    for i, sit in enumerate(all_s):
        arms = sorted({row["arm"] for row in summary if sit in row.get("sittings", [])})
        lines.append(f"  sitting {i + 1} ({sit}): {', '.join(arms)}")
    return "\n".join(lines)


TABLE_HEADERS = ["scenario", "arm", "runs", "phase", "high kpages/s", "high by boot",
                 "lows kpages/s",
                 "high some %", "high full %", "probe p99 ms", "onset s", "release s", "refault s"]


def table_rows(summary: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for row in summary:
        first = True
        for ph, c in row["phases"].items():
            out.append([row["scenario"] if first else "", row["arm"] if first else "",
                        row["runs"] if first else "", ph, fmt(c.get("high"), 1e-3),
                        fmt_boots(c.get("high"), 1e-3), fmt(c.get("low"), 1e-3),
                        fmt(c.get("high_some"), 100, 1),
                        fmt(c.get("high_full"), 100, 1), fmt(c.get("probe_p99_ms"), 1, 1),
                        fmt(row.get("onset_s"), 1, 2) if first else "",
                        fmt(row.get("release_s"), 1, 2) if first else "",
                        fmt(row.get("refault_s"), 1, 1) if first else ""])
            first = False
    return out


RUN_HEADERS = ["boot", "scenario", "arm", "rep", "phase", "high kpages/s", "lows kpages/s",
               "high some %", "probe p99 ms", "onset s", "release s", "refault s", "error"]


def run_rows(runs: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    order = sorted(range(len(runs)), key=lambda i: (runs[i]["scenario"], runs[i]["arm"],
                                                    runs[i]["rep"]))

    def f(v: float | None, scale: float = 1.0, d: int = 1) -> str:
        return "-" if v is None else f"{v * scale:.{d}f}"
    for i in order:
        r, m = runs[i], metrics[i]
        if "error" in m:
            out.append([r.get("boot", 0), r["scenario"], r["arm"], r["rep"], "", "", "", "",
                        "", "", "", "", m["error"][:60]])
            continue
        for ph, c in m["phases"].items():
            out.append([r.get("boot", 0), r["scenario"], r["arm"], r["rep"], ph,
                        f(c["high"], 1e-3), f(c["low"], 1e-3), f(c["high_some"], 100),
                        f(c["probe_p99_ms"]), f(m.get("onset_s"), 1, 3),
                        f(m.get("release_s"), 1, 3), f(m.get("refault_s"), 1, 1), ""])
    return out


SAMPLE_COLUMNS = ["t", "high MiB", "lows MiB", "high swap MiB", "lows swap MiB",
                  "lows high events"]


def compact(data: dict[str, Any], every_s: float = 1.0) -> dict[str, Any]:
    """results.json without what makes it large: the tasks' 10 ms progress
    samples and probe passes go (the metrics keep what they gave), and of
    the cgroup samples one a second is kept, as rows of SAMPLE_COLUMNS."""
    runs = []
    for r in data["runs"]:
        keep, last = [], None
        for x in r.get("samples", []):
            if "high" in x and "lows" in x and (last is None or x["t"] - last >= every_s - 1e-6):
                h, lo = x["high"], x["lows"]
                keep.append([x["t"], h["current"] / 2**20, lo["current"] / 2**20,
                             h.get("swap", 0) / 2**20, lo.get("swap", 0) / 2**20,
                             lo.get("high_events", 0)])
                last = x["t"]
        runs.append({k: v for k, v in r.items() if k not in ("samples", "tasks")}
                    | {"samples": keep})
    # the same dict, its floats rounded
    rounded: dict[str, Any] = _rounded({k: v for k, v in data.items() if k != "runs"}
                                       | {"sample_columns": SAMPLE_COLUMNS, "runs": runs})
    return rounded


def expand(run: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """compact()'s inverse for one run's cgroup samples: rows of
    SAMPLE_COLUMNS back to {"t", "high", "lows"} as the guest writes them
    (what compact() keeps of them, at its one a second)."""
    if columns != SAMPLE_COLUMNS:
        raise HarnessError(f"sample columns {columns}: this harness reads {SAMPLE_COLUMNS}")
    mib = 2**20
    return run | {"samples": [
        {"t": t, "high": {"current": hm * mib, "swap": hs * mib},
         "lows": {"current": lm * mib, "swap": ls * mib, "high_events": ev}}
        for t, hm, lm, hs, ls, ev in run.get("samples", [])]}


def _rounded(x: Any) -> Any:
    """Floats to 3 decimals (ms, MiB, pages/s): nothing lost that the
    metrics resolve."""
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x


TARGET_HEADERS = ["scenario", "arm", "target", "value", "goal", "met", "how"]


def target_rows(targets: list[dict[str, Any]]) -> list[list[Any]]:
    return [[t["scenario"], t["arm"], t["target"],
             "-" if t["value"] is None else f"{t['value']:.3g}", t["goal"],
             {True: "yes", False: "NO", None: "n/a"}[t["pass"]], t["detail"]]
            for t in targets]


def plot(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params, path: Path,
         title: str) -> Path:
    """Per scenario: high's and the lows' throughput in the scenario's high
    phase (and the lows' in the free phase), every run a point, the median
    a bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for s in params.scenarios:
        panels.append((s, "high", HIGH_PHASE[s]))
        panels.append((s, "low", HIGH_PHASE[s]))
        if s in FREE_PHASE:
            panels.append((s, "low", FREE_PHASE[s]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.9 * len(params.arms)),
                                                      2.6 * len(panels)), squeeze=False)
    for ax, (s, side, ph) in zip(axes[:, 0], panels, strict=True):
        for i, a in enumerate(params.arms):
            xs = metric_values(runs, metrics, s, a, side, ph)
            for j, x in enumerate(xs):
                ax.plot(i + 0.3 * ((j * 37 % 11) / 10 - 0.5), x / 1e3, "o", ms=3,
                        color=f"C{i % 10}", alpha=0.7)
            if xs:
                ax.hlines(statistics.median(xs) / 1e3, i - 0.3, i + 0.3, color="k")
        ax.set_xticks(range(len(params.arms)), params.arms, fontsize=7)
        # thrashing (a few kpages/s) and running (thousands) on one axis
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("kpages/s (log above 10)", fontsize=8)
        ax.set_title(f"{s}: {side} in phase {ph} ({DESCRIPTION[s]})", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_timelines(runs: list[dict[str, Any]], params: Params, path: Path, title: str,
                   cols: int = 4) -> Path:
    """memory.current of high and of the lows over time, every run of every
    scenario and arm (one panel each, runs overlaid), with the first run's
    phases shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for s in params.scenarios:
        for a in params.arms:
            rs = sorted((r for r in runs if r["scenario"] == s and r["arm"] == a
                         and r.get("samples")), key=lambda r: (r.get("boot", 0), r["rep"]))
            panels.append((s, a, rs))
    cols = max(1, min(cols, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.3 * rows), squeeze=False,
                             sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    colors = {"high": "tab:blue", "lows": "tab:orange"}
    for n, (s, a, rs) in enumerate(panels):
        ax = axes.flat[n]
        ax.set_visible(True)
        ax.set_title(f"{s} {a} ({len(rs)} runs)", fontsize=7)
        ax.tick_params(labelsize=6)
        if not rs:
            continue
        t0 = rs[0]["t0"]
        for k, (_name, pa, pb) in enumerate(x for x in rs[0].get("phases", []) if x[2]):
            ax.axvspan(pa - t0, pb - t0, color="0.9" if k % 2 else "0.8", lw=0)
        for r in rs:
            ts = [x["t"] - r["t0"] for x in r["samples"]]
            for cg, c in colors.items():
                ax.plot(ts, [x.get(cg, {}).get("current", 0) / 2**20 for x in r["samples"]],
                        lw=0.6, alpha=0.6, color=c, label=cg if r is rs[0] else None)
    for row in axes:
        row[0].set_ylabel("memory.current MiB", fontsize=7)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title + "; shaded: the phases", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
