"""The command line: python -m harness <verb> (console script: memcg-harness)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from harness import __version__, host, paths, send
from harness.errors import ChangeFailed, HarnessError
from harness.options import Options
from harness.pipeline import PLANS, Pipeline
from harness.record import ERROR, FAIL, SKIP, StageRecord
from harness.report import reproducer, stage_table, summary, table, write_json
from harness.results import PEER_TESTS, SERIES_TESTS
from harness.studies.throttle import ALL_SCENARIOS
from harness.verbs import (
    BASELINE,
    PEER_BASELINE,
    VERBS,
    CheckRequest,
    NoRequest,
    SeriesRequest,
    StudyRequest,
    TestRequest,
    VmRequest,
    vm_command,
)

if TYPE_CHECKING:
    from harness.studies.throttle import Params as ThrottleParams

EXIT_STATUS = ("exit status: 0 PASS; 1 FAIL, the change under test failed (a patch, a "
               "build, a test, a check); 2 ERROR, the infrastructure or the command line "
               "(a missing tool, a hung command, a bad option, a bug of the harness, "
               "traceback in OUT/logs/traceback.log). OUT/report.json says the same.")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel-dir", type=Path,
                   help="your kernel tree (default: Debian's linux-source-7.3, fetched and cached)")
    p.add_argument("--build-dir", type=Path,
                   help="O= build directory (default: under ~/.cache/memcg-bpf/build)")
    p.add_argument("--out", type=Path, default=None,
                   help="where records, logs and reports go (default: a new directory per "
                   "run, ./out/VERB-DATE-TIME, with ./out/latest pointing at the last)")
    p.add_argument("--toolchain", choices=["buildroot", "host"], default="buildroot",
                   help="build in the cached Debian 13 root (default) or with host tools")
    p.add_argument("--fragment", action="append", type=Path, default=[], dest="fragments",
                   help="extra Kconfig fragment (e.g. kernel-config/extra/kasan.config)")
    p.add_argument("--kconfig-add", action="append", default=[], metavar="CONFIG_X=VALUE",
                   help="one more config option, after every fragment (repeatable; "
                   "CONFIG_X=n unsets it)")
    p.add_argument("--jobs", type=int, help="make -j (default: CPUs + 1)")
    p.add_argument("--series", choices=["quilt", "none"], default="quilt",
                   help="quilt: apply patches/ with quilt (default); none: build the tree as "
                   "it is (yours, with the series applied by git am or a branch)")


def add_vm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="auto probes KVM with a short boot and falls back to TCG")
    p.add_argument("--kernel-arg", action="append", default=[], dest="kernel_args",
                   help="append to the guest kernel's command line (repeatable; e.g. "
                   "no5lvl)")


def verb(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
         vm: bool = False) -> argparse.ArgumentParser:
    """A pipeline verb's parser: the common options, and the guest's if it boots one."""
    p = sub.add_parser(name, help=help, description=help, epilog=EXIT_STATUS)
    add_common(p)
    if vm:
        add_vm(p)
    return p


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="of the shuffled run order")


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harness", description=__doc__, epilog=EXIT_STATUS)
    ap.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("doctor", help="check the host; --install fixes what is missing")
    p.add_argument("--install", action="store_true", help="apt-get install what is missing (root)")
    p.add_argument("--probe-kvm", action="store_true",
                   help="boot the built kernel under KVM now to see whether it works")
    p.add_argument("--build-dir", type=Path, default=None,
                   help="with --probe-kvm: the build whose kernel to boot (default: the "
                   "default build of the Debian tree)")
    p.add_argument("--json", action="store_true")

    p = verb(sub, "source", help="get the kernel tree (Debian linux-source-7.3 or yours)")
    p.add_argument("--refresh", action="store_true", help="look for a newer package")

    p = verb(sub, "series", help="apply/status/pop the quilt series in patches/")
    p.add_argument("action", choices=["apply", "status", "pop"], nargs="?", default="apply")
    p.add_argument("--check-apply", type=Path, metavar="DIR",
                   help="apply the memcg part rebased on upstream (patches/upstream) with "
                   "--fuzz=0 to a copy of the files of kernel tree DIR that it touches, "
                   "e.g. a bpf-next checkout; DIR is only read")
    p.add_argument("--patches", type=Path, metavar="DIR",
                   help="with --check-apply: the quilt series to apply (default: "
                   "patches/upstream; patches/ for the whole 7.3 series)")

    p = verb(sub, "config", help="minimal .config from kernel-config/ fragments, verified")

    p = verb(sub, "build", help="build the kernel (O=, ccache, incremental) and the "
             "guest's check program")

    p = verb(sub, "vm", help="boot the built kernel and run a command in the guest", vm=True)
    p.add_argument("--timeout", type=float, default=600, help="seconds before the VM is killed")
    p.add_argument("--memory", default="2G")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--script", type=Path,
                   help="a host shell script to run in the guest (copied into the shared "
                   "out directory; it runs with that directory as cwd)")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="shell command (after --); default: uname -r")

    p = verb(sub, "check", help="checkpatch every patch, build every prefix, W=1, "
             "BPF_SYSCALL=n, MEMCG=n, CGROUP_BPF=n and BPF_JIT=n builds", vm=True)
    p.add_argument("--no-prefixes", action="store_true", help="skip the per-prefix builds")
    p.add_argument("--no-configs", action="store_true", help="skip the extra configs")
    p.add_argument("--quick", action="store_true",
                   help="compile the directories the series touches (and libbpf) per prefix "
                   "and config instead of whole kernels (what CI runs)")
    p.add_argument("--lifetime", action="store_true",
                   help="also build kernel-config/extra/lifetime.config (KASAN, kmemleak, "
                   "failslab) and run cgroup_struct_ops' close_rmdir_race and fail_nth "
                   "on it, booted with no5lvl: after every change to the attach core")

    p = verb(sub, "test", help="run the BPF selftests (test_progs) and test_memcontrol "
             "in the guest; JUnit XML and JSON", vm=True)
    p.add_argument("-t", "--filter", action="append", default=[], dest="filters",
                   help="test_progs -t (default: the series' tests, "
                   f"{', '.join(SERIES_TESTS)}; none with --unpatched)")
    p.add_argument("--peers", action="store_true",
                   help="also the peer set, upstream's struct_ops and cgroup BPF tests "
                   f"({' '.join(PEER_TESTS)}): what passes on the unpatched kernel "
                   "(--peer-baseline) must pass")
    p.add_argument("--peer-baseline", type=Path, default=PEER_BASELINE,
                   help="the peer set's results on the unpatched kernel")
    p.add_argument("--repeats", "--repeat", dest="repeat", type=int, default=1,
                   help="run test_progs N times in one boot")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="test_progs -v: keep every test's log (out/selftests-out/results/)")
    p.add_argument("--no-memcontrol", action="store_true", help="skip test_memcontrol")
    p.add_argument("--memcontrol-repeats", "--memcontrol-repeat", dest="memcontrol_repeat",
                   type=int, default=6,
                   help="run test_memcontrol at most N times (default 6), stopping once "
                   "every test flaky without the series (selftests/baselines/) has passed: "
                   "6 runs decide each at the stored baseline's failure rate, and fewer "
                   "that cannot decide give SKIP, not FAIL; a baseline "
                   "(--unpatched --write-baseline) runs all N")
    p.add_argument("--no-zero-policy", action="store_true",
                   help="do not run test_memcontrol a second time with an N = 0 "
                   "memcg_bpf_ops policy attached above its cgroups")
    p.add_argument("--swap-mb", type=int, default=256,
                   help="swap in the guest while test_progs runs (0: none)")
    p.add_argument("--unpatched", action="store_true",
                   help="build and test the tree without the series (own build dir)")
    p.add_argument("--baseline", type=Path, default=BASELINE,
                   help="test_memcontrol results of the unpatched kernel to compare with")
    p.add_argument("--write-baseline", action="store_true",
                   help="with --unpatched: save test_memcontrol's results (and with "
                   "--peers, the peer set's) as the baselines")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before the VM is killed")

    p = verb(sub, "bench", help="what the memcg_bpf_ops hook costs: a charge-path "
             "microbenchmark on the unpatched and the patched kernel, no debug "
             "options, ratios with 95 %% intervals", vm=True)
    p.add_argument("--boots", type=int, default=2, help="boots of each kernel (default 2)")
    p.add_argument("--repeats", "--reps", dest="reps", type=int, default=5,
                   help="runs per variant and workload per boot (default 5)")
    p.add_argument("--secs", type=float, default=1.0, help="seconds per run (default 1)")
    p.add_argument("--mb", type=int, default=32, help="membench's working set (default 32)")
    add_seed(p)
    p.add_argument("--srcu", action="store_true",
                   help="also build the series with an SRCU-fast read side around the "
                   "callbacks (the RFC's), and measure what it adds (srcu-zero, srcu-active)")
    p.add_argument("--icount", action="store_true",
                   help="deterministic guest time: QEMU -icount shift=0,sleep=off (one ns "
                   "per instruction, TCG, one vCPU), so that ns per page counts "
                   "instructions and does not drift between boots")

    p = verb(sub, "throttle", help="the throttling experiment: stress-ng in cgroups "
             "high and low under no policy, the BPF sample, memory.low, memory.high",
             vm=True)
    p.add_argument("--short", action="store_true",
                   help="the main job's short matrix (high alone, both without and with "
                   "the policy)")
    p.add_argument("--mechanism", action="store_true",
                   help="the scenarios the test command asserts on (idle_policy, "
                   "policy_detach)")
    p.add_argument("--matrix", action="store_true",
                   help="the whole phased matrix: `harness experiment` with its defaults "
                   "(s1-s4 x 13 arms x 10 repeats over 2 boots, about 5 h under TCG; "
                   "--repeats N: N per cell over min(N, 2) boots)")
    p.add_argument("--scenarios", help="comma-separated, of: " + ", ".join(ALL_SCENARIOS))
    p.add_argument("--repeats", type=int, default=None,
                   help="per scenario (default 3; with --matrix, per cell: default 10)")
    p.add_argument("--seconds", type=int, help="per run (default 20)")
    p.add_argument("--vm-bytes", default=None, help="stress-ng --vm-bytes per side")
    p.add_argument("--nodebug", action="store_true",
                   help="on the kernel built with kernel-config/extra/nodebug.config (bench's), "
                   "as performance numbers must be")
    p.add_argument("--vm-workers", type=int, default=None,
                   help="stress-ng --vm N per side (default 1; the RFC's run: 4)")
    p.add_argument("--vm-method", default=None, help="stress-ng --vm-method (default flip)")
    p.add_argument("--guest-memory", default=None, help="guest RAM")
    p.add_argument("--threshold", type=int, default=100,
                   help="the sample's THRESHOLD: pages high's tasks stall on per window")
    p.add_argument("--over-high", type=int, default=262144,
                   help="the sample's OVER_HIGH in pages (default 1 GiB)")
    p.add_argument("--sample", default="memcg",
                   help="the policy program: a file in the build's harness-guest/ directory "
                   "(default: memcg, samples/bpf/memcg as built from the series)")

    p = sub.add_parser("penalty", help="memory.high's throttle delay for a policy's N, "
                       "tabulated (no kernel: the formula the series applies)",
                       epilog=EXIT_STATUS)
    p.add_argument("--usage", nargs="+", default=["100M", "300M", "1G", "4G"],
                   help="the cgroup's usage (default: 100M 300M 1G 4G)")
    p.add_argument("--n", nargs="+", default=["1024", "4096", "65536"],
                   help="N in pages, or a size (4M) (default: 1024 4096 65536)")
    p.add_argument("--hz", nargs="+", type=int, default=[250, 1000],
                   help="CONFIG_HZ (default: 250 1000)")
    p.add_argument("--nr-pages", type=int, default=None,
                   help="the task's own charge since its last return (default: one batch)")

    p = sub.add_parser("report", help="a finished run's summary (its stages, what "
                       "failed); --kcidb writes KCIDB JSON for KernelCI", epilog=EXIT_STATUS)
    p.add_argument("--kcidb", action="store_true",
                   help="write KCIDB JSON (schema v5.3), validated when kcidb-io is "
                   "installed")
    p.add_argument("--out", type=Path, default=None,
                   help="the run's output directory (default: ./out/latest)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="where to write it (default: OUT/kcidb.json)")

    p = verb(sub, "experiment", help="the phased throttling experiment: "
             "scenarios s1-s4 x arms (no policy, memory.low, memory.high, a PSI "
             "agent, an oracle, the BPF sample, controls) on the nodebug kernel", vm=True)
    p.add_argument("--scenarios", default="s1,s2,s3,s4",
                   help="comma-separated: s1,s2,s3,s4,s5 (s5: who pays memory.high)")
    p.add_argument("--arms", default=None,
                   help="comma-separated, of: none, alone, mlow:SIZE, mhigh:SIZE, agent, "
                   "oracle[:evict], sample[:PAGES], reclaim[:MB], sigagent[:nb], detach, "
                   "noop, always, whopays (s5 only); static knobs join with '+', and "
                   "with one whopays (mlow:100M+whopays) "
                   "(default: the 13 of harness/studies/experiment.py's Params)")
    p.add_argument("--repeats", type=int, default=10, help="per cell, over all boots")
    p.add_argument("--boots", type=int, default=2)
    add_seed(p)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any other parameter of harness/studies/experiment.py's Params "
                   "(e.g. active_s=6, over_high=1024)")
    p.add_argument("--reanalyze", type=Path, metavar="SRC", action="append", default=[],
                   help="no guest: the verdicts, targets, tables and plots anew from "
                   "earlier runs: an out directory of `harness experiment --out DIR` "
                   "(the metrics too), or a summary JSON as selftests/results/ keeps "
                   "(experiment-s1.json); repeat it to merge runs of more arms or boots")

    send.add_parser(sub)

    p = verb(sub, "run", help="the main job: source, series, config, build, boot, checks", vm=True)
    return ap


KCONFIG_ADD = re.compile(r'^CONFIG_[A-Za-z0-9_]+=(y|m|n|-?\d+|0x[0-9a-fA-F]+|"[^"\n]*")$')


def kconfig_add_fragment(items: list[str], out: Path) -> Path:
    """--kconfig-add options as a fragment of their own, in --out."""
    bad = [x for x in items if not KCONFIG_ADD.match(x)]
    if bad:
        raise HarnessError(f"--kconfig-add {bad[0]!r}: want CONFIG_NAME=VALUE (y, m, n, a "
                           'number or a "string")')
    lines = [f"# {x.split('=')[0]} is not set" if x.endswith("=n") else x for x in items]
    out.mkdir(parents=True, exist_ok=True)
    frag = out / "kconfig-add.config"
    frag.write_text("# --kconfig-add on the command line\n" + "\n".join(lines) + "\n")
    return frag


def options(args: argparse.Namespace) -> Options:
    """The Options every pipeline verb shares, each from its argument
    (add_common, add_vm; one a verb lacks keeps the Options default)."""
    a, d = vars(args), Options()
    out = a.get("out")
    if out is None and "MEMCG_BPF_OUT" not in os.environ:
        out = paths.invocation_out(paths.default_out(), args.verb)
    out = Path(out or paths.default_out()).resolve()
    # every path absolute: the suites' pytest runs in the repository, with
    # these in its environment (Options.to_env)
    fragments = [Path(f).resolve() for f in a.get("fragments") or []]
    if a.get("kconfig_add"):
        fragments.append(kconfig_add_fragment(a["kconfig_add"], out))
    jobs = a.get("jobs")
    if jobs is not None:
        if jobs < 1:
            raise HarnessError("--jobs must be >= 1")
        os.environ["MEMCG_BPF_JOBS"] = str(jobs)  # builds here and in the suites

    def path(name: str) -> Path | None:
        v = a.get(name)
        return Path(v).resolve() if v is not None else None
    return Options(kernel_dir=path("kernel_dir"), build_dir=path("build_dir"), out=out,
                   toolchain=a.get("toolchain", d.toolchain), accel=a.get("accel", d.accel),
                   fragments=fragments, refresh=a.get("refresh", d.refresh),
                   unpatched=a.get("unpatched", d.unpatched),
                   kernel_args=list(a.get("kernel_args") or d.kernel_args),
                   series=a.get("series", d.series))


def request(args: argparse.Namespace) -> (NoRequest | SeriesRequest | VmRequest | CheckRequest
                                         | TestRequest | StudyRequest):
    """The verb's own request (harness/verbs.py), from its arguments."""
    v = args.verb
    if v == "series":
        if args.patches and not args.check_apply:
            raise HarnessError("--patches goes with --check-apply")
        return SeriesRequest(action=args.action,
                             check_apply=args.check_apply.resolve() if args.check_apply
                             else None,
                             patches=args.patches.resolve() if args.patches else None)
    if v == "vm":
        return VmRequest(command=vm_command(args.command), script=args.script,
                         timeout=args.timeout, memory=args.memory, cpus=args.cpus)
    if v == "check":
        return CheckRequest(prefixes=not args.no_prefixes, configs=not args.no_configs,
                            quick=args.quick, lifetime=args.lifetime)
    if v == "test":
        return TestRequest(filters=list(args.filters), peers=args.peers,
                           peer_baseline=args.peer_baseline, repeat=args.repeat,
                           verbose=args.verbose, memcontrol=not args.no_memcontrol,
                           memcontrol_repeat=args.memcontrol_repeat,
                           zero_policy=not args.no_zero_policy, swap_mb=args.swap_mb,
                           baseline=args.baseline, write_baseline=args.write_baseline,
                           timeout=args.timeout)
    if v == "experiment":
        from harness.studies import experiment as ex
        params = ex.Params(scenarios=[x for x in args.scenarios.split(",") if x],
                           repeats=args.repeats, boots=args.boots, seed=args.seed)
        if args.arms:
            params.arms = [x for x in args.arms.split(",") if x]
        ex.set_params(params, args.set)
        params.validate()
        return StudyRequest(params, reanalyze=args.reanalyze)
    if v == "throttle" and args.matrix:
        from harness.studies import experiment as ex
        params = ex.Params()
        if args.repeats is not None:
            params.repeats, params.boots = args.repeats, min(args.repeats, 2)
        params.validate()
        return StudyRequest(params, nodebug=True)
    if v == "throttle":
        return StudyRequest(throttle_params(args), nodebug=args.nodebug)
    if v == "bench":
        from harness.studies.bench import BenchParams
        if args.icount and args.accel == "kvm":
            raise HarnessError("bench --icount runs under TCG (QEMU's icount), not --accel kvm")
        return StudyRequest(BenchParams(boots=args.boots, reps=args.reps, secs=args.secs,
                                        mb=args.mb, seed=args.seed, srcu=args.srcu,
                                        icount=args.icount))
    return NoRequest()


def throttle_params(args: argparse.Namespace) -> ThrottleParams:
    from harness.studies.throttle import MECHANISM_SCENARIOS, SHORT_SCENARIOS, Params
    params = Params(repeats=3 if args.repeats is None else args.repeats, threshold=args.threshold,
                    over_high=args.over_high, sample=args.sample)
    for name, value in (("vm_bytes", args.vm_bytes), ("vm_workers", args.vm_workers),
                        ("vm_method", args.vm_method), ("memory", args.guest_memory),
                        ("seconds", args.seconds)):
        if value:
            setattr(params, name, value)
    if args.short:
        params.scenarios = list(SHORT_SCENARIOS)
    if args.mechanism:
        params.scenarios = list(MECHANISM_SCENARIOS)
    if args.scenarios:
        params.scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    params.validate()
    return params


def cmd_doctor(args: argparse.Namespace) -> int:
    results = host.checks(probe_kvm=args.probe_kvm, build_dir=args.build_dir)
    missing = host.missing_packages(results)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        print(table([[r.name, "ok" if r.ok else "MISSING" if r.package else "FAIL", r.detail]
                     for r in results], ["check", "state", "detail"]))
    if args.install:
        pkgs = sorted(set(missing) | set(host.all_host_packages()))
        host.install(pkgs)
        return 0
    if missing:
        print("\nmissing packages; install with:\n  " + " ".join(host.install_command(missing)))
        print("or: python3 -m harness doctor --install")
    bad = [r for r in results if not r.ok and not r.package]
    return 1 if (missing or bad) else 0


def verdict(records: list[StageRecord], error: BaseException | None = None) -> int:
    """The exit status: 0 PASS; 1 FAIL, the change under test failed (a
    patch does not apply, something does not compile, a test fails); 2
    ERROR, the infrastructure or the usage."""
    statuses = {r.status for r in records}
    if (error is not None and not isinstance(error, ChangeFailed)) or ERROR in statuses:
        return 2
    if error is not None or FAIL in statuses:
        return 1
    return 0


def error_record(error: BaseException, log: Path | None = None) -> StageRecord:
    """The stage "error": what stopped a verb outside any stage (a check of
    its arguments, a missing program, a bug). FAIL for ChangeFailed, else
    ERROR; `log` holds the traceback of an unexpected exception."""
    text = error_text(error) if isinstance(error, (HarnessError, subprocess.TimeoutExpired)) \
        else f"{type(error).__name__}: {error}"
    return StageRecord(stage="error", status=FAIL if isinstance(error, ChangeFailed) else ERROR,
                       summary=text.splitlines()[0] if text else type(error).__name__,
                       log=str(log) if log else None,
                       details={"type": type(error).__name__, "message": text})


def finish(pl: Pipeline, extra: dict[str, Any] | None = None, verb: str | None = None,
           error: BaseException | None = None, log: Path | None = None) -> int:
    """The records (SKIP for the stages a failed run did not reach, and
    the "error" stage for an error that no stage recorded), the stage
    table, report.json; the exit status, which report.json's status and
    the KCIDB export (harness.kcidb) always agree with."""
    if error is not None and not any(r.status in (FAIL, ERROR) for r in pl.records):
        rec = error_record(error, log)
        rec.write(pl.opts.out)
        pl.records.append(rec)
    if error is not None and verb in PLANS:
        done = {r.stage for r in pl.records}
        for name in PLANS[verb]:
            if name not in done:
                rec = StageRecord(stage=name, status=SKIP,
                                  summary="not run: an earlier stage stopped the run")
                rec.write(pl.opts.out)
                pl.records.append(rec)
    print()
    print(stage_table(pl.records))
    extra = dict(extra or {})
    extra["reproducer"] = reproducer(pl.records, pl.opts, pl.known_build_dir())
    report = write_json(pl.opts.out, pl.records, extra)
    print(f"\nreport: {report}")
    return verdict(pl.records, error)


def cmd_pipeline(args: argparse.Namespace) -> int:
    """The verbs that run pipeline stages: each is a function (verbs.VERBS)
    of its request, and every one ends here: its records, report.json and
    its verdict."""
    pl = Pipeline(options(args))
    # throttle --matrix runs the experiment's stages, not throttle's
    plan = "experiment" if getattr(args, "matrix", False) else args.verb
    try:
        res = VERBS[args.verb](pl, request(args))
    except (HarnessError, subprocess.TimeoutExpired) as e:
        kind = "FAIL" if isinstance(e, ChangeFailed) else "error"
        print(f"\n{kind}: {error_text(e)}", file=sys.stderr)
        return finish(pl, {}, plan, e)
    except Exception as e:  # a bug, or the host (a full disk): ERROR, not FAIL
        log = save_traceback(pl.opts.logs, e)
        print(f"\nerror: unexpected {type(e).__name__}: {e}\n(traceback: {log})",
              file=sys.stderr)
        return finish(pl, {}, plan, e, log)
    rc = finish(pl, res.report, plan)
    return rc if res.exit is None else res.exit


def save_traceback(logs: Path, e: BaseException) -> Path | None:
    """The traceback of `e` in logs/traceback.log (None if it cannot be
    written: the error may be the disk's)."""
    try:
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / "traceback.log"
        path.write_text("".join(traceback.format_exception(e)))
        return path
    except OSError:
        return None


def error_text(e: BaseException) -> str:
    if isinstance(e, subprocess.TimeoutExpired):
        cmd = e.cmd if isinstance(e.cmd, str) else " ".join(map(str, e.cmd))
        return f"{cmd[:200]} did not finish within {e.timeout:.0f} s (killed)"
    return str(e)


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    # CI systems cancel with SIGTERM: clean up (kill the build or the VM,
    # write the stage record) as for Ctrl-C.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.verb == "doctor":
            return cmd_doctor(args)
        if args.verb == "send":
            return send.cmd_send(args)
        if args.verb == "penalty":
            from harness.studies import penalty
            print(penalty.table(args.usage, args.n, args.hz,
                                args.nr_pages or penalty.MEMCG_CHARGE_BATCH))
            return 0
        if args.verb == "report":
            from harness import kcidb
            if not args.kcidb:
                print(summary(args.out or kcidb.default_run()))
                return 0
            dest = kcidb.write((args.out or kcidb.default_run()).resolve(), args.output)
            data = json.loads(dest.read_text())
            print(f"KCIDB v{data['version']['major']}.{data['version']['minor']}: 1 checkout, "
                  f"{len(data['builds'])} build(s), {len(data['tests'])} test(s): {dest}")
            return 0
        return cmd_pipeline(args)
    except (HarnessError, subprocess.TimeoutExpired) as e:
        print(f"error: {error_text(e)}", file=sys.stderr)
        return verdict([], e)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # outside a pipeline verb (doctor, send, report)
        traceback.print_exc()
        print(f"error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 2
