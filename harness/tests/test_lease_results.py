"""The README's tables of the leased episode against its userspace
control ("The leased episode against its control"), recomputed from the
kept runs: selftests/results/experiment-s3-lease-disk.json and
-zram.json, one sitting each. Medians and intervals from the stored
per-run metrics (experiment_stats.summarize, the code the experiment
used), the gain rule's counts, and each sitting's swap as recorded in
its env."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.studies import experiment as ex
from harness.studies import experiment_stats as st
from harness.tests.test_sigagent_results import fmt, readme_rows

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "selftests" / "results"
SITTINGS = {"disk": "| S3 disk swap | high, large | runs gain | lows, small |",
            "zram": "| S3 zram swap | high, large | runs gain | lows, small |"}
ARMS = {"none", "mlow:350M", "agent", "sample", "sigagent"}


def kept(swap: str) -> tuple[dict[str, Any], ex.Params]:
    data = json.loads((RESULTS / f"experiment-s3-lease-{swap}.json").read_text())
    p = data["params"]
    params = ex.Params(**{k: v for k, v in p.items() if k in ex.Params.__dataclass_fields__})
    return data, params


@pytest.mark.parametrize("swap", sorted(SITTINGS))
def test_the_readme_table_is_the_kept_sitting(swap: str) -> None:
    data, params = kept(swap)
    assert params.swap == swap and data["env"]["swap"] == swap
    runs, metrics = data["runs"], data["metrics"]
    assert {r["arm"] for r in runs} == ARMS
    assert len(runs) == 10 * len(ARMS) and {r["boot"] for r in runs} == {0, 1}
    summary = {r["arm"]: r for r in st.summarize(runs, metrics, params)}
    gains = {v["arm"]: f"{v['good']}/{v['runs']}" for v in st.verdicts(runs, metrics, params)
             if v["rule"] == "gain"}
    readme = readme_rows(SITTINGS[swap])
    names = {"agent (PSI)": "agent", "sample (leased)": "sample"}
    assert {names.get(k, k) for k in readme} == ARMS
    for label, (high, gain, lows) in readme.items():
        arm = names.get(label, label)
        row = summary[arm]
        assert fmt(row["phases"]["large"]["high"]) == high, (swap, arm, "high")
        assert fmt(row["phases"]["small"]["low"]) == lows, (swap, arm, "lows")
        assert gain == gains.get(arm, "-"), (swap, arm, "gain")


# The ratios and decision times the README's text and targets table quote,
# per sitting: recomputed with the experiment's own target code.
QUOTED = {"disk": {"high at equal conservation": "0.59",
                   "high vs sigagent at equal conservation": "0.45",
                   "policy_onset": "52 ms"},
          "zram": {"high at equal conservation": "3.98",
                   "high vs sigagent at equal conservation": "0.80",
                   "policy_onset": "184 ms"}}


@pytest.mark.parametrize("swap", sorted(SITTINGS))
def test_the_quoted_ratios_are_the_kept_sitting(swap: str) -> None:
    data, params = kept(swap)
    runs, metrics = data["runs"], data["metrics"]
    targets = {t["target"]: t for t in st.targets(runs, metrics, params)
               if t["arm"] == "sample"}
    text = (REPO / "docs" / "experiment.md").read_text()
    for name, quoted in QUOTED[swap].items():
        v = targets[name]["value"]
        got = f"{round(v * 1000)} ms" if quoted.endswith("ms") else f"{v:.2f}"
        assert got == quoted, (swap, name, v)
        assert quoted in text, (swap, name, "not in the README")


def test_the_cover_letters_quote_the_kept_sittings() -> None:
    s: dict[str, dict[str, dict[str, Any]]] = {}
    for swap in SITTINGS:
        data, params = kept(swap)
        s[swap] = {r["arm"]: r for r in st.summarize(data["runs"], data["metrics"], params)}

    def high(swap: str, arm: str) -> str:
        return f"{round(s[swap][arm]['phases']['large']['high']['median'] / 1e3):,}"
    for cover in (REPO / "patches" / "cover-letter.txt",
                  REPO / "patches" / "upstream" / "cover-letter.txt"):
        text = " ".join(cover.read_text().split())
        assert (f"on disk swap the sample gave high {high('disk', 'sample')} kpages/s"
                in text), cover
        assert (f"the control {high('disk', 'sigagent')}, the PSI agent "
                f"{high('disk', 'agent')}, memory.low 350M {high('disk', 'mlow:350M')}, "
                f"no policy {high('disk', 'none')}") in text, cover
        assert (f"on zram the sample {high('zram', 'sample')}, the control "
                f"{high('zram', 'sigagent')}, the PSI agent {high('zram', 'agent')}") in text
        assert (f"memory.low 350M {high('zram', 'mlow:350M')}, no policy "
                f"{high('zram', 'none')}") in text, cover


def test_the_throttle_report_row_is_the_kept_run() -> None:
    """The targets table's row for the main job's throttle report."""
    runs = json.loads((RESULTS / "throttle-lease.json").read_text())["runs"]

    def span(scenario: str) -> str:
        v = [round(r["rates"]["high"]) for r in runs if r["scenario"] == scenario]
        return f"{min(v):,}-{max(v):,}"
    policy = [r for r in runs if r["scenario"] == "both_policy"]
    helped = sum(bool(r["helped"]) for r in policy)
    text = " ".join((REPO / "docs" / "experiment.md").read_text().split())
    assert (f"{helped} of {len(policy)} runs (high {span('both_policy')} ops/s against "
            f"{span('both_none')} with no policy, alone {span('high_alone')};") in text


def sitting(path: Path, swap: str, scenario: str, arms: set[str]
            ) -> tuple[dict[str, Any], ex.Params, dict[str, Any], dict[tuple[str, str], str]]:
    """A kept sitting of one scenario, 10 runs per arm over 2 boots, with
    its swap as recorded: its data, parameters, summary per arm and the
    rules' "good/runs" per (arm, rule)."""
    data = json.loads(path.read_text())
    params = ex.Params(**{k: v for k, v in data["params"].items()
                          if k in ex.Params.__dataclass_fields__})
    assert params.swap == swap == data["env"]["swap"] and params.scenarios == [scenario]
    runs, metrics = data["runs"], data["metrics"]
    assert {r["arm"] for r in runs} == arms
    assert len(runs) == 10 * len(arms) and {r["boot"] for r in runs} == {0, 1}
    summary = {r["arm"]: r for r in st.summarize(runs, metrics, params)}
    rules = {(v["arm"], v["rule"]): f"{v['good']}/{v['runs']}"
             for v in st.verdicts(runs, metrics, params)}
    return data, params, summary, rules


# S2 with the leased episodes: one sitting per swap, a no-policy arm.
S2_SITTINGS = {"disk": "| S2 disk swap | high, active2 | runs gain | lows, idle | runs conserve |",
               "zram": "| S2 zram swap | high, active2 | runs gain | lows, idle | runs conserve |"}
S2_ARMS = {"none", "mhigh:150M", "agent", "sample", "sigagent"}


@pytest.mark.parametrize("swap", sorted(S2_SITTINGS))
def test_the_s2_table_is_the_kept_sitting(swap: str) -> None:
    path = RESULTS / f"experiment-s2-lease-{swap}.json"
    if swap == "zram" and not path.exists():
        pytest.skip("the zram sitting is not kept yet")
    data, params, summary, rules = sitting(path, swap, "s2", S2_ARMS)
    runs, metrics = data["runs"], data["metrics"]
    rows = readme_rows(S2_SITTINGS[swap])
    names = {"agent (PSI)": "agent", "sample (leased)": "sample"}
    assert {names.get(k, k) for k in rows} == S2_ARMS
    for label, (high, gain, lows, conserve) in rows.items():
        arm = names.get(label, label)
        row = summary[arm]
        assert fmt(row["phases"]["active2"]["high"]) == high, (swap, arm, "high")
        assert fmt(row["phases"]["idle"]["low"]) == lows, (swap, arm, "lows")
        assert gain == rules.get((arm, "gain"), "-"), (swap, arm, "gain")
        assert conserve == rules.get((arm, "conserve"), "-"), (swap, arm, "conserve")
    # the ratios the text quotes, with their two-stage intervals
    text = " ".join((REPO / "docs" / "experiment.md").read_text().split())

    def pairs(arm: str) -> list[tuple[float, int]]:
        return st.metric_values_by_boot(runs, metrics, "s2", arm, "high", "active2")
    sig = st.ratio_ci(pairs("sample"), pairs("sigagent"))
    knob = st.ratio_ci(pairs("sample"), pairs("mhigh:150M"))
    assert (f"{sig[0]:.2f}x the `sigagent`'s (two-stage ratio interval {sig[1]:.2f}-"
            f"{sig[2]:.2f})") in text, (swap, sig)
    assert f"{knob[0]:.2f}x `memory.high` 150M's ({knob[1]:.2f}-{knob[2]:.2f})" in text


# S1 (and S4) with the leased episodes on zram: one sitting each.
ZRAM_SITTINGS = {"s1": "| S1 zram swap | high, contended | runs gain | lows, contended |",
                 "s4": "| S4 zram swap | high, contended | runs gain | lows, contended |"}
ZRAM_ARMS = {"none", "mlow:260M", "mhigh:100M", "agent", "sample", "sigagent"}


@pytest.mark.parametrize("scenario", sorted(ZRAM_SITTINGS))
def test_the_zram_table_is_the_kept_sitting(scenario: str) -> None:
    data, params, summary, rules = sitting(
        RESULTS / f"experiment-{scenario}-lease-zram.json", "zram", scenario, ZRAM_ARMS)
    runs, metrics = data["runs"], data["metrics"]
    rows = readme_rows(ZRAM_SITTINGS[scenario])
    names = {"agent (PSI)": "agent", "sample (leased)": "sample"}
    assert {names.get(k, k) for k in rows} == ZRAM_ARMS
    for label, (high, gain, lows) in rows.items():
        arm = names.get(label, label)
        c = summary[arm]["phases"]["contended"]
        assert (fmt(c["high"]), fmt(c["low"])) == (high, lows), (scenario, arm)
        assert gain == rules.get((arm, "gain"), "-"), (scenario, arm, "gain")
    text = " ".join((REPO / "docs" / "experiment.md").read_text().split())

    def pairs(arm: str, side: str = "high") -> list[tuple[float, int]]:
        return st.metric_values_by_boot(runs, metrics, scenario, arm, side, "contended")
    sig = st.ratio_ci(pairs("sample"), pairs("sigagent"))
    knob = st.ratio_ci(pairs("sample"), pairs("mhigh:100M"))
    lr = st.ratio_ci(pairs("sample", "low"), pairs("sigagent", "low"))
    assert (f"{sig[0]:.2f}x the `sigagent`'s (two-stage ratio interval {sig[1]:.2f}-"
            f"{sig[2]:.2f}) and {knob[0]:.2f}x `memory.high` 100M's ({knob[1]:.2f}-"
            f"{knob[2]:.2f})") in text
    assert f"under the control ({lr[0]:.2f}x, {lr[1]:.2f}-{lr[2]:.2f})" in text
    # the targets table's row
    good = rules[("sample", "gain")].replace("/", " of ")
    assert (f"{sig[0]:.2f} against the `sigagent` ({sig[1]:.2f}-{sig[2]:.2f}); {knob[0]:.2f} "
            f"against `memory.high` 100M ({knob[1]:.2f}-{knob[2]:.2f}); gain rule {good} |"
            ) in text
    none = sorted(x for x, _ in pairs("none"))
    if scenario == "s4":  # no no-policy run had high resident
        assert f"without a policy high thrashes in every run, {none[0] / 1e3:,.0f}-" \
            f"{none[-1] / 1e3:,.0f} kpages/s" in text
        return
    # S1, the gain rule's bar: twice the best no-policy run, and the runs under it
    mine = sorted(x for x, _ in pairs("sample"))
    assert (f"({none[-1] / 1e3:,.0f} kpages/s, the lows at "
            f"{pairs('none', 'low')[[x for x, _ in pairs('none')].index(none[-1])][0] / 1e3:,.0f})"
            f" where the other nine thrash ({none[0] / 1e3:,.0f}-{none[-2] / 1e3:,.0f})") in text
    assert f"the best no-policy run, {2 * none[-1] / 1e3:,.0f}." in text
    assert f"The sample's runs are {mine[0] / 1e3:,.0f}-{mine[-1] / 1e3:,.0f} there" in text
