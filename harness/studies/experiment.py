"""The phased throttling experiment: where a BPF policy beats the knobs
Linux already has, and where it does not (harness/guest/experiment.py runs
it in the guest; this module plans the cells, computes the metrics, the
statistics and the verdicts, and draws the plots).

Scenarios (one guest, swap on the ext4 scratch disk):
  s1  static contention: high and low run throughout;
  s2  high idle but resident: active, idle (memory held), active again;
  s3  high's working set grows mid-run (high_mb, then grow_mb);
  s4  one high and several lows (low_mb_s4), sizes unknown to the operator;
  s5  who pays memory.high: a pod-like parent (pod_high, pod_max) holds a
      latency service, high (reqload: svc_threads request threads, each
      request svc_req_kb mapped, touched and unmapped, beside an svc_ws_mb
      resident set), and batch lows (low_mb_s5) that keep the pod above
      its memory.high.

Arms: none; mlow:SIZE (memory.low on high, a sweep); mhigh:SIZE (memory.high
on the lows, a sweep); agent (PSI trigger on high -> lows' memory.high,
harness/guest/psi_agent.py); oracle (lows frozen while high is active);
sample[:PAGES] (samples/bpf/memcg); reclaim[:MB] (the sample, and a
memory.reclaim of the lows while it is triggered: what upstream's
bpf_proactive_reclaim kfunc would do); alone (the lows with a 1 MB high);
detach (the sample, detached mid-run); noop and always (negative controls:
a policy answering 0, and one answering always_pages whatever high does);
sigagent[:nb] (the control arm of the sample: a userspace agent on the
sample's own signal, the same tracepoint through a BPF ring buffer, that
writes the lows' memory.high to what an episode sets, usage - over_high
pages, and restores it when the triggered period ends; :nb writes it
with O_NONBLOCK; harness/guest/memcg_ops_check/sigagent.c); whopays (s5
only: the sample's memcg --who-pays on the pod, whose memcg_high_verdict()
lets the service's tasks defer their debts of the pod's memory.high).

Arms join static knobs with "+" (mlow:100M+mhigh:90M), and at most one
whopays with them (mlow:100M+whopays).

Metrics per run, from wsload's 10 ms progress samples and the 100 ms cgroup
samples (s5: see s5_metrics): throughput per side and phase (pages written per second), high's
memory.pressure some and full per phase (share of the phase's time), the
probe's p99 pass time per phase, onset (high active again until the lows
are throttled) and release (high idle until the lows run again), and the
memory.current of each cgroup over time.
"""

from __future__ import annotations

import json
import random
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessError

SCENARIOS = ("s1", "s2", "s3", "s4", "s5")
DESCRIPTION = {
    "s1": "static contention: high and low active throughout",
    "s2": "high idle but resident: active, idle with its memory held, active again",
    "s3": "high's working set grows mid-run",
    "s4": "one high, several lows of different sizes",
    "s5": "who pays: a latency service and batch lows in a pod above its memory.high",
}
# What each scenario's verdicts look at: high's phase that needs its memory,
# and the phase where the lows should run freely.
HIGH_PHASE = {"s1": "contended", "s2": "active2", "s3": "large", "s4": "contended",
              "s5": "contended"}
# Where the lows should run freely, and their free rate is measured (the
# second half of the phase, in the no-policy runs); where high starts to
# need memory (onset is measured from its start) and where it stops
# (release is measured from its start).
FREE_PHASE = {"s2": "idle", "s3": "small"}
ONSET_PHASE = {"s2": "active2", "s3": "large"}
RELEASE_PHASE = {"s2": "idle"}
# Where high needs back what it had (s2: active2 after active1): its refault
# time is until its memory.current is back to REFAULTED of what it was at
# the end of the earlier phase.
REFAULT_PHASE = {"s2": ("active2", "active1")}
REFAULTED = 0.95
# Where the detach arm detaches (the middle of it), and where its rule looks.
DETACH_PHASE = {"s1": "contended", "s2": "active1", "s3": "large", "s4": "contended"}
END_SLACK_S = 0.02  # a phase may end up to 2 samples after a task's last sample
STEP_S = 0.01  # onset and release are found to 10 ms (wsload samples every 10 ms)
WINDOW_S = 0.2  # ... as the start of the first 200 ms window where the lows' rate
BIN_S = 0.05  # ... is below THROTTLED, or back above half, of their free rate
THROTTLED = 0.25  # (bins of BIN_S: the plots' and the free rate's resolution)


# Params only s5's runs carry.
S5_PARAMS = ("pod_high", "pod_max", "svc_threads", "svc_req_kb", "svc_ws_mb", "svc_rate",
             "svc_lead_s", "low_nice")


@dataclass
class Params:
    # the matrix's (throttle --matrix): s5 is its own study, run by name
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS[:4]))
    arms: list[str] = field(default_factory=lambda: [
        "none", "alone", "mlow:260M", "mlow:150M", "mhigh:150M", "agent", "oracle",
        "oracle:evict", "sample", "reclaim", "detach", "noop", "always"])
    repeats: int = 10  # per cell, over all boots
    boots: int = 2
    only_boot: int = -1  # >= 0: run that boot's share only (the others, another time)
    seed: int = 1
    high_mb: int = 250
    low_mb: int = 250
    low_mb_s4: list[int] = field(default_factory=lambda: [100, 150, 200])
    grow_mb: int = 350
    s3_high_mb: int = 150
    probe_mb: int = 8
    probe_ms: int = 100
    run_s: float = 20.0
    active_s: float = 10.0
    idle_s: float = 10.0
    resume_s: float = 40.0  # s2's second active phase: long enough to fault back in
    populate_cap_s: float = 120.0
    threshold: int = 100
    over_high: int = 262144
    window_ms: int = 1000
    agent_trigger: str = "some 20000 500000"
    agent_throttle_to: str = "0"
    agent_release_s: float = 1.0
    always_pages: int = 262144
    memory: str = "512M"
    cpus: int = 2
    swap_mb: int = 2048
    swap: str = "disk"  # the guest's swap: a file on the ext4 scratch disk, zram, or none
    # s5: the pod's limits, the service (reqload) and the batch lows
    pod_high: str = "160M"
    pod_max: str = "320M"
    svc_threads: int = 2
    svc_req_kb: int = 4096
    svc_ws_mb: int = 60
    svc_rate: float = 10.0  # requests per second per thread
    svc_lead_s: float = 5.0  # the lows run this long before the requests start
    # the lows' nice value in s5: a batch job beside a service (without it,
    # on 2 vCPUs, the lows' reclaim starves the service of CPU, and its
    # tail is the CPU's, which no memory policy changes)
    low_nice: int = 19
    low_mb_s5: list[int] = field(default_factory=lambda: [150, 150, 150, 150])

    def validate(self) -> None:
        bad = [s for s in self.scenarios if s not in SCENARIOS]
        if bad:
            raise HarnessError(f"unknown scenario(s) {bad}; known: {', '.join(SCENARIOS)}")
        for a in self.arms:
            if "whopays" in a.split("+") and self.scenarios != ["s5"]:
                raise HarnessError(f"arm {a!r} is s5's alone (the verdict needs the pod): "
                                   "run it with --scenarios s5")
            if "+" in a:  # static knobs together, and at most one whopays
                parts = a.split("+")
                if any((x.partition(":")[0] not in ("mlow", "mhigh")
                        or not x.partition(":")[2]) and x != "whopays" for x in parts) \
                        or parts.count("whopays") > 1:
                    raise HarnessError(f"arm {a!r}: only mlow:SIZE and mhigh:SIZE combine "
                                       "with '+', and with one whopays")
                continue
            kind, colon, value = a.partition(":")
            if kind not in ("none", "mlow", "mhigh", "agent", "oracle", "sample", "reclaim",
                            "alone", "detach", "noop", "always", "sigagent", "whopays") \
                    or (kind in ("mlow", "mhigh") and not value) \
                    or (kind not in ("mlow", "mhigh", "sample", "reclaim", "oracle", "sigagent")
                        and colon) \
                    or (kind == "oracle" and colon and value != "evict") \
                    or (kind == "sigagent" and colon and value != "nb") \
                    or (kind in ("sample", "reclaim") and colon and not value.isdigit()):
                raise HarnessError(f"unknown arm {a!r}: none, mlow:SIZE, mhigh:SIZE, agent, "
                                   "oracle[:evict], sample[:PAGES], reclaim[:MB], sigagent[:nb], "
                                   "alone, detach, noop, always, whopays (s5)")
        if self.swap not in ("disk", "zram", "none"):
            raise HarnessError(f"swap={self.swap!r}: disk (a swap file on the scratch disk), "
                               "zram (compressed RAM; a kernel with CONFIG_ZRAM) or none")
        if self.repeats < 1 or self.boots < 1:
            raise HarnessError("--repeats and --boots must be >= 1")
        if self.only_boot >= self.boots:
            raise HarnessError(f"only_boot {self.only_boot}: boots are 0 .. {self.boots - 1}")

    def cell_params(self, scenario: str) -> dict[str, Any]:
        p = {k: v for k, v in asdict(self).items()
             if k not in ("scenarios", "arms", "repeats", "boots", "seed", "memory", "cpus",
                          "swap_mb", "swap", "low_mb_s4", "s3_high_mb", "only_boot",
                          "low_mb_s5") + (() if scenario == "s5" else S5_PARAMS)}
        if scenario == "s3":
            p["high_mb"] = self.s3_high_mb
        else:
            p.pop("grow_mb")
        if scenario == "s4":
            p["low_mb"] = list(self.low_mb_s4)
        if scenario == "s5":
            p["low_mb"] = list(self.low_mb_s5)
        return p

    def reps_in_boot(self, boot: int) -> range:
        """The repeats of each cell that run in this boot: spread evenly."""
        per, extra = divmod(self.repeats, self.boots)
        start = boot * per + min(boot, extra)
        return range(start, start + per + (1 if boot < extra else 0))

    def cells(self, boot: int) -> list[dict[str, Any]]:
        """This boot's runs, in an order shuffled with (seed, boot)."""
        cells = [{"scenario": s, "arm": a, "rep": r, "params": self.cell_params(s)}
                 for s in self.scenarios for a in self.arms for r in self.reps_in_boot(boot)]
        random.Random(self.seed * 1000 + boot).shuffle(cells)
        return cells

    def run_estimate_s(self, scenario: str) -> float:
        """Guest seconds of one run, populate and teardown included (TCG:
        the first S2 matrix took 53-61 s a run for 40 s of phases)."""
        body = {"s1": self.run_s, "s4": self.run_s, "s5": self.svc_lead_s + self.run_s,
                "s2": self.active_s + self.idle_s + self.resume_s,
                "s3": 2 * self.active_s}[scenario]
        return body + 10

    def boots_to_run(self) -> list[int]:
        return list(range(self.boots)) if self.only_boot < 0 else [self.only_boot]

    def estimate_s(self) -> float:
        return sum(self.run_estimate_s(s) * len(self.arms) * len(self.reps_in_boot(b))
                   for s in self.scenarios for b in self.boots_to_run())

    def boot_timeout_s(self, boot: int) -> float:
        n = len(self.reps_in_boot(boot))
        return 300 + 3 * sum(self.run_estimate_s(s) * len(self.arms) * n
                             for s in self.scenarios)


def set_params(params: Params, assignments: list[str]) -> None:
    """NAME=VALUE assignments (--set), converted to the field's type."""
    fields = asdict(params)
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq or name not in fields or name in ("scenarios", "arms"):
            raise HarnessError(f"--set {a!r}: want NAME=VALUE with NAME one of "
                               + ", ".join(k for k in fields if k not in ("scenarios", "arms")))
        cur = fields[name]
        val: object
        try:
            if isinstance(cur, list):
                val = [int(x) for x in value.split(",")]
            elif isinstance(cur, bool):
                val = value.lower() in ("1", "true", "yes")
            else:
                val = type(cur)(value)
        except ValueError as e:
            raise HarnessError(f"--set {a!r}: {e}") from None
        setattr(params, name, val)


# ---- metrics of one run ----

def count_at(samples: list[list[int]], x: float) -> float | None:
    """wsload's cumulative page count at CLOCK_MONOTONIC x (s), interpolated
    between its [ns, pages] samples: 0 before the first (the task had not
    started: it starts frozen), None after the last."""
    lo, hi = 0, len(samples) - 1
    if hi < 1 or x > samples[-1][0] / 1e9:
        return None
    if x < samples[0][0] / 1e9:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if samples[mid][0] / 1e9 <= x:
            lo = mid
        else:
            hi = mid
    (t0, n0), (t1, n1) = samples[lo], samples[hi]
    return n0 + (n1 - n0) * (x * 1e9 - t0) / (t1 - t0) if t1 > t0 else n0


def _rate(samples: list[list[int]], a: float, b: float) -> float | None:
    """Pages per second between CLOCK_MONOTONIC a and b (s). A b up to
    END_SLACK_S after the last sample (the task's last 10 ms sample fell
    just before the phase's end) ends at the last sample."""
    if samples and 0 < b - samples[-1][0] / 1e9 <= END_SLACK_S:
        b = samples[-1][0] / 1e9
    na, nb = count_at(samples, a), count_at(samples, b)
    return None if na is None or nb is None or b <= a else (nb - na) / (b - a)


def _total(rates: list[float | None]) -> float | None:
    """The sum of rates, or None if any of them is None."""
    known = [r for r in rates if r is not None]
    return sum(known) if len(known) == len(rates) else None


def binned(samples: list[list[int]], a: float, b: float, width: float = BIN_S
           ) -> list[tuple[float, float]]:
    """(bin start, pages/s) over [a, b), bins of `width` s."""
    out = []
    for k in range(int((b - a) / width + 1e-6)):
        x = a + k * width
        r = _rate(samples, x, x + width)
        if r is not None:
            out.append((x, r))
    return out


def lows_binned(run: dict[str, Any], a: float, b: float) -> list[tuple[float, float]]:
    """The lows' summed rate in 50 ms bins over [a, b)."""
    per = [dict(binned(t["samples"], a, b)) for k, t in run["tasks"].items()
           if k.startswith("low") and t.get("samples")]
    if not per:
        return []
    keys = sorted(set.intersection(*(set(p) for p in per)))
    return [(x, sum(p[x] for p in per)) for x in keys]


def first_window(run: dict[str, Any], a: float, b: float,
                 pred: Callable[[float], bool]) -> float | None:
    """The first t in [a, b - WINDOW_S], in steps of STEP_S, where pred holds
    for the lows' summed rate over [t, t + STEP_S] and over [t, t +
    WINDOW_S]: a change of the lows' rate located to 10 ms, and not one
    slow or fast bin."""
    series = [t.get("samples", []) for k, t in run["tasks"].items() if k.startswith("low")]
    if not series:
        return None
    for k in range(int((b - a - WINDOW_S) / STEP_S + 1e-6) + 1):
        t = a + k * STEP_S
        for w in (STEP_S, WINDOW_S):
            total = _total([_rate(s, t, t + w) for s in series])
            if total is None or not pred(total):
                break
        else:
            return t
    return None


def phase_bounds(run: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {name: (a, b) for name, a, b in run.get("phases", []) if b is not None}


def _pressure(run: dict[str, Any], cg: str, kind: str, a: float, b: float) -> float | None:
    """Share of [a, b] that cg's tasks stalled (memory.pressure `kind`)."""
    ss = [s for s in run.get("samples", []) if a <= s["t"] <= b and cg in s]
    if len(ss) < 2:
        return None
    d: float = ss[-1][cg]["pressure"].get(kind, 0) - ss[0][cg]["pressure"].get(kind, 0)
    span: float = ss[-1]["t"] - ss[0]["t"]
    return d / 1e6 / span


def _p99(passes: list[list[int]], a: float, b: float) -> float | None:
    xs = sorted(d / 1e6 for t, d in passes if a <= t / 1e9 <= b)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def refault_time(run: dict[str, Any], phase: str, before: str) -> float | None:
    """Seconds from the start of `phase` until high's memory.current is back
    to REFAULTED of its most in the last second of `before` (0 if it never
    lost it); None if not within the phase. To the cgroup sampling, 0.1 s."""
    ph = phase_bounds(run)
    if phase not in ph or before not in ph:
        return None
    ss = [s for s in run.get("samples", []) if "high" in s]
    end = ph[before][1]
    was = [s["high"]["current"] for s in ss if end - 1.0 <= s["t"] < end]
    if not was:
        return None
    a, b = ph[phase]
    for s in ss:
        t: float = s["t"]
        if a <= t <= b and s["high"]["current"] >= REFAULTED * max(was):
            return round(t - a, 3)
    return None


_SAMPLE_LINE = re.compile(r"memcg: ([0-9.]+): (triggered|released)")


def policy_switches(run: dict[str, Any]) -> list[tuple[float, bool]]:
    """When the arm's policy went on (True) and off, CLOCK_MONOTONIC s: the
    sample's own lines (times its BPF programs took) or the agent's JSON
    lines (throttle, release)."""
    out = []
    for _t, line in run.get("helper", {}).get("lines", []):
        m = _SAMPLE_LINE.search(line)
        if m:
            out.append((float(m.group(1)), m.group(2) == "triggered"))
        elif line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("action") in ("throttle", "release"):
                out.append((d["t"], d["action"] == "throttle"))
    return sorted(out)


def policy_times(run: dict[str, Any], on_phase: str | None, off_phase: str | None
                 ) -> dict[str, Any]:
    """The policy's own onset (from the start of on_phase to its first
    switch on in it; 0 if it was on already) and release (from the start
    of off_phase to its first switch off in it; 0 if it was off already)."""
    ph, sw = phase_bounds(run), policy_switches(run)
    m: dict[str, Any] = {}
    if not sw:
        return m
    if on_phase in ph:
        a, b = ph[on_phase]
        was_on = [v for t, v in sw if t < a][-1:] == [True]
        on = [t for t, v in sw if v and a <= t <= b]
        m["policy_onset_s"] = 0.0 if was_on else round(on[0] - a, 3) if on else None
    if off_phase in ph:
        a, b = ph[off_phase]
        was_on = [v for t, v in sw if t < a][-1:] == [True]
        off = [t for t, v in sw if not v and a <= t <= b]
        m["policy_release_s"] = (round(off[0] - a, 3) if off else None) if was_on else 0.0
    return m


def run_metrics(run: dict[str, Any], free_rate: float | None = None) -> dict[str, Any]:
    """Per phase: high's and the lows' throughput, high's stall shares, the
    probe's p99 (ms); onset and release (s) where the scenario has them.
    free_rate: the lows' rate when they run freely (pages/s), for onset
    and release; s2 measures it in its own idle phase's second half when
    not given."""
    m: dict[str, Any] = {"phases": {}}
    if "error" in run or "tasks" not in run:
        return m | {"error": run.get("error", "no tasks")}
    if run["scenario"] == "s5":
        return m | s5_metrics(run)
    lows = [k for k in run["tasks"] if k.startswith("low")]
    for name, (a, b) in phase_bounds(run).items():
        hi = _rate(run["tasks"]["high"].get("samples", []), a, b)
        lo = [_rate(run["tasks"][k].get("samples", []), a, b) for k in lows]
        m["phases"][name] = {
            "high": hi, "low": _total(lo),
            "high_some": _pressure(run, "high", "some", a, b),
            "high_full": _pressure(run, "high", "full", a, b),
            "probe_p99_ms": _p99(run["tasks"]["probe"].get("passes", []), a, b),
            "seconds": b - a}
    ph = phase_bounds(run)
    sc = run["scenario"]
    fp, op, rp = FREE_PHASE.get(sc), ONSET_PHASE.get(sc), RELEASE_PHASE.get(sc)
    ref = free_rate
    if ref is None and fp in ph:
        fa, fb = ph[fp]
        tail = [v for _, v in lows_binned(run, (fa + fb) / 2, fb)]
        ref = statistics.median(tail) if tail else None
    m["free_rate"] = ref
    free_before = None
    if ref and rp in ph:
        # release: high idles; the lows' rate is back above half the free rate
        ra, rb = ph[rp]
        rel = first_window(run, ra, rb, lambda v: v >= 0.5 * ref)
        m["release_s"] = None if rel is None else round(rel - ra, 3)
        free_before = rel is not None
    elif ref and fp in ph and fp != op:
        # free at the end of the free phase (its last second)?
        fa, fb = ph[fp]
        last = [v for _, v in lows_binned(run, fb - 1.0, fb)]
        free_before = bool(last) and statistics.median(last) >= 0.5 * ref
    if ref and op in ph:
        # onset: high needs memory; the lows drop below THROTTLED of their free
        # rate. Only where they ran freely before: else there is no onset.
        oa, ob = ph[op]
        ons = first_window(run, oa, ob, lambda v: v < THROTTLED * ref)
        m["onset_s"] = None if ons is None or not free_before else round(ons - oa, 3)
    if sc in REFAULT_PHASE:
        m["refault_s"] = refault_time(run, *REFAULT_PHASE[sc])
    m |= policy_times(run, op, rp)
    marks = {w: t for t, w in run.get("marks", [])}
    dp = DETACH_PHASE.get(sc)
    if run["arm"] == "detach" and "detached" in marks and dp in ph:
        # the lows before the detach (its phase's start to it) and after (1 s
        # after it to the phase's end)
        da, db = ph[dp]
        lo = [_rate(run["tasks"][k].get("samples", []), da, marks["detach"]) for k in lows]
        la = [_rate(run["tasks"][k].get("samples", []), marks["detached"] + 1.0, db)
              for k in lows]
        if None not in lo and None not in la:
            m["lows_before_detach"], m["lows_after_detach"] = sum(lo), sum(la)
        # the mechanism: memory.high events of the lows before it and none from
        # 1 s after it on; their memory.current growing again after it
        ss = run.get("samples", [])
        ev = [(x["t"], x["lows"]["high_events"]) for x in ss if "lows" in x]
        cur = [x["lows"]["current"] for x in ss if "lows" in x and
               marks["detached"] <= x["t"] <= db]
        if ev and cur:
            at = [e for t, e in ev if t <= marks["detach"]]
            late = [e for t, e in ev if marks["detached"] + 1.0 <= t <= db]
            m["lows_events_before_detach"] = (at[-1] - ev[0][1]) if at else 0
            m["lows_events_after_detach"] = (late[-1] - late[0]) if late else None
            m["lows_regrew_after_detach"] = cur[-1] >= 1.1 * min(cur) + (1 << 20)
            # or, with no free memory to grow into, they run at half their free rate
            after = m.get("lows_after_detach")
            m["lows_ran_after_detach"] = bool(ref and after is not None and after >= 0.5 * ref)
    return m


def percentile(xs: list[float], q: float) -> float | None:
    """reqload's percentile: the value at rank round(q * (n - 1)) of the
    sorted values."""
    if not xs:
        return None
    ys = sorted(xs)
    return ys[int(q * (len(ys) - 1) + 0.5)]


def _done_rate(samples: list[list[int]], a: float, b: float) -> float | None:
    """Pages per second over [a, b] of a task that may have died before b
    (OOM-killed): what it did until its last sample, over the whole span."""
    if not samples or b <= a:
        return None
    last = samples[-1][0] / 1e9
    end = count_at(samples, min(b, last))
    start = count_at(samples, a)
    return None if end is None or start is None else (end - start) / (b - a)


def s5_metrics(run: dict[str, Any]) -> dict[str, Any]:
    """s5's metrics, in its one phase ("contended"): the service's request
    latencies (p50, p99, p999, max in ms, from every request's latency as
    reqload measured it: from its scheduled arrival; a request it never
    started before its end counts as unserved, with the end minus its
    arrival as its latency, a lower bound), its requests, late and
    unserved ones; the lows' throughput (pages/s, a killed low counting what it did
    until it died) and OOM kills; the pod's peak (memory.peak, MiB), its
    most sampled memory.current above its memory.high (MiB, 0 if never),
    its own memory.high events (memory.events.local) and its memory.pressure
    some and full (share
    of the phase), and high's."""
    ph = phase_bounds(run)
    if "contended" not in ph:
        return {"error": "no contended phase"}
    a, b = ph["contended"]
    svc = run["tasks"]["high"]
    lat = svc.get("lat_ms") or []
    if svc.get("rc") != 0 or not lat:
        return {"error": f"the service failed: rc {svc.get('rc')}, {len(lat)} requests, "
                f"{' / '.join(str(x) for _, x in svc.get('lines', []))[-200:]!r}"}
    lows = [k for k in run["tasks"] if k.startswith("low")]
    pod = run.get("pod", {})
    events = pod.get("events", {})
    ss = [x for x in run.get("samples", []) if "pod" in x and a <= x["t"] <= b]
    high = _size(run["params"]["pod_high"])
    ev = [x["pod"].get("high_events_local", x["pod"]["high_events"]) for x in ss]
    c: dict[str, Any] = {
        "svc_p50_ms": percentile(lat, 0.5), "svc_p99_ms": percentile(lat, 0.99),
        "svc_p999_ms": percentile(lat, 0.999), "svc_max_ms": max(lat),
        "svc_requests": len(lat), "svc_late": svc.get("late"),
        "svc_unserved": svc.get("unserved"),
        "low": _total([_done_rate(run["tasks"][k].get("samples", []), a, b) for k in lows])
        if lows else None,
        # memory.events counts its subtree's: the lows' parent has every low's
        "lows_oom_kills": int(events.get("lows", {}).get("oom_kill", 0)),
        "pod_peak_mb": pod["peak"] / 2**20 if pod.get("peak") else None,
        "pod_over_high_mb": max(0.0, max(x["pod"]["current"] for x in ss) - high) / 2**20
        if ss else None,
        "pod_high_events": ev[-1] - ev[0] if ev else None,
        "pod_some": _pressure(run, "pod", "some", a, b),
        "pod_full": _pressure(run, "pod", "full", a, b),
        "high_some": _pressure(run, "high", "some", a, b),
        "high_full": _pressure(run, "high", "full", a, b),
        "high": None, "probe_p99_ms": None, "seconds": b - a}
    return {"phases": {"contended": c}}


def s5_slack_mb(pod_high: str) -> float:
    """The verdict's slack above the pod's memory.high, in MiB, as
    mm/memcontrol.c has it (patch 15): an eighth of memory.high, at least 16
    charge batches of 64 pages of 4 KiB."""
    return max(_size(pod_high) / 8, 16 * 64 * 4096) / 2**20


def _size(v: str) -> int:
    """A cgroup size ("160M", "1G", "max", bytes) in bytes; max: no limit."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if v == "max":
        return 1 << 62
    return int(v[:-1]) * units[v[-1].upper()] if v[-1:].upper() in units else int(v)


# ---- over all runs (bench.parse_runs reads them) ----

def free_rates(runs: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """The lows' free rate per (scenario, boot): the median, over the `none`
    runs, of the lows' rate in the second half of the free phase."""
    out: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        ph = phase_bounds(r)
        fp = FREE_PHASE.get(r["scenario"])
        if r["arm"] != "none" or "error" in r or fp not in ph:
            continue
        a, b = ph[fp]
        v = [x for _, x in lows_binned(r, (a + b) / 2, b)]
        if v:
            out.setdefault((r["scenario"], r.get("boot", 0)), []).append(statistics.median(v))
    return {k: statistics.median(v) for k, v in out.items()}


def all_metrics(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    free = free_rates(runs)
    return [run_metrics(r, free.get((r["scenario"], r.get("boot", 0)))) for r in runs]
