"""The PSI agent logs when it decided and how long its write took
(issue 28: its onset was logged after its blocking memory.high write, a
different clock from the sample's BPF decision times)."""

import argparse
import json
import select
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guest"))
from harness.guest import psi_agent  # noqa: E402


class Poller:
    """poll(): one PSI event, then nothing until `stop` is set."""

    def __init__(self, stop: list[int]) -> None:
        self.calls = 0
        self.stop = stop

    def poll(self, timeout_ms: float | None = None) -> list[tuple[int, int]]:
        self.calls += 1
        if self.calls == 1:
            return [(3, select.POLLPRI)]
        if self.calls > 2:
            self.stop.append(1)
        if timeout_ms:
            time.sleep(timeout_ms / 1000)
        return []


def test_throttle_and_release_carry_the_decision_time_and_the_write(
        capsys: pytest.CaptureFixture[str]) -> None:
    stop: list[int] = []
    writes: list[tuple[float, str]] = []

    def write_all(value: str) -> None:  # a blocking write that reclaims for 0.3 s
        writes.append((time.monotonic(), value))
        time.sleep(0.3)

    args = argparse.Namespace(release_s=0.1, throttle_to="0")
    psi_agent.loop(Poller(stop), args, write_all, stop)  # type: ignore[arg-type]
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    acts = {d["action"]: d for d in lines}
    assert [w[1] for w in writes] == ["0", "max"]
    thr, rel = acts["throttle"], acts["release"]
    # decided before the write began, not after it returned
    assert thr["t"] <= writes[0][0]
    assert thr["write_s"] >= 0.3
    assert rel["t"] <= writes[1][0] and rel["write_s"] >= 0.3
    assert rel["t"] - thr["t"] >= 0.3  # decided once the throttle's write had returned
