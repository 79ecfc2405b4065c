"""The README's table of lifetime checks (section "Lifetime checks of the
attach core") recomputed from the kept guest logs in
selftests/results/lifetime/: the test_progs -v logs of
cgroup_struct_ops on the lifetime and the CI kernel, and the logs of the
three mutations (selftests/mutate_kernel.py)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from harness import splat

REPO = Path(__file__).resolve().parents[2]
KEPT = REPO / "selftests" / "results" / "lifetime"
ROUNDS = re.compile(r"test_close_rmdir_race: (\d+) rounds of close\(\) against rmdir")
CALLS = re.compile(r"test_fail_nth: in all: (\d+) calls, (\d+) of them with a failed allocation")


def kept(name: str) -> str:
    return gzip.decompress((KEPT / name).read_bytes()).decode(errors="replace")


def counts(log: str) -> tuple[int, int, int]:
    """(race rounds, fail_nth calls, calls with a failed allocation)."""
    rounds, calls = ROUNDS.search(log), CALLS.search(log)
    assert rounds is not None and calls is not None, log[-2000:]
    return int(rounds.group(1)), int(calls.group(1)), int(calls.group(2))


def readme_row(start: str) -> str:
    rows = [ln for ln in (REPO / "docs" / "series.md").read_text().splitlines()
            if ln.startswith(f"| {start} |")]
    assert len(rows) == 1, (start, rows)
    return rows[0]


def test_the_lifetime_kernel_row() -> None:
    first = kept("lifetime-first.test_progs.log.gz")
    final = kept("lifetime-final.test_progs.log.gz")
    assert counts(first) == (2170, 43, 35) and counts(final) == (1736, 43, 35)
    for log in (first, final):
        assert "#83/11   cgroup_struct_ops/fail_nth:OK" in log
        assert "test_fail_nth:PASS:kmemleak" in log
        assert "cgroup_struct_ops:OK" in log
    row = readme_row("lifetime.config")
    assert "1,736 and 2,170 rounds" in row and "43 calls, 35 with a failed allocation" in row
    assert row.endswith("| 0 |")
    console = kept("lifetime-final.console.log.gz")
    assert "KernelAddressSanitizer initialized" in console and "kmemleak: Kernel memory" in console
    assert not splat.scan(console)


def test_the_ci_kernel_row() -> None:
    log = kept("debug-final.test_progs.log.gz")
    assert counts(log) == (3000, 26, 18)
    row = readme_row("debug.config (CI's)")
    assert "3,000 rounds" in row and "26 calls, 18 with a failed allocation" in row


def test_the_mutations_fail() -> None:
    console = kept("mutation-dealloc-unlocked.console.log.gz")
    found = splat.scan(console)
    assert found and "slab-use-after-free" in str(found[0])
    for frame in ("__wake_up", "cgroup_bpf_lifetime_notify", "cgroup_destroy_locked"):
        assert frame in console
    assert "slab-use-after-free in _raw_spin_lock_irqsave" in readme_row(
        "lifetime.config, mutation `dealloc-unlocked` (the v2 code, window widened by 200 us)")
    purge = kept("mutation-purge-raw-index.test_progs.log.gz")
    assert "unexpected walk: actual 23 != expected 3" in purge
    assert "unexpected query effective count: actual 2 != expected 1" in purge
    assert "cgroup_struct_ops/fail_nth:FAIL" in purge
    update = kept("mutation-update-raw-index.test_progs.log.gz")
    assert "unexpected walk: actual 43 != expected 24" in update
    assert "cgroup_struct_ops/fail_nth:FAIL" in update


def test_the_cover_letter_says_what_the_logs_say() -> None:
    text = " ".join((REPO / "patches" / "cover-letter.txt").read_text().split())
    rounds = sorted(counts(kept(f"lifetime-{n}.test_progs.log.gz"))[0] for n in ("first", "final"))
    assert f"{rounds[0]:,}-{rounds[1]:,} rounds in 60 s" in text
    failed = counts(kept("lifetime-final.test_progs.log.gz"))[2]
    assert f"fails each of {failed} slab allocations" in text


def test_the_verdict_on_the_lifetime_kernel() -> None:
    """docs/series.md's paragraph on patch 15 under KASAN and kmemleak."""
    log = kept("memcg_ops-lifetime.test_progs.log.gz")
    console = kept("memcg_ops-lifetime.console.log.gz")
    assert "KernelAddressSanitizer initialized" in console and "kmemleak: Kernel memory" in console
    assert not splat.scan(console)
    subtests = re.findall(r"#\d+/\d+\s+memcg_ops/(\w+):(\w+)", log)
    assert len(subtests) == 22 and all(st == "OK" for _, st in subtests), subtests
    assert {"verdict_defer", "verdict_slack", "verdict_payer", "verdict_child"} <= \
        {name for name, _ in subtests}
    m = re.search(r"test_verdict_defer: deferred (\d+) times, (\d+) pages; worker paid \d+ "
                  r"times, (\d+) pages; the process reclaimed (\d+) times, stalled (\d+) times",
                  log)
    assert m, log[-2000:]
    deferred, pages, worker, reclaimed, stalled = map(int, m.groups())
    assert reclaimed == stalled == 0
    text = " ".join((REPO / "docs" / "series.md").read_text().split())
    assert (f"`memcg_ops` {len(subtests)}/22, the four `verdict_*` subtests included "
            f"(`verdict_defer`: {deferred} deferrals, {pages:,} pages, the worker paid "
            f"{worker:,} of them and the deferred process reclaimed and stalled 0 times)"
            ) in text
