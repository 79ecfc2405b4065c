"""Selftest results: test_progs and KTAP output parsed into cases, written as
JSON and JUnit XML, and compared with a baseline run.

Pure functions on text, tested on saved logs (harness/tests/data/).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.record import Status


class CaseStatus(StrEnum):
    """The outcome of one test in one run, as its runner reported it
    (test_progs, KTAP), and what a baseline says of a test over its runs."""
    OK = "OK"
    FAIL = "FAIL"
    SKIP = "SKIP"
    MISSING = "MISSING"  # a required test that did not report
    KNOWN = "KNOWN-FAIL"  # failed, as it does on the unpatched kernel (a baseline)
    FLAKY = "FLAKY"  # a baseline's runs disagree


OK, FAIL, SKIP, MISSING = CaseStatus.OK, CaseStatus.FAIL, CaseStatus.SKIP, CaseStatus.MISSING
KNOWN, FLAKY = CaseStatus.KNOWN, CaseStatus.FLAKY

# "#123     memcg_ops:OK", "#123/4   memcg_ops/over_high:FAIL",
# "#7/2     foo/bar:SKIP"; test_progs prints one per test and subtest.
_TP_LINE = re.compile(r"^#(\d+)(?:/(\d+))?\s+(\S+?):(OK|FAIL|SKIP)\s*$")
# "Summary: 1/5 PASSED, 0 SKIPPED, 0/0 FAILED": tests/subtests passed, tests
# skipped, tests/subtests failed (older test_progs: "0 FAILED").
_TP_SUMMARY = re.compile(r"^Summary:\s+(\d+)/(\d+) PASSED,\s+(\d+) SKIPPED,\s+"
                         r"(\d+)(?:/(\d+))? FAILED")
# KTAP: "ok 1 name", "not ok 2 name", "ok 3 name # SKIP why"
_KTAP_LINE = re.compile(r"^(not ok|ok)\s+(\d+)\s+(?:-\s+)?([^#]*?)\s*(?:#\s*(\w+)\s*(.*))?$")
_KTAP_PLAN = re.compile(r"^1\.\.(\d+)")


@dataclass
class Case:
    suite: str  # "test_progs" or "test_memcontrol"
    name: str  # "memcg_ops/over_high", "test_memcg_min"
    status: str  # OK, FAIL, SKIP
    number: str = ""
    message: str = ""
    run: int = 0  # which repetition

    @property
    def key(self) -> str:
        return f"{self.suite}:{self.name}"


@dataclass
class RunResult:
    suite: str
    cases: list[Case] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    rc: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Case]:
        return [c for c in self.cases if c.status == FAIL]


def parse_test_progs(text: str, run: int = 0) -> RunResult:
    """Per-test and per-subtest results and the summary line of test_progs.

    A test line's status covers its subtests; both are kept, the test as
    "name" and each subtest as "name/subtest". The log lines test_progs prints
    between them (with -v, or for failures) go into the failed case's message.
    """
    res = RunResult("test_progs")
    pending: list[str] = []
    by_name: dict[str, Case] = {}
    # After "All error logs:" test_progs prints the failed tests again, each
    # as its whole log followed by its status line: that log becomes the
    # case's message.
    in_errors = False
    current: Case | None = None
    for raw in text.splitlines():
        line = raw.strip()
        sm = _TP_SUMMARY.match(line)
        if sm:
            res.summary = {"passed": int(sm.group(1)), "subtests_passed": int(sm.group(2)),
                           "skipped": int(sm.group(3)), "failed": int(sm.group(4))}
            if sm.group(5) is not None:
                res.summary["subtests_failed"] = int(sm.group(5))
            in_errors = False
            continue
        if line == "All error logs:":
            in_errors, current, pending = True, None, []
            continue
        m = _TP_LINE.match(line)
        if in_errors:  # each failed test's log, then its status line again
            if m:
                current = by_name.get(m.group(3))
                if current is not None and pending:
                    current.message = "\n".join(pending[-80:])
                pending = []
            else:
                pending.append(raw)
            continue
        if m:
            number = m.group(1) + (f"/{m.group(2)}" if m.group(2) else "")
            case = Case("test_progs", m.group(3), m.group(4), number, run=run)
            if case.status == FAIL:
                case.message = "\n".join(pending[-60:])
            res.cases.append(case)
            by_name[case.name] = case
            pending = []
            continue
        pending.append(raw)
    if not res.summary:
        res.problems.append("test_progs printed no summary line (crashed or killed?)")
    elif res.summary["failed"] != len({c.name for c in res.cases
                                        if c.status == FAIL and "/" not in c.name}):
        res.problems.append(f"summary says {res.summary['failed']} failed, "
                            f"the test lines say otherwise")
    return res


def apply_test_progs_json(res: RunResult, data: dict[str, Any]) -> RunResult:
    """Take what test_progs' -J report has the answer for: the totals
    (its own counters, not a parse of its text), and each failed test's and
    subtest's log as the case's message. The JSON has no per-test line for
    what passed or skipped (nor anything but the totals with -v), so those
    cases stay the text's; a total the text lines do not add up to is a
    problem of the run."""
    res.summary = {"passed": data["success"], "subtests_passed": data["success_subtest"],
                   "skipped": data["skipped"], "failed": data["failed"],
                   "subtests_failed": data["failed_subtest"], "from": "test_progs -J"}
    res.problems = [p for p in res.problems
                    if "no summary line" not in p and "the test lines say otherwise" not in p]
    by_name = {c.name: c for c in res.cases}
    for t in data.get("results", []):
        entries = [(t["name"], t)] + [(f"{t['name']}/{st['name']}", st)
                                      for st in t.get("subtests", [])]
        for name, e in entries:
            if not e.get("failed"):
                continue
            c = by_name.get(name)
            if c is None:
                c = Case(res.suite, name, FAIL, run=res.cases[0].run if res.cases else 0)
                res.cases.append(c)
                by_name[name] = c
            c.status = FAIL
            if e.get("message"):
                c.message = e["message"].rstrip()[-6000:]
    top = [c for c in res.cases if "/" not in c.name]
    sub = [c for c in res.cases if "/" in c.name]
    got = {"passed": sum(c.status == OK for c in top), "failed": sum(c.status == FAIL
                                                                    for c in top),
           "skipped": sum(c.status == SKIP for c in top),
           "subtests_passed": sum(c.status == OK for c in sub),
           "subtests_failed": sum(c.status == FAIL for c in sub)}
    off = [f"{k} {got[k]} (JSON {res.summary[k]})" for k in got if got[k] != res.summary[k]]
    if off:
        res.problems.append("test_progs' test lines do not add up to its -J totals: "
                            + ", ".join(off))
    return res


def parse_ktap(text: str, suite: str, run: int = 0) -> RunResult:
    """KTAP/TAP results (the kselftest harness, e.g. test_memcontrol).

    Measured against the tree's tools/testing/kunit/kunit_parser.py on the
    13 saved test_memcontrol logs (the 12 of the vm suite's runs and
    tests/data/test_memcontrol.log): both find the same results and both
    see a truncated log (kunit: TEST_CRASHED; here: fewer results than the
    plan), but kunit_parser names every kselftest skip "" (kselftest's
    ksft_test_result_skip() prints "ok N # SKIP name", the name in the
    directive), so a skipped test could not be compared with its baseline.
    This parser keeps that name; it also needs no kernel tree to import."""
    res = RunResult(suite)
    plan = None
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        m = _KTAP_PLAN.match(line)
        if m:
            plan = int(m.group(1))
            continue
        m = _KTAP_LINE.match(line)
        if not m:
            pending.append(raw)
            continue
        directive = (m.group(4) or "").upper()
        if directive == "SKIP":
            status = SKIP
        elif m.group(1) == "ok":
            status = OK
        else:
            status = FAIL
        name, reason = m.group(3).strip(), (m.group(5) or "").strip()
        if not name and status == SKIP and reason:
            # kselftest's ksft_test_result_skip(): "ok 10 # SKIP test_name"
            name, reason = reason.split()[0], reason
        case = Case(suite, name, status, m.group(2), run=run)
        if status != OK:
            case.message = reason or "\n".join(pending[-30:])
        res.cases.append(case)
        pending = []
    counts = {s: sum(1 for c in res.cases if c.status == s) for s in (OK, FAIL, SKIP)}
    res.summary = {"passed": counts[OK], "failed": counts[FAIL], "skipped": counts[SKIP],
                   "total": len(res.cases), "plan": plan}
    if plan is None:
        res.problems.append(f"{suite}: no KTAP plan line (crashed or killed?)")
    elif plan != len(res.cases):
        res.problems.append(f"{suite}: planned {plan} tests, {len(res.cases)} reported")
    return res


def required_missing(res: RunResult, names: list[str]) -> list[Case]:
    """Cases for required tests that did not report at all."""
    seen = {c.name for c in res.cases}
    return [Case(res.suite, n, MISSING, message="did not run (not built? filtered out?)")
            for n in names if n not in seen]


def baseline_status(baseline: list[Case]) -> dict[str, str]:
    """Per test name: OK or SKIP or FAIL if every baseline run agrees, else
    FLAKY (the test is not stable on the unpatched kernel either)."""
    out: dict[str, str] = {}
    for name in dict.fromkeys(c.name for c in baseline):
        sts = {c.status for c in baseline if c.name == name}
        out[name] = sts.pop() if len(sts) == 1 else FLAKY
    return out


def baseline_fail_rate(baseline: list[Case], name: str) -> tuple[int, int]:
    """(runs that failed, runs) of test `name` in a baseline (a skip is
    neither a pass nor a failure)."""
    sts = [c.status for c in baseline if c.name == name]
    return sum(x in (FAIL, KNOWN) for x in sts), len(sts)


# A test that is flaky without the series fails here only if all of its runs
# failing by chance, at the baseline's failure rate, is at most this likely.
DECIDE_ALPHA = 0.005


def chance_all_fail(failed: int, runs: int, n: int) -> float:
    """The probability that n runs of a test that failed `failed` of `runs`
    baseline runs all fail, were nothing changed."""
    return (failed / runs) ** n if runs else 1.0


def runs_to_decide(failed: int, runs: int, alpha: float = DECIDE_ALPHA) -> int:
    """The fewest failing runs that are at most `alpha` likely by chance."""
    if failed >= runs:
        raise ValueError("a test that always fails without the series is never decided")
    n = 1
    while chance_all_fail(failed, runs, n) > alpha:
        n += 1
    return n


def false_fail_chance(baselines: dict[str, list[Case]], n: int,
                      alpha: float = DECIDE_ALPHA) -> float:
    """With at most n runs of each suite (stopping once every test flaky
    without the series has passed): the chance that a kernel the series
    did not change gets a FAIL from judge() for a flaky test, over every
    suite (a union bound). Runs that cannot decide give a SKIP, never a
    FAIL, so only the decided ones count."""
    total = 0.0
    for cases in baselines.values():
        for name, st in baseline_status(cases).items():
            if st != FLAKY:
                continue
            x = chance_all_fail(*baseline_fail_rate(cases, name), n)
            total += x if x <= alpha else 0.0
    return total


@dataclass
class Verdict:
    """What a test's results (all its repetitions) mean for the change:
    PASS, FAIL, or SKIP (it tells nothing: it does not pass without the
    change either). judge() is the one place that decides it; `harness
    test`, the pipeline's stage and the pytest suites all use it."""
    suite: str
    name: str
    verdict: Status  # PASS, FAIL, SKIP
    reason: str = ""
    statuses: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.suite}:{self.name}"


ONE_FAIL_RUNS = 5  # repeats from which one failure of an always-passing test is noise


def judge(runs: list[RunResult], series: tuple[str, ...] = (),
          baselines: dict[str, list[Case]] | None = None) -> list[Verdict]:
    """One verdict per test of `runs` (and per test a baseline passes that
    did not run), and one FAIL per runner problem.

    - A test of the series (its top-level name in `series`) must pass in
      every repetition. A SKIP is a FAIL too: the harness gives the
      series' tests what they need (swap, bpf_testmod), so a skip means
      the test tested nothing.
    - Any other test is judged against the baseline of its suite (the same
      tests on the kernel without the series, several runs): passing there
      every time, it must pass every time; flaky there, at least once,
      and when it never passed it is a FAIL only if its failures are at
      most DECIDE_ALPHA likely by chance at the baseline's failure rate,
      else a SKIP ("N runs cannot decide");
      failing or skipping there every time, it is SKIP here, whatever it
      does. A test no baseline knows fails only if it fails.
    """
    baselines = baselines or {}
    out: list[Verdict] = []
    for r in runs:
        out += [Verdict(r.suite, "runner", Status.FAIL, p) for p in r.problems]
    by_test: dict[tuple[str, str], list[str]] = {}
    msgs: dict[tuple[str, str], str] = {}
    for r in runs:
        for c in r.cases:
            by_test.setdefault((r.suite, c.name), []).append(
                OK if c.status == OK else FAIL if c.status == KNOWN else c.status)
            if c.message and c.status != OK:
                msgs.setdefault((r.suite, c.name), c.message.strip().splitlines()[-1][:200])
    suites = {r.suite for r in runs}
    for suite in sorted(suites):
        base = baseline_status(baselines.get(suite, []))
        for name, st in base.items():
            if st == OK and (suite, name) not in by_test:
                by_test[(suite, name)] = [MISSING]
    for (suite, name), sts in by_test.items():
        base = baseline_status(baselines.get(suite, []))
        why = msgs.get((suite, name), "")
        if name.split("/")[0] in series:
            v = Verdict(suite, name, Status.PASS if all(x == OK for x in sts) else Status.FAIL,
                        "" if all(x == OK for x in sts) else
                        f"a test of the series must pass: {'/'.join(sts)}"
                        + (" (a skip tests nothing)" if SKIP in sts else "")
                        + (f": {why}" if why else ""), sts)
        elif base.get(name) == OK:
            ok = all(x == OK for x in sts)
            # One plain failure in ONE_FAIL_RUNS or more repeats is within
            # what the baseline's runs can exclude (1 of 7 against 0 of 10:
            # Fisher's exact one-sided p = 0.41): reported, not failed.
            once = (not ok and len(sts) >= ONE_FAIL_RUNS and sts.count(FAIL) == 1
                    and sum(x != OK for x in sts) == 1)
            v = Verdict(suite, name, Status.PASS if ok or once else Status.FAIL, "" if ok else
                        f"passed in every run without the series, {'/'.join(sts)} now"
                        + (" (one failure in this many runs: as likely without the "
                           "series as with it)" if once else "")
                        + (f": {why}" if why else ""), sts)
        elif base.get(name) == FLAKY:
            failed, nbase = baseline_fail_rate(baselines.get(suite, []), name)
            k = sum(x in (FAIL, MISSING) for x in sts)
            chance = chance_all_fail(failed, nbase, k)
            if OK in sts:
                v = Verdict(suite, name, Status.PASS, "", sts)
            elif not k:
                v = Verdict(suite, name, Status.SKIP, f"skipped in every run, as in "
                            f"{nbase - failed} of {nbase} runs without the series", sts)
            elif chance > DECIDE_ALPHA:
                v = Verdict(suite, name, Status.SKIP,
                            f"{k} runs cannot decide: it failed {failed} of {nbase} runs "
                            f"without the series, so {k} failures are {chance:.1%} likely "
                            f"by chance ({runs_to_decide(failed, nbase)} decide)", sts)
            else:
                v = Verdict(suite, name, Status.FAIL,
                            f"flaky without the series (failed {failed} of {nbase} runs), "
                            f"and never passed in {len(sts)} runs ({chance:.2%} likely by "
                            "chance)", sts)
        elif name in base:
            v = Verdict(suite, name, Status.SKIP, f"{base[name]} without the series too "
                        f"(every baseline run); {'/'.join(sts)} now", sts)
        elif FAIL in sts or MISSING in sts:
            v = Verdict(suite, name, Status.FAIL, f"{'/'.join(sts)} (not in the baseline)"
                        + (f": {why}" if why else ""), sts)
        else:
            v = Verdict(suite, name, Status.PASS if OK in sts else Status.SKIP,
                        "" if OK in sts else "skipped (not in the baseline)", sts)
        out.append(v)
    return out


def write_junit(path: Path, runs: list[RunResult]) -> Path:
    """One <testsuite> per runner, one <testcase> per test and subtest (and
    repetition); FAIL and MISSING are failures, SKIP is skipped."""
    root = ET.Element("testsuites")
    for r in runs:
        suite = ET.SubElement(root, "testsuite", name=r.suite)
        n = {"tests": 0, "failures": 0, "skipped": 0}
        for c in r.cases:
            name = c.name if not c.run else f"{c.name}#{c.run}"
            tc = ET.SubElement(suite, "testcase", classname=r.suite, name=name)
            n["tests"] += 1
            if c.status in (FAIL, MISSING):
                n["failures"] += 1
                f = ET.SubElement(tc, "failure", message=f"{c.status}")
                f.text = c.message
            elif c.status in (SKIP, KNOWN):
                n["skipped"] += 1
                ET.SubElement(tc, "skipped", message=c.message[:200])
        for p in r.problems:
            tc = ET.SubElement(suite, "testcase", classname=r.suite, name="runner")
            ET.SubElement(tc, "failure", message=p)
            n["tests"] += 1
            n["failures"] += 1
        for k, v in n.items():
            suite.set(k, str(v))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)
    return path


def to_dict(runs: list[RunResult]) -> dict[str, Any]:
    return {"runs": [{"suite": r.suite, "rc": r.rc, "summary": r.summary,
                      "problems": r.problems, "cases": [asdict(c) for c in r.cases]}
                     for r in runs]}


def from_dict(data: dict[str, Any]) -> list[RunResult]:
    runs = []
    for r in data.get("runs", []):
        rr = RunResult(r["suite"], [Case(**c) for c in r["cases"]], r.get("summary", {}),
                       r.get("rc"), r.get("problems", []))
        runs.append(rr)
    return runs


def load(path: Path) -> list[RunResult]:
    return from_dict(json.loads(path.read_text()))


# The series' own test_progs tests, what `harness test` runs by default.
# The guest runner's suite name for test_memcontrol run with an N = 0
# memcg_bpf_ops policy above its cgroups (harness/guest/selftests.py).
ZERO_POLICY_SUITE = "test_memcontrol_zero_policy"

SERIES_TESTS = ("memcg_ops", "cgroup_struct_ops")

# The peer set: upstream's test_progs tests of struct_ops and of cgroup BPF
# attachment, the code the series changes for its own struct_ops type
# (test_progs -t globs). `harness test --peers` runs them and compares with
# the same tests on the unpatched kernel (selftests/baselines/).
PEER_TESTS = ("*struct_ops*", "dummy_st_ops", "cgroup_link", "cgroup_attach_*",
              "cgroup_mprog_*", "cgroup_preorder", "cgroup_iter_memcg", "bpf_tcp_ca")


def is_peer(name: str) -> bool:
    """`name` (a test or test/subtest) belongs to the peer set."""
    import fnmatch
    top = name.split("/")[0]
    return any(fnmatch.fnmatchcase(top, g) for g in PEER_TESTS)


def collect_selftests(gout: Path, required: list[str]) -> list[RunResult]:
    """Parse what harness/guest/selftests.py left in gout (its runs.json and
    one log per run); a required test that never reported is MISSING."""
    index = gout / "runs.json"
    if not index.exists():
        r = RunResult("selftests", problems=[f"the guest runner left no {index}"])
        return [r]
    runs = []
    for entry in json.loads(index.read_text())["runs"]:
        log = gout / entry["log"]
        text = log.read_text(errors="replace") if log.exists() else ""
        if entry["suite"] == "test_progs":
            r = parse_test_progs(text, run=entry["run"])
            report = gout / f"test_progs-{entry['run']}.json"  # its -J report
            if report.exists():
                try:
                    apply_test_progs_json(r, json.loads(report.read_text()))
                except (ValueError, KeyError) as e:
                    r.problems.append(f"test_progs -J report {report.name} unreadable: {e}")
            r.cases += required_missing(r, required)
        else:
            r = parse_ktap(text, entry["suite"], run=entry["run"])
            pol = entry.get("policy")
            if pol is not None and (pol.get("attach_err") != 0 or pol.get("rc") != 0):
                r.problems.append(f"{entry['suite']}: the N = 0 policy was not held: {pol}")
            elif pol is not None and not pol.get("over_high_total"):
                r.problems.append(f"{entry['suite']}: the N = 0 policy was never asked")
        r.rc = entry["rc"]
        if entry["rc"] is None:
            r.problems.append(f"{entry['suite']} killed after a timeout")
        elif entry["rc"] != 0 and not r.failed:
            r.problems.append(f"{entry['suite']} exited {entry['rc']} with no failed test")
        runs.append(r)
    return runs
