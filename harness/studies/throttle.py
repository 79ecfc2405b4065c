"""The throttling experiment: an analogue of the RFC's headline, compared
with the existing knobs in the same run, and the checks of the sample
policy's mechanism that CI runs.

Two cgroups, high and low, run the same stress-ng --vm stressor in one
guest with swap (harness/guest/throttle.py). Scenarios:

  high_alone, low_alone   each side on its own: the reference throughputs
  both_none               both, no policy: what contention costs
  both_policy             both, samples/bpf/memcg attached to low, watching
                          the stalls of high's tasks
  both_memory_low         both, memory.low protecting high's working set
  both_memory_high        both, a static memory.high on low
  idle_policy             high holds memory and sleeps, low runs, the
                          policy attached: it must not trigger
  policy_detach           both_policy with the policy detached in the
                          middle of the run, cgroups and stressors kept

Each is repeated (round robin, so drift spreads over all); the report has
every run, per side the median bogo-ops/s and the spread (min..max), the
ratio of the medians to that side's "alone" median, how many policy runs
helped high, and the time from high's first page scans to low's first
memory.high event. Throughput is reported, never asserted: it depends on
the machine. What CI asserts is mechanism_failures(), per run.

Pure functions here (parsing, statistics, checks, table, plot) are tested
on saved output; harness.studies.run.throttle() runs the guest.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

ALL_SCENARIOS = ["high_alone", "low_alone", "both_none", "both_policy", "both_memory_low",
                 "both_memory_high", "idle_policy", "policy_detach"]
# The main job's throttling report (harness run): throughput, not asserted.
SHORT_SCENARIOS = ["high_alone", "both_none", "both_policy"]
# What CI asserts on (selftests/test_throttle.py): the policy's mechanism.
MECHANISM_SCENARIOS = ["idle_policy", "policy_detach"]
POLICY_SCENARIOS = ("both_policy", "policy_detach", "idle_policy")
LABELS = {
    "high_alone": "high alone", "low_alone": "low alone", "both_none": "both, no policy",
    "both_policy": "both, BPF sample policy",
    "both_memory_low": "both, memory.low on high", "both_memory_high": "both, memory.high on low",
    "idle_policy": "high idle, policy", "policy_detach": "both, policy detached mid-run",
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
    vm_workers: int = 1  # stress-ng --vm N per side (the RFC's run: 4, --vm-bytes 80%)
    seed: int = 2025
    threshold: int = 100  # pages scanned in high per window
    over_high: int = 262144  # pages (1 GiB): low is treated as this much over memory.high
    window_ms: int = 1000
    protect: str = "300M"  # memory.low of high: its whole working set
    low_high: str = "100M"  # memory.high of low: a third of its working set
    idle_bytes: int = 200 << 20  # idle_policy: what high holds while idle
    sample: str = "memcg"  # the policy program, in the guest tools' directory
    # The mechanism runs wait for events, each wait bounded (see
    # harness/guest/throttle.py drive_mechanism):
    idle_scans: int = 1000  # idle_policy: high's pages scanned by others, then observe
    fall: float = 0.75  # policy_detach: detach once low is at most this x its peak
    fall_wait_s: float = 60.0  # ... or after this long
    observe_s: float = 8.0  # idle_policy: observed after high's pages were scanned
    recover_wait_s: float = 40.0  # policy_detach: waiting for low to grow again
    mechanism_cap_s: float = 150.0  # no wait goes on past this after the start
    swap_mb: int = 2048
    memory: str = "512M"  # guest RAM
    cpus: int = 2

    def guest_args(self) -> list[str]:
        return ["--scenarios", ",".join(self.scenarios), "--repeats", str(self.repeats),
                "--seconds", str(self.seconds), "--vm-bytes", self.vm_bytes,
                "--vm-method", self.vm_method, "--vm-workers", str(self.vm_workers),
                "--seed", str(self.seed),
                "--threshold", str(self.threshold), "--over-high", str(self.over_high),
                "--window-ms", str(self.window_ms), "--protect", self.protect,
                "--low-high", self.low_high, "--swap-mb", str(self.swap_mb),
                "--idle-bytes", str(self.idle_bytes), "--idle-scans", str(self.idle_scans),
                "--fall", str(self.fall), "--fall-wait-s", str(self.fall_wait_s),
                "--observe-s", str(self.observe_s), "--recover-wait-s", str(self.recover_wait_s),
                "--mechanism-cap-s", str(self.mechanism_cap_s)]

    def estimate_s(self) -> float:
        """Typical guest time (mechanism runs: about 30 s each here)."""
        per = sum(30 if s in MECHANISM_SCENARIOS else self.seconds + 4 for s in self.scenarios)
        return per * self.repeats + 60

    def timeout_s(self) -> float:
        """Twice the estimate, and room for every mechanism run's bounds."""
        n_mech = self.repeats * sum(s in MECHANISM_SCENARIOS for s in self.scenarios)
        return self.estimate_s() * 2 + 300 + n_mech * (self.mechanism_cap_s + self.observe_s
                                                       + self.recover_wait_s + 2)

    def validate(self) -> None:
        bad = [s for s in self.scenarios if s not in ALL_SCENARIOS]
        if bad:
            raise HarnessError(f"unknown scenario(s) {bad}; known: {', '.join(ALL_SCENARIOS)}")
        if self.repeats < 1 or self.seconds < 2:
            raise HarnessError("--repeats must be >= 1 and --seconds >= 2")
        if not 0 < self.fall <= 1:
            raise HarnessError(f"fall must be in (0, 1], not {self.fall}")


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


def onset_delay(samples: list[dict[str, Any]]) -> float | None:
    """Seconds from high's first page scans to low's first memory.high
    event in a scenario's samples; None if either never happens."""
    if not samples:
        return None
    scan0 = samples[0]["high"]["pgscan"]
    ev0 = samples[0]["low"]["high_events"]
    t_scan: float | None = next((s["t"] for s in samples if s["high"]["pgscan"] > scan0), None)
    t_thr: float | None = next((s["t"] for s in samples if s["low"]["high_events"] > ev0), None)
    if t_scan is None or t_thr is None:
        return None
    return round(t_thr - t_scan, 3)


_TRIGGERED = re.compile(r"^memcg: (\d+\.\d+): triggered \((\d+) time")
# the first version of the sample: the time a trigger was seen, no release
_TRIGGERED_V1 = re.compile(r"^memcg: (\d+\.\d+): triggered (\d+) time")
_RELEASED = re.compile(r"^memcg: (\d+\.\d+): released")
_DETACHED = re.compile(r"^memcg: detached; triggered (\d+) time")


def policy_periods(log: str, t0: float) -> tuple[list[list[float | None]], int | None]:
    """The sample's output -> ([[start, end], ...] in seconds after t0 (end
    None while still triggered at detach; end == start for the first
    version of the sample, which printed no release), times triggered as
    its summary says (None without a summary))."""
    periods: list[list[float | None]] = []
    total = None
    for line in log.splitlines():
        if m := _TRIGGERED.match(line):
            periods.append([round(float(m[1]) - t0, 3), None])
        elif m := _TRIGGERED_V1.match(line):
            periods.append([round(float(m[1]) - t0, 3)] * 2)
        elif (m := _RELEASED.match(line)) and periods and periods[-1][1] is None:
            periods[-1][1] = round(float(m[1]) - t0, 3)
        elif m := _DETACHED.match(line):
            total = int(m[1])
    return periods, total


@dataclass
class Run:
    scenario: str
    repeat: int
    rates: dict[str, float]  # side -> bogo-ops/s
    onset_s: float | None = None
    low_high_events: int = 0
    low_stall_s: float = 0.0
    high_stall_s: float = 0.0
    error: str = ""
    # the policy: triggered periods [start, end] (s after the run began),
    # its own count, and (policy_detach) when it had detached
    triggers: list[list[float | None]] = field(default_factory=list)
    nr_triggers: int | None = None
    detached_s: float | None = None
    detach_sent_s: float | None = None
    stopped_s: float | None = None  # mechanism runs: when the stressors were killed
    # mechanism runs: what the guest waited for
    reached: dict[str, Any] = field(default_factory=dict)
    helped: bool | None = None  # both_policy: high above every no-policy run
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the 100 ms samples


def parse_runs(gout: Path) -> tuple[dict[str, Any], list[Run]]:
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
        run.reached = r.get("reached") or {}
        run.detach_sent_s = r.get("detach_sent_s")
        run.stopped_s = r.get("stopped_s")
        for side in [] if r.get("stopped") else r["sides"]:  # mechanism runs: no rates
            y = gout / r["yaml"][side]
            if r["rc"].get(side) != 0 or not y.exists():
                run.error += (f"{side}: stress-ng rc {r['rc'].get(side)}: "
                              f"{r['stress_log'].get(side, '')[-300:]} ")
                continue
            run.rates[side] = stress_ng_rate(y.read_text())
        samples = r.get("samples") or []
        run.samples = samples
        if "low" in r["sides"] and samples:
            run.onset_s = onset_delay(samples) if "high" in r["sides"] else None
            first, last = samples[0]["low"], samples[-1]["low"]
            run.low_high_events = last["high_events"] - first["high_events"]
            run.low_stall_s = _stall(first, last)
        if samples:
            run.high_stall_s = _stall(samples[0]["high"], samples[-1]["high"])
        if "policy_log" in r:
            run.triggers, run.nr_triggers = policy_periods(r["policy_log"],
                                                           r.get("t0_monotonic", 0.0))
            if r.get("policy_rc"):
                run.error += f"the policy exited {r['policy_rc']}: {r['policy_log'][-300:]} "
        run.detached_s = r.get("detached_s")
        runs.append(run)
    return data.get("env", {}), runs


def _stall(first: dict[str, Any], last: dict[str, Any]) -> float:
    stalled: float = last["pressure"].get("some", 0) - first["pressure"].get("some", 0)
    return round(stalled / 1e6, 2)


def summarize(runs: list[Run], scenarios: list[str]) -> dict[str, dict[str, Any]]:
    """Per scenario and side: median, min, max, n and every value; ratio of
    the median to the side's alone median (high_alone for high, low_alone
    for low). Each both_policy run is classed as helping high or not (see
    HELPED_FACTOR; sets Run.helped), and the scenario gets "helped": [k, n]."""
    none_high = [r.rates["high"] for r in runs if r.scenario == "both_none" and "high" in r.rates]
    for r in runs:
        if r.scenario == "both_policy" and "high" in r.rates and none_high:
            r.helped = r.rates["high"] > HELPED_FACTOR * max(none_high)
    out: dict[str, dict[str, Any]] = {}
    for sc in scenarios:
        rs = [r for r in runs if r.scenario == sc]
        entry: dict[str, Any] = {"label": LABELS.get(sc, sc), "runs": len(rs),
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
        if any("high" in r.rates for r in rs):
            entry["high_stall_s"] = statistics.median([r.high_stall_s for r in rs])
        classed = [r.helped for r in rs if r.helped is not None]
        if classed:
            entry["helped"] = [sum(classed), len(classed)]
        out[sc] = entry
    for entry in out.values():
        for side in ("high", "low"):
            alone = out.get(f"{side}_alone", {}).get(side)
            if side in entry and alone and alone["median"]:
                entry[side]["ratio_to_alone"] = entry[side]["median"] / alone["median"]
    return out


# A policy run "helped" high when high did more than this times the best
# no-policy run of the same experiment.
HELPED_FACTOR = 2.0


def to_json(params: Params, env: dict[str, Any], runs: list[Run],
            summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The samples stay in the guest's runs.json beside it."""
    return {"params": asdict(params), "env": env, "summary": summary,
            "runs": [{k: v for k, v in asdict(r).items() if k != "samples"} for r in runs]}


# The mechanism checks' margins (what selftests/test_throttle.py asserts).
SETTLE_S = 1.0  # after the detach, low's memory.high events have stopped by then
LOW_FALLS_TO = 0.75  # under the policy, low's memory.current falls to <= this x its
#                      peak before (Params.fall: the guest waits for it)
MIN_PEAK = 32 << 20  # ... from a peak of at least this
LOW_RECOVERS_BY = 1.1  # after the detach, it grows to >= this x its lowest after the
RECOVERS_MIN = 8 << 20  # detach, and by this much at least (the guest waits for it)


def _between(samples: list[dict[str, Any]], a: float, b: float) -> list[dict[str, Any]]:
    return [s for s in samples if a <= s["t"] <= b]


def _at(samples: list[dict[str, Any]], t: float) -> dict[str, Any]:
    """The last sample taken at or before t (the first one if none)."""
    before = [s for s in samples if s["t"] <= t]
    return before[-1] if before else samples[0]


def mechanism_failures(run: Run) -> list[str]:
    """What the sample policy must do in an idle_policy or policy_detach
    run, whatever the machine's speed; [] when it did all of it. The guest
    waits for the events (harness/guest/throttle.py drive_mechanism), so
    a slow machine makes the runs longer, not different.

    idle_policy: reclaim reached high's memory (else the run shows
    nothing), and yet the policy never triggered and low got no
    memory.high event.
    policy_detach: the policy triggered; before the detach low got
    memory.high events (it has no memory.high), and its memory.current fell to
    LOW_FALLS_TO of its peak (MIN_PEAK at least) or less; the policy was
    still triggered when it was detached; from SETTLE_S after the detach
    on, low got no memory.high event, and its memory.current grew again:
    to LOW_RECOVERS_BY times its lowest value after the detach and
    RECOVERS_MIN more, or more.

    Not asserted: that low got events right before the detach. With this
    kernel a throttled task can spend many seconds in one reclaim loop on
    its way back to user space, charging nothing, on a slow machine.
    Where low charges, events after the detach would show a policy still
    in effect; a machine this slow shows that less often."""
    if run.error:
        return [run.error]
    # what the samples show after the guest killed the stressors is the kill
    s = [x for x in run.samples if run.stopped_s is None or x["t"] <= run.stopped_s]
    if len(s) < 10:
        return [f"only {len(s)} samples"]
    out = []
    if run.nr_triggers is None:
        out.append("the policy printed no detach summary (killed, or never attached)")
    if run.scenario == "idle_policy":
        scanned = s[-1]["high"]["pgscan"] - s[0]["high"]["pgscan"]
        if not scanned or run.reached.get("high_scanned_s") is None:
            out.append(f"only {scanned} of high's pages were scanned: low's reclaim did not "
                       f"reach high's memory, so the run shows nothing (too little pressure)")
        if run.triggers or run.nr_triggers:
            more = "..." if len(run.triggers) > 3 else ""
            out.append(f"triggered {run.nr_triggers} time(s) while high was idle "
                       f"(periods {run.triggers[:3]}{more}; {scanned} of high's pages "
                       f"scanned by others)")
        if run.low_high_events:
            out.append(f"low got {run.low_high_events} memory.high events while high was idle")
        return out
    if run.scenario != "policy_detach":
        return [f"no mechanism check for {run.scenario}"]
    first = run.triggers[0][0] if run.triggers else None
    det, sent = run.detached_s, run.detach_sent_s
    if first is None or det is None or sent is None or first >= sent:
        return out + [f"the policy did not trigger (periods {run.triggers}, detached at {det})"]
    if len(_between(s, first, sent)) < 3:
        return out + [f"too few samples between the trigger at {first:.1f} s and the "
                      f"detach at {sent:.1f} s"]
    # From the first sample: low's memory.high is "max", so every event is
    # the policy's. Not from the last sample before the trigger: a sample's
    # time is when its reading began, and on a loaded host one reading can
    # take longer than the trigger's first event took to come (seen: the
    # one event of a run, then one reclaim of ten seconds).
    ev = _at(s, sent)["low"]["high_events"] - s[0]["low"]["high_events"]
    if ev <= 0:
        out.append(f"no memory.high event of low up to the detach at {sent:.1f} s "
                   f"(the policy triggered at {first:.1f} s)")
    upto = _between(s, 0, sent)
    ipeak = max(range(len(upto)), key=lambda i: upto[i]["low"]["current"])
    peak = upto[ipeak]["low"]["current"]
    lowest = min(x["low"]["current"] for x in upto[ipeak:])
    if peak < MIN_PEAK or lowest > LOW_FALLS_TO * peak:
        out.append(f"low's memory.current fell only to {lowest >> 20} MiB under the policy "
                   f"(from a peak of {peak >> 20} MiB; expected <= {LOW_FALLS_TO} x, "
                   f"from {MIN_PEAK >> 20} MiB at least)")
    a, b = run.triggers[-1] if run.triggers else (None, None)
    if not (a is not None and a <= sent and (b is None or b >= sent)):
        out.append(f"the policy was not triggered when it was detached at {sent:.1f} s "
                   f"(periods {run.triggers})")
    after = _between(s, det + SETTLE_S, s[-1]["t"])
    if len(after) < 3:
        return out + [f"too few samples after the detach at {det:.1f} s"]
    late = after[-1]["low"]["high_events"] - after[0]["low"]["high_events"]
    if late:
        out.append(f"low got {late} memory.high events from {det + SETTLE_S:.1f} s on, "
                   f"after the detach at {det:.1f} s")
    post = [x["low"]["current"] for x in _between(s, det, s[-1]["t"])]
    imin = min(range(len(post)), key=post.__getitem__)
    back = max(post[imin:])
    if back < max(LOW_RECOVERS_BY * post[imin], post[imin] + RECOVERS_MIN):
        out.append(f"low's memory.current did not grow again after the detach: at most "
                   f"{back >> 20} MiB after its lowest, {post[imin] >> 20} MiB "
                   f"(expected >= {LOW_RECOVERS_BY} x and {RECOVERS_MIN >> 20} MiB more)")
    return out
