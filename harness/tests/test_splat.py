from pathlib import Path

from harness import splat


def kinds(text: str) -> list[str]:
    return [s.kind for s in splat.scan(text)]


def test_clean_console_has_no_splat(data: Path) -> None:
    assert splat.scan((data / "console-clean.log").read_text()) == []


def test_warning_with_excerpt(data: Path) -> None:
    found = splat.scan((data / "console-warning.log").read_text())
    assert [s.kind for s in found] == ["warning"]
    s = found[0]
    assert s.line == 3
    assert s.text.startswith("WARNING: CPU: 1 PID: 245 at mm/memcontrol.c:2301")
    assert "Call Trace:" in s.excerpt and "end trace" in s.excerpt
    assert "HARNESS-RC" not in s.excerpt


def test_lockdep(data: Path) -> None:
    assert kinds((data / "console-lockdep.log").read_text()) == ["lockdep"]


def test_rcu_usage_and_stall(data: Path) -> None:
    assert kinds((data / "console-rcu.log").read_text()) == ["rcu", "rcu-stall"]


def test_soft_lockup_and_hung_task(data: Path) -> None:
    assert kinds((data / "console-lockups.log").read_text()) == ["soft-lockup", "hung-task"]


def test_oops_and_panic(data: Path) -> None:
    found = kinds((data / "console-oops.log").read_text())
    assert found == ["bug", "oops", "panic"]


def test_kasan_and_ubsan_reported_separately(data: Path) -> None:
    assert kinds((data / "console-kasan-ubsan.log").read_text()) == ["kasan", "ubsan"]


def test_prefix_stripping() -> None:
    assert splat.strip_prefix("[   1.000000] [    T1] BUG: x") == "BUG: x"
    assert splat.classify("[ 2.0] kernel BUG at mm/memcontrol.c:10!") == "bug"
    assert splat.classify("stress-ng: warn: [1] WARNING: not kernel") is None


def test_host_lines_before_the_banner_are_not_splats() -> None:
    log = ("WARNING: Image format was not specified for 'disk.img' and probing guessed raw.\n"
           "Linux version 7.3.4 (harness@memcg-bpf)\n"
           "random: crng init done\n")
    assert splat.scan(log) == []
    assert splat.scan(log + "WARNING: CPU: 0 PID: 1 at mm/memcontrol.c:1 f+0x1/0x2\n")


def test_user_space_lines_are_not_kernel_splats(data: Path) -> None:
    """A real console (2026-12-07, printk.time=1): the guest command printed
    "WARNING: ..." and "BUG: ..." lines; they carry no printk timestamp,
    while every kernel line after the early boot does. No splat."""
    log = (data / "console-userspace-warning.log").read_text()
    assert "WARNING: this line is the guest command" in log
    assert splat.scan(log) == []


def test_a_kernel_warning_in_a_stamped_console_is_still_found(data: Path) -> None:
    """The same console with a kernel WARNING (timestamped, as the kernel
    prints it) among the guest command's lines: found, with its excerpt."""
    log = (data / "console-userspace-warning.log").read_text().splitlines()
    at = log.index("HARNESS-START") + 1
    warning = (data / "console-warning.log").read_text().splitlines()[1:]
    found = splat.scan("\n".join(log[:at] + warning + log[at:]))
    assert [s.kind for s in found] == ["warning"]
    assert "mm/memcontrol.c" in found[0].text and "end trace" in found[0].excerpt


def test_early_boot_lines_before_the_stamps_count(data: Path) -> None:
    """Before printk.time=1 takes effect, nothing but the kernel writes:
    a splat there is found although it has no timestamp."""
    log = (data / "console-userspace-warning.log").read_text().splitlines()
    found = splat.scan("\n".join(log[:3] + ["BUG: unable to handle page fault"] + log[3:]))
    assert [s.kind for s in found] == ["bug"]


def test_real_consoles_of_the_lifetime_kernel() -> None:
    """Whole captured consoles (selftests/results/lifetime/): the KASAN
    report the v2 dealloc mutation caused is found, and nothing else (the
    virtme-ng-init 'WARNING: failed to run' line is user space); the final
    run's console has no splat."""
    import gzip
    kept = Path(__file__).resolve().parents[2] / "selftests" / "results" / "lifetime"
    bad = gzip.open(kept / "mutation-dealloc-unlocked.console.log.gz", "rt").read()
    found = splat.scan(bad)
    assert [s.kind for s in found] == ["kasan"]
    assert found[0].text.startswith("BUG: KASAN: slab-use-after-free")
    assert "virtme-ng-init: WARNING" in bad
    good = gzip.open(kept / "lifetime-final.console.log.gz", "rt").read()
    assert splat.scan(good) == []
