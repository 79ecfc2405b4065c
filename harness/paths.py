"""Where the harness keeps caches (outside the repository) and reports."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """~/.cache/memcg-bpf, or $MEMCG_BPF_CACHE; created on demand."""
    env = os.environ.get("MEMCG_BPF_CACHE")
    if env:
        root = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "memcg-bpf"
    root.mkdir(parents=True, exist_ok=True)
    return root


def invocation_out(base: Path, verb: str) -> Path:
    """A fresh directory for one invocation under `base` (VERB-DATE-TIME,
    as tuxmake keeps each build's outputs), and `base/latest` pointing at
    it: a run never mixes its records with an earlier one's."""
    import time
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = base / f"{verb}-{stamp}"
    n = 1
    while True:
        try:
            d.mkdir()
            break
        except FileExistsError:
            n += 1
            d = base / f"{verb}-{stamp}-{n}"
    latest = base / "latest"
    tmp = base / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(d.name)
    os.replace(tmp, latest)  # atomic: a reader sees the old or the new one
    return d


def default_out() -> Path:
    """./out of the directory the harness is run from (as make's O= and
    tuxmake's outputs are), or $MEMCG_BPF_OUT; absolute."""
    return Path(os.environ.get("MEMCG_BPF_OUT", "out")).resolve()


def short_hash(*parts: str | bytes, n: int = 12) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:n]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generated_is_current(path: Path, text: str, regenerate: str) -> bool:
    """Whether the generated file `path` holds `text` (a --check of
    docs/cli.md or selftests/results/MANIFEST.md); when not, says on stderr
    which command writes it."""
    if path.exists() and path.read_text() == text:
        return True
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path} is out of "
          f"date: run `{regenerate}`", file=sys.stderr)
    return False
