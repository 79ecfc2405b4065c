"""The kernel's own selftests, run in the guest by `harness test`'s machinery
(one boot): test_progs' memcg_ops (the series' BPF selftests) and the
memory controller's test_memcontrol. Each subtest is a pytest result.

- memcg_ops: the subtests are the ones prog_tests/memcg_ops.c in
  patches/ declares; one that fails, skips or does not report fails here.
- test_memcontrol: compared with the same tests on the tree without the
  series, same config and guest (selftests/baselines/, made with
  `harness test --unpatched --write-baseline`): what passes there must pass
  here; what does not pass there is reported as skipped with its baseline
  status.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BASELINE = REPO / "selftests" / "baselines" / "test_memcontrol-unpatched.json"

pytestmark = [pytest.mark.vm, pytest.mark.timeout(3600)]


def declared_subtests() -> list[str]:
    """test__start_subtest("x") in the series' prog_tests/memcg_ops.c."""
    names: list[str] = []
    for patch in sorted((REPO / "patches").glob("*.patch")):
        text = patch.read_text()
        for part in re.split(r"^--- ", text, flags=re.M):
            if part.startswith(("/dev/null\n+++ b/tools/testing/selftests/bpf/prog_tests/"
                                "memcg_ops.c", "a/tools/testing/selftests/bpf/prog_tests/"
                                "memcg_ops.c")):
                names += re.findall(r'^\+.*test__start_subtest\("(\w+)"\)', part, re.M)
    return names


def baseline_cases() -> list[dict]:
    if not BASELINE.exists():
        return []
    data = json.loads(BASELINE.read_text())
    return [c for r in data["runs"] for c in r["cases"]]


def baseline_statuses() -> list[tuple[str, str]]:
    """(test, OK|FAIL|SKIP|FLAKY over every baseline run)."""
    from harness.results import Case, baseline_status
    st = baseline_status([Case(**c) for c in baseline_cases()])
    return sorted(st.items())


@pytest.fixture(scope="module")
def runs(pipeline):
    from harness import results
    if not (pipeline.tree / "tools/testing/selftests/bpf/prog_tests/memcg_ops.c").exists():
        pytest.skip("the tree has no memcg_ops selftests (series not applied?)")
    rr = pipeline.selftests(["memcg_ops"], baseline=BASELINE)
    return {r.suite: r for r in rr} | {"_all": rr, "_results": results}


def _case(run, name):
    found = [c for c in run.cases if c.name == name]
    return found[0] if found else None


def test_runners_reported(runs):
    """Both runners ran to their end: summary/plan lines, no crash, no
    timeout, exit status consistent with the results."""
    problems = [p for r in runs["_all"] for p in r.problems]
    assert not problems, "\n".join(problems)
    assert "test_progs" in runs and "test_memcontrol" in runs, list(runs)


def test_declared_subtests_found():
    assert declared_subtests(), "no test__start_subtest() in the series' memcg_ops.c"


@pytest.mark.parametrize("subtest", declared_subtests())
def test_memcg_ops(runs, subtest):
    run = runs.get("test_progs")
    assert run is not None, "test_progs did not run"
    case = _case(run, f"memcg_ops/{subtest}")
    assert case is not None, f"memcg_ops/{subtest} did not report (not built? crashed?)"
    assert case.status == "OK", f"memcg_ops/{subtest}: {case.status}\n{case.message}"


def test_memcontrol_baseline_exists():
    assert baseline_cases(), f"no baseline in {BASELINE}"


@pytest.mark.parametrize("name,base_status", baseline_statuses())
def test_memcontrol(runs, name, base_status):
    run = runs.get("test_memcontrol")
    assert run is not None, "test_memcontrol did not run"
    case = _case(run, name)
    if base_status != "OK":
        pytest.skip(f"{base_status} on the unpatched kernel (every baseline run) too"
                    if base_status != "FLAKY" else "flaky on the unpatched kernel")
    assert case is not None, f"{name} passed on the unpatched kernel and did not run now"
    assert case.status == "OK", (f"{name} passed on every unpatched run, {case.status} now"
                                 f"\n{case.message}")


def test_memcontrol_no_new_failures(runs):
    """Tests the baseline does not know (a newer tree) must not fail."""
    run = runs.get("test_memcontrol")
    known = {c["name"] for c in baseline_cases()}
    new_bad = [c.name for c in (run.cases if run else [])
               if c.name not in known and c.status == "FAIL"]
    assert not new_bad, f"failing, and not in the baseline: {new_bad}"
