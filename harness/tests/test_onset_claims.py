"""The onset claims in the README and docs/experiment.md, recomputed from
the kept runs with the per-run rule (issue 28, item 4): how many runs
decided within 100 ms, and the medians, for the sample, the PSI agent and
the sigagent."""

import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "selftests" / "results"
README = (REPO / "README.md").read_text()
EXPERIMENT = (REPO / "docs" / "experiment.md").read_text()


def onsets(name: str, arm: str) -> tuple[int, int, float]:
    """(runs within 0.1 s, runs, median) of the arm's policy_onset_s."""
    d: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    xs = [m.get("policy_onset_s") for r, m in zip(d["runs"], d["metrics"], strict=True)
          if r["arm"] == arm]
    found = [x for x in xs if x is not None]
    return sum(x <= 0.1 for x in found), len(xs), statistics.median(found)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_readme_onset_bullet() -> None:
    s2 = onsets("experiment-s2", "sample")
    s3 = onsets("experiment-s3", "sample")
    lease = onsets("experiment-s3-lease-disk", "sample")
    sig = onsets("experiment-s3-lease-disk", "sigagent")
    agents = [onsets(n, "agent") for n in ("experiment-s2", "experiment-s3",
                                           "experiment-s3-lease-disk")]
    assert all(a[0] == 0 for a in agents)
    want = (f"(v2) S2 {s2[0]} of {s2[1]} (median {s2[2]:.3f} s), S3 {s3[0]} of {s3[1]} "
            f"({s3[2]:.3f} s); leased, S3 on disk {lease[0]} of {lease[1]} "
            f"({lease[2]:.3f} s); the agent 0 of 10 in each (medians "
            f"{agents[0][2]:.1f}, {agents[1][2]:.1f}, {agents[2][2]:.1f} s)")
    assert want in flat(README), want
    assert f"(S3 disk: {sig[0]} of {sig[1]}, {sig[2]:.3f} s)" in flat(README)


def test_the_docs_onset_rows_use_the_per_run_rule() -> None:
    s2 = onsets("experiment-s2", "sample")
    s3 = onsets("experiment-s3", "sample")
    text = flat(EXPERIMENT)
    assert (f"S2: {s2[0]} of {s2[1]} runs (median {s2[2]:.3f} s); S3: {s3[0]} of {s3[1]} "
            f"(median {s3[2]:.3f} s; one run never switched on) | no |") in text
    a2, a3 = onsets("experiment-s2", "agent"), onsets("experiment-s3", "agent")
    assert (f"ratio of medians {s2[2] and a2[2] / s2[2]:.0f}x (S2, agent {a2[2]:.1f} s) and "
            f"{a3[2] / s3[2]:.0f}x (S3, agent {a3[2]:.1f} s), but of two clocks") in text
    # the old wording, a median called 10/10, is gone
    assert "0.085 s (10/10 runs)" not in text and "0.085 s (10/10 runs)" not in flat(README)
