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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import build as kbuild
from harness import locks, paths, results, series, source, toolchain, vm
from harness.errors import HarnessError
from harness.record import FAIL, SKIP, Stage, StageRecord


@dataclass
class Options:
    kernel_dir: Path | None = None
    build_dir: Path | None = None
    out: Path = field(default_factory=paths.default_out)
    toolchain: str = "buildroot"
    accel: str = "auto"
    fragments: list[Path] = field(default_factory=list)
    refresh: bool = False
    unpatched: bool = False  # the tree without the series (baselines)
    kernel_args: list[str] = field(default_factory=list)  # appended to the guest's
    series: str = "quilt"  # or "none": the tree as it is (the series applied by other means)

    @classmethod
    def from_env(cls) -> Options:
        """Options for the pytest suites (set by `harness run` or by hand)."""
        e = os.environ
        return cls(
            kernel_dir=Path(e["MEMCG_BPF_KERNEL_DIR"]) if e.get("MEMCG_BPF_KERNEL_DIR") else None,
            build_dir=Path(e["MEMCG_BPF_BUILD_DIR"]) if e.get("MEMCG_BPF_BUILD_DIR") else None,
            out=Path(e.get("MEMCG_BPF_OUT", paths.default_out())),
            toolchain=e.get("MEMCG_BPF_TOOLCHAIN", "buildroot"),
            accel=e.get("MEMCG_BPF_ACCEL", "auto"),
            fragments=[Path(p) for p in e.get("MEMCG_BPF_FRAGMENTS", "").split(":") if p],
            unpatched=e.get("MEMCG_BPF_UNPATCHED") == "1",
            kernel_args=e.get("MEMCG_BPF_KERNEL_ARGS", "").split(),
            series=e.get("MEMCG_BPF_SERIES", "quilt"),
        )

    def to_env(self) -> dict[str, str]:
        env = {"MEMCG_BPF_OUT": str(self.out), "MEMCG_BPF_TOOLCHAIN": self.toolchain,
               "MEMCG_BPF_ACCEL": self.accel,
               "MEMCG_BPF_FRAGMENTS": ":".join(str(f) for f in self.fragments)}
        if self.kernel_dir:
            env["MEMCG_BPF_KERNEL_DIR"] = str(self.kernel_dir)
        if self.build_dir:
            env["MEMCG_BPF_BUILD_DIR"] = str(self.build_dir)
        if self.unpatched:
            env["MEMCG_BPF_UNPATCHED"] = "1"
        if self.kernel_args:
            env["MEMCG_BPF_KERNEL_ARGS"] = " ".join(self.kernel_args)
        if self.series != "quilt":
            env["MEMCG_BPF_SERIES"] = self.series
        return env

    @property
    def logs(self) -> Path:
        d = self.out / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d


class Pipeline:
    def __init__(self, opts: Options):
        self.opts = opts
        self.records: list[StageRecord] = []
        self.verdicts: list[results.Verdict] = []  # of the last selftests() run
        self._src: source.SourceInfo | None = None
        self._tc: toolchain.Toolchain | None = None

    def _stage(self, name: str) -> Stage:
        st = Stage(name, self.opts.out)
        self.records.append(st.record)
        return st

    def reproducer(self) -> dict:
        """What it takes to reproduce this run, for report.json: the command
        line, the tools' versions, the kernel config's hash, free disk.
        Best effort: what is not known (no toolchain or build yet) is null."""
        def free(p: Path | None) -> dict | None:
            while p is not None and not p.exists():
                p = p.parent if p != p.parent else None
            if p is None:
                return None
            u = shutil.disk_usage(p)
            return {"path": str(p), "free_gib": round(u.free / 2**30, 1)}
        try:
            vng = vm.vng_path()
        except HarnessError:
            vng = None
        tc = self._tc
        root = tc.root if tc else None
        tcinfo = next((r.details for r in self.records if r.stage == "toolchain"), {})
        build = None
        if self._src is not None:
            build = self.build_dir
        dot = build / ".config" if build else None
        return {
            "argv": sys.argv,
            "cwd": os.getcwd(),
            "unpatched": self.opts.unpatched,
            "series": self.opts.series,
            "versions": {
                "python": sys.version.split()[0],
                "vng": vm.tool_version([vng, "--version"]) if vng else None,
                "qemu": vm.tool_version([shutil.which("qemu-system-x86_64") or
                                         "qemu-system-x86_64", "--version"]) or None,
                # the toolchain stage asked gcc and pahole already
                "gcc": tcinfo.get("gcc") if tc else None,
                "clang": toolchain.tool_version([toolchain.CLANG, "--version"], root)
                if tc else None,
                "pahole": tcinfo.get("pahole") if tc else None,
                "toolchain": f"{tc.kind} {root}" if tc else None,
            },
            "kernel_config_sha256": paths.file_sha256(dot) if dot and dot.exists() else None,
            "build_dir": str(build) if build else None,
            "free_disk": {"out": free(self.opts.out), "cache": free(paths.cache_root()),
                          "build": free(build)},
        }

    # -- stages -----------------------------------------------------------
    def source(self, fetch: bool = True) -> source.SourceInfo:
        if self._src is None:
            with self._stage("source") as rec:
                self._src = source.resolve(self.opts.kernel_dir, self.opts.logs / "source.log",
                                           fetch=fetch, refresh=self.opts.refresh)
                rec.summary = self._src.label()
                rec.details = asdict(self._src)
        return self._src

    @property
    def tree(self) -> Path:
        return Path(self.source().tree)

    @property
    def build_dir(self) -> Path:
        if self.opts.build_dir:
            return self.opts.build_dir
        d = kbuild.default_build_dir(self.tree)
        return d.with_name(d.name + "-unpatched") if self.opts.unpatched else d

    def toolchain(self) -> toolchain.Toolchain:
        if self._tc is None:
            with self._stage("toolchain") as rec:
                self._tc = toolchain.make_toolchain(self.opts.toolchain, self.opts.logs)
                rec.summary = (f"{self._tc.kind}" + (f" {self._tc.root}" if self._tc.root else ""))
                pahole = toolchain.tool_version(["pahole", "--version"], self._tc.root)
                gcc = toolchain.tool_version(["gcc", "--version"], self._tc.root)
                rec.details = {"kind": self._tc.kind, "root": str(self._tc.root),
                               "pahole": pahole, "gcc": gcc}
                rec.summary += f" (gcc: {gcc}; pahole {pahole})"
        return self._tc

    def series(self, action: str = "apply") -> dict:
        if self.opts.series == "none":
            with self._stage("series") as rec:
                if action == "pop":
                    raise HarnessError("--series none builds the tree as it is: there is no "
                                       "series to take off for an unpatched baseline",
                                       hint="use --series quilt on a tree without the series")
                rec.status = SKIP
                rec.summary = "--series none: the tree as it is"
                return {}
        with self._stage("series") as rec:
            q = series.Quilt(self.tree, self.opts.logs / "series.log")
            if action == "apply":
                state = q.push_all()
                st = q.status()
                rec.summary = f"{len(st['applied'])}/{len(st['series'])} patches ({state})"
            elif action == "pop":
                q.pop_all()
                st = q.status()
                rec.summary = f"popped; {len(st['series'])} patches in series"
            elif action == "status":
                st = q.status()
                rec.summary = (f"{len(st['applied'])}/{len(st['series'])} applied, "
                               f"{'in sync' if st['in_sync'] else 'NOT in sync'}")
            else:
                raise HarnessError(f"unknown series action {action!r}")
            rec.details = st
            return st

    def kernel(self) -> kbuild.KernelBuild:
        return kbuild.KernelBuild(tree=self.tree, build=self.build_dir,
                                  toolchain=self.toolchain(), log_dir=self.opts.logs)

    def config(self) -> dict:
        kb = self.kernel()
        with self._stage("config") as rec:
            frags = kbuild.default_fragments(self.opts.fragments)
            info = kb.config(frags, "unpatched" if self.opts.unpatched else
                             "tree-as-is" if self.opts.series == "none"
                             else series.series_digest())
            rec.summary = (f"{info['options']} options verified"
                           f"{', .config updated' if info['changed'] else ', unchanged'}")
            rec.details = info
            rec.log = str(self.opts.logs / "config.log")
            return info

    def build(self) -> dict:
        kb = self.kernel()
        with self._stage("build") as rec:
            rec.log = str(self.opts.logs / "build.log")
            info = kb.build_kernel()
            rec.summary = (f"{info['release']}: {info['compiled']} compiled, "
                           f"{info['objects']} objects")
            rec.details = info
            return info

    def guest_tools(self) -> dict:
        kb = self.kernel()
        with self._stage("guest-tools") as rec:
            rec.log = str(self.opts.logs / "guest-tools.log")
            info = kb.build_guest_tools()
            if "skipped" in info:
                rec.status = SKIP
                rec.summary = info["skipped"]
            else:
                also = " and samples/bpf/memcg" if info["sample"] else ""
                rec.summary = f"memcg_ops_check{also} built ({info['duration_s']}s)"
            rec.details = info
            return info

    def selftests_build(self, bpf: bool | None = None) -> dict:
        """test_progs and test_memcontrol; unpatched, test_progs only if
        asked (`bpf`: the peer set's baseline), as only test_memcontrol
        runs there otherwise."""
        kb = self.kernel()
        bpf = not self.opts.unpatched if bpf is None else bpf
        with self._stage("selftests-build") as rec:
            rec.log = str(self.opts.logs / "selftests-build.log")
            info = kb.build_selftests(bpf=bpf)
            rec.summary = (f"test_progs ({', '.join(info['required']) or 'no series tests'}; "
                           f"{info['skipped_objects']} objects skipped) and test_memcontrol, "
                           f"{info['duration_s']:.0f}s" if bpf else
                           f"test_memcontrol, {info['duration_s']:.0f}s")
            rec.details = info
            return info

    def prepare(self, bpf_selftests: bool | None = None) -> dict:
        """source -> series -> config -> build -> guest tools -> selftests;
        what every guest test needs."""
        self.source()
        self.series("pop" if self.opts.unpatched else "apply")
        self.config()
        info = self.build()
        self.guest_tools()
        self.selftests_build(bpf=bpf_selftests)
        return info

    def selftests(self, filters: list[str] | None = None, repeat: int = 1,
                  memcontrol: bool = True, test_progs: bool = True, name: str = "selftests",
                  memcontrol_repeat: int = 1, baseline: Path | None = None,
                  peer_baseline: Path | None = None, verbose: bool = False,
                  swap_mb: int = 256, zero_policy: bool = False,
                  timeout: float = 1800) -> list[results.RunResult]:
        """Boot once; run test_progs (-t each filter; `repeat` times) and
        test_memcontrol in the guest; parse, and write <out>/<name>/
        results.json and junit.xml. A failed case fails the stage, unless
        it does not pass on the unpatched kernel either: `baseline` for
        test_memcontrol, `peer_baseline` for test_progs (the peer set).
        test_progs runs with `swap_mb` of swap. With `zero_policy`,
        test_memcontrol runs once more with a memcg_bpf_ops policy that
        answers 0 attached above its cgroups, judged by the same baseline;
        a policy that was not attached or never asked is a problem."""
        tools = kbuild.guest_tools_dir(self.build_dir)
        out = self.opts.out / name
        out.mkdir(parents=True, exist_ok=True)
        args = ["{results}", f"--repeat {repeat}", "--disk-serial {disk}"]
        if test_progs:
            args.append(f"--test-progs {{tools}}/selftests/bpf --swap-mb {swap_mb}")
            args += [shlex.quote(f"--filter={f}").replace("{", "{{").replace("}", "}}")
                     for f in (filters or [])]
            if verbose:
                args.append("--verbose")
        if memcontrol:
            args.append("--memcontrol {tools}/selftests/cgroup/test_memcontrol "
                        f"--memcontrol-repeat {memcontrol_repeat}")
            if zero_policy:
                if not (tools / "memcg_ops_check").exists():
                    raise HarnessError("--zero-policy needs the guest check program, "
                                       f"{tools}/memcg_ops_check (built with the series)",
                                       hint="harness build")
                args.append("--memcontrol-policy {tools}/memcg_ops_check")
        res, gresults = self.guest_run(name, "selftests.py", args, timeout=timeout,
                                       disk_mb=1024)
        required = kbuild.required_bpf_tests(self.tree) if test_progs else []
        if filters:  # only those the filters select
            required = [t for t in required if any(f.split("/")[0] in t for f in filters)]
        runs = collect_selftests(gresults, required)
        with self._stage(f"{name}-results") as rec:
            bases = {}
            for suite, path in (("test_memcontrol", baseline), (ZERO_POLICY_SUITE, baseline),
                                ("test_progs", peer_baseline)):
                if path is not None and path.exists():
                    bases[suite] = [c for r in results.load(path) for c in r.cases]
            verdicts = results.judge(runs, series=SERIES_TESTS, baselines=bases)
            self.verdicts = verdicts
            skipped = {(v.suite, v.name): v for v in verdicts if v.verdict == "SKIP"}
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
            bad = [v for v in verdicts if v.verdict == "FAIL"]
            n = {k: sum(1 for v in verdicts if v.verdict == k) for k in ("PASS", "SKIP")}
            rec.details = {"results": str(out / "results.json"), "junit": str(junit),
                           "failed": [f"{v.key}: {v.reason}" for v in bad]}
            rec.summary = (f"{n['PASS']} pass, {len(bad)} fail, {n['SKIP']} tell nothing "
                           "(they do not pass without the series either)")
            if bad:
                rec.summary += f"; {bad[0].key}: {bad[0].reason[:100]}"
            if bad or not runs:
                rec.status = FAIL
        return runs

    def throttle(self, params, name: str = "throttle") -> dict:
        """The throttling experiment (harness/throttle.py) in one boot;
        writes <out>/<name>/results.json, table.txt (the summary and every
        run), throttle.png and traces.png (memory over time, the policy's
        triggered periods)."""
        from harness import throttle as th
        from harness.report import table
        params.validate()
        tools = kbuild.guest_tools_dir(self.build_dir)
        sample = tools / params.sample
        if set(th.POLICY_SCENARIOS) & set(params.scenarios) and not sample.exists():
            raise HarnessError(f"no policy program {sample} (samples/bpf/memcg is built "
                               "with the series; others: selftests/mutate_sample.py)",
                               hint="harness build")
        out = self.opts.out / name
        out.mkdir(parents=True, exist_ok=True)
        args = ["{results}", "--disk-serial {disk}", "--sample {tools}/" + params.sample,
                *(shlex.quote(a).replace("{", "{{").replace("}", "}}")
                  for a in params.guest_args())]
        # the disk: ext4 with the swap file
        res, gresults = self.guest_run(name, "throttle.py", args, timeout=params.timeout_s(),
                                       memory=params.memory, cpus=params.cpus,
                                       disk_mb=params.swap_mb + 512)
        with self._stage(f"{name}-results") as rec:
            env, runs = th.parse_runs(gresults)
            summary = th.summarize(runs, params.scenarios)
            dot = self.build_dir / ".config"
            data = th.to_json(params, env, runs, summary) | {
                "kernel": self.source().label(), "vm": res.to_dict(),
                "config": {"fragments": [str(f) for f in kbuild.default_fragments(
                    self.opts.fragments)], "sha256": paths.file_sha256(dot)
                    if dot.exists() else None, "build_dir": str(self.build_dir),
                    "lockdep": kbuild.kconfig_has(self.build_dir, "CONFIG_PROVE_LOCKING")}}
            (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
            text = table(th.table_rows(summary), th.TABLE_HEADERS)
            every = table(th.run_rows(runs), th.RUN_HEADERS)
            (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
            title = (f"stress-ng --vm {params.vm_bytes} per side, {params.seconds} s, "
                     f"{params.repeats} repeats; {params.memory} RAM, "
                     f"{params.swap_mb} MB swap, {params.cpus} vCPUs"
                     + (" (TCG)" if res.accel == "tcg" else ""))
            png = th.plot(summary, out / "throttle.png", title)
            traced = [r for r in runs if r.scenario in th.POLICY_SCENARIOS + ("both_none",)]
            traces = th.plot_traces(traced, out / "traces.png", title)
            errors = [r.error for r in runs if r.error]
            rec.details = {"results": str(out / "results.json"), "plot": str(png),
                           "traces": str(traces), "table": str(out / "table.txt"),
                           "errors": errors}
            rec.log = str(out / "results.json")
            rec.summary = f"{len(runs)} runs of {len(params.scenarios)} scenarios"
            if errors:
                rec.status = FAIL
                rec.summary += f"; {len(errors)} failed: {errors[0][:80]}"
            expected = len(params.scenarios) * params.repeats
            if len(runs) < expected:
                rec.status = FAIL
                rec.summary += f"; only {len(runs)} of {expected} runs finished"
        return {"summary": summary, "table": text, "every_run": every, "runs": runs,
                "png": png, "traces": traces, "results": out / "results.json", "vm": res}

    def experiment(self, params, name: str = "experiment") -> dict:
        """The phased throttling experiment (harness/experiment.py) on the
        nodebug kernel: params.boots boots, each running its share of the
        cells in a shuffled order; writes <out>/<name>/results.json,
        table.txt (the summary, the verdicts and every run), plot.png and
        timelines.png."""
        from harness import experiment as ex
        from harness.report import table
        params.validate()
        pl = self.nodebug("patched", "the experiment")
        tools = kbuild.guest_tools_dir(pl.build_dir)
        if {a.split(":")[0] for a in params.arms} & {"sample", "detach"} and \
                not (tools / "memcg").exists():
            raise HarnessError(f"no sample program {tools / 'memcg'} (samples/bpf/memcg is "
                               "built with the series)", hint="harness build")
        out = self.opts.out / name
        out.mkdir(parents=True, exist_ok=True)
        print(f"experiment: {len(params.scenarios)} scenarios x {len(params.arms)} arms x "
              f"{params.repeats} repeats over {params.boots} boots, about "
              f"{params.estimate_s() / 60:.0f} min in the guest", flush=True)
        files, accel = [], ""
        for boot in range(params.boots):
            # the disk: ext4 with the swap file
            res, gresults = pl.guest_run(
                f"{name}-{boot}", "experiment.py",
                ["{results}", "--tools {tools}", "--disk-serial {disk}",
                 f"--swap-mb {params.swap_mb}", "--cells {shared}/cells.json",
                 f"--boot {boot}"], timeout=params.boot_timeout_s(boot),
                memory=params.memory, cpus=params.cpus, disk_mb=params.swap_mb + 512,
                files={"cells.json": json.dumps(params.cells(boot))})
            accel = res.accel
            files.append(gresults / "runs.jsonl")
        with self._stage(f"{name}-results") as rec:
            runs = ex.parse_runs(files)
            metrics = ex.all_metrics(runs)
            summary = ex.summarize(runs, metrics, params)
            verdicts = ex.verdicts(runs, metrics, params)
            env = {"config": "kernel-config/extra/nodebug.config",
                   "config_sha256": paths.short_hash((pl.build_dir / ".config").read_bytes(),
                                                     n=16),
                   "kernel": self.source().label(), "accel": accel,
                   "guest_env": [json.loads(p.with_name("env.json").read_text())
                                 for p in files if p.with_name("env.json").exists()]}
            data = {"params": asdict(params), "env": env, "summary": summary,
                    "verdicts": verdicts, "metrics": metrics,
                    "runs": [{k: v for k, v in r.items() if k != "tasks"} | {
                        "tasks": {t: {k: v for k, v in d.items() if k != "lines"}
                                  for t, d in r.get("tasks", {}).items()}} for r in runs]}
            (out / "results.json").write_text(json.dumps(data, default=str) + "\n")
            text = table(ex.table_rows(summary), ex.TABLE_HEADERS)
            text += "\n\nverdicts (per-run rules):\n" + table(
                [[v["scenario"], v["arm"], v["rule"], f"{v['good']}/{v['runs']}",
                  "pass" if v["pass"] else "FAIL", v["text"]] for v in verdicts],
                ["scenario", "arm", "rule", "good runs", "verdict", "rule text"])
            every = table(ex.run_rows(runs, metrics), ex.RUN_HEADERS)
            (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
            title = (f"wsload high {params.high_mb} MB, low {params.low_mb} MB; "
                     f"{params.memory} RAM, {params.swap_mb} MB swap, {params.cpus} vCPUs; "
                     "nodebug.config" + (" (TCG)" if accel == "tcg" else ""))
            png = ex.plot(runs, metrics, params, out / "plot.png", title)
            tl = ex.plot_timelines(runs, params, out / "timelines.png", title)
            errors = [m["error"] for m in metrics if "error" in m]
            rec.details = {"results": str(out / "results.json"), "plot": str(png),
                           "timelines": str(tl), "table": str(out / "table.txt"),
                           "errors": errors}
            rec.log = str(out / "results.json")
            expected = len(params.scenarios) * len(params.arms) * params.repeats
            rec.summary = f"{len(runs)} runs of {expected}"
            if errors or len(runs) < expected:
                rec.status = FAIL
                rec.summary += f"; {len(errors)} failed" + (f": {errors[0][:80]}"
                                                             if errors else "")
        return {"summary": summary, "verdicts": verdicts, "table": text, "runs": runs,
                "png": png, "timelines": tl, "results": out / "results.json"}

    NODEBUG_SUFFIX = {"unpatched": "-bench-unpatched", "patched": "-bench",
                      "srcu": "-bench-srcu"}

    def nodebug(self, kernel: str, why: str) -> Pipeline:
        """The kernel `kernel` (unpatched, patched, or srcu: the series with
        bench.SRCU_READ_SIDE) built with kernel-config/extra/nodebug.config,
        in a build directory of its own (<build dir>-bench...), with the
        guest tools for a patched kernel. Performance numbers come from
        these kernels only."""
        import dataclasses

        from harness import bench as hb
        frags = [*self.opts.fragments, paths.REPO / hb.NODEBUG]
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
        if kernel == "srcu":
            orig = hb.edit_tree(pl.tree, hb.SRCU_READ_SIDE)
            try:
                pl.build()
            finally:
                hb.restore_tree(orig)
        else:
            pl.build()
        if kernel == "patched":
            info = pl.guest_tools()
            if "skipped" in info:
                raise HarnessError(f"{why} needs the series' memcg_bpf_ops in the patched "
                                   f"kernel: {info['skipped']}")
        return pl

    def bench(self, params, name: str = "bench") -> dict:
        """harness bench (harness/bench.py): build the unpatched and the
        patched kernel with nodebug.config, each in a build directory of
        its own; boot them in turn, params.boots times each; write
        <out>/<name>/results.json, table.txt and bench.png."""

        from harness import bench as hb
        from harness.report import table
        params.validate()
        kernels = {}
        # unpatched first, then the series: the tree ends with it applied
        for kernel in params.kernels:
            kernels[kernel] = self.nodebug(kernel, "bench")
        # membench and the policy holder run on every kernel: the others get a copy
        src = kbuild.guest_tools_dir(kernels["patched"].build_dir) / "membench"
        for kernel in params.kernels:
            if kernel == "patched":
                continue
            dst = kbuild.guest_tools_dir(kernels[kernel].build_dir)
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / "membench")
            shutil.copy2(src.with_name("memcg_ops_check"), dst / "memcg_ops_check")

        out = self.opts.out / name
        out.mkdir(parents=True, exist_ok=True)
        results_files = []
        accel = ""
        for boot in range(params.boots):
            for kernel in params.kernels:
                res, gresults = kernels[kernel].guest_run(
                    f"{name}-{kernel}-{boot}", "bench.py",
                    ["{results}", "--tools {tools}",
                     *map(shlex.quote, params.guest_args(kernel, boot))],
                    timeout=params.timeout_s(), memory=params.memory, cpus=params.cpus)
                accel = res.accel
                results_files.append(gresults / "runs.jsonl")
        with self._stage(f"{name}-results") as rec:
            runs = hb.parse_runs(results_files)
            summary = hb.summarize(runs)
            cfg = kbuild.built_info(kernels["patched"].build_dir)
            env = {"config": hb.NODEBUG, "kernels": list(params.kernels),
                   "srcu_read_side": hb.SRCU_READ_SIDE if params.srcu else None,
                   "config_sha256": paths.short_hash(
                       (kernels["patched"].build_dir / ".config").read_bytes(), n=16),
                   "kernel": self.source().label(), "accel": accel,
                   "release": cfg.get("release"), "build_dirs": {
                       k: str(v.build_dir) for k, v in kernels.items()}}
            data = hb.to_json(params, runs, summary, env)
            (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
            text = table(hb.table_rows(summary), hb.TABLE_HEADERS)
            added = [r for r in summary if "added_ns_per_page" in r]
            for r in added:
                text += (f"\n{r['workload']}: {r['variant']} adds {r['added_ns_per_page']} "
                         f"ns per page over {r['added_over']} (95 % interval "
                         f"{r['added_ci'][0]} .. {r['added_ci'][1]}), "
                         f"{r['added_ns_per_batch']} ns per 64-page charge batch")
            every = table([[r["boot"], r["order"], r["kernel"], r["variant"], r["workload"],
                            r["ns_per_page"], r["pages"], r["high_events"]] for r in runs],
                          ["boot", "order", "kernel", "variant", "workload", "ns/page",
                           "pages", "high events"])
            (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
            title = (f"membench {params.mb} MB x {params.secs} s, {params.reps} runs per "
                     f"variant per boot, {params.boots} boots per kernel; nodebug.config; "
                     f"{params.cpus} vCPUs" + (" (QEMU TCG)" if accel == "tcg" else ""))
            png = hb.plot(runs, summary, out / "bench.png", title)
            rec.details = {"results": str(out / "results.json"), "plot": str(png),
                           "table": str(out / "table.txt")}
            rec.log = str(out / "results.json")
            expected = params.expected_runs()
            rec.summary = f"{len(runs)} runs of {expected}"
            if len(runs) < expected:
                rec.status = FAIL
                rec.summary += f"; only {len(runs)} of {expected} finished"
        return {"summary": summary, "table": text, "every_run": every, "runs": runs,
                "png": png, "results": out / "results.json"}

    def check(self, prefixes: bool = True, configs: bool = True, quick: bool = False) -> list:
        """harness/check.py's checks of the series as stage "check": its
        items (checkpatch, every prefix, W=1, the extra configs)."""
        from harness.check import SeriesCheck, items_dict, stage_status
        if self.opts.series == "none":
            raise HarnessError("check checks the patches in patches/ one by one: it "
                               "needs --series quilt")
        self.source()
        self.series("apply")
        with self._stage("check") as rec:
            items = SeriesCheck(self, prefixes=prefixes, configs=configs, quick=quick).run()
            rec.details = {"items": items_dict(items)}
            rec.status = stage_status(items)
            bad = [i for i in items if i.status == "FAIL"]
            rec.summary = f"{len(items) - len(bad)}/{len(items)} checks pass"
        return items

    def write_baseline(self, path: Path, runs: list, note: str, **more) -> Path:
        """Save this (unpatched) kernel's results of `runs` as a baseline
        (selftests/baselines/), with the kernel's label, as stage
        "baseline"."""
        with self._stage("baseline") as rec:
            data = results.to_dict(runs) | {"kernel": self.source().label(), **more,
                                            "note": note}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, default=str) + "\n")
            rec.summary = f"written: {path}"
            rec.log = str(path)
        return path

    def guest_run(self, name: str, script: str, args: list[str], *, timeout: float,
                  memory: str = "2G", cpus: int = 2, disk_mb: int | None = None,
                  files: dict[str, str] | None = None) -> tuple[vm.VmResult, Path]:
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
                            disks=[disk] if disk else [])
        finally:
            if disk:
                disk.unlink(missing_ok=True)
        return res, shared / "results"

    def boot(self, command: str, *, name: str = "vm", timeout: float = 600,
             memory: str = "2G", cpus: int = 2,
             disks: list[Path] | None = None) -> vm.VmResult:
        info = kbuild.built_info(self.build_dir)
        tc = self.toolchain()
        kernel = Path(info["image"])
        with self._stage(name) as rec:
            accel, warning = vm.choose_accel(self.opts.accel, kernel, tc.root, self.opts.logs)
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
                               append=list(self.opts.kernel_args))
            res = vm.boot(req, self.opts.logs)
            rec.log = str(res.console)
            rec.details = res.to_dict() | {"warning": warning, "kernel": str(kernel)}
            problem = res.problem()
            rec.status = FAIL if problem else rec.status
            rec.summary = (problem.splitlines()[0] if problem else
                           f"guest rc 0 ({accel}, first command at "
                           f"{res.first_command_s or 0:.1f}s, {res.duration_s:.1f}s total)")
            return res

    def smoke(self) -> tuple[vm.VmResult, dict]:
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
        with self._stage(f"pytest-{suite.stem}") as rec:
            # the suites work on what this process prepared (they build
            # nothing again), under its locks
            env = dict(os.environ, **self.opts.to_env(), **locks.held_env(),
                       MEMCG_BPF_PREPARED="1")
            argv = [sys.executable, "-m", "pytest", str(suite), f"--junitxml={junit}",
                    "-o", "junit_family=xunit2", "-q", *(extra or [])]
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


def run_suite(argv: list[str], env: dict) -> subprocess.CompletedProcess:
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


def collect_selftests(gout: Path, required: list[str]) -> list[results.RunResult]:
    """Parse what harness/guest/selftests.py left in gout (its runs.json and
    one log per run); a required test that never reported is MISSING."""
    index = gout / "runs.json"
    if not index.exists():
        r = results.RunResult("selftests", problems=[f"the guest runner left no {index}"])
        return [r]
    runs = []
    for entry in json.loads(index.read_text())["runs"]:
        log = gout / entry["log"]
        text = log.read_text(errors="replace") if log.exists() else ""
        if entry["suite"] == "test_progs":
            r = results.parse_test_progs(text, run=entry["run"])
            report = gout / f"test_progs-{entry['run']}.json"  # its -J report
            if report.exists():
                try:
                    results.apply_test_progs_json(r, json.loads(report.read_text()))
                except (ValueError, KeyError) as e:
                    r.problems.append(f"test_progs -J report {report.name} unreadable: {e}")
            r.cases += results.required_missing(r, required)
        else:
            r = results.parse_ktap(text, entry["suite"], run=entry["run"])
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
