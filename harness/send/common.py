"""send's shared pieces: constants, git helpers, and the Runner that logs
every command of a send run."""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import HarnessError
from harness.proc import Progress, run_logged
from harness.record import Stage, StageRecord

B4_VERSION = "0.15.2"


B4_PIN = f"b4=={B4_VERSION}"


BRANCH = "memcg-bpf/send"


BASE_BRANCH = "base"  # the base commit's branch in a repository made from the Debian tree


PATCHES = paths.REPO / "patches"


COVER = PATCHES / "cover-letter.txt"


MAGIC_MARKER = "--- b4-submit-tracking ---"  # b4's cover-letter commit


# git on a kernel tree (a full commit of 90k files takes minutes on a slow disk)
GIT_TIMEOUT_S = 1800


# The base commit of a repository made from the Debian tree: fixed author and
# date, so that the same tree always gives the same commit (and base-commit:).
BASE_IDENT = {"GIT_AUTHOR_NAME": "memcg-bpf harness", "GIT_AUTHOR_EMAIL": "memcg-bpf@example.org",
              "GIT_COMMITTER_NAME": "memcg-bpf harness",
              "GIT_COMMITTER_EMAIL": "memcg-bpf@example.org",
              "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
              "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


_PATCH_NO = re.compile(r"\[[^\]]*\bPATCH\b[^\]]*?\b(\d+)/(\d+)\]")


_BASE_COMMIT = re.compile(r"^base-commit: ([0-9a-f]{7,64})\s*$", re.M)


_CHECK_SUMMARY = re.compile(r"Success: (\d+), Warning: (\d+), Error: (\d+)")


def git(repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                       env=env, input=input, timeout=GIT_TIMEOUT_S)
    if check and r.returncode != 0:
        raise HarnessError(f"git {' '.join(args)} failed in {repo}:\n{r.stderr.strip()}")
    return r.stdout


def _git_ok(repo: Path, *args: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          timeout=GIT_TIMEOUT_S).returncode == 0


def _git_path(repo: Path, name: str) -> Path:
    p = Path(git(repo, "rev-parse", "--git-path", name).strip())
    return p if p.is_absolute() else repo / p


def _config_env(env: dict[str, str], pairs: dict[str, str]) -> dict[str, str]:
    """env plus git config settings of command-line strength (GIT_CONFIG_COUNT)."""
    env = dict(env)
    n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    for key, value in pairs.items():
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
        n += 1
    env["GIT_CONFIG_COUNT"] = str(n)
    return env


@contextmanager
def _ticking(prog: Progress, text: str, every: float = 15.0) -> Iterator[None]:
    """Print `text` with the elapsed time every `every` s while a silent command runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            prog.maybe(text, force=True)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


@dataclass
class Runner:
    """Runs the steps' commands: logged, timed, and listed for the report."""
    log: Path
    env: dict[str, str]
    prog: Progress = field(default_factory=lambda: Progress("send"))
    commands: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    out: Path | None = None  # where each step's stage record goes (send-STEP.json)
    records: list[StageRecord] = field(default_factory=list)

    def run(self, argv: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None,
            timeout: float = 1800, what: str = "",
            on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
        self.commands.append(f"(cd {cwd} && {shlex.join(str(a) for a in argv)})")
        start = self.log.stat().st_size if self.log.exists() else 0
        r = run_logged(argv, self.log, cwd=cwd, env=env or self.env, timeout=timeout,
                       append=True, on_line=on_line)
        with open(self.log, "rb") as f:
            f.seek(start)
            out = f.read().decode(errors="replace")
        out = out.split("\n", 1)[1] if "\n" in out else ""  # drop the "$ argv" line
        if r.timed_out:
            raise HarnessError(f"{what or argv[0]} timed out after {timeout:.0f}s",
                               log=str(self.log))
        return r.returncode, _ANSI.sub("", out)

    def must(self, argv: Sequence[str], cwd: Path, what: str, **kw: Any) -> str:
        rc, out = self.run(argv, cwd, what=what, **kw)
        if rc != 0:
            raise HarnessError(f"{what} failed (rc {rc}):\n{out.strip()[-2000:]}",
                               log=str(self.log))
        return out

    @contextmanager
    def step(self, name: str, text: str) -> Iterator[StageRecord]:
        """A step of send: timed, and a stage record of its own (PASS, or
        ERROR with its message), as every verb's stages have."""
        self.prog.maybe(text, force=True)
        t0 = time.monotonic()
        st = Stage(f"send-{name.replace('_', '-')}", self.out or self.log.parent)
        self.records.append(st.record)
        st.record.summary = text
        st.record.log = str(self.log)
        try:
            with st as rec:
                yield rec
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)
