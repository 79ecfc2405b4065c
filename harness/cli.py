"""The command line: python -m harness <verb> (console script: memcg-bpf-harness)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from pathlib import Path

from harness import host, paths
from harness.errors import HarnessError
from harness.pipeline import Options, Pipeline
from harness.record import SKIP
from harness.report import stage_table, table, write_json


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
                   refresh=getattr(args, "refresh", False))


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
                                    configs=not args.no_configs).run()
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
            extra["check"] = items_dict(items)
        elif verb == "run":
            pl.prepare()
            src = pl.source()
            extra["source"] = src.__dict__
            junit = pl.opts.out / "junit-selftests.xml"
            pl.pytest(paths.REPO / "selftests", junit)
    except HarnessError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        finish(pl, extra)
        return 2
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
        return cmd_pipeline(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
