"""One function per verb that runs pipeline stages, kunit.py's shape: each
takes the Pipeline (made from the shared Options) and the verb's own
request, and returns a VerbResult. cli.py turns the command line into
the request, and ends every verb the same way (cli.finish: the records,
report.json, the exit status)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import paths
from harness.errors import HarnessError
from harness.pipeline import Pipeline, SelftestsRun
from harness.record import FAIL, Status
from harness.report import table
from harness.results import PEER_TESTS, SERIES_TESTS
from harness.studies import run as studies

if TYPE_CHECKING:
    from harness.studies.bench import BenchParams
    from harness.studies.experiment import Params as ExperimentParams
    from harness.studies.throttle import Params as ThrottleParams

BASELINE = paths.REPO / "selftests" / "baselines" / "test_memcontrol-unpatched.json"
PEER_BASELINE = paths.REPO / "selftests" / "baselines" / "test_progs-peers-unpatched.json"


@dataclass
class VerbResult:
    report: dict[str, Any] = field(default_factory=dict)  # more fields of report.json
    exit: int | None = None  # the exit status where the verb has its own (vm)


@dataclass
class NoRequest:
    """The verbs that need nothing but the Options."""


@dataclass
class SeriesRequest:
    action: str = "apply"  # apply, status or pop
    check_apply: Path | None = None  # apply `patches` to a copy of this tree's files
    patches: Path | None = None  # with check_apply: default patches/upstream


@dataclass
class VmRequest:
    command: str = "uname -r"  # a shell command line
    script: Path | None = None  # a host script to run instead
    timeout: float = 600
    memory: str = "2G"
    cpus: int = 2


@dataclass
class CheckRequest:
    prefixes: bool = True
    configs: bool = True
    quick: bool = False
    lifetime: bool = False


@dataclass
class TestRequest:
    filters: list[str] = field(default_factory=list)  # test_progs -t; [] with unpatched
    peers: bool = False
    peer_baseline: Path = PEER_BASELINE
    repeat: int = 1
    verbose: bool = False
    memcontrol: bool = True
    memcontrol_repeat: int = 6
    zero_policy: bool = True
    swap_mb: int = 256
    baseline: Path = BASELINE
    write_baseline: bool = False
    timeout: float = 1800


@dataclass
class StudyRequest:
    """throttle, experiment, bench: the study's own Params."""
    params: ThrottleParams | ExperimentParams | BenchParams
    nodebug: bool = False  # throttle: on the nodebug kernel
    reanalyze: list[Path] = field(default_factory=list)  # experiment: earlier runs


def verb_source(pl: Pipeline, req: NoRequest) -> VerbResult:
    """The kernel tree: Debian's linux-source-7.3, fetched and cached, or --kernel-dir."""
    return VerbResult({"source": asdict(pl.source())})


def verb_series(pl: Pipeline, req: SeriesRequest) -> VerbResult:
    """patches/ on the tree with quilt: apply, status or pop; or, with
    check_apply, whether the upstream part applies to a tree of the user's."""
    if req.check_apply is not None:
        pl.check_apply(req.check_apply, req.patches)
        return VerbResult()
    pl.series(req.action)
    return VerbResult()


def verb_config(pl: Pipeline, req: NoRequest) -> VerbResult:
    """The tree with the series, and its .config from kernel-config/."""
    pl.source()
    pl.toolchain()
    pl.series("apply")
    pl.config()
    return VerbResult()


def verb_build(pl: Pipeline, req: NoRequest) -> VerbResult:
    """Everything a boot needs: kernel, guest tools, selftests."""
    pl.prepare()
    return VerbResult()


def verb_vm(pl: Pipeline, req: VmRequest) -> VerbResult:
    """Boot the built kernel and run a command: PASS if it exits 0 with a
    quiet console, FAIL otherwise (its status is in the report)."""
    command = req.command
    if req.script:
        if not req.script.is_file():
            raise HarnessError(f"--script {req.script}: no such file")
        shared = pl.opts.out / "vm-out"
        shared.mkdir(parents=True, exist_ok=True)
        shutil.copy(req.script, shared / "script.sh")
        command = "sh ./script.sh"
    # the version, in the report
    report: dict[str, Any] = {"source": asdict(pl.source(fetch=False))}
    res = pl.boot(command, timeout=req.timeout, memory=req.memory, cpus=req.cpus)
    print(f"console log: {res.console}")
    problem = res.problem()
    if problem:
        print(problem, file=sys.stderr)
    # the boot's record says FAIL for a failed command, a splat, a crash or a
    # hang: the exit status is the harness's own (0/1/2), the command's
    # status is in the record and here
    report["guest_rc"] = res.guest_rc
    return VerbResult(report)


def verb_check(pl: Pipeline, req: CheckRequest) -> VerbResult:
    """What a maintainer's bots check: checkpatch, every prefix, W=1, configs."""
    from harness.check import items_dict
    items = pl.check(prefixes=req.prefixes, configs=req.configs, quick=req.quick,
                     lifetime=req.lifetime)
    print()
    print(table([[i.kind, i.name[:60], i.status, i.summary[:70]] for i in items],
                ["check", "item", "status", "summary"]))
    for i in items:
        if i.status == Status.FAIL:
            print(f"\n{i.kind} {i.name}:\n  " + "\n  ".join(
                i.details.get("issues") or [i.details.get("error", "")]))
    for i in items:
        for x in i.details.get("excepted", []):
            print(f"note: {x}")
    return VerbResult({"check": items_dict(items)})


def flaky_tests(baseline: Path) -> list[str]:
    """The tests that fail in some runs of a baseline and pass in others."""
    from harness import results
    if not baseline.exists():
        return []
    cases = [c for r in results.load(baseline) for c in r.cases]
    return sorted(n for n, st in results.baseline_status(cases).items()
                  if st == results.FLAKY and results.baseline_fail_rate(cases, n)[0])


def verb_test(pl: Pipeline, req: TestRequest) -> VerbResult:
    """The selftests in a guest, judged by results.judge(): a series test
    must pass, the others as without the series."""
    unpatched = pl.opts.unpatched
    if req.write_baseline and not unpatched:
        raise HarnessError("--write-baseline needs --unpatched (the baseline is the tree "
                           "without the series)")
    # Unpatched, the baselines are of interest: test_memcontrol's and, with
    # --peers, the peer set's; the series' own tests do not exist there.
    filters = list(req.filters) or ([] if unpatched else list(SERIES_TESTS))
    if req.peers:
        filters += PEER_TESTS
    pl.prepare(bpf_selftests=bool(filters))
    report: dict[str, Any] = {"source": asdict(pl.source())}
    # test_memcontrol runs until each test flaky without the series passed,
    # at most memcontrol_repeat times; a baseline runs them all
    until = [] if req.write_baseline or unpatched else flaky_tests(req.baseline)
    runs = pl.selftests(SelftestsRun(
        filters, test_progs=bool(filters), repeat=req.repeat, verbose=req.verbose,
        swap_mb=req.swap_mb, memcontrol=req.memcontrol,
        memcontrol_repeat=req.memcontrol_repeat, memcontrol_until_pass=until,
        zero_policy=req.zero_policy and not unpatched,
        baseline=None if unpatched else req.baseline,
        peer_baseline=req.peer_baseline if req.peers and not unpatched else None,
        timeout=req.timeout))
    rows = [[v.suite, v.name, "/".join(v.statuses) or "-", v.verdict, v.reason[:80]]
            for v in pl.verdicts if v.verdict != Status.PASS or req.verbose or req.repeat > 1]
    npass = sum(1 for v in pl.verdicts if v.verdict == Status.PASS)
    print()
    if rows:
        print(table(rows, ["suite", "test", "results", "verdict", "why"]))
    print(f"{npass} of {len(pl.verdicts)} tests pass" + ("" if rows else
          "; every test passes" if pl.verdicts else ""))
    mc = [r for r in runs if r.suite == "test_memcontrol"]
    tp = [r for r in runs if r.suite == "test_progs"]
    if req.write_baseline and req.peers and tp:
        pl.write_baseline(req.peer_baseline, tp,
                          "the peer set (test_progs) on the tree without the series, same "
                          "config and guest as the patched runs (harness test --unpatched "
                          "--peers --write-baseline)", peers=list(PEER_TESTS))
    elif req.peers and not unpatched and not req.peer_baseline.exists():
        with pl.stage("peers-vs-unpatched") as rec:
            rec.status = FAIL
            rec.summary = (f"no baseline {req.peer_baseline}: make it with harness test "
                           "--unpatched --peers --write-baseline --no-memcontrol")
    if req.write_baseline and mc:
        pl.write_baseline(req.baseline, mc,
                          "test_memcontrol on the tree without the series, same config and "
                          "guest as the patched runs (harness test --unpatched "
                          "--write-baseline)")
    report["selftests"] = str(pl.opts.out / "selftests" / "results.json")
    return VerbResult(report)


def verb_experiment(pl: Pipeline, req: StudyRequest) -> VerbResult:
    """The phased throttling experiment (harness/studies/experiment.py)."""
    if req.reanalyze:
        from harness.studies.run import reanalyze_experiment
        r = reanalyze_experiment(pl, [p.resolve() for p in req.reanalyze])
        print("\n" + r.table)
        return VerbResult({"experiment": str(r.results)})
    from harness.studies.experiment import Params as MatrixParams
    assert isinstance(req.params, MatrixParams), req.params  # cli.request: experiment's
    r = studies.experiment(pl, req.params)
    print("\n" + r.table)
    print(f"\nevery run: {pl.opts.out / 'experiment' / 'table.txt'}; plots: "
          f"{r.png}, {r.timelines}")
    return VerbResult({"source": asdict(pl.source()), "experiment": str(r.results)})


def verb_throttle(pl: Pipeline, req: StudyRequest) -> VerbResult:
    """The stress-ng throttling experiment (harness/studies/throttle.py); with
    --matrix, the phased experiment's whole matrix (harness/studies/experiment.py)."""
    params = req.params
    from harness.studies.experiment import Params as MatrixParams
    if isinstance(params, MatrixParams):
        return verb_experiment(pl, req)
    from harness.studies.throttle import Params as ThrottleParams
    assert isinstance(params, ThrottleParams), params  # cli.request: throttle's or --matrix's
    if req.nodebug:  # performance numbers: no lockdep, PROVE_RCU, ...
        pl = pl.nodebug("patched", "throttle --nodebug")
    else:
        pl.prepare()
    report = {"source": asdict(pl.source())}
    print(f"throttle: {len(params.scenarios)} scenarios x {params.repeats} repeats x "
          f"{params.seconds} s, about {params.estimate_s() / 60:.0f} min in the guest",
          flush=True)
    r = studies.throttle(pl, params)
    print("\n" + r.report())
    return VerbResult(report | {"throttle": str(r.results)})


def verb_bench(pl: Pipeline, req: StudyRequest) -> VerbResult:
    """What the hook costs (harness/studies/bench.py)."""
    from harness.studies.bench import BenchParams
    assert isinstance(req.params, BenchParams), req.params  # cli.request: bench's
    r = studies.bench(pl, req.params)
    print("\n" + r.table)
    print(f"\nevery run: {pl.opts.out / 'bench' / 'table.txt'}; plot: {r.png}")
    return VerbResult({"source": asdict(pl.source()), "bench": str(r.results)})


def verb_run(pl: Pipeline, req: NoRequest) -> VerbResult:
    """The main job: build, boot, the pytest suites, the throttling report."""
    pl.prepare()
    report = {"source": asdict(pl.source())}
    pl.pytest(paths.REPO / "selftests", pl.opts.out / "junit-selftests.xml")
    # The throttling report: throughput with and without the policy,
    # every run shown, nothing asserted (the suites assert the
    # mechanism; throughput depends on the machine).
    from harness.studies.throttle import SHORT_SCENARIOS, Params
    params = Params(scenarios=list(SHORT_SCENARIOS), repeats=3)
    print(f"\nthrottling report: {len(params.scenarios)} scenarios x {params.repeats}"
          f" repeats, about {params.estimate_s() / 60:.0f} min in the guest", flush=True)
    r = studies.throttle(pl, params)
    print("\nthrottling experiment (short matrix; reported, not asserted):\n" + r.report())
    return VerbResult(report | {"throttle": str(r.results)})


# each verb takes the request cli.request makes for it
VERBS: dict[str, Callable[[Pipeline, Any], VerbResult]] = {
    "source": verb_source,
    "series": verb_series,
    "config": verb_config,
    "build": verb_build,
    "vm": verb_vm,
    "check": verb_check,
    "test": verb_test,
    "experiment": verb_experiment,
    "throttle": verb_throttle,
    "bench": verb_bench,
    "run": verb_run,
}


def vm_command(argv: list[str]) -> str:
    """`vm -- CMD...`: one word is a shell command line as it is; several
    are quoted one by one (shlex.join), so `vm -- sh -c 'a; b'` keeps its
    quoting."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        return "uname -r"
    return argv[0] if len(argv) == 1 else shlex.join(argv)
