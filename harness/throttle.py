"""The throttling experiment: the RFC's headline, reproduced and compared
with the existing knobs in the same run.

Two cgroups, high and low, run the same stress-ng --vm stressor in one
guest with swap (harness/guest/throttle.py). Scenarios:

  high_alone, low_alone   each side on its own: the reference throughputs
  both_none               both, no policy: what contention costs
  both_policy             both, samples/bpf/memcg attached to low, watching
                          high's page scans
  both_detached           both, no policy again, right after: back to none?
  both_memory_low         both, memory.low protecting high's working set
  both_memory_high        both, a static memory.high on low

Each is repeated (round robin, so drift spreads over all); the report has
per side the median bogo-ops/s, the spread (min..max), the ratio of the
medians to that side's "alone" median, and, where low gets throttled, the
time from high's first page scans to low's first memory.high event.

Pure functions here (parsing, statistics, table, plot) are tested on saved
output; Pipeline.throttle() runs the guest.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from harness.errors import HarnessError

ALL_SCENARIOS = ["high_alone", "low_alone", "both_none", "both_policy", "both_detached",
                 "both_memory_low", "both_memory_high"]
# What the README's test command runs (CI budget): enough for the assertions.
SHORT_SCENARIOS = ["high_alone", "both_none", "both_policy", "both_detached"]
LABELS = {
    "high_alone": "high alone", "low_alone": "low alone", "both_none": "both, no policy",
    "both_policy": "both, BPF sample policy", "both_detached": "both, policy detached",
    "both_memory_low": "both, memory.low on high", "both_memory_high": "both, memory.high on low",
}


@dataclass
class Params:
    scenarios: list[str] = field(default_factory=lambda: list(ALL_SCENARIOS))
    repeats: int = 3
    seconds: int = 20
    # Under TCG a side populates ~60 MB/s, and the runs must be mostly
    # contention, not populating: 300M each in 512M of RAM contend from
    # ~5 s on (600M in 1G: ~10 s; 1200M in 2G, the design's first try: 20 s,
    # when the run ends).
    vm_bytes: str = "300M"
    vm_method: str = "flip"
    seed: int = 2025
    threshold: int = 100  # pages scanned in high per window
    over_high: int = 262144  # pages (1 GiB): low is treated as this much over memory.high
    window_ms: int = 1000
    protect: str = "300M"  # memory.low of high: its whole working set
    low_high: str = "100M"  # memory.high of low: a third of its working set
    swap_mb: int = 2048
    memory: str = "512M"  # guest RAM
    cpus: int = 2

    def guest_args(self) -> list[str]:
        return ["--scenarios", ",".join(self.scenarios), "--repeats", str(self.repeats),
                "--seconds", str(self.seconds), "--vm-bytes", self.vm_bytes,
                "--vm-method", self.vm_method, "--seed", str(self.seed),
                "--threshold", str(self.threshold), "--over-high", str(self.over_high),
                "--window-ms", str(self.window_ms), "--protect", self.protect,
                "--low-high", self.low_high, "--swap-mb", str(self.swap_mb)]

    def estimate_s(self) -> float:
        return len(self.scenarios) * self.repeats * (self.seconds + 4) + 60

    def validate(self) -> None:
        bad = [s for s in self.scenarios if s not in ALL_SCENARIOS]
        if bad:
            raise HarnessError(f"unknown scenario(s) {bad}; known: {', '.join(ALL_SCENARIOS)}")
        if self.repeats < 1 or self.seconds < 2:
            raise HarnessError("--repeats must be >= 1 and --seconds >= 2")


def stress_ng_rate(text: str) -> float:
    """bogo-ops/s (real time) of the vm stressor in a stress-ng --yaml file."""
    # stress-ng 0.19's build-info section is not valid YAML (an unindented
    # source-date-epoch key inside it): parse the metrics section alone.
    lines, section = [], False
    for line in text.splitlines():
        if line.startswith("metrics:"):
            section = True
        elif section and line and not line.startswith((" ", "-")):
            break
        if section:
            lines.append(line)
    data = yaml.safe_load("\n".join(lines)) or {}
    for m in data.get("metrics") or []:
        if m.get("stressor") == "vm":
            return float(m["bogo-ops-per-second-real-time"])
    raise HarnessError("no vm stressor metrics in the stress-ng YAML")


def onset_delay(samples: list[dict]) -> float | None:
    """Seconds from high's first page scans to low's first memory.high
    event in a scenario's samples; None if either never happens."""
    if not samples:
        return None
    scan0 = samples[0]["high"]["pgscan"]
    ev0 = samples[0]["low"]["high_events"]
    t_scan = next((s["t"] for s in samples if s["high"]["pgscan"] > scan0), None)
    t_thr = next((s["t"] for s in samples if s["low"]["high_events"] > ev0), None)
    if t_scan is None or t_thr is None:
        return None
    return round(t_thr - t_scan, 3)


@dataclass
class Run:
    scenario: str
    repeat: int
    rates: dict[str, float]  # side -> bogo-ops/s
    onset_s: float | None = None
    low_high_events: int = 0
    low_stall_s: float = 0.0
    error: str = ""


def parse_runs(gout: Path) -> tuple[dict, list[Run]]:
    """The guest's runs.json and YAML files -> Runs (a run whose stressor
    failed keeps its error and no rate)."""
    index = gout / "runs.json"
    if not index.exists():
        raise HarnessError(f"the guest left no {index} (see the console log)")
    data = json.loads(index.read_text())
    runs = []
    for r in data["runs"]:
        run = Run(r["scenario"], r["repeat"], {})
        if r.get("policy_error"):
            run.error = f"policy not attached: {r['policy_error'].strip()[:300]}"
            runs.append(run)
            continue
        for side in r["sides"]:
            y = gout / r["yaml"][side]
            if r["rc"].get(side) != 0 or not y.exists():
                run.error += (f"{side}: stress-ng rc {r['rc'].get(side)}: "
                              f"{r['stress_log'].get(side, '')[-300:]} ")
                continue
            run.rates[side] = stress_ng_rate(y.read_text())
        samples = r.get("samples") or []
        if "low" in r["sides"] and samples:
            run.onset_s = onset_delay(samples) if "high" in r["sides"] else None
            first, last = samples[0]["low"], samples[-1]["low"]
            run.low_high_events = last["high_events"] - first["high_events"]
            run.low_stall_s = round((last["pressure"].get("some", 0)
                                     - first["pressure"].get("some", 0)) / 1e6, 2)
        runs.append(run)
    return data.get("env", {}), runs


def summarize(runs: list[Run], scenarios: list[str]) -> dict:
    """Per scenario and side: median, min, max, n; ratio of the median to
    the side's alone median (high_alone for high, low_alone for low)."""
    out: dict = {}
    for sc in scenarios:
        rs = [r for r in runs if r.scenario == sc]
        entry: dict = {"label": LABELS.get(sc, sc), "runs": len(rs),
                       "errors": [r.error for r in rs if r.error]}
        for side in ("high", "low"):
            vals = [r.rates[side] for r in rs if side in r.rates]
            if vals:
                entry[side] = {"median": statistics.median(vals), "min": min(vals),
                               "max": max(vals), "n": len(vals), "values": vals}
        onsets = [r.onset_s for r in rs if r.onset_s is not None]
        if onsets:
            entry["onset_s"] = {"median": statistics.median(onsets), "min": min(onsets),
                                "max": max(onsets), "n": len(onsets)}
        if any("low" in r.rates for r in rs) and sc.startswith("both"):
            entry["low_high_events"] = statistics.median([r.low_high_events for r in rs])
            entry["low_stall_s"] = statistics.median([r.low_stall_s for r in rs])
        out[sc] = entry
    for entry in out.values():
        for side in ("high", "low"):
            alone = out.get(f"{side}_alone", {}).get(side)
            if side in entry and alone and alone["median"]:
                entry[side]["ratio_to_alone"] = entry[side]["median"] / alone["median"]
    return out


def table_rows(summary: dict) -> list[list[str]]:
    def cell(e: dict | None) -> str:
        if not e:
            return "-"
        return f"{e['median']:,.0f} ({e['min']:,.0f}..{e['max']:,.0f})"

    def ratio(e: dict | None) -> str:
        return f"{e['ratio_to_alone']:.2f}" if e and "ratio_to_alone" in e else "-"

    rows = []
    for e in summary.values():
        on = e.get("onset_s")
        rows.append([e["label"], cell(e.get("high")), ratio(e.get("high")),
                     cell(e.get("low")), ratio(e.get("low")),
                     f"{on['median']:.2f}" if on else "-",
                     "; ".join(e["errors"])[:40]])
    return rows


TABLE_HEADERS = ["scenario", "high ops/s median (min..max)", "high/alone",
                 "low ops/s median (min..max)", "low/alone", "onset->throttle s", "errors"]


def plot(summary: dict, path: Path, title: str) -> Path:
    """Bars: each side's median throughput relative to its alone median,
    with min..max whiskers, per scenario."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scs = [s for s in summary if not s.endswith("_alone")] or list(summary)
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


def to_json(params: Params, env: dict, runs: list[Run], summary: dict) -> dict:
    return {"params": asdict(params), "env": env, "summary": summary,
            "runs": [asdict(r) for r in runs]}
