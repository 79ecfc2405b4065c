"""reqload (harness/guest/memcg_ops_check/reqload.c), S5's latency service,
built and run on the host: requests on a fixed schedule, latency from the
scheduled arrival, so a stall counts for every request it delays."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "guest" / "memcg_ops_check" / "reqload.c"


@pytest.fixture(scope="module")
def reqload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("reqload") / "reqload"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-pthread", str(SRC), "-o", str(exe)],
                   check=True, timeout=120)
    return exe


def run(exe: Path, *args: str, stall_s: float = 0.0) -> dict[str, Any]:
    p = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, text=True)
    if stall_s:
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGSTOP)  # what a 2 s memory.high sleep looks like
        time.sleep(stall_s)
        os.kill(p.pid, signal.SIGCONT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    d: dict[str, Any] = json.loads(out)
    return d


def test_the_schedule_and_the_percentiles(reqload: Path) -> None:
    d = run(reqload, "-t", "2", "-k", "256", "-w", "4", "-r", "50", "-s", "1")
    assert d["requests"] == len(d["lat_ms"]) == 100  # 2 threads x 50/s x 1 s
    lat = sorted(d["lat_ms"])
    assert d["max_ms"] == lat[-1] and d["p50_ms"] == lat[round(0.5 * 99)]
    assert 0 < d["p50_ms"] <= d["p99_ms"] <= d["max_ms"]


def test_a_stall_delays_the_requests_behind_it(reqload: Path) -> None:
    """A 0.5 s stop: the request in flight and those due meanwhile all
    count it (measured from their scheduled arrival), and they are late."""
    d = run(reqload, "-t", "1", "-k", "64", "-r", "100", "-s", "1.5", stall_s=0.5)
    assert d["max_ms"] >= 450
    assert sum(x >= 100 for x in d["lat_ms"]) >= 10  # not just the one in flight
    assert d["late"] >= 10


def test_a_stall_past_the_end_leaves_requests_unserved_and_counted(reqload: Path) -> None:
    """Stopped from 0.3 s to 1.8 s of a 1 s run: it still ends on time
    (no request starts after the end), and each request due meanwhile is
    unserved, its latency the end minus its arrival (a lower bound)."""
    t = time.monotonic()
    d = run(reqload, "-t", "1", "-k", "64", "-r", "100", "-s", "1", stall_s=1.5)
    assert time.monotonic() - t < 2.5
    assert d["requests"] == len(d["lat_ms"]) == 100  # every arrival before the end
    assert 55 <= d["unserved"] <= 75
    # the last ones waited until the end and no longer: 0-10 ms; the oldest ~0.7 s
    assert 0 <= d["lat_ms"][-1] <= 10 and 600 <= max(d["lat_ms"][-d["unserved"]:]) <= 710
    assert d["max_ms"] >= 1400  # the request in flight when it stopped


def test_it_waits_for_go_after_ready(reqload: Path) -> None:
    """-g: "ready" on stderr once the working set is written, then nothing
    until a line on stdin; the run's time counts from the go."""
    p = subprocess.Popen([str(reqload), "-w", "4", "-r", "50", "-s", "0.5", "-g"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stderr is not None and p.stdin is not None
    assert p.stderr.readline() == "ready\n"
    time.sleep(1.0)
    assert p.poll() is None  # still waiting: it would have ended after 0.5 s
    p.stdin.write("go\n")
    p.stdin.close()
    out = p.stdout.read() if p.stdout else ""
    assert p.wait(timeout=30) == 0 and json.loads(out)["requests"] == 25
    # no go at all (stdin closed): it ends, serving nothing
    r = subprocess.run([str(reqload), "-g"], input="", capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and r.stdout == ""


def test_bad_arguments(reqload: Path) -> None:
    r = subprocess.run([str(reqload), "-t", "0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "usage: reqload" in r.stderr
