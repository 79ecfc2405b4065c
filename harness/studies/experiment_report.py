"""The phased experiment's tables and plots (harness/studies/experiment.py has
the parameters, the metrics, the statistics and the verdicts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.studies.experiment import (
    DESCRIPTION,
    FREE_PHASE,
    HIGH_PHASE,
    Params,
)


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


S5_HEADERS = ["arm", "runs", "service p50 ms", "service p99 ms", "p99 by boot",
              "service max ms", "requests", "unserved", "lows kpages/s", "lows OOM kills",
              "pod peak MiB", "pod above high MiB", "pod high events", "pod some %", "high some %"]


def s5_table_rows(summary: list[dict[str, Any]]) -> list[list[Any]]:
    """s5's table: the service's latency, the lows' throughput, the pod."""
    out = []
    for row in summary:
        c = row["phases"].get("contended", {}) if row["scenario"] == "s5" else None
        if c is None:
            continue
        out.append([row["arm"], row["runs"], fmt(c.get("svc_p50_ms"), 1, 1),
                    fmt(c.get("svc_p99_ms"), 1, 1), fmt_boots(c.get("svc_p99_ms")),
                    fmt(c.get("svc_max_ms"), 1, 0), fmt(c.get("svc_requests")),
                    fmt(c.get("svc_unserved")),
                    fmt(c.get("low"), 1e-3), fmt(c.get("lows_oom_kills")),
                    fmt(c.get("pod_peak_mb")), fmt(c.get("pod_over_high_mb")),
                    fmt(c.get("pod_high_events")), fmt(c.get("pod_some"), 100, 1),
                    fmt(c.get("high_some"), 100, 1)])
    return out


RUN_HEADERS = ["boot", "scenario", "arm", "rep", "phase", "high kpages/s", "lows kpages/s",
               "high some %", "probe p99 ms", "service p99 ms", "onset s", "release s",
               "refault s", "error"]


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
                        "", "", "", "", "", m["error"][:60]])
            continue
        for ph, c in m["phases"].items():
            out.append([r.get("boot", 0), r["scenario"], r["arm"], r["rep"], ph,
                        f(c["high"], 1e-3), f(c["low"], 1e-3), f(c["high_some"], 100),
                        f(c["probe_p99_ms"]), f(c.get("svc_p99_ms")), f(m.get("onset_s"), 1, 3),
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


def figure_title(params: Params, env: dict[str, Any]) -> str:
    """The set-up, as the figures' title says it."""
    s5 = (f"s5: pod high {params.pod_high} max {params.pod_max}, reqload {params.svc_ws_mb} MB "
          f"{params.svc_threads}x{params.svc_rate:g}/s of {params.svc_req_kb} KiB, lows "
          f"{' + '.join(map(str, params.low_mb_s5))} MB at nice {params.low_nice}")
    if params.scenarios == ["s5"]:
        sizes = s5
    else:
        sizes = (f"wsload high {params.high_mb} MB"
                 + (f" (s3: {params.s3_high_mb} -> {params.grow_mb} MB)"
                    if "s3" in params.scenarios else "")
                 + f", low {params.low_mb} MB"
                 + (f" (s4: {' + '.join(map(str, params.low_mb_s4))} MB)"
                    if "s4" in params.scenarios else "")
                 + (f"; {s5}" if "s5" in params.scenarios else ""))
    return (f"{sizes}; {params.memory} RAM, {params.swap_mb} MB {params.swap} swap, "
            f"{params.cpus} vCPUs; nodebug.config"
            + (" (TCG)" if env.get("accel") == "tcg" else ""))


BOOT_MARKERS = "os^Dv<>p"


def plot_figure(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params,
                title: str) -> Any:
    """The figure of plot(): per scenario, high's and the lows' throughput
    in the scenario's high phase (and the lows' in the free phase); every
    run a point, its boot its marker; the median a labelled bar with its
    interval (CI_METHOD); on high's panels the gain rule's threshold (twice
    the best no-policy run); arms from another sitting than the first
    marked with "*"."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.studies.experiment_stats import median_ci, metric_values_by_boot
    panels = []
    for s in params.scenarios:
        # s5: the service's p99 in place of high's throughput
        panels.append((s, "svc_p99_ms" if s == "s5" else "high", HIGH_PHASE[s]))
        panels.append((s, "low", HIGH_PHASE[s]))
        if s in FREE_PHASE:
            panels.append((s, "low", FREE_PHASE[s]))
    sits = sorted({str(r.get("sitting", "")) for r in runs})
    first = sits[0] if sits else ""
    other = {a for a in params.arms if sits and len(sits) > 1 and first not in
             {str(r.get("sitting", "")) for r in runs if r["arm"] == a}}
    labels = [a + ("*" if a in other else "") for a in params.arms]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, 1.0 * len(params.arms)),
                                                      2.9 * len(panels)), squeeze=False)
    boots_seen: set[int] = set()
    for ax, (s, side, ph) in zip(axes[:, 0], panels, strict=True):
        ms = side.endswith("_ms")  # a latency (ms, log axis); else a throughput (kpages/s)
        k = 1.0 if ms else 1e3
        for i, a in enumerate(params.arms):
            pairs = metric_values_by_boot(runs, metrics, s, a, side, ph)
            for j, (x, b) in enumerate(pairs):
                boots_seen.add(b)
                ax.plot(i + 0.3 * ((j * 37 % 11) / 10 - 0.5), x / k,
                        BOOT_MARKERS[b % len(BOOT_MARKERS)], ms=3.5, color=f"C{i % 10}",
                        alpha=0.7, mfc="none" if b % 2 else None)
            if pairs:
                xs = [x for x, _ in pairs]
                med, lo, hi = median_ci(xs, boots=[b for _, b in pairs])
                ax.hlines(med / k, i - 0.3, i + 0.3, color="k", lw=1.5)
                ax.vlines(i + 0.36, lo / k, hi / k, color="k", lw=0.8)
                ax.annotate(f"{med / k:,.1f}" if ms else f"{med / k:,.0f}", (i + 0.38, med / k),
                            fontsize=6, va="center")
        if side == "high" and "none" in params.arms:
            base = [x for x, _ in metric_values_by_boot(runs, metrics, s, "none", side, ph)]
            if base:
                ax.axhline(2 * max(base) / 1e3, color="tab:red", lw=0.8, ls="--")
        ax.set_xticks(range(len(params.arms)), labels, fontsize=7)
        ax.set_xlim(-0.6, len(params.arms) - 0.2)
        vals = [x for a in params.arms
                for x, _ in metric_values_by_boot(runs, metrics, s, a, side, ph)]
        if ms:  # milliseconds to the 2 s throttle sleeps and beyond
            ax.set_yscale("log")
            if vals:
                ax.set_ylim(max(min(vals), 1e-3) / 2, max(vals) * 2)
            ax.set_ylabel(f"{side.removesuffix('_ms')} ms\n(log)", fontsize=7)
        else:
            # thrashing (a few kpages/s) and running (thousands) on one axis
            ax.set_yscale("symlog", linthresh=10)
            ax.set_ylim(0, max(max(vals, default=10e3), 10e3) / 1e3 * 2)  # none clipped
            ax.set_ylabel(f"{side} kpages/s\n(log above 10)", fontsize=7)
        ax.set_xlabel("arm" + ("  (* another sitting than the first: compare with care)"
                               if other else ""), fontsize=7)
        ax.set_title(f"{s}: {side} in phase {ph} ({DESCRIPTION[s]})", fontsize=8)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color="k", lw=1.5, label="median (value beside it)"),
               Line2D([], [], color="k", lw=0.8, label="95 % interval (boots, then runs)"),
               Line2D([], [], color="tab:red", lw=0.8, ls="--",
                      label="gain rule: 2x the best no-policy run")]
    handles += [Line2D([], [], ls="none", marker=BOOT_MARKERS[b % len(BOOT_MARKERS)],
                       color="0.3", mfc="none" if b % 2 else None, label=f"a run of boot {b}")
                for b in sorted(boots_seen)]
    fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=7,
               bbox_to_anchor=(0.5, 1.0 - 0.35 / fig.get_figheight()))
    fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / fig.get_figheight())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    return fig


def plot(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params, path: Path,
         title: str) -> Path:
    """plot_figure(), written to `path`."""
    import matplotlib.pyplot as plt
    fig = plot_figure(runs, metrics, params, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def timelines_figure(runs: list[dict[str, Any]], params: Params, title: str,
                     cols: int = 4) -> Any:
    """The figure of plot_timelines(): memory.current of high and of the
    lows over time, every run of every scenario and arm (one panel each,
    runs overlaid), the first run's phases shaded and named, and each
    run's policy switches: on (trigger, green) and off (release, red)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from harness.studies.experiment import policy_switches
    panels = []
    for s in params.scenarios:
        for a in params.arms:
            rs = sorted((r for r in runs if r["scenario"] == s and r["arm"] == a
                         and r.get("samples")), key=lambda r: (r.get("boot", 0), r["rep"]))
            panels.append((s, a, rs))
    cols = max(1, min(cols, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False,
                             sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    colors = {"high": "tab:blue", "lows": "tab:orange"}
    for n, (s, a, rs) in enumerate(panels):
        ax = axes.flat[n]
        ax.set_visible(True)
        ax.set_title(f"{s} {a} ({len(rs)} runs)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("s from the run's start", fontsize=6)
        ax.set_ylabel("memory.current MiB", fontsize=6)
        if not rs:
            continue
        t0 = rs[0]["t0"]
        for k, (name, pa, pb) in enumerate(x for x in rs[0].get("phases", []) if x[2]):
            ax.axvspan(pa - t0, pb - t0, color="0.9" if k % 2 else "0.8", lw=0)
            ax.text((pa + pb) / 2 - t0, 1.0, name, transform=ax.get_xaxis_transform(),
                    fontsize=5, ha="center", va="top", color="0.35")
        for r in rs:
            ts = [x["t"] - r["t0"] for x in r["samples"]]
            for cg, c in colors.items():
                ax.plot(ts, [x.get(cg, {}).get("current", 0) / 2**20 for x in r["samples"]],
                        lw=0.6, alpha=0.6, color=c)
            for t, on in policy_switches(r):
                ax.axvline(t - r["t0"], ymin=0.0, ymax=0.06, lw=0.8,
                           color="tab:green" if on else "tab:red")
    handles: list[Any] = [Line2D([], [], color=c, lw=1, label=f"{cg}: memory.current")
                          for cg, c in colors.items()]
    handles += [Line2D([], [], color="tab:green", lw=1, label="policy on (trigger)"),
                Line2D([], [], color="tab:red", lw=1, label="policy off (release)"),
                Patch(color="0.8", label="phases (named at the top)")]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=7,
               bbox_to_anchor=(0.5, 1.0 - 0.3 / fig.get_figheight()))
    fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / fig.get_figheight())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / fig.get_figheight()))
    return fig


def plot_timelines(runs: list[dict[str, Any]], params: Params, path: Path, title: str,
                   cols: int = 4) -> Path:
    """timelines_figure(), written to `path`."""
    import matplotlib.pyplot as plt
    fig = timelines_figure(runs, params, title, cols)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
