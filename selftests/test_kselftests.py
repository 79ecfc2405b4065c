"""The kernel's own selftests, run in the guest by `harness test`'s machinery
(one boot): test_progs' memcg_ops and cgroup_struct_ops (the series' BPF
selftests), the peer set (upstream's struct_ops and cgroup BPF tests) and
the memory controller's test_memcontrol. Each subtest is a pytest result.

- memcg_ops, cgroup_struct_ops: the subtests are the ones their
  prog_tests/*.c in patches/ declare; one that fails, skips or does not
  report fails here.
- Every verdict is harness.results.judge()'s, the one `harness test` and
  the pipeline's stage give too.
- the peer set and test_memcontrol: compared with the same tests on the
  tree without the series, same config and guest (selftests/baselines/,
  made with `harness test --unpatched [--peers] --write-baseline`): what
  passes there must pass here; what does not pass there is reported as
  skipped with its baseline status.
- test_memcontrol runs MEMCONTROL_REPEAT times as it is, and as many times
  with a memcg_bpf_ops policy answering N = 0 attached to the root cgroup,
  above all of its cgroups (suite test_memcontrol_zero_policy): N = 0 must
  change nothing. A test that passes in every baseline run must pass in
  every run; one that is flaky there must pass in at least one of the
  MEMCONTROL_REPEAT runs of each suite. The baseline has 30 unpatched runs
  (10 on an earlier machine, 20 on this one): test_memcg_min passed 20 of
  them, test_memcg_reclaim 23 (7 of the 20 here failed), test_memcg_low 25.
  With 7 runs, a test that passes 2 times in 3 fails all seven about 5
  times in 10,000 ((1/3)^7), the two test_memcontrol suites together about
  1 in 1000; one that never passes (what a broken protection gives) fails
  every time. With 3 runs it was about 13 in 100 (at the first baseline's
  0.4): a gate that fails one CI run in eight is not a gate.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from harness.pipeline import SelftestsRun  # noqa: E402
from harness.results import (  # noqa: E402
    PEER_TESTS,
    SERIES_TESTS,
    ZERO_POLICY_SUITE,
    is_peer,
)

BASELINE = REPO / "selftests" / "baselines" / "test_memcontrol-unpatched.json"
PEER_BASELINE = REPO / "selftests" / "baselines" / "test_progs-peers-unpatched.json"

pytestmark = [pytest.mark.vm, pytest.mark.timeout(3600)]

MEMCONTROL_REPEAT = 7
MEMCONTROL_SUITES = ("test_memcontrol", ZERO_POLICY_SUITE)


def declared_subtests(test: str = "memcg_ops") -> list[str]:
    """test__start_subtest("x") in the series' prog_tests/<test>.c."""
    names: list[str] = []
    for patch in sorted((REPO / "patches").glob("*.patch")):
        text = patch.read_text()
        for part in re.split(r"^--- ", text, flags=re.M):
            if part.startswith((f"/dev/null\n+++ b/tools/testing/selftests/bpf/prog_tests/"
                                f"{test}.c", f"a/tools/testing/selftests/bpf/prog_tests/"
                                f"{test}.c")):
                names += re.findall(r'^\+.*test__start_subtest\("(\w+)"\)', part, re.M)
    return names


def series_subtests() -> list[str]:
    return [f"{t}/{s}" for t in SERIES_TESTS for s in declared_subtests(t)]


def baseline_cases(path: Path = BASELINE) -> list[dict]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [c for r in data["runs"] for c in r["cases"]]


def baseline_statuses(path: Path = BASELINE) -> list[tuple[str, str]]:
    """(test, OK|FAIL|SKIP|FLAKY over every baseline run)."""
    from harness.results import Case, baseline_status
    st = baseline_status([Case(**c) for c in baseline_cases(path)])
    return sorted(st.items())


@pytest.fixture(scope="module")
def runs(pipeline):
    from harness import results
    if not (pipeline.tree / "tools/testing/selftests/bpf/prog_tests/memcg_ops.c").exists():
        pytest.skip("the tree has no memcg_ops selftests (series not applied?)")
    rr = pipeline.selftests(SelftestsRun([*SERIES_TESTS, *PEER_TESTS], baseline=BASELINE,
                                         peer_baseline=PEER_BASELINE, zero_policy=True,
                                         memcontrol_repeat=MEMCONTROL_REPEAT))
    by_suite: dict = {}
    for r in rr:
        by_suite.setdefault(r.suite, []).append(r)
    return ({s: v[0] for s, v in by_suite.items()} |
            {"_all": rr, "_results": results, "_by_suite": by_suite,
             "_verdicts": {(v.suite, v.name): v for v in pipeline.verdicts}})


def check(runs, suite: str, name: str) -> None:
    """Pass, fail or skip as results.judge() says: the same verdict as
    `harness test` and the pipeline's stage give."""
    v = runs["_verdicts"].get((suite, name))
    assert v is not None, f"{suite} {name}: no result and no verdict (did {suite} run?)"
    if v.verdict == "SKIP":
        pytest.skip(v.reason)
    assert v.verdict == "PASS", f"{suite} {name}: {v.reason}"


def test_runners_reported(runs):
    """Both runners ran to their end: summary/plan lines, no crash, no
    timeout, exit status consistent with the results."""
    problems = [p for r in runs["_all"] for p in r.problems]
    assert not problems, "\n".join(problems)
    assert "test_progs" in runs and "test_memcontrol" in runs, list(runs)
    for suite in MEMCONTROL_SUITES:
        assert len(runs["_by_suite"].get(suite, [])) == MEMCONTROL_REPEAT, (
            suite, [r.suite for r in runs["_all"]])


@pytest.mark.parametrize("test", SERIES_TESTS)
def test_declared_subtests_found(test):
    assert declared_subtests(test), f"no test__start_subtest() in the series' {test}.c"


@pytest.mark.parametrize("subtest", series_subtests())
def test_series(runs, subtest):
    """A subtest the series declares passes (a skip is a failure)."""
    assert runs.get("test_progs") is not None, "test_progs did not run"
    check(runs, "test_progs", subtest)


def test_peer_baseline_exists():
    assert baseline_cases(PEER_BASELINE), f"no baseline in {PEER_BASELINE}"


@pytest.mark.parametrize("name,base_status", baseline_statuses(PEER_BASELINE))
def test_peer(runs, name, base_status):
    """The peer set: upstream's struct_ops and cgroup BPF tests pass as they
    do on the unpatched kernel."""
    assert runs.get("test_progs") is not None, "test_progs did not run"
    check(runs, "test_progs", name)


def test_peers_no_new_failures(runs):
    """Peer tests the baseline does not know (a newer tree) must not fail."""
    known = {c["name"] for c in baseline_cases(PEER_BASELINE)}
    new_bad = [f"{v.name}: {v.reason}" for v in runs["_verdicts"].values()
               if v.suite == "test_progs" and is_peer(v.name) and v.name not in known
               and v.verdict == "FAIL"]
    assert not new_bad, f"failing, and not in the baseline: {new_bad}"


def test_memcontrol_baseline_exists():
    assert baseline_cases(), f"no baseline in {BASELINE}"


@pytest.mark.parametrize("suite", MEMCONTROL_SUITES)
@pytest.mark.parametrize("name,base_status", baseline_statuses())
def test_memcontrol(runs, suite, name, base_status):
    """As unpatched: in every run if it always passes there, in at least
    one run if it is flaky there; test_memcontrol_zero_policy is the same
    with an N = 0 policy above every cgroup of the test."""
    rr = runs["_by_suite"].get(suite, [])
    assert rr, f"{suite} did not run"
    check(runs, suite, name)


@pytest.mark.parametrize("suite", MEMCONTROL_SUITES)
def test_memcontrol_no_new_failures(runs, suite):
    """Tests the baseline does not know (a newer tree) must not fail."""
    known = {c["name"] for c in baseline_cases()}
    new_bad = [c.name for r in runs["_by_suite"].get(suite, []) for c in r.cases
               if c.name not in known and c.status == "FAIL"]
    assert not new_bad, f"failing, and not in the baseline: {new_bad}"
