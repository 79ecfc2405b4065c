"""Running commands: logged to a file, timed out by process group, with progress."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.errors import HarnessError, MissingTool


@dataclass
class Result:
    argv: list[str]
    returncode: int
    timed_out: bool
    duration_s: float
    log: Path | None


def require(tool: str, package: str) -> str:
    """Path of a host tool, or MissingTool naming its Debian package."""
    path = shutil.which(tool)
    if not path:
        raise MissingTool(tool, package)
    return path


def first_line(argv: list[str], timeout: float = 60, ok_only: bool = True) -> str | None:
    """The first line `argv` prints (a tool's --version): stdout, else
    stderr; None if it cannot be run, prints nothing, or (ok_only) fails.
    The one version probe: toolchain.tool_version (host or chroot),
    vm.tool_version and host.version_line use it."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (r.stdout or r.stderr).strip()
    if not text or (ok_only and r.returncode != 0):
        return None
    return text.splitlines()[0]


def kill_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_logged(
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
    append: bool = False,
) -> Result:
    """Run argv in its own session; every output line goes to `log`.

    On timeout the whole process group is killed (QEMU included) and the
    log is kept. `on_line` sees each line (for progress reporting).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "ab" if append else "wb") as logf:
        logf.write(f"$ {' '.join(map(str, argv))}\n".encode())
        logf.flush()
        try:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise HarnessError(f"cannot run {argv[0]}: {e.strerror}") from e
        timed_out = threading.Event()

        def watchdog() -> None:
            timed_out.set()
            kill_group(proc)

        timer = threading.Timer(timeout, watchdog) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                logf.write(raw)
                logf.flush()
                line = raw.decode(errors="replace").rstrip("\n")
                if on_line:
                    on_line(line)
            proc.wait(timeout=timeout)  # output ended: it is exiting (or was killed)
        except KeyboardInterrupt:
            kill_group(proc)
            raise
        finally:
            if timer:
                timer.cancel()
    return Result(
        argv=[str(a) for a in argv],
        returncode=proc.returncode,
        timed_out=timed_out.is_set(),
        duration_s=time.monotonic() - t0,
        log=log,
    )


def tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


class Progress:
    """Prints a one-line status at most every `every` seconds."""

    def __init__(self, label: str, every: float = 15.0, stream: TextIO = sys.stderr):
        self.label = label
        self.every = every
        self.stream = stream
        self.t0 = time.monotonic()
        self._last = 0.0

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60}m{s % 60:02d}s"

    def maybe(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            print(f"[{self.label}] {self.elapsed()} {text}", file=self.stream, flush=True)
