"""test_memcontrol's runs stop once every test flaky without the series has
passed (harness/guest/selftests.py), and harness test asks for that with
the baseline's flaky tests (verbs.flaky_tests)."""

import sys
from pathlib import Path

from harness import paths, verbs

# the guest scripts import each other as top-level modules (selftests.py: disk)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guest"))
from harness.guest import selftests as guest  # noqa: E402

TAP = """TAP version 13
1..3
ok 1 test_memcg_subtree_control
{min} 2 test_memcg_min
{low} 3 test_memcg_low
"""


def write(out: Path, suite: str, i: int, min_: str, low: str) -> None:
    (out / f"{suite}-{i}.log").write_text(TAP.format(min=min_, low=low))


def test_passed_once_over_the_runs_so_far(tmp_path: Path) -> None:
    want = ["test_memcg_min", "test_memcg_low"]
    write(tmp_path, "test_memcontrol", 0, "not ok", "ok")
    assert not guest.passed_once(tmp_path, "test_memcontrol", 0, want)
    write(tmp_path, "test_memcontrol", 1, "ok", "not ok")
    assert guest.passed_once(tmp_path, "test_memcontrol", 1, want)
    # a test this binary does not have does not hold the runs back
    assert guest.passed_once(tmp_path, "test_memcontrol", 1, [*want, "test_memcg_new"])
    # each suite on its own
    write(tmp_path, "test_memcontrol_zero_policy", 0, "not ok", "ok")
    assert not guest.passed_once(tmp_path, "test_memcontrol_zero_policy", 0, want)


def test_the_baselines_flaky_tests() -> None:
    got = verbs.flaky_tests(paths.REPO / "selftests/baselines/test_memcontrol-unpatched.json")
    # test_memcg_sock is OK or SKIP there, never a failure: not waited for
    assert got == ["test_memcg_low", "test_memcg_min", "test_memcg_reclaim"]
    assert verbs.flaky_tests(paths.REPO / "nope.json") == []
