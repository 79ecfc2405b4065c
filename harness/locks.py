"""Locks on a kernel tree and on build directories.

Two harness runs on one tree corrupt each other: one pops the series while
the other builds from it, or both push at once. Two runs in one build
directory race in make. Whoever first changes or builds from a tree, or
builds in a build directory, holds an exclusive flock(2) on it until the
process exits; a second run waits, saying who holds it, up to
MEMCG_BPF_LOCK_TIMEOUT seconds (default 3 hours), then fails.

The lock files live under the cache (locks/<hash of the path>.lock), not
in the user's tree. A harness process that starts another one for the same
work (`harness run` starts the pytest suites) passes its locks down in
MEMCG_BPF_LOCKS_HELD: the child relies on its parent's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness import paths
from harness.errors import HarnessError

ENV = "MEMCG_BPF_LOCKS_HELD"
_held: dict[str, int] = {}


def _key(target: Path) -> str:
    return str(Path(target).resolve())


def lock_file(target: Path) -> Path:
    d = paths.cache_root() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{paths.short_hash(_key(target))}.lock"


def inherited() -> set[str]:
    return {x for x in os.environ.get(ENV, "").split(os.pathsep) if x}


def held_env() -> dict[str, str]:
    """The environment entry that hands this process's locks to a child."""
    return {ENV: os.pathsep.join(sorted(set(_held) | inherited()))}


def hold(target: Path, what: str, timeout: float | None = None) -> None:
    """Hold the exclusive lock on `target` (a tree or a build directory)
    until this process exits; wait for another holder, up to `timeout`."""
    key = _key(target)
    if key in _held or key in inherited():
        return
    if timeout is None:
        timeout = float(os.environ.get("MEMCG_BPF_LOCK_TIMEOUT", 3 * 3600))
    lf = lock_file(target)
    fd = os.open(lf, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lf.read_text(errors="replace").strip() or "another process"
        print(f"waiting for the {what} {target}: held by {holder} (lock {lf})",
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise HarnessError(
                        f"the {what} {target} is in use by {holder} (waited {timeout:.0f} s)",
                        hint="wait for that run to end, or stop it; two runs on one tree "
                        "or build directory corrupt each other") from None
                time.sleep(0.5)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n".encode())
    _held[key] = fd


@contextlib.contextmanager
def scoped(target: Path, what: str, timeout: float | None = None) -> Iterator[None]:
    """The exclusive lock on `target` for a `with` block only: for creating
    a shared cache entry (the build root, an unpacked tree, downloads), so
    that two runs on a cold cache do not destroy each other's work in
    progress. The creator re-checks, inside the block, whether another run
    finished it meanwhile. A lock this process already holds (hold()) is
    not taken again."""
    key = _key(target)
    if key in _held or key in inherited():
        yield
        return
    hold(target, what, timeout)
    try:
        yield
    finally:
        fd = _held.pop(key)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def release_all() -> None:
    """For tests: give every lock back."""
    for fd in _held.values():
        os.close(fd)
    _held.clear()
