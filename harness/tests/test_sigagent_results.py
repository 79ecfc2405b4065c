"""The README's control-arm table ("The control arm: the sample's own
signal in userspace") recomputed from the kept runs,
selftests/results/experiment-s3-sigagent.json: medians and intervals from
the stored per-run metrics (experiment_stats.summarize, the code the
experiment used), the gain rule's counts, and the sigagent's write times
from its own log lines."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from harness.studies import experiment as ex
from harness.studies import experiment_stats as st

REPO = Path(__file__).resolve().parents[2]
KEPT = REPO / "selftests" / "results" / "experiment-s3-sigagent.json"


def kept() -> tuple[dict[str, Any], ex.Params]:
    data = json.loads(KEPT.read_text())
    p = data["params"]
    params = ex.Params(**{k: v for k, v in p.items() if k in ex.Params.__dataclass_fields__})
    return data, params


def fmt(c: dict[str, Any]) -> str:
    lo, hi = c["ci"]
    return f"{round(c['median'] / 1e3):,} [{round(lo / 1e3):,}, {round(hi / 1e3):,}]"


def readme_rows(header: str = "| S3 arm | high, large | runs gain | lows, small |"
                ) -> dict[str, list[str]]:
    """The README table under `header`: {first cell: the other cells}."""
    text = (REPO / "docs" / "experiment.md").read_text()
    start = text.index(header)
    rows: dict[str, list[str]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_the_readme_table_is_the_kept_runs() -> None:
    data, params = kept()
    runs, metrics = data["runs"], data["metrics"]
    assert len(runs) == 60 and {r["boot"] for r in runs} == {0, 1}
    summary = {r["arm"]: r for r in st.summarize(runs, metrics, params)}
    gains = {v["arm"]: f"{v['good']}/{v['runs']}" for v in st.verdicts(runs, metrics, params)
             if v["rule"] == "gain"}
    readme = readme_rows()
    names = {"agent (PSI)": "agent"}
    assert len(readme) == 6
    for label, (high, gain, lows) in readme.items():
        arm = names.get(label, label)
        row = summary[arm]
        assert fmt(row["phases"]["large"]["high"]) == high, (arm, "high")
        assert fmt(row["phases"]["small"]["low"]) == lows, (arm, "lows")
        assert gain == gains.get(arm, "-"), (arm, "gain")


def test_the_sigagent_write_times_in_the_text() -> None:
    data, _ = kept()
    text = (REPO / "docs" / "experiment.md").read_text()
    for arm in ("sigagent", "sigagent:nb"):
        lat: list[float] = []
        dur: list[float] = []
        for r in data["runs"]:
            if r["arm"] != arm:
                continue
            for _t, line in r["helper"]["lines"]:
                if line.startswith("{") and '"throttle"' in line:
                    d = json.loads(line)
                    lat.append(d["write_start"] - d["t"])
                    dur.append(d["write_end"] - d["write_start"])
        if arm == "sigagent":
            assert f"Its write took {statistics.median(dur):.1f} s (median; " \
                   f"{min(dur):.1f}-{max(dur):.1f} s)" in text
            ms = [round(x * 1000) for x in (statistics.median(lat), min(lat), max(lat))]
            assert f"it wrote {ms[0]} ms (median; {ms[1]}-{ms[2]} ms) after" in " ".join(
                text.split())
        else:
            assert max(dur) < 0.1  # O_NONBLOCK: the limit only
    onset = st.summarize(data["runs"], data["metrics"], kept()[1])
    sample = next(r for r in onset if r["arm"] == "sample")
    assert round(sample["policy_onset_s"]["median"] * 1000) == 25
    assert re.search(r"the sample decides 25 ms after", " ".join(text.split()))


def test_the_cover_letters_quote_the_same_runs() -> None:
    data, params = kept()
    s = {r["arm"]: r for r in st.summarize(data["runs"], data["metrics"], params)}

    def high(arm: str) -> str:
        return f"{round(s[arm]['phases']['large']['high']['median'] / 1e3):,}"
    for cover in (REPO / "patches" / "cover-letter.txt",
                  REPO / "patches" / "upstream" / "cover-letter.txt"):
        text = " ".join(cover.read_text().split())
        assert f"high {high('sigagent')} kpages/s in the large phase" in text, cover
        assert f"as the PSI agent did ({high('agent')})" in text, cover
        assert f"as the sample did ({high('sample')}; no policy: {high('none')})" in text
        assert f"and {high('sigagent:nb')} with an O_NONBLOCK write" in text


def test_the_s2_table_is_the_kept_runs() -> None:
    data = json.loads((KEPT.parent / "experiment-s2-sigagent.json").read_text())
    p = data["params"]
    params = ex.Params(**{k: v for k, v in p.items() if k in ex.Params.__dataclass_fields__})
    assert len(data["runs"]) == 50 and {r["boot"] for r in data["runs"]} == {0, 1}
    summary = {r["arm"]: r for r in st.summarize(data["runs"], data["metrics"], params)}
    rows = readme_rows("| S2 arm | high, active2 | lows, idle |")
    assert len(rows) == 5
    for label, (high, lows) in rows.items():
        row = summary["agent" if label == "agent (PSI)" else label]
        assert fmt(row["phases"]["active2"]["high"]) == high, label
        assert fmt(row["phases"]["idle"]["low"]) == lows, label
