"""The pipeline stages, shared by the CLI and the pytest suites.

Each stage is resumable and skips work whose inputs did not change; each
writes a record (`<out>/<stage>.json`) with status, duration and log.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness import build as kbuild
from harness import locks, paths, results, series, source, toolchain, vm
from harness.errors import HarnessError
from harness.options import Options
from harness.record import FAIL, PASS, SKIP, Stage, StageRecord
from harness.results import SERIES_TESTS, ZERO_POLICY_SUITE, collect_selftests

if TYPE_CHECKING:
    from harness.check import Item

# what a build step of KernelBuild returns (Pipeline._build_stage)
_Step = TypeVar("_Step", kbuild.ConfigResult, kbuild.BuildResult, kbuild.GuestToolsResult,
                kbuild.SelftestsBuildResult)


# The stages prepare() runs, in its order, and those of each verb that runs
# the pipeline; a run that stops early records the ones it did not reach as
# SKIP (cli.finish). Defined here once; test_pipeline_plan.py runs prepare()
# against it.
PREPARE = ("source", "toolchain", "series", "config", "build", "guest-tools",
           "selftests-build")
PLANS: dict[str, tuple[str, ...]] = {
    "config": ("source", "toolchain", "series", "config"),
    "build": PREPARE,
    "test": (*PREPARE, "selftests", "selftests-results"),
    "run": (*PREPARE, "pytest-selftests", "throttle", "throttle-results"),
    "throttle": (*PREPARE, "throttle", "throttle-results"),
}


@dataclass
class SelftestsRun:
    """One boot of the selftests (Pipeline.selftests), whole: what runs in
    the guest and what it is judged against."""
    filters: list[str] = field(default_factory=list)  # test_progs -t, each
    test_progs: bool = True
    repeat: int = 1  # test_progs runs
    verbose: bool = False  # test_progs -v
    swap_mb: int = 256  # swap for test_progs
    memcontrol: bool = True
    memcontrol_repeat: int = 1  # at most
    memcontrol_until_pass: list[str] = field(default_factory=list)
    zero_policy: bool = False  # test_memcontrol once more under an N = 0 policy
    baseline: Path | None = None  # test_memcontrol's, unpatched
    peer_baseline: Path | None = None  # the peer set's (test_progs), unpatched
    timeout: float = 1800
    name: str = "selftests"  # the stage and the output directory


class Pipeline:
    def __init__(self, opts: Options):
        self.opts = opts
        self.records: list[StageRecord] = []
        self.verdicts: list[results.Verdict] = []  # of the last selftests() run
        self._src: source.SourceInfo | None = None
        self._tc: toolchain.Toolchain | None = None
        self._vm_versions: dict[str, str] | None = None

    def stage(self, name: str) -> Stage:
        """A stage of this run: `with pl.stage("x") as rec:` times it and
        writes its record (harness.record.Stage), and report.json lists it."""
        st = Stage(name, self.opts.out)
        self.records.append(st.record)
        return st

    # -- stages -----------------------------------------------------------
    def source(self, fetch: bool = True) -> source.SourceInfo:
        if self._src is None:
            with self.stage("source") as rec:
                self._src = source.resolve(self.opts.kernel_dir, self.opts.logs / "source.log",
                                           fetch=fetch, refresh=self.opts.refresh)
                rec.summary = self._src.label()
                rec.details = asdict(self._src)
        return self._src

    @property
    def tree(self) -> Path:
        return Path(self.source().tree)

    def known_build_dir(self) -> Path | None:
        """The build directory if this run knows it without a stage (given,
        or its tree resolved already), else None."""
        if self.opts.build_dir or self._src is not None:
            return self.build_dir
        return None

    @property
    def build_dir(self) -> Path:
        if self.opts.build_dir:
            return self.opts.build_dir
        d = kbuild.default_build_dir(self.tree)
        return d.with_name(d.name + "-unpatched") if self.opts.unpatched else d

    def toolchain(self) -> toolchain.Toolchain:
        if self._tc is None:
            with self.stage("toolchain") as rec:
                self._tc = toolchain.make_toolchain(self.opts.toolchain, self.opts.logs)
                rec.summary = (f"{self._tc.kind}" + (f" {self._tc.root}" if self._tc.root else ""))
                pahole = toolchain.tool_version(["pahole", "--version"], self._tc.root)
                gcc = toolchain.tool_version(["gcc", "--version"], self._tc.root)
                clang = toolchain.tool_version([toolchain.CLANG, "--version"], self._tc.root)
                rec.details = {"kind": self._tc.kind, "root": str(self._tc.root),
                               "pahole": pahole, "gcc": gcc, "clang": clang}
                rec.summary += f" (gcc: {gcc}; pahole {pahole})"
        return self._tc

    def check_apply(self, tree: Path, patches: Path | None = None) -> series.ApplyCheck:
        """The upstream part (or `patches`) applied with --fuzz=0 to a copy of
        the files of `tree` it touches; `tree` is only read."""
        with self.stage("check-apply") as rec:
            pset = patches or series.UPSTREAM
            rec.command = ["quilt", "push", "-a", "--fuzz=0"]
            rec.log = str(self.opts.logs / "check-apply.log")
            res = series.check_apply(tree, self.opts.logs / "check-apply.log", pset)
            rec.summary = (f"{len(res.applied)} patches of {pset} apply to {res.tree} "
                           f"with --fuzz=0" + (f", {len(res.offsets)} hunks at an offset"
                                               if res.offsets else ""))
            rec.details = asdict(res)
            return res

    def series(self, action: str = "apply") -> series.SeriesStatus | None:
        """None with --series none (the tree as it is)."""
        if self.opts.series == "none":
            with self.stage("series") as rec:
                if action == "pop":
                    raise HarnessError("--series none builds the tree as it is: there is no "
                                       "series to take off for an unpatched baseline",
                                       hint="use --series quilt on a tree without the series")
                rec.status = SKIP
                rec.summary = "--series none: the tree as it is"
                return None
        tree = self.tree  # the source stage first, not inside this one
        with self.stage("series") as rec:
            q = series.Quilt(tree, self.opts.logs / "series.log")
            if action == "apply":
                state = q.push_all()
                st = q.status()
                rec.summary = f"{len(st.applied)}/{len(st.series)} patches ({state})"
            elif action == "pop":
                q.pop_all()
                st = q.status()
                rec.summary = f"popped; {len(st.series)} patches in series"
            elif action == "status":
                st = q.status()
                rec.summary = (f"{len(st.applied)}/{len(st.series)} applied, "
                               f"{'in sync' if st.in_sync else 'NOT in sync'}")
            else:
                raise HarnessError(f"unknown series action {action!r}")
            rec.details = asdict(st)
            return st

    def kernel(self) -> kbuild.KernelBuild:
        return kbuild.KernelBuild(tree=self.tree, build=self.build_dir,
                                  toolchain=self.toolchain(), log_dir=self.opts.logs)

    def _build_stage(self, name: str, step: Callable[[kbuild.KernelBuild], _Step]) -> _Step:
        """A build step of KernelBuild as stage `name`: its log, its
        result's summary and details; SKIP if it skipped."""
        kb = self.kernel()
        with self.stage(name) as rec:
            rec.log = str(self.opts.logs / f"{name}.log")
            info = step(kb)
            rec.summary = info.summary()
            rec.details = asdict(info)
            if getattr(info, "skipped", None):
                rec.status = SKIP
            return info

    def config(self) -> kbuild.ConfigResult:
        digest = ("unpatched" if self.opts.unpatched else "tree-as-is"
                  if self.opts.series == "none" else series.series_digest())
        frags = kbuild.default_fragments(self.opts.fragments)
        return self._build_stage("config", lambda kb: kb.config(frags, digest))

    def build(self) -> kbuild.BuildResult:
        return self._build_stage("build", lambda kb: kb.build_kernel())

    def guest_tools(self) -> kbuild.GuestToolsResult:
        return self._build_stage("guest-tools", lambda kb: kb.build_guest_tools())

    def selftests_build(self, bpf: bool | None = None) -> kbuild.SelftestsBuildResult:
        """test_progs and test_memcontrol; unpatched, test_progs only if
        asked (`bpf`: the peer set's baseline), as only test_memcontrol
        runs there otherwise."""
        bpf = not self.opts.unpatched if bpf is None else bpf
        return self._build_stage("selftests-build", lambda kb: kb.build_selftests(bpf=bpf))

    def prepare(self, bpf_selftests: bool | None = None) -> kbuild.BuildResult:
        """source -> toolchain -> series -> config -> build -> guest tools ->
        selftests (PREPARE); what every guest test needs."""
        self.source()
        self.toolchain()
        self.series("pop" if self.opts.unpatched else "apply")
        self.config()
        info = self.build()
        self.guest_tools()
        self.selftests_build(bpf=bpf_selftests)
        return info

    def selftests(self, run: SelftestsRun) -> list[results.RunResult]:
        """Boot once; run test_progs (-t each filter; `repeat` times) and
        test_memcontrol in the guest; parse, and write <out>/<name>/
        results.json and junit.xml. A failed case fails the stage, unless
        it does not pass on the unpatched kernel either: `baseline` for
        test_memcontrol, `peer_baseline` for test_progs (the peer set).
        test_progs runs with `swap_mb` of swap. With `zero_policy`,
        test_memcontrol runs once more with a memcg_bpf_ops policy that
        answers 0 attached above its cgroups, judged by the same baseline;
        a policy that was not attached or never asked is a problem.
        test_memcontrol runs at most `memcontrol_repeat` times, fewer once
        each of `memcontrol_until_pass` has passed in every suite."""
        filters, test_progs, name = run.filters, run.test_progs, run.name
        baseline, peer_baseline = run.baseline, run.peer_baseline
        tools = kbuild.guest_tools_dir(self.build_dir)
        out = self.opts.out / name
        out.mkdir(parents=True, exist_ok=True)
        args = ["{results}", f"--repeat {run.repeat}", "--disk-serial {disk}"]
        if test_progs:
            args.append(f"--test-progs {{tools}}/selftests/bpf --swap-mb {run.swap_mb}")
            args += [shlex.quote(f"--filter={f}").replace("{", "{{").replace("}", "}}")
                     for f in filters]
            if run.verbose:
                args.append("--verbose")
        if run.memcontrol:
            args.append("--memcontrol {tools}/selftests/cgroup/test_memcontrol "
                        f"--memcontrol-repeat {run.memcontrol_repeat}")
            if run.memcontrol_until_pass:
                args.append(f"--memcontrol-until-pass {','.join(run.memcontrol_until_pass)}")
            if run.zero_policy:
                if not (tools / "memcg_ops_check").exists():
                    raise HarnessError("--zero-policy needs the guest check program, "
                                       f"{tools}/memcg_ops_check (built with the series)",
                                       hint="harness build")
                args.append("--memcontrol-policy {tools}/memcg_ops_check")
        res, gresults = self.guest_run(name, "selftests.py", args, timeout=run.timeout,
                                       disk_mb=1024)
        required = kbuild.required_bpf_tests(self.tree) if test_progs else []
        if filters:  # only those the filters select
            required = [t for t in required if any(f.split("/")[0] in t for f in filters)]
        runs = collect_selftests(gresults, required)
        with self.stage(f"{name}-results") as rec:
            bases = {}
            for suite, path in (("test_memcontrol", baseline), (ZERO_POLICY_SUITE, baseline),
                                ("test_progs", peer_baseline)):
                if path is not None and path.exists():
                    bases[suite] = [c for r in results.load(path) for c in r.cases]
            verdicts = results.judge(runs, series=SERIES_TESTS, baselines=bases)
            self.verdicts = verdicts
            skipped = {(v.suite, v.name): v for v in verdicts if v.verdict == SKIP}
            for r in runs:  # a failure the baseline has too: KNOWN-FAIL in JUnit/KCIDB
                for c in r.cases:
                    v = skipped.get((r.suite, c.name))
                    if c.status == results.FAIL and v:
                        c.status = results.KNOWN
                        c.message = f"{v.reason}\n{c.message}"
            data = results.to_dict(runs) | {"vm": res.to_dict(), "verdicts": [
                asdict(v) for v in verdicts]}
            (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
            junit = results.write_junit(out / "junit.xml", runs)
            rec.log = str(junit)
            bad = [v for v in verdicts if v.verdict == FAIL]
            n = {k: sum(1 for v in verdicts if v.verdict == k) for k in (PASS, SKIP)}
            rec.details = {"results": str(out / "results.json"), "junit": str(junit),
                           "failed": [f"{v.key}: {v.reason}" for v in bad]}
            rec.summary = (f"{n[PASS]} pass, {len(bad)} fail, {n[SKIP]} tell nothing "
                           "(they do not pass without the series either)")
            if bad:
                rec.summary += f"; {bad[0].key}: {bad[0].reason[:100]}"
            if bad or not runs:
                rec.status = FAIL
        return runs

    NODEBUG_SUFFIX = {"unpatched": "-bench-unpatched", "patched": "-bench",
                      "srcu": "-bench-srcu"}

    def nodebug(self, kernel: str, why: str,
                edit_tree: Callable[[Path], Callable[[], None]] | None = None) -> Pipeline:
        """The kernel `kernel` (unpatched, patched, or srcu: the series with
        the edits of `edit_tree`, which changes the tree and returns what
        restores it after the build) built with kbuild.NODEBUG_CONFIG, in a
        build directory of its own (<build dir>-bench...), with the guest
        tools for a patched kernel. Performance numbers come from these
        kernels only."""
        import dataclasses

        frags = [*self.opts.fragments, paths.REPO / kbuild.NODEBUG_CONFIG]
        base = self.opts.build_dir or kbuild.default_build_dir(self.tree)
        opts = dataclasses.replace(
            self.opts, fragments=frags, unpatched=kernel == "unpatched",
            build_dir=base.with_name(base.name + self.NODEBUG_SUFFIX[kernel]))
        pl = Pipeline(opts)
        pl._src, pl._tc = self._src, self._tc
        pl.records = self.records
        pl.source()
        pl.series("pop" if kernel == "unpatched" else "apply")
        pl.config()
        if edit_tree is not None:
            restore = edit_tree(pl.tree)
            try:
                pl.build()
            finally:
                restore()
        else:
            pl.build()
        if kernel == "patched":
            info = pl.guest_tools()
            if info.skipped:
                raise HarnessError(f"{why} needs the series' memcg_bpf_ops in the patched "
                                   f"kernel: {info.skipped}")
        return pl

    LIFETIME = "kernel-config/extra/lifetime.config"
    LIFETIME_TESTS = ("cgroup_struct_ops/close_rmdir_race", "cgroup_struct_ops/fail_nth")

    def lifetime(self) -> list[str]:
        """The attach core's lifetime tests on the kernel that hunts lifetime
        bugs (kernel-config/extra/lifetime.config: KASAN, kmemleak,
        failslab), in a build directory of its own (<build dir>-lifetime),
        booted with no5lvl (see kasan.config): cgroup_struct_ops'
        close_rmdir_race and fail_nth, as stages "lifetime" (the boot) and
        "lifetime-results". Returns what failed: a test (a kmemleak leak
        fails fail_nth, which scans at its end), or the boot itself, which a
        KASAN report or any other splat on the console fails even when every
        test passed. self.verdicts are the tests'."""
        import dataclasses
        base = self.opts.build_dir or kbuild.default_build_dir(self.tree)
        args = [*self.opts.kernel_args]
        if "no5lvl" not in args:
            args.append("no5lvl")
        opts = dataclasses.replace(
            self.opts, fragments=[*self.opts.fragments, paths.REPO / self.LIFETIME],
            build_dir=base.with_name(base.name + "-lifetime"), kernel_args=args)
        pl = Pipeline(opts)
        pl._src, pl._tc = self._src, self._tc
        pl.records = self.records
        pl.prepare()
        pl.selftests(SelftestsRun(list(self.LIFETIME_TESTS), memcontrol=False,
                                  name="lifetime", timeout=1800))
        self.verdicts = pl.verdicts
        return ([f"{v.key}: {v.reason}" for v in pl.verdicts if v.verdict == FAIL]
                + [f"{r.stage}: {r.summary}" for r in self.records
                   if r.stage == "lifetime" and r.status == FAIL])

    def check(self, prefixes: bool = True, configs: bool = True, quick: bool = False,
              lifetime: bool = False) -> list[Item]:
        """harness/check.py's checks of the series as stage "check": its
        items (checkpatch, every prefix, W=1, the extra configs, and with
        `lifetime` the attach core's lifetime tests on the KASAN + kmemleak
        + failslab kernel, lifetime())."""
        from harness.check import Item, SeriesCheck, items_dict, stage_status
        if self.opts.series == "none":
            raise HarnessError("check checks the patches in patches/ one by one: it "
                               "needs --series quilt")
        self.source()
        self.series("apply")
        tc = self.toolchain()
        with self.stage("check") as rec:
            items = SeriesCheck(self.tree, tc, self.opts.logs,
                                list(self.opts.fragments), prefixes=prefixes, configs=configs,
                                quick=quick).run()
            if lifetime:
                try:
                    bad = self.lifetime()
                    passed = sum(1 for v in self.verdicts if v.verdict == PASS)
                    items.append(Item("lifetime", self.LIFETIME, FAIL if bad else PASS,
                                      f"{passed}/{len(self.verdicts)} tests pass on KASAN + "
                                      f"kmemleak + failslab; {len(bad)} problems",
                                      {"issues": bad}))
                except HarnessError as e:
                    items.append(Item("lifetime", self.LIFETIME, FAIL, str(e)[:200],
                                      {"error": str(e)}))
            rec.details = {"items": items_dict(items)}
            rec.status = stage_status(items)
            failed = [i for i in items if i.status == FAIL]
            rec.summary = f"{len(items) - len(failed)}/{len(items)} checks pass"
        return items

    def write_baseline(self, path: Path, runs: list[results.RunResult], note: str,
                       **more: Any) -> Path:
        """Save this (unpatched) kernel's results of `runs` as a baseline
        (selftests/baselines/), with the kernel's label, as stage
        "baseline"."""
        with self.stage("baseline") as rec:
            data = results.to_dict(runs) | {"kernel": self.source().label(), **more,
                                            "note": note}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, default=str) + "\n")
            rec.summary = f"written: {path}"
            rec.log = str(path)
        return path

    def guest_run(self, name: str, script: str, args: list[str], *, timeout: float,
                  memory: str = "2G", cpus: int = 2, disk_mb: int | None = None,
                  files: dict[str, str] | None = None,
                  qemu_opts: list[str] | None = None) -> tuple[vm.VmResult, Path]:
        """Boot once and run harness/guest/<script> with `args`, where
        {results}, {tools}, {disk} and {shared} stand for the guest's paths
        of the results directory, the guest tools, the scratch disk's serial
        and the shared directory. The shared directory <out>/<name>-out is
        made fresh (with `files` written into it first); with `disk_mb`, a
        sparse scratch disk of that size is attached, and removed after.
        Returns the boot's result and the host's results directory."""
        root = self.toolchain().root
        shared = self.opts.out / f"{name}-out"  # boot() shares it with the guest
        if shared.exists():
            shutil.rmtree(shared)
        shared.mkdir(parents=True)
        for fname, text in (files or {}).items():
            (shared / fname).write_text(text)
        gshared = vm.VmRequest(kernel=Path(), command="", out_dir=shared, root=root).guest_out
        disk = None
        if disk_mb:
            disk = self.opts.out / f"{name}-scratch-disk.img"
            with open(disk, "wb") as f:  # sparse; the guest makes it ext4
                f.truncate(disk_mb << 20)
        subst = {"results": f"{gshared}/results", "shared": gshared,
                 "tools": vm.guest_build(root, kbuild.guest_tools_dir(self.build_dir)),
                 "disk": str(disk) if disk else ""}
        cmd = " ".join([f"python3 {vm.guest_src(root)}/harness/guest/{script}",
                        *(a.format(**subst) for a in args)])
        try:
            res = self.boot(cmd, name=name, timeout=timeout, memory=memory, cpus=cpus,
                            disks=[disk] if disk else [], qemu_opts=qemu_opts)
        finally:
            if disk:
                disk.unlink(missing_ok=True)
        return res, shared / "results"

    def boot(self, command: str, *, name: str = "vm", timeout: float = 600,
             memory: str = "2G", cpus: int = 2, disks: list[Path] | None = None,
             qemu_opts: list[str] | None = None) -> vm.VmResult:
        info = kbuild.built_info(self.build_dir)
        tc = self.toolchain()
        kernel = Path(info.image)
        with self.stage(name) as rec:
            accel, warning = vm.choose_accel(self.opts.accel, kernel, tc.root, self.opts.logs,
                                             list(self.opts.kernel_args))
            if warning:
                print(warning, file=sys.stderr)
            out = self.opts.out / f"{name}-out"
            rodirs = [(vm.guest_src(tc.root), paths.REPO)]
            tools = kbuild.guest_tools_dir(self.build_dir)
            if tools.exists():
                rodirs.append((vm.guest_build(tc.root, tools), tools))
            req = vm.VmRequest(kernel=kernel, command=command, out_dir=out, accel=accel,
                               root=tc.root, memory=memory, cpus=cpus, timeout=timeout,
                               rodirs=rodirs, name=name, disks=list(disks or []),
                               append=list(self.opts.kernel_args),
                               qemu_opts=list(qemu_opts or []))
            res = vm.boot(req, self.opts.logs)
            if self._vm_versions is None:
                self._vm_versions = vm.tool_versions()
            rec.log = str(res.console)
            rec.details = res.to_dict() | self._vm_versions | {
                                           "warning": warning, "kernel": str(kernel),
                                           "cmdline": " ".join(vm.KERNEL_ARGS + req.append),
                                           "qemu_opts": req.qemu_opts}
            problem = res.problem()
            rec.status = FAIL if problem else rec.status
            rec.summary = (problem.splitlines()[0] if problem else
                           f"guest rc 0 ({accel}, first command at "
                           f"{res.first_command_s or 0:.1f}s, {res.duration_s:.1f}s total)")
            return res

    def smoke(self) -> tuple[vm.VmResult, dict[str, Any]]:
        root = self.toolchain().root
        tools = kbuild.guest_tools_dir(self.build_dir)
        cmd = (f"python3 {vm.guest_src(root)}/harness/guest/smoke.py . "
               f"{vm.guest_build(root, tools)}")
        res = self.boot(cmd, name="smoke", timeout=300)
        facts_path = self.opts.out / "smoke-out" / "smoke.json"
        facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
        return res, facts

    def pytest(self, suite: Path, junit: Path, extra: list[str] | None = None) -> int:
        """Run a selftests/ suite as a stage (results as JUnit XML)."""
        with self.stage(f"pytest-{suite.stem}") as rec:
            # the suites work on what this process prepared (they build
            # nothing again), under its locks
            env = dict(os.environ, **self.opts.to_env(), **locks.held_env(),
                       MEMCG_BPF_PREPARED="1")
            # one line per test with its time, and the guests' progress lines
            # (one per guest test, vm.PROGRESS) as they come
            argv = [sys.executable, "-m", "pytest", str(suite), f"--junitxml={junit}",
                    "-o", "junit_family=xunit2", "-v", "--capture=tee-sys",
                    "-o", "console_output_style=times", *(extra or [])]
            rec.command = argv
            r = run_suite(argv, env)
            from harness.report import junit_counts
            counts = junit_counts(junit) if junit.exists() else {}
            rec.details = counts
            rec.log = str(junit)
            if r.returncode == 5:
                rec.status = SKIP
                rec.summary = "no tests collected"
            elif r.returncode != 0:
                rec.status = FAIL
            if counts:
                passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
                rec.summary = (f"{passed} passed, {counts['failures']} failed, "
                               f"{counts['errors']} errors, {counts['skipped']} skipped")
            return r.returncode


def run_suite(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[None]:
    """pytest in a child; our SIGTERM or Ctrl-C (KeyboardInterrupt) is
    passed on as SIGTERM, so that the suite kills the VM it runs before
    it ends (selftests/conftest.py); each test has its own timeout
    (pytest-timeout), SUITE_TIMEOUT_S bounds the whole."""
    proc = subprocess.Popen(argv, env=env, cwd=paths.REPO)
    try:
        rc = proc.wait(timeout=SUITE_TIMEOUT_S)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=60)
        raise
    return subprocess.CompletedProcess(argv, rc)


# The longest a pytest suite may take (the slowest, the vm suite, takes about
# 10 minutes warm here); per test, pytest-timeout's own limits apply.
SUITE_TIMEOUT_S = 3 * 3600
