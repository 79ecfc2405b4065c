"""send: the sender's git identity (what b4 signs and sends as)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import HarnessError
from harness.send.common import GIT_TIMEOUT_S

_IDENT_HINT = ('git config --global user.name "Your Name" && '
               'git config --global user.email you@example.org  (the sender signs off '
               'every patch: the harness never invents an identity)')


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def signoff(self) -> str:
        return f"Signed-off-by: {self}"

    def committer_env(self) -> dict[str, str]:
        return {"GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


def _git_config(key: str, cwd: Path | None, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True,
                       text=True, env=env, timeout=GIT_TIMEOUT_S)
    return r.stdout.strip() if r.returncode == 0 else ""


def identity(cwd: Path | None = None, env: dict[str, str] | None = None) -> Identity:
    """The sender, resolved as b4 does: git config user.name/user.email (of
    the repository at `cwd`, else global and system), then GIT_COMMITTER_*,
    GIT_AUTHOR_* (and EMAIL); an error naming the missing setting otherwise."""
    env = dict(os.environ if env is None else env)
    where = cwd if cwd is not None else paths.cache_root()  # outside any repository
    name = (_git_config("user.name", where, env) or env.get("GIT_COMMITTER_NAME", "")
            or env.get("GIT_AUTHOR_NAME", "")).strip()
    mail = (_git_config("user.email", where, env) or env.get("GIT_COMMITTER_EMAIL", "")
            or env.get("GIT_AUTHOR_EMAIL", "") or env.get("EMAIL", "")).strip().strip("<>")
    missing = [k for k, v in (("user.name", name), ("user.email", mail)) if not v]
    if missing:
        raise HarnessError(
            f"no git identity for the Signed-off-by: {' and '.join(missing)} not set",
            hint=_IDENT_HINT)
    if "@" not in mail or any(c in name + mail for c in "<>\n"):
        raise HarnessError(f"git identity {name!r} <{mail}> is not a usable name/address",
                           hint=_IDENT_HINT)
    return Identity(name, mail)
