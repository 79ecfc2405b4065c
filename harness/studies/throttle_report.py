"""The throttling experiment's tables and plots (harness/studies/throttle.py has
the parameters, the parsing and the summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.studies.throttle import Run


def table_rows(summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    def cell(e: dict[str, Any] | None) -> str:
        if not e:
            return "-"
        return f"{e['median']:,.0f} ({e['min']:,.0f}..{e['max']:,.0f})"

    def ratio(e: dict[str, Any] | None) -> str:
        return f"{e['ratio_to_alone']:.2f}" if e and "ratio_to_alone" in e else "-"

    rows = []
    for e in summary.values():
        on = e.get("onset_s")
        helped = e.get("helped")
        rows.append([e["label"], cell(e.get("high")), ratio(e.get("high")),
                     cell(e.get("low")), ratio(e.get("low")),
                     f"{helped[0]}/{helped[1]}" if helped else "-",
                     f"{on['median']:.2f}" if on else "-",
                     "; ".join(e["errors"])[:40]])
    return rows


TABLE_HEADERS = ["scenario", "high ops/s median (min..max)", "high/alone",
                 "low ops/s median (min..max)", "low/alone", "policy helped high",
                 "onset->throttle s", "errors"]


def run_rows(runs: list[Run]) -> list[list[str]]:
    """Every run: rates, high's and low's stall, low's memory.high events,
    the policy's triggered periods."""
    def rate(r: Run, side: str) -> str:
        return f"{r.rates[side]:,.0f}" if side in r.rates else "-"

    rows = []
    for r in sorted(runs, key=lambda r: (r.scenario, r.repeat)):
        trig = ", ".join(f"{a:.1f}-{'' if b is None else f'{b:.1f}'}" for a, b in r.triggers)
        rows.append([r.scenario, str(r.repeat), rate(r, "high"), rate(r, "low"),
                     {True: "yes", False: "NO", None: ""}[r.helped],
                     f"{r.high_stall_s:.1f}", f"{r.low_stall_s:.1f}", str(r.low_high_events),
                     (trig[:40] + "...") if len(trig) > 43 else trig, r.error[:40]])
    return rows


RUN_HEADERS = ["scenario", "#", "high ops/s", "low ops/s", "helped", "high stall s",
               "low stall s", "low high events", "policy triggered (s)", "error"]


def plot(summary: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Bars: each side's median throughput relative to its alone median,
    with min..max whiskers, per scenario."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the mechanism scenarios have no throughput (their runs are stopped)
    scs = [s for s in summary if not s.endswith("_alone")
           and ("high" in summary[s] or "low" in summary[s])] or list(summary)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    width = 0.38
    for k, (side, color) in enumerate((("high", "#1f77b4"), ("low", "#ff7f0e"))):
        xs, ys, lo, hi = [], [], [], []
        for i, sc in enumerate(scs):
            e = summary[sc].get(side)
            alone = summary.get(f"{side}_alone", {}).get(side)
            if not e or not alone or not alone["median"]:
                continue
            base = alone["median"]
            xs.append(i + (k - 0.5) * width)
            ys.append(e["median"] / base)
            lo.append((e["median"] - e["min"]) / base)
            hi.append((e["max"] - e["median"]) / base)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=color,
               label=f"{side} (relative to {side} alone)")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(scs)))
    ax.set_xticklabels([summary[s]["label"].replace("both, ", "both,\n") for s in scs],
                       fontsize=8)
    ax.set_ylabel("bogo-ops/s, median / alone median")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_traces(runs: list[Run], path: Path, title: str) -> Path:
    """One panel per run: memory.current and swap of each side over time,
    the policy's triggered periods shaded, the detach marked; the rates in
    the panel's title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in runs if r.samples]
    fig, axes = plt.subplots(len(runs) or 1, 1, figsize=(9, 2.3 * max(1, len(runs))),
                             dpi=100, sharex=True, squeeze=False)
    for ax, r in zip(axes[:, 0], runs, strict=False):
        t = [s["t"] for s in r.samples]
        for side, color in (("high", "#1f77b4"), ("low", "#ff7f0e")):
            ax.plot(t, [s[side]["current"] / 2**20 for s in r.samples], color=color,
                    label=f"{side} memory.current")
            ax.plot(t, [s[side]["swap"] / 2**20 for s in r.samples], color=color,
                    linestyle=":", label=f"{side} swap")
        for a, b in r.triggers:
            if a == b:  # a trigger seen, its end unknown
                ax.axvline(a, color="#d62728", linewidth=0.8)
            else:
                end = b if b is not None else (r.detached_s or t[-1])
                ax.axvspan(a, end, color="#d62728", alpha=0.15, lw=0)
        if r.detached_s is not None:
            ax.axvline(r.detached_s, color="black", linestyle="--", linewidth=1)
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.rates.items()))
        verdict = {True: " (helped)", False: " (did not help)", None: ""}[r.helped]
        ax.set_title(f"{r.scenario} #{r.repeat}: ops/s {rates}{verdict}", fontsize=8)
        ax.set_ylabel("MiB", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, ncol=4, loc="upper left")
    axes[-1, 0].set_xlabel("s (shaded: policy triggered; red line: a trigger seen, its end "
                           "not printed (first sample); dashed: detached)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
