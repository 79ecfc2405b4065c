"""harness.studies.penalty against values worked out by hand."""
import pytest

from harness.studies import penalty as pen

MB = 256  # pages per MiB


def test_kernel_comment_table() -> None:
    # mm/memcontrol.c's own table, "with a high of 100 megabytes", HZ=1000:
    # 101M: overage = (256 << 20) // 25600 = 10485;
    # 10485**2 * 1000 >> 34 = 109935225000 >> 34 = 6 jiffies = 6 ms.
    assert pen.calculate_overage(101 * MB, 100 * MB) == 10485
    assert pen.calculate_high_delay(10485, 64, 1000) == 6
    assert pen.sleep_jiffies(101 * MB, 100 * MB, 64, 1000) == 0  # 6 <= HZ/100: no sleep
    # 110M: overage = (2560 << 20) // 25600 = 104857; 104857**2 * 1000 >> 34 = 639
    assert pen.sleep_jiffies(110 * MB, 100 * MB, 64, 1000) == 639
    # 118M is past the 2 s clamp
    assert pen.sleep_jiffies(118 * MB, 100 * MB, 64, 1000) == 2000


def test_episode_start() -> None:
    # 100 MiB used, N = 1024: high = 25600 - 1024 = 24576 pages;
    # overage = (1024 << 20) // 24576 = 43690;
    # HZ=250: 43690**2 * 250 >> 34 = 477204025000 >> 34 = 27 jiffies = 108 ms
    # HZ=1000: 1908816100000 >> 34 = 111 jiffies = 111 ms
    assert pen.calculate_overage(100 * MB, 100 * MB - 1024) == 43690
    assert pen.episode_sleep_ms(100 * MB, 1024, 250) == 108
    assert pen.episode_sleep_ms(100 * MB, 1024, 1000) == 111
    # 1 GiB used, N = 1024: overage = (1024 << 20) // 261120 = 4112;
    # 4112**2 * 1000 >> 34 = 0: no sleep at all
    assert pen.episode_sleep_ms(1024 * MB, 1024, 1000) == 0


def test_task_share_scales_the_penalty() -> None:
    # a task that charged 4 batches pays 4 times a 1-batch task (before the
    # clamp): 639 * 256 // 64 = 2556
    one = pen.calculate_high_delay(pen.calculate_overage(110 * MB, 100 * MB), 64, 1000)
    four = pen.calculate_high_delay(pen.calculate_overage(110 * MB, 100 * MB), 256, 1000)
    assert (one, four) == (639, 2000)  # 2556 unclamped, mainline's
    assert pen.calculate_high_delay(104857, 256, 1000, fixed=False) == 2556
    # ... and the clamp holds it at 2 s
    assert pen.sleep_jiffies(110 * MB, 100 * MB, 256, 1000) == 2000


def test_n_at_or_above_usage() -> None:
    # N >= usage: high is 1 page, the overage huge, the sleep the clamp
    assert pen.episode_sleep_ms(100 * MB, 100 * MB, 250) == 2000
    assert pen.episode_sleep_ms(100 * MB, 10 * 100 * MB, 1000) == 2000


def test_parse_size_and_table() -> None:
    assert pen.parse_size("100M") == 25600
    assert pen.parse_size("1G") == 262144
    assert pen.parse_size("4096") == 4096
    t = pen.table(["100M"], ["1024"], [250, 1000]).splitlines()
    assert t[0] == "| usage | N (pages) | HZ=250 | HZ=1000 |"
    assert t[2] == "| 100M | 1024 | 108 ms | 111 ms |"


def test_mainline_formula_wraps_and_truncates() -> None:
    """Patch 7's reasons, worked out: with memory.high = 0 (one page), the
    square wraps at 64 bits, so mainline's delay shrinks as the usage grows
    by a page; on a 32-bit kernel it is always 0. Patch 7's is monotonic."""
    # 4097 pages: overage 4096 << 20 = 2**32; 2**64 * 250 wraps to 0
    assert pen.calculate_overage(4097, 0) == 1 << 32
    assert pen.calculate_high_delay(1 << 32, 64, 250, fixed=False) == 0
    assert pen.calculate_high_delay((4095) << 20, 64, 250, fixed=False) > 0
    assert pen.calculate_high_delay(1 << 32, 64, 250) == 500  # the clamp, 2 s
    # 32-bit unsigned long: truncated before >> 34, always 0
    assert pen.calculate_high_delay(104857, 64, 1000, fixed=False, long_bits=32) == 0
    # the fixed formula never shrinks, up to 2**16 pages
    prev = 0
    for usage in range(1, 1 << 16):
        d = min(pen.calculate_high_delay(pen.calculate_overage(usage, 0), 1, 250), 500)
        assert d >= prev, usage
        prev = d


def test_the_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`harness penalty`: the one entry point, the same table."""
    from harness import cli
    assert cli.main(["penalty", "--usage", "100M", "--n", "1024", "--hz", "250"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == pen.table(["100M"], ["1024"], [250], pen.MEMCG_CHARGE_BATCH)
    assert "| 100M | 1024 | 108 ms |" in out
