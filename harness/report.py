"""Reports: a terminal table and one JSON file from the stage records."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import paths
from harness.errors import HarnessError
from harness.record import StageRecord, Status

if TYPE_CHECKING:
    from harness.options import Options


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


def stage_table(records: list[StageRecord]) -> str:
    rows = [[r.stage, r.status, f"{r.duration_s:.1f}s", r.summary[:90]] for r in records]
    return table(rows, ["stage", "status", "time", "summary"])


def junit_counts(path: Path) -> dict[str, int]:
    """tests/failures/errors/skipped from a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in total:
            total[k] += int(s.get(k, 0))
    return total


def write_json(out: Path, records: list[StageRecord], extra: dict[str, Any]) -> Path:
    data = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": overall(records),
        "stages": [asdict(r) for r in records],
        **extra,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def summary(run: Path) -> str:
    """A finished run's summary from its report.json: its status, its
    stages' table, and what failed (`harness report` without a format)."""
    path = run / "report.json"
    if not path.exists():
        raise HarnessError(f"{path} does not exist", hint="the --out directory of a run")
    data = json.loads(path.read_text())
    fields = {f for f in StageRecord.__dataclass_fields__}
    records = [StageRecord(**{k: v for k, v in st.items() if k in fields})
               for st in data.get("stages", [])]
    lines = [f"run: {run.resolve()} ({data.get('generated', '?')})",
             f"status: {data.get('status', overall(records))}", "", stage_table(records)]
    failed = [(r.stage, f) for r in records for f in r.details.get("failed", [])]
    failed += [(r.stage, r.summary) for r in records
               if r.status in (Status.FAIL, Status.ERROR) and not r.details.get("failed")]
    if failed:
        lines += ["", "what failed:"] + [f"  {stage}: {what}" for stage, what in failed]
    if data.get("error"):
        lines += ["", f"error: {data['error']}"]
    return "\n".join(lines)


def overall(records: list[StageRecord]) -> Status:
    statuses = {r.status for r in records}
    for s in (Status.ERROR, Status.FAIL):
        if s in statuses:
            return s
    return Status.PASS


def reproducer(records: list[StageRecord], opts: Options, build: Path | None
               ) -> dict[str, Any]:
    """What it takes to reproduce this run, for report.json: the command
    line, the tools' versions, the kernel config's hash, free disk. From
    the records alone: the toolchain stage asked gcc, clang and pahole, a
    boot stage QEMU and vng; what no stage recorded is null."""
    def free(p: Path | None) -> dict[str, str | float] | None:
        while p is not None and not p.exists():
            p = p.parent if p != p.parent else None
        if p is None:
            return None
        u = shutil.disk_usage(p)
        return {"path": str(p), "free_gib": round(u.free / 2**30, 1)}
    tc = next((r.details for r in records if r.stage == "toolchain" and r.details), {})
    booted = [r.details for r in records if r.details and "vng" in r.details]
    boot = booted[-1] if booted else {}
    dot = build / ".config" if build else None
    return {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "unpatched": opts.unpatched,
        "series": opts.series,
        "versions": {
            "python": sys.version.split()[0],
            "vng": boot.get("vng") or None,
            "qemu": boot.get("qemu") or None,
            "gcc": tc.get("gcc"),
            "clang": tc.get("clang"),
            "pahole": tc.get("pahole"),
            "toolchain": f"{tc['kind']} {tc['root']}" if tc else None,
        },
        "kernel_config_sha256": paths.file_sha256(dot) if dot and dot.exists() else None,
        "build_dir": str(build) if build else None,
        "free_disk": {"out": free(opts.out), "cache": free(paths.cache_root()),
                      "build": free(build)},
    }
