"""Kconfig fragments as data: parse, merge, and verify against a final .config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
# A comment line "# harness: optional ..." right above an option: a tree
# whose Kconfig lacks the option (the series adds it, and a prefix of the
# series or the unpatched baseline is being built) may leave it out of the
# .config; where the .config has it at all, it must have the value asked.
_OPTIONAL = re.compile(r"^#\s*harness:\s*optional\b")


@dataclass(frozen=True)
class Entry:
    name: str
    value: str  # "y", "m", "n", a number or a quoted string
    origin: str = ""
    optional: bool = False  # "# harness: optional" above it (see _OPTIONAL)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


def parse(text: str, origin: str = "") -> dict[str, Entry]:
    """Parse .config / fragment text. `# CONFIG_X is not set` means n."""
    entries: dict[str, Entry] = {}
    optional = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            optional = False
            continue
        m = _UNSET.match(line)
        if m:
            entries[m.group(1)] = Entry(m.group(1), "n", f"{origin}:{lineno}", optional)
            optional = False
            continue
        if line.startswith("#"):
            optional = optional or bool(_OPTIONAL.match(line))
            continue
        m = _SET.match(line)
        if not m:
            raise HarnessError(f"{origin}:{lineno}: not a Kconfig line: {raw!r}")
        entries[m.group(1)] = Entry(m.group(1), m.group(2), f"{origin}:{lineno}", optional)
        optional = False
    return entries


def header_comment(text: str) -> str:
    """The leading comment block of a fragment (its reason to exist)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") and not _UNSET.match(line):
            out.append(line.lstrip("# ").rstrip())
        else:
            break
    return " ".join(x for x in out if x)


def load_fragments(paths: list[Path]) -> dict[str, Entry]:
    """Merge fragments in order (later wins); each must have a header comment."""
    merged: dict[str, Entry] = {}
    for p in paths:
        text = p.read_text()
        if not header_comment(text):
            raise HarnessError(
                f"{p}: a config fragment must start with a comment saying why it exists"
            )
        merged.update(parse(text, origin=p.name))
    return merged


def mismatches(requested: dict[str, Entry], final: dict[str, Entry]) -> list[tuple[Entry, str]]:
    """Requested entries the final config does not honour: (entry, actual)."""
    bad = []
    for name, want in requested.items():
        got = final.get(name)
        if got is None and want.optional:
            continue  # not in this tree's Kconfig (or its dependencies are off)
        actual = got.value if got else "n"  # absent == unset == n
        if want.value == "n":
            if actual not in ("n", ""):
                bad.append((want, actual))
        elif actual != want.value:
            bad.append((want, "(not set)" if got is None or actual == "n" else actual))
    return bad


def verify(requested: dict[str, Entry], config: Path) -> None:
    bad = mismatches(requested, parse(config.read_text(), origin=str(config)))
    if bad:
        lines = [f"  {e.name}: asked {e.value} ({e.origin}), got {actual}" for e, actual in bad]
        raise HarnessError(
            f"{len(bad)} option(s) requested by kernel-config/ were dropped by olddefconfig:\n"
            + "\n".join(lines),
            hint="an unmet 'depends on' usually explains it: search the option in the "
            "tree's Kconfig files and add what it depends on to a fragment",
        )
