"""Parsers of selftest output (saved logs), JUnit/JSON, baselines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import results
from harness.results import collect_selftests

DATA = Path(__file__).parent / "data"


def test_test_progs_cases_and_summary() -> None:
    r = results.parse_test_progs((DATA / "test_progs-fail.log").read_text())
    st = {c.name: c.status for c in r.cases}
    assert st == {"memcg_ops/verifier": "OK", "memcg_ops/attach_detach": "OK",
                  "memcg_ops/over_high": "FAIL", "memcg_ops/bad_args": "OK",
                  "memcg_ops/inheritance": "SKIP", "memcg_ops": "FAIL"}
    # the "All error logs" section repeats failures: no duplicates, its log kept
    assert len(r.cases) == 6
    fail = next(c for c in r.cases if c.name == "memcg_ops/over_high")
    assert "actual 0 <= expected 0" in fail.message
    assert r.summary == {"passed": 0, "subtests_passed": 3, "skipped": 0, "failed": 1,
                         "subtests_failed": 1}
    assert not r.problems
    assert [c.name for c in r.failed] == ["memcg_ops/over_high", "memcg_ops"]


def test_test_progs_without_summary_is_a_problem() -> None:
    text = "#212/1   memcg_ops/verifier:OK\n"  # killed before the end
    r = results.parse_test_progs(text)
    assert r.problems and "no summary" in r.problems[0]
    assert r.problems or r.failed


def test_test_progs_summary_disagreeing_is_a_problem() -> None:
    text = "#1 a:OK\nSummary: 1/0 PASSED, 0 SKIPPED, 1 FAILED\n"
    assert results.parse_test_progs(text).problems


def test_ktap() -> None:
    r = results.parse_ktap((DATA / "test_memcontrol.log").read_text(), "test_memcontrol")
    st = {c.name: c.status for c in r.cases}
    assert st == {"test_memcg_subtree_control": "OK", "test_memcg_current_peak": "FAIL",
                  "test_memcg_swap_max_peak": "SKIP", "test_memcg_oom_group_leaf_events": "OK"}
    assert r.summary["plan"] == 4 and not r.problems


def test_ktap_short_of_plan_is_a_problem() -> None:
    r = results.parse_ktap("1..3\nok 1 a\n", "x")
    assert r.problems == ["x: planned 3 tests, 1 reported"]


def test_required_missing() -> None:
    r = results.parse_test_progs("#1/1 memcg_ops/verifier:OK\n#1 memcg_ops:OK\n"
                                 "Summary: 1/1 PASSED, 0 SKIPPED, 0 FAILED\n")
    assert results.required_missing(r, ["memcg_ops"]) == []
    miss = results.required_missing(r, ["memcg_ops", "memcg_ops_more"])
    assert [(c.name, c.status) for c in miss] == [("memcg_ops_more", "MISSING")]


def test_junit_and_json_round_trip(tmp_path: Path) -> None:
    tp = results.parse_test_progs((DATA / "test_progs-fail.log").read_text())
    mc = results.parse_ktap((DATA / "test_memcontrol.log").read_text(), "test_memcontrol")
    mc.problems.append("test_memcontrol exited 1 with no failed test")
    path = results.write_junit(tmp_path / "j.xml", [tp, mc])
    suites = {s.get("name"): s for s in ET.parse(path).getroot()}
    assert suites["test_progs"].get("tests") == "6"
    assert suites["test_progs"].get("failures") == "2"
    assert suites["test_progs"].get("skipped") == "1"
    assert suites["test_memcontrol"].get("failures") == "2"  # a FAIL and the problem
    back = results.from_dict(results.to_dict([tp, mc]))
    assert [c.name for c in back[0].cases] == [c.name for c in tp.cases]
    assert back[1].problems == mc.problems


def test_collect_selftests(tmp_path: Path) -> None:
    (tmp_path / "test_progs-0.log").write_text((DATA / "test_progs-fail.log").read_text())
    (tmp_path / "test_memcontrol.log").write_text("1..1\nok 1 a\n")
    (tmp_path / "runs.json").write_text(
        '{"env": {}, "runs": ['
        '{"suite": "test_progs", "run": 0, "log": "test_progs-0.log", "rc": 1},'
        '{"suite": "test_memcontrol", "run": 0, "log": "test_memcontrol.log", "rc": null}]}')
    tp, mc = collect_selftests(tmp_path, ["memcg_ops", "memcg_ops_other"])
    assert ("memcg_ops_other", "MISSING") in [(c.name, c.status) for c in tp.cases]
    assert mc.problems == ["test_memcontrol killed after a timeout"]
    assert collect_selftests(tmp_path / "nothing", [])[0].problems


def test_collect_selftests_zero_policy(tmp_path: Path) -> None:
    """test_memcontrol under an N = 0 policy: a policy that was not held,
    or never asked, is a problem of the run; one asked is not."""
    from harness.results import ZERO_POLICY_SUITE
    for i in range(3):
        (tmp_path / f"z{i}.log").write_text("1..1\nok 1 a\n")
    runs = [{"suite": ZERO_POLICY_SUITE, "run": i, "log": f"z{i}.log", "rc": 0,
             "policy": pol} for i, pol in enumerate([
                 {"attach_err": 0, "over_high_total": 1234, "rc": 0},
                 {"attach_err": 0, "over_high_total": 0, "rc": 0},
                 {"attach_err": -22, "rc": 1}])]
    (tmp_path / "runs.json").write_text(json.dumps({"env": {}, "runs": runs}))
    ok, never, unheld = collect_selftests(tmp_path, [])
    assert ok.problems == [] and ok.suite == ZERO_POLICY_SUITE
    assert ok.cases[0].status == "OK"
    assert "never asked" in never.problems[0]
    assert "not held" in unheld.problems[0]


def test_test_progs_real_pass_log() -> None:
    """A whole test_progs log from the guest (7.3.4 + the series)."""
    r = results.parse_test_progs((DATA / "test_progs-ok.log").read_text())
    assert [c.status for c in r.cases] == ["OK"] * 6
    assert r.summary == {"passed": 1, "subtests_passed": 5, "skipped": 0, "failed": 0,
                         "subtests_failed": 0}
    assert not r.failed and not r.problems


def test_baseline_status_and_flaky() -> None:
    C = results.Case
    base = [C("m", "a", "OK", run=0), C("m", "a", "OK", run=1),
            C("m", "b", "OK", run=0), C("m", "b", "FAIL", run=1),
            C("m", "c", "SKIP", run=0), C("m", "c", "SKIP", run=1)]
    assert results.baseline_status(base) == {"a": "OK", "b": "FLAKY", "c": "SKIP"}


def test_test_progs_real_failure_log() -> None:
    """A real failure (the hook made to return 0): the failed subtest's
    message is its log from the "All error logs" section."""
    r = results.parse_test_progs((DATA / "test_progs-fail-real.log").read_text())
    fail = next(c for c in r.cases if c.name == "memcg_ops/over_high")
    assert fail.status == "FAIL"
    assert "some: high events: actual 0 <= expected 0" in fail.message
    assert len(r.cases) == 6 and not r.problems


def test_peer_set_membership() -> None:
    from harness.results import is_peer
    for name in ("struct_ops_module", "test_struct_ops_maybe_null/x", "bad_struct_ops",
                 "dummy_st_ops/dummy_init_ret_value", "cgroup_link", "cgroup_attach_multi",
                 "cgroup_mprog_opts/x", "cgroup_iter_memcg", "bpf_tcp_ca/dctcp",
                 "cgroup_struct_ops/query"):
        assert is_peer(name), name
    for name in ("memcg_ops/update", "cgroup_iter", "bpf_tcp_ca_other_x", "tcp_ca",
                 "cgroup_v1v2"):
        assert not is_peer(name), name


def test_test_progs_json_totals_and_failure_logs(data: Path) -> None:
    import json
    for name, failed_sub in (("peers", 3), ("mutation", 3)):
        r = results.parse_test_progs((data / f"test_progs-{name}.log").read_text())
        js = json.loads((data / f"test_progs-{name}.json").read_text())
        results.apply_test_progs_json(r, js)
        assert not r.problems, (name, r.problems)
        assert r.summary["subtests_failed"] == failed_sub and r.summary["from"] == "test_progs -J"
    c = next(c for c in r.cases if c.name == "cgroup_struct_ops/inherit_order")
    assert c.status == "FAIL" and c.message.startswith("test_inherit_order:PASS:parent")


def test_test_progs_json_that_disagrees_is_a_problem(data: Path) -> None:
    import json
    r = results.parse_test_progs((data / "test_progs-mutation.log").read_text())
    js = json.loads((data / "test_progs-mutation.json").read_text())
    js["success_subtest"] += 1  # a subtest passed that no line reported
    results.apply_test_progs_json(r, js)
    assert any("do not add up" in p and "subtests_passed 3 (JSON 4)" in p for p in r.problems)


def test_test_progs_json_failure_the_text_missed(data: Path) -> None:
    import json
    r = results.parse_test_progs((data / "test_progs-mutation.log").read_text())
    r.cases = [c for c in r.cases if c.name != "cgroup_struct_ops/query"]
    results.apply_test_progs_json(r, json.loads((data / "test_progs-mutation.json")
                                                 .read_text()))
    q = next(c for c in r.cases if c.name == "cgroup_struct_ops/query")
    assert q.status == "FAIL" and "test_query" in q.message and not r.problems


def test_collect_selftests_reads_the_json_report(tmp_path: Path) -> None:
    (tmp_path / "test_progs-0.log").write_text((DATA / "test_progs-mutation.log").read_text())
    (tmp_path / "test_progs-0.json").write_text((DATA / "test_progs-mutation.json").read_text())
    (tmp_path / "runs.json").write_text(
        '{"env": {}, "runs": [{"suite": "test_progs", "run": 0, "log": "test_progs-0.log", '
        '"rc": 1}]}')
    (tp,) = collect_selftests(tmp_path, ["cgroup_struct_ops"])
    assert tp.summary["from"] == "test_progs -J" and not tp.problems
    (tmp_path / "test_progs-0.json").write_text("{")
    (tp,) = collect_selftests(tmp_path, ["cgroup_struct_ops"])
    assert any("unreadable" in p for p in tp.problems)
