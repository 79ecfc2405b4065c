"""The pipeline stages, shared by the CLI and the pytest suites.

Each stage is resumable and skips work whose inputs did not change; each
writes a record (`<out>/<stage>.json`) with status, duration and log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import build as kbuild
from harness import paths, series, source, toolchain, vm
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
        )

    def to_env(self) -> dict[str, str]:
        env = {"MEMCG_BPF_OUT": str(self.out), "MEMCG_BPF_TOOLCHAIN": self.toolchain,
               "MEMCG_BPF_ACCEL": self.accel,
               "MEMCG_BPF_FRAGMENTS": ":".join(str(f) for f in self.fragments)}
        if self.kernel_dir:
            env["MEMCG_BPF_KERNEL_DIR"] = str(self.kernel_dir)
        if self.build_dir:
            env["MEMCG_BPF_BUILD_DIR"] = str(self.build_dir)
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
        self._src: source.SourceInfo | None = None
        self._tc: toolchain.Toolchain | None = None

    def _stage(self, name: str) -> Stage:
        st = Stage(name, self.opts.out)
        self.records.append(st.record)
        return st

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
        return self.opts.build_dir or kbuild.default_build_dir(self.tree)

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
            info = kb.config(frags, series.series_digest())
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
                rec.summary = f"memcg_ops_check built ({info['duration_s']}s)"
            rec.details = info
            return info

    def prepare(self) -> dict:
        """source -> series -> config -> build -> guest tools; what every
        guest test needs."""
        self.source()
        self.series("apply")
        self.config()
        info = self.build()
        self.guest_tools()
        return info

    def boot(self, command: str, *, name: str = "vm", timeout: float = 600,
             memory: str = "2G", cpus: int = 2) -> vm.VmResult:
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
                               rodirs=rodirs, name=name)
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
            env = dict(os.environ, **self.opts.to_env())
            argv = [sys.executable, "-m", "pytest", str(suite), f"--junitxml={junit}",
                    "-o", "junit_family=xunit2", "-q", *(extra or [])]
            rec.command = argv
            r = subprocess.run(argv, env=env, cwd=paths.REPO)
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
