"""Find kernel splats (oops, BUG, WARNING, KASAN, UBSAN, lockdep, RCU stalls,
soft lockups, hung tasks, panics) in a console log. Pure functions. Only
the kernel's lines count: not the host's before the kernel's banner, and
not user space's once the kernel's lines carry printk timestamps.

The patterns follow BPF CI's SPLAT_DENYLIST (libbpf/ci check-kernel-splats.sh)
plus the lockdep/RCU/hung-task wordings of Linux 7.x.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A console line may start with "[    1.234567]" (and "[ T123]" with
# CONFIG_PRINTK_CALLER); strip those before matching.
_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)*")

_BANNER = re.compile(r"^(?:\[[^\]]*\]\s*)*Linux version \d")
# printk's timestamp ("[    5.797655] "): the harness boots with printk.time=1
_KTIME = re.compile(r"^\[\s*\d+\.\d+\]")

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("kasan", re.compile(r"^BUG: KASAN: ")),
    ("ubsan", re.compile(r"^UBSAN: ")),
    ("lockdep", re.compile(r"^WARNING: (possible (recursive|circular) locking|"
                           r"inconsistent lock state|possible irq lock inversion|"
                           r"bad unlock balance|held lock freed|lock held when returning|"
                           r".*locking dependency)")),
    ("rcu", re.compile(r"^WARNING: suspicious RCU usage")),
    ("rcu-stall", re.compile(r"^(rcu: )?INFO: [_a-z]+ (self-)?detected stalls?|"
                             r"^rcu: INFO: .*stall")),
    ("soft-lockup", re.compile(r"^watchdog: (BUG: )?(soft lockup|hard LOCKUP)")),
    ("hung-task", re.compile(r"^INFO: task .* blocked for more than \d+ seconds")),
    ("bug", re.compile(r"^(kernel BUG at |BUG: )")),
    ("oops", re.compile(r"^(Oops|Oops: |general protection fault|"
                        r"Unable to handle kernel)")),
    ("warning", re.compile(r"^WARNING: ")),
    ("panic", re.compile(r"^Kernel panic - not syncing")),
]


@dataclass
class Splat:
    kind: str
    line: int  # 1-based line number in the log
    text: str  # the matching line
    excerpt: str  # a few lines before, up to ~25 after

    def headline(self) -> str:
        return f"{self.kind} at console line {self.line}: {self.text}"


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line, count=1).strip()


def classify(line: str) -> str | None:
    text = strip_prefix(line)
    for kind, pat in PATTERNS:
        if pat.search(text):
            return kind
    return None


def scan(log: str, context_after: int = 25) -> list[Splat]:
    """Every splat in the log, in order, each with an excerpt that runs to
    the report's end marker, the next report, or `context_after` lines."""
    lines = log.splitlines()
    found: list[Splat] = []
    # What comes before the kernel's banner is the host's (vng, QEMU: e.g.
    # "WARNING: Image format was not specified" for a raw disk), not a splat.
    covered_until = next((i - 1 for i, ln in enumerate(lines) if _BANNER.search(ln)), -1)
    # Once the kernel's lines carry printk's timestamp (printk.time=1 takes
    # effect early in the boot, before any user space runs), a line without
    # one is the guest's user space writing to the console (the command's
    # own "WARNING: ..."), not the kernel.
    stamped = False
    for i, line in enumerate(lines):
        if i <= covered_until:
            continue
        if _KTIME.match(line):
            stamped = True
        elif stamped:
            continue
        kind = classify(line)
        if not kind:
            continue
        end = min(len(lines), i + context_after + 1)
        # the excerpt ends at the report's end marker or where the next
        # report starts
        for j in range(i + 1, end):
            if "---[ end trace" in lines[j] or "---[ end Kernel panic" in lines[j]:
                end = j + 1
                break
            if classify(lines[j]):
                end = j
                break
        excerpt = "\n".join(lines[max(0, i - 2):end])
        found.append(Splat(kind=kind, line=i + 1, text=strip_prefix(line), excerpt=excerpt))
        covered_until = end - 1
    return found
