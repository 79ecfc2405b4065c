"""What every verb that runs pipeline stages is asked for: the tree, the
build directory, the output, the toolchain and the guest. The verbs' own
requests (harness/verbs.py) carry the rest."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths


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
            kernel_args=shlex.split(e.get("MEMCG_BPF_KERNEL_ARGS", "")),
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
            env["MEMCG_BPF_KERNEL_ARGS"] = shlex.join(self.kernel_args)
        if self.series != "quilt":
            env["MEMCG_BPF_SERIES"] = self.series
        return env

    @property
    def logs(self) -> Path:
        d = self.out / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d

