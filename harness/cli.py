"""The command line: python -m harness <verb> (console script: memcg-bpf-harness)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from pathlib import Path

from harness import host, paths, send
from harness.errors import HarnessError
from harness.pipeline import PEER_TESTS, SERIES_TESTS, Options, Pipeline, is_peer
from harness.record import SKIP
from harness.report import stage_table, table, write_json
from harness.throttle import ALL_SCENARIOS

BASELINE = paths.REPO / "selftests" / "baselines" / "test_memcontrol-unpatched.json"
PEER_BASELINE = paths.REPO / "selftests" / "baselines" / "test_progs-peers-unpatched.json"


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel-dir", type=Path,
                   help="your kernel tree (default: Debian's linux-source-7.3, fetched and cached)")
    p.add_argument("--build-dir", type=Path,
                   help="O= build directory (default: under ~/.cache/memcg-bpf/build)")
    p.add_argument("--out", type=Path, default=paths.default_out(),
                   help="where records, logs and reports go (default: ./out)")
    p.add_argument("--toolchain", choices=["buildroot", "host"], default="buildroot",
                   help="build in the cached Debian 13 root (default) or with host tools")
    p.add_argument("--fragment", action="append", type=Path, default=[], dest="fragments",
                   help="extra Kconfig fragment (e.g. kernel-config/extra/kasan.config)")


def add_vm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="auto probes KVM with a short boot and falls back to TCG")
    p.add_argument("--kernel-arg", action="append", default=[], dest="kernel_args",
                   help="append to the guest kernel's command line (repeatable; e.g. "
                   "no5lvl)")


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = ap.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("doctor", help="check the host; --install fixes what is missing")
    p.add_argument("--install", action="store_true", help="apt-get install what is missing (root)")
    p.add_argument("--probe-kvm", action="store_true",
                   help="boot the built kernel under KVM now to see whether it works")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("source", help="get the kernel tree (Debian linux-source-7.3 or yours)")
    add_common(p)
    p.add_argument("--refresh", action="store_true", help="look for a newer package")

    p = sub.add_parser("series", help="apply/status/pop the quilt series in patches/")
    add_common(p)
    p.add_argument("action", choices=["apply", "status", "pop"], nargs="?", default="apply")

    p = sub.add_parser("config", help="minimal .config from kernel-config/ fragments, verified")
    add_common(p)

    p = sub.add_parser("build", help="build the kernel (O=, ccache, incremental) and the "
                       "guest's check program")
    add_common(p)

    p = sub.add_parser("vm", help="boot the built kernel and run a command in the guest")
    add_common(p)
    add_vm(p)
    p.add_argument("--timeout", type=float, default=600, help="seconds before the VM is killed")
    p.add_argument("--memory", default="2G")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--script", type=Path,
                   help="a host shell script to run in the guest (copied into the shared "
                   "out directory; it runs with that directory as cwd)")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="shell command (after --); default: uname -r")

    p = sub.add_parser("check", help="checkpatch every patch, build every prefix, W=1, "
                       "BPF_SYSCALL=n and MEMCG=n builds")
    add_common(p)
    p.add_argument("--no-prefixes", action="store_true", help="skip the per-prefix builds")
    p.add_argument("--no-configs", action="store_true", help="skip the extra configs")
    p.add_argument("--quick", action="store_true",
                   help="compile the directories the series touches (and libbpf) per prefix "
                   "and config instead of whole kernels (what CI runs)")

    p = sub.add_parser("test", help="run the BPF selftests (test_progs) and test_memcontrol "
                       "in the guest; JUnit XML and JSON")
    add_common(p)
    add_vm(p)
    p.add_argument("-t", "--filter", action="append", default=[], dest="filters",
                   help="test_progs -t (default: the series' tests, "
                   f"{', '.join(SERIES_TESTS)}; none with --unpatched)")
    p.add_argument("--peers", action="store_true",
                   help="also the peer set, upstream's struct_ops and cgroup BPF tests "
                   f"({' '.join(PEER_TESTS)}): what passes on the unpatched kernel "
                   "(--peer-baseline) must pass")
    p.add_argument("--peer-baseline", type=Path, default=PEER_BASELINE,
                   help="the peer set's results on the unpatched kernel")
    p.add_argument("--repeat", type=int, default=1, help="run test_progs N times in one boot")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="test_progs -v: keep every test's log (out/selftests-out/results/)")
    p.add_argument("--no-memcontrol", action="store_true", help="skip test_memcontrol")
    p.add_argument("--memcontrol-repeat", type=int, default=1,
                   help="run test_memcontrol N times (a baseline wants 3 or more: a test "
                   "that does not pass every time is flaky, not a baseline pass)")
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

    p = sub.add_parser("bench", help="what the memcg_bpf_ops hook costs: a charge-path "
                       "microbenchmark on the unpatched and the patched kernel, no debug "
                       "options, ratios with 95 %% intervals")
    add_common(p)
    add_vm(p)
    p.add_argument("--boots", type=int, default=2, help="boots of each kernel (default 2)")
    p.add_argument("--reps", type=int, default=5,
                   help="runs per variant and workload per boot (default 5)")
    p.add_argument("--secs", type=float, default=1.0, help="seconds per run (default 1)")
    p.add_argument("--mb", type=int, default=32, help="membench's working set (default 32)")
    p.add_argument("--seed", type=int, default=1, help="of the shuffled run order")
    p.add_argument("--srcu", action="store_true",
                   help="also build the series with an SRCU-fast read side around the "
                   "callbacks (the RFC's), and measure what it adds (srcu-zero, srcu-active)")

    p = sub.add_parser("throttle", help="the throttling experiment: stress-ng in cgroups "
                       "high and low under no policy, the BPF sample, memory.low, memory.high")
    add_common(p)
    add_vm(p)
    p.add_argument("--short", action="store_true",
                   help="the main job's short matrix (high alone, both without and with "
                   "the policy)")
    p.add_argument("--mechanism", action="store_true",
                   help="the scenarios the test command asserts on (idle_policy, "
                   "policy_detach)")
    p.add_argument("--scenarios", help="comma-separated, of: " + ", ".join(ALL_SCENARIOS))
    p.add_argument("--repeats", type=int, default=3)
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

    p = sub.add_parser("experiment", help="the phased throttling experiment (issue 13): "
                       "scenarios s1-s4 x arms (no policy, memory.low, memory.high, a PSI "
                       "agent, an oracle, the BPF sample, controls) on the nodebug kernel")
    add_common(p)
    add_vm(p)
    p.add_argument("--scenarios", default="s1,s2,s3,s4", help="comma-separated: s1,s2,s3,s4")
    p.add_argument("--arms", default=None,
                   help="comma-separated, of: none, mlow:SIZE, mhigh:SIZE, agent, oracle, "
                   "sample, detach, noop, always (default: a sweep of each)")
    p.add_argument("--repeats", type=int, default=10, help="per cell, over all boots")
    p.add_argument("--boots", type=int, default=2)
    p.add_argument("--seed", type=int, default=1, help="of the shuffled run order")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any other parameter of harness/experiment.py's Params "
                   "(e.g. active_s=6, over_high=1024)")

    send.add_parser(sub)

    p = sub.add_parser("run", help="the main job: source, series, config, build, boot, checks")
    add_common(p)
    add_vm(p)
    return ap


def options(args: argparse.Namespace) -> Options:
    return Options(kernel_dir=getattr(args, "kernel_dir", None),
                   build_dir=getattr(args, "build_dir", None),
                   out=getattr(args, "out", paths.default_out()).resolve(),
                   toolchain=getattr(args, "toolchain", "buildroot"),
                   accel=getattr(args, "accel", "auto"),
                   fragments=getattr(args, "fragments", []),
                   refresh=getattr(args, "refresh", False),
                   unpatched=getattr(args, "unpatched", False),
                   kernel_args=getattr(args, "kernel_args", []))


def cmd_doctor(args: argparse.Namespace) -> int:
    results = host.checks(probe_kvm=args.probe_kvm)
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


def finish(pl: Pipeline, extra: dict | None = None) -> int:
    print()
    print(stage_table(pl.records))
    report = write_json(pl.opts.out, pl.records, extra or {})
    print(f"\nreport: {report}")
    return 0 if all(r.status in ("PASS", SKIP) for r in pl.records) else 1


def cmd_pipeline(args: argparse.Namespace) -> int:
    pl = Pipeline(options(args))
    verb = args.verb
    extra: dict = {}
    try:
        if verb == "source":
            info = pl.source()
            extra["source"] = info.__dict__
        elif verb == "series":
            pl.series(args.action)
        elif verb == "config":
            pl.source()
            pl.series("apply")
            pl.config()
        elif verb == "build":
            pl.prepare()
        elif verb == "vm":
            command = " ".join(a for a in args.command if a != "--") or "uname -r"
            if args.script:
                if not args.script.is_file():
                    raise HarnessError(f"--script {args.script}: no such file")
                shared = pl.opts.out / "vm-out"
                shared.mkdir(parents=True, exist_ok=True)
                shutil.copy(args.script, shared / "script.sh")
                command = "sh ./script.sh"
            extra["source"] = pl.source(fetch=False).__dict__  # the version, in the report
            res = pl.boot(command, timeout=args.timeout, memory=args.memory, cpus=args.cpus)
            print(f"console log: {res.console}")
            problem = res.problem()
            if problem:
                print(problem, file=sys.stderr)
            finish(pl, extra)
            return res.guest_rc if res.guest_rc not in (None, 0) else (0 if res.ok else 1)
        elif verb == "check":
            from harness.check import SeriesCheck, items_dict, stage_status
            pl.source()
            pl.series("apply")
            with pl._stage("check") as rec:
                items = SeriesCheck(pl, prefixes=not args.no_prefixes,
                                    configs=not args.no_configs, quick=args.quick).run()
                rec.details = {"items": items_dict(items)}
                rec.status = stage_status(items)
                bad = [i for i in items if i.status == "FAIL"]
                rec.summary = f"{len(items) - len(bad)}/{len(items)} checks pass"
            print()
            print(table([[i.kind, i.name[:60], i.status, i.summary[:70]] for i in items],
                        ["check", "item", "status", "summary"]))
            for i in bad:
                print(f"\n{i.kind} {i.name}:\n  " + "\n  ".join(
                    i.details.get("issues") or [i.details.get("error", "")] or []))
            for i in items:
                for x in i.details.get("excepted", []):
                    print(f"note: {x}")
            extra["check"] = items_dict(items)
        elif verb == "test":
            return cmd_test(pl, args, extra)
        elif verb == "experiment":
            from harness import experiment as ex
            params = ex.Params(scenarios=[x for x in args.scenarios.split(",") if x],
                               repeats=args.repeats, boots=args.boots, seed=args.seed)
            if args.arms:
                params.arms = [x for x in args.arms.split(",") if x]
            ex.set_params(params, args.set)
            params.validate()
            r = pl.experiment(params)
            extra["source"] = pl.source().__dict__
            print("\n" + r["table"])
            print(f"\nevery run: {pl.opts.out / 'experiment' / 'table.txt'}; plots: "
                  f"{r['png']}, {r['timelines']}")
            extra["experiment"] = str(r["results"])
        elif verb == "throttle":
            from harness.throttle import MECHANISM_SCENARIOS, SHORT_SCENARIOS, Params
            params = Params(repeats=args.repeats, threshold=args.threshold,
                            over_high=args.over_high, sample=args.sample)
            if args.vm_bytes:
                params.vm_bytes = args.vm_bytes
            if args.vm_workers:
                params.vm_workers = args.vm_workers
            if args.vm_method:
                params.vm_method = args.vm_method
            if args.guest_memory:
                params.memory = args.guest_memory
            if args.short:
                params.scenarios = list(SHORT_SCENARIOS)
            if args.mechanism:
                params.scenarios = list(MECHANISM_SCENARIOS)
            if args.scenarios:
                params.scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
            if args.seconds:
                params.seconds = args.seconds
            params.validate()
            if args.nodebug:  # performance numbers: no lockdep, PROVE_RCU, ...
                pl = pl.nodebug("patched", "throttle --nodebug")
            else:
                pl.prepare()
            extra["source"] = pl.source().__dict__
            print(f"throttle: {len(params.scenarios)} scenarios x {params.repeats} repeats x "
                  f"{params.seconds} s, about {params.estimate_s() / 60:.0f} min in the guest",
                  flush=True)
            r = pl.throttle(params)
            print("\n" + throttle_report(r))
            extra["throttle"] = str(r["results"])
        elif verb == "bench":
            from harness.bench import BenchParams
            params = BenchParams(boots=args.boots, reps=args.reps, secs=args.secs,
                                 mb=args.mb, seed=args.seed, srcu=args.srcu)
            r = pl.bench(params)
            extra["source"] = pl.source().__dict__
            print("\n" + r["table"])
            print(f"\nevery run: {pl.opts.out / 'bench' / 'table.txt'}; plot: {r['png']}")
            extra["bench"] = str(r["results"])
        elif verb == "run":
            pl.prepare()
            src = pl.source()
            extra["source"] = src.__dict__
            junit = pl.opts.out / "junit-selftests.xml"
            pl.pytest(paths.REPO / "selftests", junit)
            # The throttling report: throughput with and without the policy,
            # every run shown, nothing asserted (the suites assert the
            # mechanism; throughput depends on the machine).
            from harness.throttle import SHORT_SCENARIOS, Params
            params = Params(scenarios=list(SHORT_SCENARIOS), repeats=3)
            print(f"\nthrottling report: {len(params.scenarios)} scenarios x {params.repeats}"
                  f" repeats, about {params.estimate_s() / 60:.0f} min in the guest", flush=True)
            r = pl.throttle(params)
            print("\nthrottling experiment (short matrix; reported, not asserted):\n"
                  + throttle_report(r))
            extra["throttle"] = str(r["results"])
    except HarnessError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        finish(pl, extra)
        return 2
    return finish(pl, extra)


def throttle_report(r: dict) -> str:
    """What Pipeline.throttle() returned, for the terminal."""
    return (f"{r['table']}\n\nevery run:\n{r['every_run']}\n\nresults: {r['results']}\n"
            f"plot: {r['png']}\ntraces: {r['traces']}")


def write_baseline(path: Path, runs: list, kernel: str, note: str, **more) -> None:
    """Save the unpatched kernel's results of `runs` as a baseline."""
    from harness import results
    data = results.to_dict(runs) | {"kernel": kernel, **more, "note": note}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"baseline written: {path}")


def cmd_test(pl: Pipeline, args: argparse.Namespace, extra: dict) -> int:
    from harness import results
    from harness.record import FAIL as STAGE_FAIL
    if args.write_baseline and not args.unpatched:
        raise HarnessError("--write-baseline needs --unpatched (the baseline is the tree "
                           "without the series)")
    # Unpatched, the baselines are of interest: test_memcontrol's and, with
    # --peers, the peer set's; the series' own tests do not exist there.
    filters = list(args.filters) or ([] if args.unpatched else list(SERIES_TESTS))
    if args.peers:
        filters += PEER_TESTS
    pl.prepare(bpf_selftests=bool(filters))
    extra["source"] = pl.source().__dict__
    runs = pl.selftests(filters, repeat=args.repeat,
                        memcontrol=not args.no_memcontrol, test_progs=bool(filters),
                        memcontrol_repeat=args.memcontrol_repeat, timeout=args.timeout,
                        baseline=None if args.unpatched else args.baseline,
                        peer_baseline=args.peer_baseline if args.peers and not args.unpatched
                        else None, verbose=args.verbose, swap_mb=args.swap_mb,
                        zero_policy=not (args.unpatched or args.no_zero_policy))
    cases = [c for r in runs for c in r.cases]
    rows = []
    for c in cases:
        if c.suite == "test_progs" and args.repeat > 1 and "/" not in c.name:
            continue
        rows.append([c.suite, c.name + (f" #{c.run}" if args.repeat > 1 else ""), c.status,
                     (c.message.strip().splitlines() or [""])[-1][:70]])
    print()
    print(table(rows, ["suite", "test", "status", "last line of its log, if not OK"]))
    if args.repeat > 1:
        for name in sorted({c.name for c in cases if c.suite == "test_progs"}):
            st = [c.status for c in cases if c.name == name]
            print(f"{name}: {st.count('OK')}/{len(st)} OK over {args.repeat} runs")
    mc = [r for r in runs if r.suite == "test_memcontrol"]
    tp = [r for r in runs if r.suite == "test_progs"]
    if args.write_baseline and args.peers and tp:
        write_baseline(args.peer_baseline, tp, pl.source().label(),
                       "the peer set (test_progs) on the tree without the series, same config "
                       "and guest as the patched runs (harness test --unpatched --peers "
                       "--write-baseline)", peers=list(PEER_TESTS))
    elif args.peers and not args.unpatched:
        with pl._stage("peers-vs-unpatched") as rec:
            if not args.peer_baseline.exists():
                rec.status = STAGE_FAIL
                rec.summary = (f"no baseline {args.peer_baseline}: make it with harness test "
                               "--unpatched --peers --write-baseline --no-memcontrol")
            else:
                base = [c for r in results.load(args.peer_baseline) for c in r.cases]
                now = [c for r in tp for c in r.cases if is_peer(c.name)]
                regs = results.regressions(now, base)
                st = results.baseline_status(base)
                stable = sum(1 for v in st.values() if v == results.OK)
                rec.details = {"baseline": str(args.peer_baseline), "regressions": regs,
                               "passing_unpatched": stable,
                               "not_passing_unpatched": {n: v for n, v in st.items()
                                                         if v != results.OK}}
                rec.summary = (f"{len(regs)} regression(s): {regs[0]}" if regs else
                               f"the {stable} peer tests and subtests passing unpatched pass")
                if regs:
                    rec.status = STAGE_FAIL
    if args.write_baseline and mc:
        write_baseline(args.baseline, mc, pl.source().label(),
                       "test_memcontrol on the tree without the series, same config and guest "
                       "as the patched runs (harness test --unpatched --write-baseline)")
    elif mc and args.baseline.exists() and not args.unpatched:
        base = [c for r in results.load(args.baseline) for c in r.cases]
        regs = results.regressions([c for r in mc for c in r.cases], base)
        with pl._stage("memcontrol-vs-unpatched") as rec:
            rec.details = {"baseline": str(args.baseline), "regressions": regs}
            stable = sum(1 for st in results.baseline_status(base).values() if st == "OK")
            rec.summary = (f"{len(regs)} regression(s): {regs[0]}" if regs else
                           f"the {stable} tests passing every time unpatched pass")
            if regs:
                rec.status = STAGE_FAIL
    extra["selftests"] = str(pl.opts.out / "selftests" / "results.json")
    return finish(pl, extra)


def _terminate(signum, frame):
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
        return cmd_pipeline(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
