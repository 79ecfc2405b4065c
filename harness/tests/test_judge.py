"""results.judge: the one place that says what a test's results mean."""
from collections.abc import Sequence

from harness import results as R


def run(suite: str, cases: list[tuple[str, str]], rep: int = 0,
        problems: Sequence[str] = ()) -> R.RunResult:
    return R.RunResult(suite, [R.Case(suite, n, st, run=rep) for n, st in cases],
                       problems=list(problems))


def verdicts(runs: list[R.RunResult], series: tuple[str, ...] = (),
             baselines: dict[str, list[R.Case]] | None = None
             ) -> dict[tuple[str, str], R.Verdict]:
    return {(v.suite, v.name): v for v in R.judge(runs, series=series, baselines=baselines)}


def test_a_skipped_series_subtest_fails() -> None:
    v = verdicts([run("test_progs", [("memcg_ops", "OK"), ("memcg_ops/root", "SKIP"),
                                     ("memcg_ops/attach", "OK")])], series=("memcg_ops",))
    assert v[("test_progs", "memcg_ops/attach")].verdict == "PASS"
    bad = v[("test_progs", "memcg_ops/root")]
    assert bad.verdict == "FAIL" and "tests nothing" in bad.reason


def test_missing_series_test_fails() -> None:
    v = verdicts([run("test_progs", [("memcg_ops/stress", "MISSING")])], series=("memcg_ops",))
    assert v[("test_progs", "memcg_ops/stress")].verdict == "FAIL"


def test_against_the_baseline() -> None:
    base = {"test_memcontrol": [
        R.Case("test_memcontrol", n, st, run=i)
        for i in range(5) for n, st in (("test_memcg_high", "OK"), ("test_memcg_sock", "FAIL"))
    ] + [R.Case("test_memcontrol", "test_memcg_min", "OK" if i else "FAIL", run=i)
         for i in range(5)]}
    now = [run("test_memcontrol", [("test_memcg_high", "OK"), ("test_memcg_sock", "FAIL"),
                                   ("test_memcg_min", "FAIL")], rep=i) for i in range(3)]
    v = verdicts(now, baselines=base)
    assert v[("test_memcontrol", "test_memcg_high")].verdict == "PASS"
    assert v[("test_memcontrol", "test_memcg_sock")].verdict == "SKIP"  # fails unpatched too
    # flaky (failed 1 of 5), never passed in 3 runs: 0.2^3 = 0.8 % > 0.5 %
    undecided = v[("test_memcontrol", "test_memcg_min")]
    assert undecided.verdict == "SKIP" and "3 runs cannot decide" in undecided.reason
    assert "(4 decide)" in undecided.reason
    four = now + [run("test_memcontrol", [("test_memcg_min", "FAIL")], rep=3)]
    failed = verdicts(four, baselines=base)[("test_memcontrol", "test_memcg_min")]
    assert failed.verdict == "FAIL" and "never passed in 4 runs" in failed.reason
    now[1].cases[2].status = "OK"
    assert verdicts(now, baselines=base)[("test_memcontrol", "test_memcg_min")].verdict \
        == "PASS"
    now[2].cases[0].status = "FAIL"  # passes every time unpatched: must every time
    assert verdicts(now, baselines=base)[("test_memcontrol", "test_memcg_high")].verdict \
        == "FAIL"


def test_a_baseline_test_that_did_not_run_fails_and_problems_are_fails() -> None:
    base = {"test_progs": [R.Case("test_progs", "cgroup_link", "OK")]}
    v = verdicts([run("test_progs", [("dummy_st_ops", "OK")],
                      problems=["test_progs printed no summary line"])], baselines=base)
    assert v[("test_progs", "cgroup_link")].verdict == "FAIL"
    assert v[("test_progs", "cgroup_link")].statuses == ["MISSING"]
    assert v[("test_progs", "runner")].verdict == "FAIL"
    assert v[("test_progs", "dummy_st_ops")].verdict == "PASS"  # unknown to the baseline


def test_known_fail_marking_is_a_fail_status() -> None:
    base = {"test_progs": [R.Case("test_progs", "bpf_tcp_ca/cc_cubic", "FAIL")]}
    v = verdicts([run("test_progs", [("bpf_tcp_ca/cc_cubic", R.KNOWN)])], baselines=base)
    assert v[("test_progs", "bpf_tcp_ca/cc_cubic")].verdict == "SKIP"


def test_one_failure_in_many_repeats_of_an_always_passing_test_is_reported_not_failed() -> None:
    base = {"test_memcontrol": [R.Case("test_memcontrol", "test_memcg_reclaim", "OK", run=i)
                                for i in range(10)]}

    def now(statuses: list[str]) -> R.Verdict:
        return verdicts([run("test_memcontrol", [("test_memcg_reclaim", st)], rep=i)
                         for i, st in enumerate(statuses)], baselines=base)[
            ("test_memcontrol", "test_memcg_reclaim")]
    one = now(["OK", "OK", "FAIL", "OK", "OK", "OK", "OK"])
    assert one.verdict == "PASS" and "one failure" in one.reason
    assert now(["OK", "FAIL", "FAIL", "OK", "OK", "OK", "OK"]).verdict == "FAIL"
    assert now(["OK", "MISSING", "OK", "OK", "OK", "OK", "OK"]).verdict == "FAIL"  # a crash
    assert now(["OK", "FAIL", "OK"]).verdict == "FAIL"  # too few runs to call it noise


def test_runs_to_decide_and_the_chance_of_a_false_fail() -> None:
    assert R.runs_to_decide(4, 10) == 6  # 0.4^5 = 1.0 %, 0.4^6 = 0.4 %
    assert R.runs_to_decide(1, 10) == 3  # 0.1^2 = 1 %, 0.1^3 = 0.1 %
    assert R.runs_to_decide(0, 10) == 1  # never failed (OK or SKIP): one failure decides
    assert abs(R.chance_all_fail(4, 10, 6) - 0.4 ** 6) < 1e-12


def test_the_default_runs_give_a_false_fail_at_most_1_percent() -> None:
    """harness test's default (cli: --memcontrol-repeat, at most that many
    runs, stopping once every flaky test passed) against the stored
    baseline of test_memcontrol, for both suites (as is and under an N = 0
    policy): the chance that an unchanged kernel gets a FAIL is <= 1 %, and
    every flaky test is decided (a regression of it can FAIL)."""
    from harness import cli, paths, results
    base = results.load(paths.REPO / "selftests/baselines/test_memcontrol-unpatched.json")
    cases = [c for r in base for c in r.cases]
    n = cli.make_parser().parse_args(["test"]).memcontrol_repeat
    both = {"test_memcontrol": cases, R.ZERO_POLICY_SUITE: cases}
    assert R.false_fail_chance(both, n) <= 0.01
    # as the README and docs/testing.md say: 0.31 % for both suites, 0.16 % each
    assert f"{R.false_fail_chance(both, n):.2%}" == "0.31%"
    assert f"{R.false_fail_chance({'x': cases}, n):.2%}" == "0.16%"
    readme = " ".join((paths.REPO / "README.md").read_text().split())
    testing = " ".join((paths.REPO / "docs/testing.md").read_text().split())
    assert "false FAIL with a chance of 0.31 %" in readme
    assert "is 0.31 % (0.16 % per suite" in testing
    for name in ("test_memcg_min", "test_memcg_reclaim", "test_memcg_low"):
        failed, runs = R.baseline_fail_rate(cases, name)
        assert f"failed {failed} of {runs} baseline runs" in testing or \
            f"`{name.removeprefix('test_memcg')}` {failed}" in testing or \
            f"`{name}` {failed}" in testing, name
    flaky = [name for name, st in R.baseline_status(cases).items() if st == "FLAKY"]
    assert flaky, "the baseline has flaky tests (test_memcg_min, _low, _reclaim)"
    for name in flaky:
        assert R.runs_to_decide(*R.baseline_fail_rate(cases, name)) <= n, name
