"""Per-stage records (tuxmake-style): status, duration, command, log."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal


class Status(StrEnum):
    """The harness's verdicts, one vocabulary: a stage's (StageRecord), a
    test's over its runs (results.Verdict: PASS, FAIL or SKIP) and a whole
    run's (report.overall). ERROR is the harness's or the host's failure,
    FAIL the change's. The raw outcomes of one test run are
    results.CaseStatus; KCIDB's are mapped from these in kcidb.py."""
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


PASS, FAIL, ERROR, SKIP = Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP


@dataclass
class StageRecord:
    stage: str
    status: Status = PASS
    duration_s: float = 0.0
    command: list[str] = field(default_factory=list)
    log: str | None = None
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.stage}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path


class Stage:
    """Context manager timing a stage and writing its record, even on error."""

    def __init__(self, name: str, out: Path):
        self.record = StageRecord(stage=name)
        self.out = out
        self._t0 = 0.0

    def __enter__(self) -> StageRecord:
        self._t0 = time.monotonic()
        return self.record

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        self.record.duration_s = round(time.monotonic() - self._t0, 2)
        if exc is not None:
            from harness.errors import ChangeFailed
            self.record.status = FAIL if isinstance(exc, (AssertionError, ChangeFailed)) \
                else ERROR
            self.record.summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log = getattr(exc, "log", None)
            if log and not self.record.log:
                self.record.log = log
        self.record.write(self.out)
        return False
