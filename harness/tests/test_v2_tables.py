"""docs/experiment.md's S1-S4 tables (v2 episodes), every median and
two-stage interval, recomputed from selftests/results/experiment-s1..s4.json
(issue 28, items 4 and 5)."""

import json
import re
from pathlib import Path

import pytest

from harness.studies import experiment as ex
from harness.studies import experiment_stats as st

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "experiment.md").read_text()
TABLES = {
    "experiment-s1": "| arm | high, contended | lows, contended | runs with high > 1,000 | gain |"
                     "\n|---|---|---|---|---|\n| none | 7",
    "experiment-s2": "| arm | high, active1 | lows, idle | high, active2 | lows, active2 | gain |",
    "experiment-s3": "| arm | lows, small | high, large | lows, large | runs with high > 1,000 |",
    "experiment-s4": "| arm | high, contended | lows, contended | runs with high > 1,000 | gain |"
                     "\n|---|---|---|---|---|\n| none | 2",
}
LABELS = [("none", "none"), ("lows alone", "alone"), ("PSI agent", "agent"),
          ("oracle (lows frozen", "oracle"), ("oracle, and the lows reclaimed", "oracle:evict"),
          ("BPF sample + reclaim", "reclaim"), ("BPF sample, OVER_HIGH 16384", "sample:16384"),
          ("BPF sample", "sample"), ("sample, detached", "detach"),
          ("control: policy answering 0", "noop"), ("control: always", "always"),
          ("control: policy answering 262144 always", "always")]


def arm_of(label: str) -> str:
    m = re.match(r"`memory\.(low|high)` (\d+M)", label)
    if m:
        return ("mlow:" if m.group(1) == "low" else "mhigh:") + m.group(2)
    return next(a for pre, a in LABELS if label.startswith(pre))


def kp(x: float) -> str:
    return f"{round(x / 1e3):,}"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_cell_is_the_kept_runs(name: str) -> None:
    d = json.loads((REPO / "selftests" / "results" / f"{name}.json").read_text())
    p = ex.Params(**{k: v for k, v in d["params"].items() if k in ex.Params.__dataclass_fields__})
    summ = {r["arm"]: r for r in st.summarize(d["runs"], d["metrics"], p)}
    lines = DOC[DOC.index(TABLES[name]):].splitlines()
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    n = 0
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        arm = arm_of(cells[0])
        for i, col in enumerate(cols):
            m = re.match(r"(high|lows), (\w+)$", col)
            if not m:
                continue
            c = summ[arm]["phases"][m.group(2)]["high" if m.group(1) == "high" else "low"]
            want = f"{kp(c['median'])} ({kp(c['ci'][0])}..{kp(c['ci'][1])})"
            assert cells[i].startswith(want), (name, arm, col, cells[i], want)
            n += 1
    assert n >= 20
