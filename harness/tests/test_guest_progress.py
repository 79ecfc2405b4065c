"""One progress line per guest test (issue 27, item 9): the guest's
selftests.py prints "test: SUITE NAME STATUS (+Ns)" as each result comes,
from test_progs' result lines and test_memcontrol's TAP, and the host
shows those lines as they arrive (harness/vm.py, PROGRESS)."""

import shlex
import sys
import time
from pathlib import Path

import pytest

from harness import vm

# the guest scripts import their siblings (disk) as top-level modules
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guest"))
from harness.guest import selftests as guest  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def test_lines_of_test_progs_and_tap() -> None:
    p = guest.progress_line
    assert p("test_progs", "#247/13  memcg_ops/worker_asks:FAIL\n", 1.25) == \
        "test: test_progs memcg_ops/worker_asks FAIL (+1.2s)"
    assert p("test_progs", "#247     memcg_ops:OK\n", 0) == "test: test_progs memcg_ops OK (+0.0s)"
    assert p("test_progs", "#12/3 cgroup_struct_ops/attach:SKIP\n", 0) == \
        "test: test_progs cgroup_struct_ops/attach SKIP (+0.0s)"
    assert p("m", "ok 3 test_memcg_min\n", 0) == "test: m test_memcg_min OK (+0.0s)"
    assert p("m", "not ok 4 test_memcg_low\n", 0) == "test: m test_memcg_low FAIL (+0.0s)"
    assert p("m", "ok 10 # SKIP test_memcg_swap_max_peak\n", 0) == \
        "test: m test_memcg_swap_max_peak SKIP (+0.0s)"
    # the asserts inside a test are not results
    assert p("test_progs", "test_worker_asks:FAIL:only by the worker unexpected\n", 0) is None
    assert p("test_progs", "serial_test_memcg_ops:PASS:setup 0 nsec\n", 0) is None
    assert p("m", "TAP version 13\n", 0) is None
    assert p("m", "1..16\n", 0) is None


def run_cat(tmp_path: Path, data: str, suite: str) -> tuple[dict[str, object], list[str], str]:
    log = tmp_path / "out.log"
    argv = ["sh", "-c", f"cat {shlex.quote(str(DATA / data))}"]
    r = guest.run(argv, log, str(tmp_path), 30, suite)
    return r, log.read_text().splitlines(), (DATA / data).read_text()


def test_a_real_failing_test_progs_log_gives_each_result_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A kept test_progs output (the inline-ask mutation's): its failures
    come twice (once more under "All error logs:"), the progress once."""
    r, lines, text = run_cat(tmp_path, "guest-progress-test_progs.log", "test_progs")
    assert r["rc"] == 0
    assert "\n".join(lines) + "\n" == text  # the log keeps every line
    shown = [ln.split(" (+")[0] for ln in capsys.readouterr().out.splitlines()]
    assert shown == ["test: test_progs memcg_ops/worker_asks FAIL",
                     "test: test_progs memcg_ops FAIL"]


def test_a_real_test_memcontrol_log(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    run_cat(tmp_path, "guest-progress-test_memcontrol.log", "test_memcontrol")
    shown = [ln.split(" (+")[0] for ln in capsys.readouterr().out.splitlines()]
    assert len(shown) == 16
    assert shown[3] == "test: test_memcontrol test_memcg_low FAIL"
    assert shown[9] == "test: test_memcontrol test_memcg_swap_max_peak SKIP"
    assert sum(s.endswith(" OK") for s in shown) == 14


def test_lines_come_as_the_tests_end(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Each line is printed when its test ends, not when the suite does:
    the second result comes 0.5 s after the first, and says so."""
    script = "echo '#1 a:OK'; sleep 0.5; echo '#2 b:OK'"
    guest.run(["sh", "-c", script], tmp_path / "log", str(tmp_path), 30, "s")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("test: s a OK (+")
    assert out[1].startswith("test: s b OK (+")
    assert float(out[1].split("(+")[1].rstrip("s)")) >= 0.4


def test_a_hung_suite_is_killed_with_its_children(tmp_path: Path) -> None:
    """The timeout kills the suite's process group: a child still holding
    the output pipe does not keep the run waiting."""
    t0 = time.monotonic()
    r = guest.run(["sh", "-c", "echo '#1 a:OK'; sleep 60 & sleep 60"],
                  tmp_path / "log", str(tmp_path), 1, "s")
    assert time.monotonic() - t0 < 20
    assert r["rc"] is None
    assert "HARNESS: killed after 1s" in (tmp_path / "log").read_text()


def test_the_host_shows_the_progress_lines() -> None:
    assert guest.progress_line("s", "#1 a:OK", 0) is not None
    line = guest.progress_line("s", "#1 a:OK", 0)
    assert line is not None and line.startswith(vm.PROGRESS)
