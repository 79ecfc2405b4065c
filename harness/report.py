"""Reports: a terminal table and one JSON file from the stage records."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.record import StageRecord


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


def stage_table(records: list[StageRecord]) -> str:
    rows = [[r.stage, r.status, f"{r.duration_s:.1f}s", r.summary[:90]] for r in records]
    return table(rows, ["stage", "status", "time", "summary"])


def junit_counts(path: Path) -> dict:
    """tests/failures/errors/skipped from a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in total:
            total[k] += int(s.get(k, 0))
    return total


def write_json(out: Path, records: list[StageRecord], extra: dict) -> Path:
    data = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": overall(records),
        "stages": [r.__dict__ for r in records],
        **extra,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def overall(records: list[StageRecord]) -> str:
    statuses = {r.status for r in records}
    for s in ("ERROR", "FAIL"):
        if s in statuses:
            return s
    return "PASS"
