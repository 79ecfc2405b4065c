#!/usr/bin/env python3
"""Runs in the guest: the userspace agent that the throttling experiment
compares the BPF policy with (harness/guest/experiment.py, arm "agent").

It is what an operator could run today without the series: a PSI trigger
on the high-priority cgroup's memory.pressure (Documentation/accounting/
psi.rst), poll() on it, and on an event write a low memory.high to the
low-priority cgroup(s); once no event came for --release-s, write "max"
back (hysteresis: a PSI trigger fires at most once per window, so the
release waits for at least two windows without one).

  psi_agent.py PRESSURE TARGET... [--trigger "some 20000 500000"]
               [--throttle-to 0] [--release-s 1.0]

PRESSURE is high's memory.pressure; each TARGET a memory.high file. The
default trigger is the smallest window PSI allows (500 ms) and a stall of
20 ms in it (4 %): the most reactive setting that does not fire on the
stalls of an unloaded cgroup. Each action is printed as a JSON line with
its CLOCK_MONOTONIC time: {"t": ..., "action": "throttle"|"release"|
"event"|...}. For "throttle" and "release", "t" is when the agent decided
(poll() returned with the event, or without one once --release-s had
passed), as the sample's times are its BPF program's decisions, and
"write_s" how long its memory.high writes then took (a blocking write
reclaims down to the new limit). It runs until SIGTERM or SIGINT, and
then releases.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable


def log(action: str, **kw: Any) -> None:
    print(json.dumps({"t": time.monotonic(), "action": action} | kw), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pressure")
    ap.add_argument("targets", nargs="+")
    ap.add_argument("--trigger", default="some 20000 500000")
    ap.add_argument("--throttle-to", default="0")
    ap.add_argument("--release-s", type=float, default=1.0)
    args = ap.parse_args()

    fd = os.open(args.pressure, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, args.trigger.encode() + b"\0")
    poller = select.poll()
    poller.register(fd, select.POLLPRI)
    stop: list[int] = []

    def interrupt(*_: object) -> None:  # poll() is retried after a handler that returns
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)

    def write_all(value: str) -> None:
        for t in args.targets:
            with open(t, "w") as f:
                f.write(value)

    log("armed", trigger=args.trigger, throttle_to=args.throttle_to,
        release_s=args.release_s)
    try:
        loop(poller, args, write_all, stop)
    except KeyboardInterrupt:
        pass
    finally:  # never leave the targets throttled
        write_all("max")
        log("exit")
    return 0


def loop(poller: select.poll, args: argparse.Namespace, write_all: Callable[[str], None],
         stop: list[int]) -> None:
    throttled, last_event = False, 0.0
    while not stop:
        timeout: float | None = None
        if throttled:
            timeout = max(0.0, last_event + args.release_s - time.monotonic())
        try:
            ev = poller.poll(None if timeout is None else timeout * 1000)
        except InterruptedError:
            continue
        now = time.monotonic()
        for _, mask in ev:
            if mask & select.POLLERR:
                log("error", reason="the cgroup went away")
                stop.append(1)
            elif mask & select.POLLPRI:
                last_event = now
                if not throttled:
                    write_all(args.throttle_to)
                    throttled = True
                    log("throttle", t=now, write_s=round(time.monotonic() - now, 6))
                else:
                    log("event")
        if throttled and not ev and now >= last_event + args.release_s:
            write_all("max")
            throttled = False
            log("release", t=now, write_s=round(time.monotonic() - now, 6))


if __name__ == "__main__":
    sys.exit(main())
