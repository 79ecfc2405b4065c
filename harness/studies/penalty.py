"""The memory.high throttling penalty, computed as mm/memcontrol.c does.

`harness penalty` prints the table that the commit "mm:
memcontrol: apply memcg_nr_pages_over_high to memory.high" carries: the
sleep a task pays per return to user space when a memcg_bpf_ops episode
starts with N pages over the usage and reclaim makes no progress.

The arithmetic is the kernel's, integer for integer (calculate_overage(),
calculate_high_delay(), the clamp of __mem_cgroup_handle_over_high() and
its "not worth sleeping" cut-off), for a 64-bit kernel with 4 KiB pages,
with the series' patch 7 (mainline's overflowing formula with fixed=False).
"""
from __future__ import annotations

PAGE_SIZE = 4096
MEMCG_CHARGE_BATCH = 64
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
U64 = (1 << 64) - 1


def calculate_overage(usage: int, high: int) -> int:
    """mm/memcontrol.c calculate_overage(): (usage - high) / high in
    fixed point, 0 when usage <= high; a high of 0 counts as 1 page."""
    if usage <= high:
        return 0
    high = max(high, 1)
    return ((usage - high) << MEMCG_DELAY_PRECISION_SHIFT) // high


MEMCG_MAX_OVERAGE = 1 << 24  # the series' patch 7


def calculate_high_delay(max_overage: int, nr_pages: int, hz: int, *, fixed: bool = True,
                         long_bits: int = 64) -> int:
    """mm/memcontrol.c calculate_high_delay(), in jiffies: with the series'
    patch 7 (`fixed`), the overage clamped at MEMCG_MAX_OVERAGE, the
    arithmetic in u64 and the result at most the 2 s clamp; without it, as
    mainline has it: the square wraps at 64 bits, and penalty_jiffies, an
    unsigned long of `long_bits`, truncates it before the shifts."""
    if not max_overage:
        return 0
    if fixed:
        max_overage = min(max_overage, MEMCG_MAX_OVERAGE)
        penalty = max_overage * max_overage * hz
        penalty >>= MEMCG_DELAY_PRECISION_SHIFT + MEMCG_DELAY_SCALING_SHIFT
        return min(penalty * nr_pages // MEMCG_CHARGE_BATCH, 2 * hz)
    ulong = (1 << long_bits) - 1
    penalty = (max_overage * max_overage * hz) & U64 & ulong
    penalty >>= MEMCG_DELAY_PRECISION_SHIFT
    penalty >>= MEMCG_DELAY_SCALING_SHIFT
    return (penalty * nr_pages & ulong) // MEMCG_CHARGE_BATCH


def sleep_jiffies(usage: int, high: int, nr_pages: int, hz: int) -> int:
    """What __mem_cgroup_handle_over_high() sleeps once reclaim gives up:
    clamped to 2 s, and 0 up to HZ/100 ("not even worth doing")."""
    j = min(calculate_high_delay(calculate_overage(usage, high), nr_pages, hz), 2 * hz)
    return 0 if j <= hz // 100 else j


def jiffies_ms(j: int, hz: int) -> int:
    return j * 1000 // hz


def episode_sleep_ms(usage: int, n: int, hz: int, nr_pages: int = MEMCG_CHARGE_BATCH) -> int:
    """An episode that starts at `usage` pages with N = `n`: its memory.high
    is usage - n (1 page if n >= usage), and a task that charged `nr_pages`
    since its last return to user sleeps this long if nothing is reclaimed."""
    high = usage - n if n < usage else 1
    return jiffies_ms(sleep_jiffies(usage, high, nr_pages, hz), hz)


def parse_size(s: str) -> int:
    """'100M', '1G', '4096' (pages when there is no suffix) -> pages."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1:].upper() in units:
        return int(float(s[:-1]) * units[s[-1].upper()]) // PAGE_SIZE
    return int(s)


def table(usages: list[str], ns: list[str], hzs: list[int],
          nr_pages: int = MEMCG_CHARGE_BATCH) -> str:
    head = "| usage | N (pages) | " + " | ".join(f"HZ={hz}" for hz in hzs) + " |"
    rows = [head, "|" + "---|" * (2 + len(hzs))]
    for u in usages:
        for n in ns:
            pages = parse_size(n)
            cells = [f"{episode_sleep_ms(parse_size(u), pages, hz, nr_pages)} ms" for hz in hzs]
            rows.append(f"| {u} | {pages} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
