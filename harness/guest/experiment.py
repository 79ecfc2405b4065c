#!/usr/bin/env python3
"""Runs in the guest: one boot's share of the phased throttling experiment
(harness/studies/experiment.py judges; nothing is judged here).

Cgroups: /sys/fs/cgroup/high (the high-priority side) and
/sys/fs/cgroup/lows/lowN (the low-priority side: one or more cgroups under
one parent, which is what every arm acts on). Every task is a wsload
(harness/guest/memcg_ops_check/wsload.c): random writes over a working set,
progress sampled every 10 ms. High also runs a latency probe (wsload
--probe: a pass over a small hot set every 100 ms, timed).

Scenarios (each a function below; their parameters come from the host):
  s1  static contention: high and the lows run for the whole run.
  s2  high idle but resident: high populates and runs, idles (holding its
      memory) for idle_s, then runs again; the lows run throughout.
  s3  high's working set grows mid-run, from high_mb to grow_mb.
  s4  one high and several lows of different sizes.
  s5  who pays memory.high: a pod-like parent, /sys/fs/cgroup/pod with
      memory.high and memory.max, holds high and the lows. High is a
      latency service (reqload: request threads that map, touch and unmap a
      buffer per request, beside a resident working set); the lows are
      batch wsloads whose growth keeps the pod above its memory.high, so
      that every task charging in it pays the pod's overage.

Arms (how the low side is kept out of high's way; static knobs combine
with "+", e.g. mlow:100M+mhigh:90M, and with one whopays):
  none             nothing;
  mlow:SIZE        memory.low of high = SIZE;
  mhigh:SIZE       memory.high of lows = SIZE;
  agent            harness/guest/psi_agent.py: a PSI trigger on high's
                   memory.pressure writes lows' memory.high;
  oracle           lows frozen (cgroup.freeze) while high is active: the
                   driver knows the phases;
  oracle:evict     the same, and when high becomes active the lows'
                   memory reclaimed (memory.reclaim of all of it): freezing
                   alone does not give high its memory back;
  sample[:PAGES]   the series' sample (samples/bpf/memcg) attached to lows,
                   answering PAGES (default: the over_high parameter);
  reclaim[:MB]     the sample, and on each of its triggers, while it lasts, a
                   memory.reclaim of MB (default 64) of the lows at a time
                   from a thread of this driver: what the kfunc
                   bpf_proactive_reclaim() (bpf-next, 7.4) would do from a
                   bpf_wq, since an episode acts only where the lows charge;
  alone            no policy, high's working set 1 MB (the lows' alone
                   throughput, for s1's target); s5: the service without
                   the lows (its latency alone);
  detach           the sample, detached (SIGTERM) in the middle of high's
                   first active phase (s2: active1; s3: large; s1, s4: the
                   run), the cgroups kept;
  noop             a policy that always answers 0 (negative control);
  always           a policy that always answers --always-pages (negative
                   control: throttles the lows whatever high does);
  sigagent[:nb]    the sample's control: its signal (the same tracepoint) in
                   a userspace agent, memcg_ops_check/sigagent.c, which
                   writes lows' memory.high = usage - over_high pages when
                   a triggered period begins (:nb with O_NONBLOCK) and
                   restores it when the period ends;
  whopays          s5: the sample's memcg --who-pays attached to the pod,
                   whose memcg_high_verdict() lets the service's tasks
                   defer their debts of the pod's memory.high to the lows
                   (within the kernel's slack); with static knobs too,
                   e.g. mlow:100M+whopays.

All tasks start in frozen cgroups and are thawed together. Every run is a
line of OUT/runs.jsonl, written as it ends: its phases with their
CLOCK_MONOTONIC times, the wsload records, the 100 ms cgroup samples, and
the agent's or the policy's log lines with their times.

Usage: experiment.py OUT --tools DIR --disk-serial S --cells FILE [--boot B]
FILE is a JSON list of {"scenario", "arm", "rep", "params": {...}} in the
order to run them (the host shuffles).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # for mypy, which reads the guest's modules as harness.guest's
    from collections.abc import Callable

    from harness.guest.disk import find_disk, mount_ext4, swap_on, zram_on
    from harness.guest.throttle import read_kv, read_pressure
else:  # the guest runs this file from its directory (stdlib only)
    from disk import find_disk, mount_ext4, swap_on, zram_on  # harness/guest/disk.py
    from throttle import read_kv, read_pressure  # harness/guest/throttle.py

CG = Path("/sys/fs/cgroup")
POD = CG / "pod"  # s5's parent; the other scenarios' cgroups are CG's children
HIGH = CG / "high"  # set per run by reset(): under POD in s5
LOWS = CG / "lows"
HERE = Path(__file__).resolve().parent


def write(path: Path, value: str) -> None:
    path.write_text(value)


def read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


class Sampler(threading.Thread):
    """Every `period` s: memory.current, swap, events high, pgscan/pgsteal
    and memory.pressure of high, of the lows' parent and of each low."""

    def __init__(self, cgs: dict[str, Path], period: float = 0.1):
        super().__init__(daemon=True)
        self.cgs, self.period = cgs, period
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            s: dict[str, Any] = {"t": time.monotonic()}
            for name, d in self.cgs.items():
                stat = read_kv(d / "memory.stat")
                s[name] = {"current": read_int(d / "memory.current"),
                           "swap": read_int(d / "memory.swap.current"),
                           "high_events": read_kv(d / "memory.events").get("high", 0),
                           # memory.events counts the subtree's; .local, the cgroup's own
                           "high_events_local": read_kv(d / "memory.events.local").get(
                               "high", 0),
                           "pgscan": stat.get("pgscan", 0),
                           "pgsteal": stat.get("pgsteal", 0),
                           "pressure": read_pressure(d / "memory.pressure")}
            self.samples.append(s)
            self.stop.wait(self.period)


def in_cgroup(cg: Path, argv: list[str], nice: int = 0) -> list[str]:
    """argv, run by a shell that first moves itself into cg (and then
    under nice -n NICE, if given)."""
    return ["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", str(cg / "cgroup.procs"),
            *(["nice", "-n", str(nice)] if nice else []), *argv]


def keep_lines(stream: IO[str], lines: list[tuple[float, str]]) -> threading.Thread:
    """A thread that appends each line of stream, with the CLOCK_MONOTONIC
    time it was read, to lines."""
    def read() -> None:
        for line in stream:
            lines.append((time.monotonic(), line.rstrip("\n")))
    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


class Task:
    """A wsload in a cgroup, commanded on its stdin; nice: its nice value
    (s5's batch lows run at 19, as a batch job would beside a service)."""

    def __init__(self, tools: Path, cg: Path, out: Path, *args: str, nice: int = 0):
        self.out = out
        self.proc = subprocess.Popen(
            in_cgroup(cg, [str(tools / "wsload"), *args, "--out", str(out)], nice),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: list[tuple[float, str]] = []
        assert self.proc.stdout is not None  # stdout=PIPE
        self.reader = keep_lines(self.proc.stdout, self.lines)

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None  # stdin=PIPE
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def wait_line(self, text: str, n: int = 1, timeout: float = 600) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sum(1 for _, x in self.lines if x == text) >= n:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def finish(self) -> dict[str, Any]:
        try:
            self.send("quit")
            assert self.proc.stdin is not None  # stdin=PIPE
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        rc: int | str
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = f"killed: no exit 60 s after quit ({self.proc.wait(timeout=60)})"
        self.reader.join(timeout=10)
        data = json.loads(self.out.read_text()) if self.out.exists() else {}
        return {"rc": rc, "lines": [[t, x] for t, x in self.lines]} | data


class Service:
    """reqload (harness/guest/memcg_ops_check/reqload.c) in a cgroup: s5's
    latency service. It writes its working set, says "ready" (stderr),
    and waits for go(); then it serves for its -s seconds and writes its
    JSON line to `out`."""

    def __init__(self, tools: Path, cg: Path, out: Path, p: dict[str, Any]):
        self.out = out
        with open(out, "w") as f:
            self.proc = subprocess.Popen(
                in_cgroup(cg, [str(tools / "reqload"), "-t", str(p["svc_threads"]),
                               "-k", str(p["svc_req_kb"]), "-w", str(p["svc_ws_mb"]),
                               "-r", str(p["svc_rate"]), "-s", str(p["run_s"]), "-g"]),
                stdin=subprocess.PIPE, stdout=f, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        assert self.proc.stderr is not None  # stderr=PIPE
        self.reader = keep_lines(self.proc.stderr, self.lines)

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if any(x == "ready" for _, x in self.lines):
                return True
            time.sleep(0.02)
        return any(x == "ready" for _, x in self.lines)

    def go(self) -> None:
        assert self.proc.stdin is not None  # stdin=PIPE
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()

    def wait(self, timeout: float) -> bool:
        """Until it exits; False if it did not within timeout."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def finish(self) -> dict[str, Any]:
        rc: int | str
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
            rc = "killed: still running at the run's end"
        else:
            rc = self.proc.returncode
        self.reader.join(timeout=10)
        data: dict[str, Any] = {}
        try:
            data = json.loads(self.out.read_text().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            pass
        return {"rc": rc, "lines": [[t, x] for t, x in self.lines]} | data


class Logged:
    """A helper process (the agent, the sample, a fixed policy) whose lines
    are kept with the CLOCK_MONOTONIC time they were read."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        assert self.proc.stdout is not None  # stdout=PIPE
        self.first = self.proc.stdout.readline()
        self.lines.append((time.monotonic(), self.first.rstrip("\n")))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # stdout=PIPE
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self.on_line(line)

    def on_line(self, line: str) -> None:
        pass

    def stop(self, how: str = "term") -> int:
        self.stopping()
        if self.proc.poll() is None:
            if how == "stdin":
                assert self.proc.stdin is not None  # stdin=PIPE
                self.proc.stdin.close()
            else:
                self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return rc

    def stopping(self) -> None:
        pass

    def record(self) -> dict[str, Any]:
        return {"argv": self.argv, "rc": self.proc.returncode,
                "lines": [[t, x] for t, x in self.lines]}


class Reclaiming(Logged):
    """The sample, and while it is triggered (from its "triggered" line to
    its "released" line), memory.reclaim of `mb` MB of the lows, one after
    the other, from a thread; each write's start, end and result are lines
    of the record ("reclaim ...")."""

    def __init__(self, argv: list[str], mb: int):
        self.mb, self.triggered, self.done = mb, threading.Event(), threading.Event()
        super().__init__(argv)
        self.worker = threading.Thread(target=self._reclaim, daemon=True)
        self.worker.start()

    def on_line(self, line: str) -> None:
        if ": triggered" in line:
            self.triggered.set()
        elif ": released" in line:
            self.triggered.clear()

    def _reclaim(self) -> None:
        while not self.done.is_set():
            if not self.triggered.wait(0.05):
                continue
            t = time.monotonic()
            try:
                write(LOWS / "memory.reclaim", f"{self.mb}M")
                what = "ok"
            except OSError as e:  # EAGAIN: less than asked could be reclaimed
                what = e.strerror or str(e)
            self.lines.append((t, f"reclaim {self.mb}M: {what} in "
                               f"{time.monotonic() - t:.3f} s"))

    def stopping(self) -> None:
        self.done.set()
        self.triggered.clear()
        self.worker.join(timeout=60)


def reset(nlows: int, pod: dict[str, str] | None = None) -> dict[str, Path]:
    """Fresh cgroups, from the same memory state each run. pod: the
    {"memory.high": .., "memory.max": ..} of s5's parent, which then holds
    high and the lows."""
    global HIGH, LOWS
    os.sync()
    write(Path("/proc/sys/vm/drop_caches"), "3")
    for base in (POD, CG):
        for d in [*sorted((base / "lows").glob("low*")), base / "lows", base / "high"]:
            if d.is_dir():
                os.rmdir(d)
    if POD.is_dir():
        os.rmdir(POD)
    base = CG
    if pod is not None:
        POD.mkdir()
        write(POD / "cgroup.subtree_control", "+memory")
        for k, v in pod.items():
            write(POD / k, v)
        base = POD
    HIGH, LOWS = base / "high", base / "lows"
    HIGH.mkdir()
    LOWS.mkdir()
    write(LOWS / "cgroup.subtree_control", "+memory")
    cgs = {"high": HIGH, "lows": LOWS} | ({"pod": POD} if pod is not None else {})
    for i in range(nlows):
        d = LOWS / f"low{i + 1}"
        d.mkdir()
        cgs[f"low{i + 1}"] = d
    for d in (HIGH, LOWS):
        write(d / "cgroup.freeze", "1")
    return cgs


def arm_setup(arm: str, p: dict[str, Any], tools: Path) -> Logged | None:
    if "+" in arm:  # static knobs together, and at most one whopays (the host checks)
        helpers = [h for part in arm.split("+") if (h := arm_setup(part, p, tools))]
        return helpers[0] if helpers else None
    kind, _, value = arm.partition(":")
    if kind == "mlow":
        write(HIGH / "memory.low", value)
    elif kind == "mhigh":
        write(LOWS / "memory.high", value)
    elif kind == "agent":
        return Logged([sys.executable, str(HERE / "psi_agent.py"), str(HIGH / "memory.pressure"),
                       str(LOWS / "memory.high"), "--trigger", p["agent_trigger"],
                       "--throttle-to", p["agent_throttle_to"],
                       "--release-s", str(p["agent_release_s"])])
    elif kind in ("sample", "detach", "reclaim"):
        # sample:PAGES overrides the over_high parameter
        argv = [str(tools / "memcg"), "--window-ms", str(p["window_ms"]), str(LOWS),
                str(HIGH), str(p["threshold"]),
                value if kind == "sample" and value else str(p["over_high"])]
        if kind == "reclaim":
            return Reclaiming(argv, int(value or 64))
        return Logged(argv)
    elif kind == "sigagent":
        return Logged([str(tools / "sigagent"), "--window-ms", str(p["window_ms"]),
                       *(["--nonblock"] if value == "nb" else []), str(LOWS), str(HIGH),
                       str(p["threshold"]), str(p["over_high"])])
    elif kind == "whopays":
        return Logged([str(tools / "memcg"), "--who-pays", str(POD), str(HIGH)])
    elif kind in ("noop", "always"):
        n = 0 if kind == "noop" else p["always_pages"]
        return Logged([str(tools / "memcg_ops_check"), "--hold-answer", str(LOWS), str(n)])
    elif kind not in ("none", "oracle", "alone"):
        raise SystemExit(f"unknown arm {arm!r}")
    return None


class Run:
    """What a scenario function drives: the tasks, the phases, the arm."""

    # set per run, by go()
    helper: Logged | None
    detached: bool
    detach_at: float | None
    helper_rc: int | None

    def __init__(self, cell: dict[str, Any], tools: Path, out: Path):
        self.cell, self.tools, self.out = cell, tools, out
        self.p = cell["params"]
        self.arm = cell["arm"]
        self.phases: list[list[str | float | None]] = []  # [name, t_start, t_end]
        self.marks: list[list[float | str]] = []  # [t, what]
        self.oracle = self.arm.split(":")[0] == "oracle"
        self.evict = self.arm == "oracle:evict"

    def mark(self, what: str) -> None:
        self.marks.append([time.monotonic(), what])

    def evict_lows(self) -> None:
        """memory.reclaim of all the lows have (oracle:evict)."""
        try:
            write(LOWS / "memory.reclaim", str(read_int(LOWS / "memory.current")))
            self.mark("lows evicted")
        except OSError as e:  # EAGAIN: not all of it
            self.mark(f"lows evicted: {e.strerror}")

    def phase(self, name: str, secs: float, high_active: bool) -> None:
        """One phase: the oracle freezes the lows while high is active."""
        t = time.monotonic()
        if self.oracle:
            write(LOWS / "cgroup.freeze", "1" if high_active else "0")
            self.mark("lows frozen" if high_active else "lows thawed")
            if self.evict and high_active:  # and their memory made free, meanwhile
                threading.Thread(target=self.evict_lows, daemon=True).start()
        self.phases.append([name, t, None])
        end = t + secs
        if self.arm == "detach" and self.helper and not self.detached \
                and self.detach_at is not None and self.detach_at < end:
            time.sleep(max(0.0, self.detach_at - time.monotonic()))
            self.mark("detach")
            self.helper_rc = self.helper.stop()
            self.mark("detached")
            self.detached = True
        time.sleep(max(0.0, end - time.monotonic()))
        self.phases[-1][2] = time.monotonic()

    def populate(self, high: Task) -> None:
        """Until high has written its whole working set once."""
        t = time.monotonic()
        ok = high.wait_line("ready", timeout=self.p["populate_cap_s"])
        self.phases.append(["populate", t, time.monotonic()])
        if not ok:
            raise RuntimeError(f"high did not populate in {self.p['populate_cap_s']} s")

    def go(self, scenario: Callable[[Run, Any], None]) -> dict[str, Any]:
        p = self.p
        lows = p["low_mb"] if isinstance(p["low_mb"], list) else [p["low_mb"]]
        s5 = self.cell["scenario"] == "s5"
        if s5 and self.arm == "alone":  # the service alone
            lows = []
        cgs = reset(len(lows), {"memory.high": p["pod_high"], "memory.max": p["pod_max"]}
                    if s5 else None)
        rec: dict[str, Any] = {k: self.cell[k] for k in ("scenario", "arm", "rep")} | {
            "params": p, "boot": self.cell.get("boot", 0), "lows": len(lows)}
        self.helper = arm_setup(self.arm, p, self.tools)
        self.detached, self.detach_at, self.helper_rc = False, None, None
        if self.helper:
            rec["helper_first"] = self.helper.first.strip()
            kind = next(k for x in self.arm.split("+")
                        if (k := x.split(":")[0]) not in ("mlow", "mhigh"))
            ok = {"agent": '"armed"', "sigagent": '"armed"', "sample": "attached",
                  "detach": "attached", "reclaim": "attached", "whopays": "attached",
                  "noop": '"attach_err": 0', "always": '"attach_err": 0'}[kind]
            if ok not in self.helper.first:
                self.helper.stop()
                rec["error"] = f"arm {self.arm} did not start: {self.helper.first!r}"
                return rec | {"helper": self.helper.record()}
        if self.arm == "alone" and not s5:  # high is a 1 MB task: the lows' alone throughput
            p = p | {"high_mb": 1, "grow_mb": 1}
        name = (f"{self.cell['scenario']}-{self.arm.replace(':', '_').replace('+', '_')}-"
                f"{self.cell['rep']}")
        seed = zlib.crc32(f"{name}/{self.cell.get('boot', 0)}".encode()) & 0xFFFF
        high: Task | Service
        probe: Task | None = None
        if s5:
            high = Service(self.tools, HIGH, self.out / f"{name}-svc.json", p)
        else:
            high = Task(self.tools, HIGH, self.out / f"{name}-high.json", "--mb",
                        str(p["high_mb"]), "--max-mb",
                        str(max(p["high_mb"], p.get("grow_mb", 0))), "--seed", str(seed))
            probe = Task(self.tools, HIGH, self.out / f"{name}-probe.json", "--probe",
                         str(p["probe_ms"]), "--mb", str(p["probe_mb"]))
        low = [Task(self.tools, cgs[f"low{i + 1}"], self.out / f"{name}-low{i + 1}.json",
                    "--mb", str(mb), "--seed", str(seed + i + 1), nice=p.get("low_nice", 0))
               for i, mb in enumerate(lows)]
        sampler = Sampler(cgs)
        sampler.start()
        t0 = time.monotonic()
        rec["t0"] = t0
        # high is active from the start in every scenario: the oracle's
        # lows stay frozen until it is not
        # (s5: the lows start once the service is up, in s5())
        for d in (HIGH,) if self.oracle or s5 else (HIGH, LOWS):
            write(d / "cgroup.freeze", "0")
        self.mark("thawed")
        try:
            scenario(self, high)
        except RuntimeError as e:
            rec["error"] = str(e)
        finally:
            # the measurement ends here: undo the arm first, so that no task
            # is throttled while it quits
            rec["end"] = time.monotonic()
            sampler.stop.set()
            sampler.join()
            if self.oracle:
                write(LOWS / "cgroup.freeze", "0")
            if self.helper:
                if self.helper_rc is None:
                    how = "stdin" if self.arm in ("noop", "always") else "term"
                    self.helper_rc = self.helper.stop(how)
                rec["helper"] = self.helper.record()
            write(LOWS / "memory.high", "max")
            if s5:  # the pod's own record: its peak and its events
                rec["pod"] = {"peak": read_int(POD / "memory.peak"),
                              "events": {k: read_kv(d / "memory.events")
                                         for k, d in cgs.items()}}
            tasks = {"high": high.finish()}
            if probe is not None:
                tasks["probe"] = probe.finish()
            tasks |= {f"low{i + 1}": t.finish() for i, t in enumerate(low)}
        for f in self.out.glob(f"{name}-*.json"):
            f.unlink()
        return rec | {"phases": self.phases, "marks": self.marks, "tasks": tasks,
                      "samples": sampler.samples, "wall_s": time.monotonic() - t0}


# Scenarios: each drives high through its phases; the lows run throughout.

def s1(run: Run, high: Any) -> None:
    """Static contention."""
    run.populate(high)
    run.detach_at = time.monotonic() + run.p["run_s"] / 2
    run.phase("contended", run.p["run_s"], True)


def s2(run: Run, high: Any) -> None:
    """High idle but resident, then active again."""
    p = run.p
    run.populate(high)
    run.detach_at = time.monotonic() + p["active_s"] / 2
    run.phase("active1", p["active_s"], True)
    high.send("idle")
    run.phase("idle", p["idle_s"], False)
    high.send("run")
    run.phase("active2", p.get("resume_s", p["active_s"]), True)


def s3(run: Run, high: Any) -> None:
    """High's working set grows mid-run."""
    p = run.p
    run.populate(high)
    run.phase("small", p["active_s"], True)
    high.send(f"mb {p['grow_mb']}")
    run.detach_at = time.monotonic() + p["active_s"] / 2
    run.phase("large", p["active_s"], True)


s4 = s1  # several lows: the same timeline, low_mb is a list


def s5(run: Run, high: Any) -> None:
    """Who pays: the service writes its working set alone (populate); the
    lows start and grow for svc_lead_s (lead); then the service serves for
    run_s while they run (contended). No request starts after run_s, so
    this ends then, but for the requests in flight: at most 4 x run_s +
    60 s."""
    p = run.p
    t = time.monotonic()
    ok = high.wait_ready(p["populate_cap_s"])
    run.phases.append(["populate", t, time.monotonic()])
    if not ok:
        raise RuntimeError(f"the service did not write its working set in "
                           f"{p['populate_cap_s']} s")
    t = time.monotonic()
    write(LOWS / "cgroup.freeze", "0")
    run.mark("lows thawed")
    time.sleep(p["svc_lead_s"])
    run.phases.append(["lead", t, time.monotonic()])
    t = time.monotonic()
    high.go()
    ok = high.wait(4 * p["run_s"] + 60)
    run.phases.append(["contended", t, time.monotonic()])
    if not ok:
        raise RuntimeError(f"the service did not end in {4 * p['run_s'] + 60} s")


SCENARIOS = {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "s5": s5}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--tools", type=Path, required=True)
    ap.add_argument("--disk-serial", required=True)
    ap.add_argument("--swap-mb", type=int, default=2048)
    ap.add_argument("--swap", choices=("disk", "zram", "none"), default="disk")
    ap.add_argument("--cells", type=Path, required=True)
    ap.add_argument("--boot", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mnt, err = mount_ext4(args.disk_serial)
    if mnt:
        err = (zram_on(args.swap_mb) if args.swap == "zram" else
               swap_on(mnt, args.swap_mb) if args.swap == "disk" else "")
    if not mnt or err:
        raise SystemExit(err or "mounting the scratch disk failed")
    write(CG / "cgroup.subtree_control", "+memory")
    env = {"uname": os.uname().release, "nproc": os.cpu_count(),
           "disk": find_disk(args.disk_serial), "swaps": Path("/proc/swaps").read_text(),
           "swappiness": read_int(Path("/proc/sys/vm/swappiness")),
           "thp": Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
           if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists() else None,
           "lru_gen": Path("/sys/kernel/mm/lru_gen/enabled").read_text().strip()
           if Path("/sys/kernel/mm/lru_gen/enabled").exists() else None,
           "meminfo": Path("/proc/meminfo").read_text().splitlines()[:3]}
    (args.out / "env.json").write_text(json.dumps(env))
    cells = json.loads(args.cells.read_text())
    with open(args.out / "runs.jsonl", "a") as f:
        for n, cell in enumerate(cells):
            cell = cell | {"boot": args.boot}
            t = time.monotonic()
            rec = Run(cell, args.tools, args.out).go(SCENARIOS[cell["scenario"]])
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(f"experiment: [{n + 1}/{len(cells)}] {cell['scenario']} {cell['arm']} "
                  f"#{cell['rep']}: {time.monotonic() - t:.1f}s"
                  + (f" ERROR {rec['error']}" if "error" in rec else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
