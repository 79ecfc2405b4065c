"""results.judge: the one place that says what a test's results mean."""
from harness import results as R


def run(suite, cases, rep=0, problems=()):
    return R.RunResult(suite, [R.Case(suite, n, st, run=rep) for n, st in cases],
                       problems=list(problems))


def verdicts(runs, **kw):
    return {(v.suite, v.name): v for v in R.judge(runs, **kw)}


def test_a_skipped_series_subtest_fails():
    v = verdicts([run("test_progs", [("memcg_ops", "OK"), ("memcg_ops/root", "SKIP"),
                                     ("memcg_ops/attach", "OK")])], series=("memcg_ops",))
    assert v[("test_progs", "memcg_ops/attach")].verdict == "PASS"
    bad = v[("test_progs", "memcg_ops/root")]
    assert bad.verdict == "FAIL" and "tests nothing" in bad.reason


def test_missing_series_test_fails():
    v = verdicts([run("test_progs", [("memcg_ops/stress", "MISSING")])], series=("memcg_ops",))
    assert v[("test_progs", "memcg_ops/stress")].verdict == "FAIL"


def test_against_the_baseline():
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
    assert v[("test_memcontrol", "test_memcg_min")].verdict == "FAIL"  # flaky, never passed
    now[1].cases[2].status = "OK"
    assert verdicts(now, baselines=base)[("test_memcontrol", "test_memcg_min")].verdict \
        == "PASS"
    now[2].cases[0].status = "FAIL"  # passes every time unpatched: must every time
    assert verdicts(now, baselines=base)[("test_memcontrol", "test_memcg_high")].verdict \
        == "FAIL"


def test_a_baseline_test_that_did_not_run_fails_and_problems_are_fails():
    base = {"test_progs": [R.Case("test_progs", "cgroup_link", "OK")]}
    v = verdicts([run("test_progs", [("dummy_st_ops", "OK")],
                      problems=["test_progs printed no summary line"])], baselines=base)
    assert v[("test_progs", "cgroup_link")].verdict == "FAIL"
    assert v[("test_progs", "cgroup_link")].statuses == ["MISSING"]
    assert v[("test_progs", "runner")].verdict == "FAIL"
    assert v[("test_progs", "dummy_st_ops")].verdict == "PASS"  # unknown to the baseline


def test_known_fail_marking_is_a_fail_status():
    base = {"test_progs": [R.Case("test_progs", "bpf_tcp_ca/cc_cubic", "FAIL")]}
    v = verdicts([run("test_progs", [("bpf_tcp_ca/cc_cubic", R.KNOWN)])], baselines=base)
    assert v[("test_progs", "bpf_tcp_ca/cc_cubic")].verdict == "SKIP"


def test_one_failure_in_many_repeats_of_an_always_passing_test_is_reported_not_failed():
    base = {"test_memcontrol": [R.Case("test_memcontrol", "test_memcg_reclaim", "OK", run=i)
                                for i in range(10)]}

    def now(statuses):
        return verdicts([run("test_memcontrol", [("test_memcg_reclaim", st)], rep=i)
                         for i, st in enumerate(statuses)], baselines=base)[
            ("test_memcontrol", "test_memcg_reclaim")]
    one = now(["OK", "OK", "FAIL", "OK", "OK", "OK", "OK"])
    assert one.verdict == "PASS" and "one failure" in one.reason
    assert now(["OK", "FAIL", "FAIL", "OK", "OK", "OK", "OK"]).verdict == "FAIL"
    assert now(["OK", "MISSING", "OK", "OK", "OK", "OK", "OK"]).verdict == "FAIL"  # a crash
    assert now(["OK", "FAIL", "OK"]).verdict == "FAIL"  # too few runs to call it noise
