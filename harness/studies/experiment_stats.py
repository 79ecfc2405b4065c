"""The phased experiment's statistics and judgements over runs: medians
with bootstrap intervals per scenario, arm and phase, the per-run verdict
rules, and the issue's targets (harness/studies/experiment.py computes the metrics
of each run)."""

from __future__ import annotations

import random
import statistics
import zlib
from typing import Any

from harness.studies.experiment import (
    FREE_PHASE,
    HIGH_PHASE,
    ONSET_PHASE,
    RELEASE_PHASE,
    Params,
    s5_slack_mb,
)


def metric_values(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], scenario: str,
                  arm: str, key: str, phase: str | None) -> list[float]:
    return [x for x, _ in metric_values_by_boot(runs, metrics, scenario, arm, key, phase)]


def metric_values_by_boot(runs: list[dict[str, Any]], metrics: list[dict[str, Any]],
                          scenario: str, arm: str, key: str, phase: str | None
                          ) -> list[tuple[float, int]]:
    """The metric of each run of the cell that has it, with the run's boot."""
    out = []
    for r, m in zip(runs, metrics, strict=True):
        if r["scenario"] != scenario or r["arm"] != arm or "error" in m:
            continue
        v = m["phases"].get(phase, {}).get(key) if phase else m.get(key)
        if v is not None:
            out.append((v, int(r.get("boot", 0))))
    return out


CI_METHOD = ("95 % percentile bootstrap, two-stage: the boots resampled with "
             "replacement, then the runs within each (2,000 resamples); one boot: the runs")


def median_ci(xs: list[float], n: int = 2000, seed: int = 0,
              boots: list[int] | None = None) -> tuple[float, float, float]:
    """Median with a 95 % percentile bootstrap interval. With `boots` (each
    x's boot) and more than one boot, a two-stage bootstrap (CI_METHOD):
    runs of one boot share its state (its page cache, its placement), so
    they are not independent, and resampling them as if they were gives
    intervals too narrow (review of v2: halves of one sitting differ by
    up to 2.5x)."""
    rng = random.Random(seed)
    by: dict[int, list[float]] = {}
    for x, b in zip(xs, boots or [0] * len(xs), strict=True):
        by.setdefault(b, []).append(x)
    keys = sorted(by)

    def once() -> float:
        if len(keys) == 1:
            return statistics.median(rng.choices(xs, k=len(xs)))
        pick: list[float] = []
        for b in rng.choices(keys, k=len(keys)):
            pick += rng.choices(by[b], k=len(by[b]))
        return statistics.median(pick)
    meds = sorted(once() for _ in range(n))
    return statistics.median(xs), meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def _resample(rng: random.Random, pairs: list[tuple[float, int]]) -> list[float]:
    """One two-stage resample of (value, boot) pairs: boots, then runs."""
    by: dict[int, list[float]] = {}
    for x, b in pairs:
        by.setdefault(b, []).append(x)
    keys = sorted(by)
    if len(keys) == 1:
        return rng.choices(by[keys[0]], k=len(by[keys[0]]))
    out: list[float] = []
    for b in rng.choices(keys, k=len(keys)):
        out += rng.choices(by[b], k=len(by[b]))
    return out


def ratio_ci(pairs: list[tuple[float, int]], base: list[tuple[float, int]], n: int = 4000,
             seed: int = 0) -> tuple[float, float, float]:
    """median(pairs) / median(base), with a 95 % two-stage bootstrap
    interval (each side's boots, then its runs, resampled on its own):
    the ratio of two arms of one sitting."""
    if not pairs or not base:
        raise ValueError("ratio_ci needs two non-empty samples")
    rng = random.Random(seed)
    point = statistics.median(x for x, _ in pairs) / statistics.median(x for x, _ in base)
    rs = sorted(statistics.median(_resample(rng, pairs)) / statistics.median(_resample(rng, base))
                for _ in range(n))
    return point, rs[int(0.025 * n)], rs[int(0.975 * n) - 1]


def boot_medians(pairs: list[tuple[float, int]]) -> dict[str, float]:
    """The median of each boot's runs, by boot ("0", "1", ...)."""
    by: dict[int, list[float]] = {}
    for x, b in pairs:
        by.setdefault(b, []).append(x)
    return {str(b): statistics.median(v) for b, v in sorted(by.items())}


def sittings(runs: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The sittings the runs come from, each with its boots."""
    out: dict[str, set[int]] = {}
    for r in runs:
        out.setdefault(str(r.get("sitting", "")), set()).add(int(r.get("boot", 0)))
    return {k: sorted(v) for k, v in out.items()}


# s5's metrics (experiment.s5_metrics), summarized like the others.
S5_KEYS = ("svc_p50_ms", "svc_p99_ms", "svc_p999_ms", "svc_max_ms", "svc_requests", "svc_late",
           "svc_unserved", "lows_oom_kills", "pod_peak_mb", "pod_over_high_mb", "pod_high_events",
           "pod_some", "pod_full")


def _cell(pairs: list[tuple[float, int]], seed: str) -> dict[str, Any]:
    """A summary cell of (value, boot) pairs: the median, its CI_METHOD
    interval (seeded by the cell's name), n and each boot's median."""
    xs, bs = [x for x, _ in pairs], [b for _, b in pairs]
    med, lo, hi = median_ci(xs, seed=zlib.crc32(seed.encode()), boots=bs)
    return {"median": med, "ci": [lo, hi], "n": len(xs), "boots": boot_medians(pairs)}


def summarize(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params
              ) -> list[dict[str, Any]]:
    """Per scenario, arm and phase: medians with CI_METHOD's intervals, the
    boots' medians, the sittings."""
    rows = []
    for s in params.scenarios:
        phases = sorted({p for r, m in zip(runs, metrics, strict=True) if r["scenario"] == s
                         for p in m["phases"]}, key=lambda p: min(
            (x[1] for r in runs if r["scenario"] == s for x in r.get("phases", [])
             if x[0] == p), default=0))
        for a in params.arms:
            row: dict[str, Any] = {"scenario": s, "arm": a, "runs": sum(
                1 for r in runs if r["scenario"] == s and r["arm"] == a), "phases": {},
                "sittings": sorted({str(r.get("sitting", "")) for r in runs
                                    if r["scenario"] == s and r["arm"] == a})}
            for ph in phases:
                cell: dict[str, Any] = {}
                for key in ("high", "low", "high_some", "high_full", "probe_p99_ms",
                            *S5_KEYS):
                    pairs = metric_values_by_boot(runs, metrics, s, a, key, ph)
                    if pairs:
                        cell[key] = _cell(pairs, f"{s}{a}{ph}{key}")
                row["phases"][ph] = cell
            for key in ("onset_s", "release_s", "refault_s", "policy_onset_s",
                        "policy_release_s"):
                pairs = metric_values_by_boot(runs, metrics, s, a, key, None)
                if pairs:
                    row[key] = _cell(pairs, f"{s}{a}{key}") | {
                        "missing": row["runs"] - len(pairs)}
            rows.append(row)
    return rows


def verdicts(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params,
             k_of_n: float = 0.7) -> list[dict[str, Any]]:
    """Per-run rules, each applied to every arm so that the controls are
    judged by the same rule as the policy:

    gain (every scenario): a run is good when high's throughput in the
    scenario's high phase is above 2x the best run of `none`, and not
    starved (>= STARVED of the best arm's median). An arm passes
    when at least k_of_n of its runs are good.
    conserve (s2, s3): a run is good when the lows' throughput where they
    should run freely (s2: high idle; s3: high small) is at least half the
    median of `none` there.
    recover (the detach arm): a run is good when the lows had memory.high
    events before the detach, none from 1 s after it to the end of its
    phase, and their memory.current grew again (by 10 % and 1 MiB from its
    lowest after the detach) or, where there was no free memory to grow
    into, they ran at half their free rate after it. Their throughput before and after is
    reported, not judged: under TCG, swapping 250 MB back in takes longer
    than a phase.
    """
    out = []
    for s in params.scenarios:
        hp = HIGH_PHASE[s]
        best_none = max(metric_values(runs, metrics, s, "none", "high", hp), default=None)
        none_free = metric_values(runs, metrics, s, "none", "low", FREE_PHASE.get(s))
        # not starved: a gain in the thrashing regime (2x of a few kpages/s) is none;
        # "alone" is no arm to compare with (high's working set is 1 MB there)
        floor = STARVED * max((statistics.median(v) for b in params.arms if b != "alone"
                               if (v := metric_values(runs, metrics, s, b, "high", hp))),
                              default=0)
        for a in params.arms:
            if a in ("none", "alone"):
                continue
            xs = metric_values(runs, metrics, s, a, "high", hp)
            if best_none and xs:
                good = sum(1 for x in xs if x > 2 * best_none and x >= floor)
                out.append({"scenario": s, "arm": a, "rule": "gain",
                            "text": f"high's {hp} throughput > 2x the best no-policy run "
                            f"and >= {STARVED:.0%} of the best arm's median",
                            "good": good, "runs": len(xs),
                            "pass": good >= k_of_n * len(xs)})
            if a == "detach":
                ds = [m for r, m in zip(runs, metrics, strict=True)
                      if r["scenario"] == s and r["arm"] == a and "error" not in m]
                good = sum(1 for m in ds if m.get("lows_events_before_detach", 0) > 0
                           and m.get("lows_events_after_detach") == 0
                           and (m.get("lows_regrew_after_detach")
                                or m.get("lows_ran_after_detach")))
                if ds:
                    out.append({"scenario": s, "arm": a, "rule": "recover",
                                "text": "the lows throttled before the detach (memory.high "
                                "events), none 1 s after it, and growing again or "
                                "running at half their free rate",
                                "good": good, "runs": len(ds),
                                "pass": good >= k_of_n * len(ds)})
            if s in FREE_PHASE and none_free:
                ys = metric_values(runs, metrics, s, a, "low", FREE_PHASE[s])
                ref = statistics.median(none_free)
                if ys:
                    good = sum(1 for y in ys if y >= 0.5 * ref)
                    out.append({"scenario": s, "arm": a, "rule": "conserve",
                                "text": f"the lows' throughput in {FREE_PHASE[s]} >= half "
                                "of no policy's", "good": good, "runs": len(ys),
                                "pass": good >= k_of_n * len(ys)})
    return out


# What each arm must do with the rules: the policy's arms pass them, the
# negative controls fail the one they exist for (else the rule cannot tell
# them from a policy); the baselines are reported, not judged.
MUST_FAIL = {"noop": "gain", "always": "conserve"}


def _must(v: dict[str, Any]) -> str | None:
    """What judge() wants of a verdict: "fail" (a control's own rule),
    "pass" (a BPF arm's gain and conserve, detach's recover), or None (a
    baseline's, reported, not judged)."""
    kind = v["arm"].split(":")[0]
    if MUST_FAIL.get(kind) == v["rule"]:
        return "fail"
    if (kind in BPF_ARMS and v["rule"] in ("gain", "conserve")) \
            or (kind == "detach" and v["rule"] == "recover"):
        return "pass"
    return None


def judge(verdicts: list[dict[str, Any]]) -> list[str]:
    """The experiment's verdict from the per-run rules: what went wrong,
    empty when nothing did. A BPF arm (sample[:N], reclaim[:MB]) must
    pass gain and conserve, detach must pass recover, and noop must fail
    gain and always conserve."""
    bad = []
    for v in verdicts:
        what = f"{v['scenario']} {v['arm']} {v['rule']} {v['good']}/{v['runs']}"
        must = _must(v)
        if must == "fail" and v["pass"]:
            bad.append(what + " passes: the rule does not tell it from a policy")
        elif must == "pass" and not v["pass"]:
            bad.append(what + " fails")
    return bad


def judged(verdicts: list[dict[str, Any]]) -> int:
    """How many of the verdicts judge() looks at (the others are baselines)."""
    return sum(1 for v in verdicts if _must(v))


def _median(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], s: str, a: str,
            key: str, phase: str | None) -> float | None:
    xs = metric_values(runs, metrics, s, a, key, phase)
    return statistics.median(xs) if xs else None


def _target(s: str, a: str, name: str, value: float | None, goal: str, ok: bool | None,
            detail: str) -> dict[str, Any]:
    return {"scenario": s, "arm": a, "target": name, "value": value, "goal": goal,
            "pass": ok, "detail": detail}


# The arms of a BPF policy, which the targets are about.
BPF_ARMS = ("sample", "reclaim", "whopays")


def is_bpf_arm(arm: str) -> bool:
    """A BPF policy's arm, alone or with static knobs (mlow:100M+whopays)."""
    return any(x.split(":")[0] in BPF_ARMS for x in arm.split("+"))


def is_static_arm(arm: str) -> bool:
    """none, mlow:SIZE, mhigh:SIZE, or those together: no program, no agent."""
    return all(x.split(":")[0] in ("none", "mlow", "mhigh") for x in arm.split("+"))
AS_WELL = 0.9  # "as well" for targets at equal terms: within 10 % (medians of noise)
STARVED = 0.05  # ... and a side below 5 % of its best arm's median is starved


def targets(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params
            ) -> list[dict[str, Any]]:
    """The issue's targets for each BPF policy arm (sample[:N], reclaim[:MB]),
    from the medians over runs:

    s2, s3: high's throughput against the best static setting (none,
    mlow:*, mhigh:*) whose lows do as well (AS_WELL: within 10 %) where
    they should run freely ("at equal work conservation"), and the lows'
    throughput against the best static setting whose high does as well
    ("at equal protection"); goal >= 1.5x. A side below STARVED of the
    best arm's median on that side counts as 0: every static setting does
    as well as a policy that starves it. None where no static setting is as
    good on the other side (then there is nothing to beat at equal terms).
    s2: onset <= 0.1 s and release <= 1 s, and both >= 10x faster than
    the agent's; each as the lows' throughput shows it (onset_s,
    release_s: 10 ms) and as the policy's own switching times show it
    (policy_onset_s, policy_release_s: the sample's BPF timestamps, the
    agent's log).
    s1: high >= 90 % of the oracle's, the lows >= 5 % of theirs alone
    (the `alone` arm).
    """
    out = []
    for s in params.scenarios:
        hp, fp = HIGH_PHASE[s], FREE_PHASE.get(s)
        static = [a for a in params.arms if is_static_arm(a)]
        # the control arm: a userspace agent on the policy's own signal
        sig = [a for a in params.arms if a.split(":")[0] == "sigagent"]

        def med(a: str, key: str, phase: str | None, s: str = s) -> float | None:
            return _median(runs, metrics, s, a, key, phase)
        for a in params.arms:
            if not is_bpf_arm(a):
                continue
            hi, lo = med(a, "high", hp), med(a, "low", fp) if fp else None
            if fp and hi is not None and lo is not None:
                for name, mine, other, side, oside, against in (
                        ("high at equal conservation", hi, lo, "high", "low", static),
                        ("lows at equal protection", lo, hi, "low", "high", static),
                        ("high vs sigagent at equal conservation", hi, lo, "high", "low",
                         sig),
                        ("lows vs sigagent at equal protection", lo, hi, "low", "high",
                         sig)):
                    if not against:
                        continue
                    ph, oph = (hp, fp) if side == "high" else (fp, hp)
                    # a side starved under this arm conserves or protects
                    # nothing: every static setting does as well
                    best_other = max((med(b, oside, oph) or 0 for b in params.arms), default=0)
                    if other < STARVED * best_other:
                        other = 0.0
                    eq = [(v, b) for b in against
                          if (med(b, oside, oph) or 0) >= AS_WELL * other
                          and (v := med(b, side, ph))]
                    if not eq:
                        what = "sigagent arm" if against is sig else "static setting"
                        out.append(_target(s, a, name, None, ">= 1.5x", None,
                                           f"no {what} has {oside} >= this arm's"))
                        continue
                    best, b = max(eq)
                    r = mine / best
                    out.append(_target(s, a, name, r, ">= 1.5x", r >= 1.5,
                                       f"against {b} ({best / 1e3:.1f} vs "
                                       f"{mine / 1e3:.1f} kpages/s)"))
            for key, limit in (("onset_s", 0.1), ("policy_onset_s", 0.1), ("release_s", 1.0),
                               ("policy_release_s", 1.0)):
                if s not in ONSET_PHASE or ("release" in key and s not in RELEASE_PHASE):
                    continue
                own, agent = med(a, key, None), med("agent", key, None)
                n = len(metric_values(runs, metrics, s, a, key, None))
                runs_n = sum(1 for r in runs if r["scenario"] == s and r["arm"] == a)
                found = f"found in {n} of {runs_n} runs"
                out.append(_target(s, a, key[:-2], own, f"<= {limit} s",
                                   None if own is None else own <= limit, found))
                if own is not None and agent is not None:
                    how = f"agent {agent:.3f} s, this arm {own:.3f} s"
                    if not own and not agent:  # both were there already
                        out.append(_target(s, a, f"{key[:-2]} vs agent", None, ">= 10x",
                                           None, how + ": both at the phase's start"))
                        continue
                    r = agent / own if own else float("inf")
                    out.append(_target(s, a, f"{key[:-2]} vs agent", r, ">= 10x", r >= 10,
                                       how))
            if s == "s5":
                out += _s5_targets(runs, metrics, params, a)
            if s == "s1":
                orc = max((med(o, "high", hp) or 0 for o in params.arms
                           if o.split(":")[0] == "oracle"), default=0)
                if orc and hi is not None:
                    r = hi / orc
                    out.append(_target(s, a, "high / oracle's", r, ">= 0.9", r >= 0.9,
                                       f"{hi / 1e3:.1f} vs {orc / 1e3:.1f} kpages/s"))
                alone, lo = med("alone", "low", hp), med(a, "low", hp)
                if alone and lo is not None:
                    r = lo / alone
                    out.append(_target(s, a, "lows / alone", r, ">= 0.05", r >= 0.05,
                                       f"{lo / 1e3:.1f} vs {alone / 1e3:.1f} kpages/s"))
    return out


def _s5_targets(runs: list[dict[str, Any]], metrics: list[dict[str, Any]], params: Params,
                a: str) -> list[dict[str, Any]]:
    """Issue 26's targets for a policy arm in s5, from medians over runs:
    the service's p99 >= 10x better (lower) than the best static arrangement's
    (the static arm with the lowest median p99) and than each agent's; the
    lows' throughput no worse than that static arm's; the pod within its
    memory.high + slack in every run (the most sampled memory.current above
    memory.high of each run, against the verdict's slack, s5_slack_mb())."""
    def med(b: str, key: str) -> float | None:
        return _median(runs, metrics, "s5", b, key, "contended")
    out: list[dict[str, Any]] = []
    mine = med(a, "svc_p99_ms")
    static = [(v, b) for b in params.arms if is_static_arm(b)
              and (v := med(b, "svc_p99_ms")) is not None]
    if mine is None:
        return out
    if static:
        best, b = min(static)
        r = best / mine if mine else float("inf")
        out.append(_target("s5", a, "service p99 vs best static", r, ">= 10x", r >= 10,
                           f"against {b} ({best:.1f} vs {mine:.1f} ms)"))
        lo, blo = med(a, "low"), med(b, "low")
        if lo is not None and blo:
            r = lo / blo
            out.append(_target("s5", a, "lows vs best static", r, ">= 1.0", r >= 1.0 - 1e-9,
                               f"against {b} ({blo / 1e3:.1f} vs {lo / 1e3:.1f} kpages/s)"))
    for ag in params.arms:
        if ag.split(":")[0] in ("agent", "sigagent") and (v := med(ag, "svc_p99_ms")):
            r = v / mine if mine else float("inf")
            out.append(_target("s5", a, f"service p99 vs {ag}", r, ">= 10x", r >= 10,
                               f"{v:.1f} vs {mine:.1f} ms"))
    over = metric_values(runs, metrics, "s5", a, "pod_over_high_mb", "contended")
    if over:
        slack = s5_slack_mb(params.pod_high)
        n = sum(1 for x in over if x > slack)
        out.append(_target("s5", a, "pod above memory.high, most of any run (MiB)", max(over),
                           f"<= {slack:g} (slack)", n == 0,
                           f"above the slack in {n} of {len(over)} runs"))
    return out
