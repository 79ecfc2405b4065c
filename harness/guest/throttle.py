#!/usr/bin/env python3
"""Runs in the guest: the throttling experiment of harness/studies/throttle.py.

Two cgroups, `high` and `low`, each runs the same stress-ng --vm stressor
(fixed method and seed, --metrics --yaml), in scenarios that differ only in
the policy: none, the series' sample (samples/bpf/memcg) attached to low,
memory.low protecting high, a static memory.high on low. Two more scenarios
check the policy's mechanism: `idle_policy` (high holds memory and sleeps
while low runs: the policy must not trigger) and `policy_detach` (the
policy is detached in the middle of a `both_policy` run, with both cgroups
kept). The guest has swap on a file of an ext4 virtio disk. While a
scenario runs, a sampler reads the two cgroups' memory.stat (pgscan,
pgsteal), memory.current, memory.swap.current, memory.events (high) and
memory.pressure every 100 ms, and the sample's lines (its trigger and
release times) are kept with the time they were read. Everything is
written to OUT for the host to judge; nothing is judged here.

Usage: throttle.py OUT --disk-serial PATH --sample PROG --scenarios a,b
                        --repeats N --seconds S --vm-bytes 1200M ...
       throttle.py hold BYTES   (touch BYTES of anonymous memory, say
                                 "held", sleep until killed)
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for mypy, which reads the guest's modules as harness.guest's
    from collections.abc import Callable

    from harness.guest.disk import find_disk, mount_ext4, swap_on
else:  # the guest runs this file from its directory (stdlib only)
    from disk import find_disk, mount_ext4, swap_on  # harness/guest/disk.py

CG = Path("/sys/fs/cgroup")
SIDES = ("high", "low")
MIN_PEAK = 32 << 20  # policy_detach: low's usage "fell" only from a peak this large
RECOVER, RECOVER_MIN = 1.1, 8 << 20  # ... and "recovered" by this factor and this much


def sh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def setup_swap(serial: str, size_mb: int, env: dict[str, Any]) -> str:
    """ext4 on the scratch disk; a swap file on it; the workdir too."""
    mnt, err = mount_ext4(serial)
    if not mnt:
        raise SystemExit(err)
    err = swap_on(mnt, size_mb)
    if err:
        raise SystemExit(err)
    env["swap"] = Path("/proc/swaps").read_text()
    env["disk"] = find_disk(serial)
    return mnt


def read_kv(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def read_pressure(path: Path) -> dict[str, int]:
    """{"some": total_us, "full": total_us} of a memory.pressure file."""
    out = {}
    try:
        for line in path.read_text().splitlines():
            kind, *fields = line.split()
            for f in fields:
                if f.startswith("total="):
                    out[kind] = int(f[6:])
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    def __init__(self, t0: float, period: float = 0.1):
        super().__init__(daemon=True)
        self.period = period
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.t0 = t0

    def run(self) -> None:
        while not self.stop.is_set():
            s: dict[str, Any] = {"t": round(time.monotonic() - self.t0, 3)}
            for side in SIDES:
                d = CG / side
                stat = read_kv(d / "memory.stat")
                ev = read_kv(d / "memory.events")
                s[side] = {"pgscan": stat.get("pgscan", 0), "pgsteal": stat.get("pgsteal", 0),
                           "current": _read_int(d / "memory.current"),
                           "swap": _read_int(d / "memory.swap.current"),
                           "high_events": ev.get("high", 0),
                           "pressure": read_pressure(d / "memory.pressure")}
            self.samples.append(s)
            self.stop.wait(self.period)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def reset_cgroups() -> None:
    """Fresh cgroups, and every run from the same memory state: the page
    cache dropped, and with it the shadow entries the previous run's
    reclaim left (else the next run's first reads of stress-ng's own
    files are refaults, which the sample counts as high stalling)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")
    for side in SIDES:
        d = CG / side
        if d.exists():
            os.rmdir(d)
        d.mkdir()
    for side in SIDES:
        (CG / side / "memory.low").write_text("0")
        (CG / side / "memory.high").write_text("max")


def stressor(side: str, args: argparse.Namespace, yaml: Path, cwd: str,
             seconds: int) -> subprocess.Popen[str]:
    """stress-ng in its own session (killpg stops its workers too)."""
    argv = ["stress-ng", "--vm", str(args.vm_workers), "--vm-bytes", args.vm_bytes, "--vm-keep",
            "--vm-method", args.vm_method, "--seed", str(args.seed), "-t", str(seconds),
            "--metrics", "--yaml", str(yaml)]
    procs = str(CG / side / "cgroup.procs")

    def join() -> None:
        with open(procs, "w") as f:
            f.write("0")

    return subprocess.Popen(argv, cwd=cwd, preexec_fn=join, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(pred: Callable[[], bool], deadline: float, period: float = 0.05) -> bool:
    """Poll pred() until it holds (True) or CLOCK_MONOTONIC passes deadline."""
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(period)
    return True


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def last(sampler: Sampler, side: str, key: str) -> int:
    return sampler.samples[-1][side][key] if sampler.samples else 0


def drive_mechanism(name: str, args: argparse.Namespace, rec: dict[str, Any], sampler: Sampler,
                    policy: Policy, t0: float) -> None:
    """The mechanism scenarios wait for events, not for fixed times, so that
    a slow machine (TCG, a loaded host) only takes longer:

    idle_policy: until some of high's pages have been scanned (low's
    reclaim reaches high's memory), then --observe-s more;
    policy_detach: until the policy has triggered, then until it is
    triggered while low's memory.current is at most --fall of its peak so
    far (a peak of 32 MiB at least; or --fall-wait-s passed), then detach,
    then until low's memory.current has grown again from its lowest after
    the detach (RECOVER times it and RECOVER_MIN more, or --recover-wait-s
    passed), and 2 s more. Every wait is bounded by --mechanism-cap-s after
    the start; what was reached is in rec["reached"]."""
    cap = t0 + args.mechanism_cap_s
    reached = rec["reached"] = {}
    if name == "idle_policy":
        def scanned() -> bool:
            return len(sampler.samples) > 1 and (last(sampler, "high", "pgscan")
                                                 - sampler.samples[0]["high"]["pgscan"]
                                                 >= args.idle_scans)
        reached["high_scanned_s"] = (round(time.monotonic() - t0, 3)
                                     if wait_for(scanned, cap) else None)
        sleep_until(min(cap, time.monotonic() + args.observe_s))
        return
    if not wait_for(policy.triggered, cap):
        reached["triggered_s"] = None
        return
    reached["triggered_s"] = round(time.monotonic() - t0, 3)
    deadline = min(cap, time.monotonic() + args.fall_wait_s)

    def fell() -> bool:
        peak = max((x["low"]["current"] for x in sampler.samples), default=0)
        return (policy.triggered() and peak >= MIN_PEAK
                and last(sampler, "low", "current") <= args.fall * peak)
    reached["fell"] = wait_for(fell, deadline)
    if not reached["fell"]:  # detach while triggered all the same
        wait_for(policy.triggered, cap)
    rec["detach_sent_s"] = round(time.monotonic() - t0, 3)
    rec["policy_rc"] = policy.detach()
    rec["detached_s"] = round(time.monotonic() - t0, 3)
    detached = time.monotonic() - t0

    def recovered() -> bool:
        after = [x["low"]["current"] for x in sampler.samples if x["t"] >= detached]
        return bool(after) and after[-1] >= max(RECOVER * min(after), min(after) + RECOVER_MIN)
    reached["recovered"] = wait_for(recovered, min(cap + args.recover_wait_s,
                                                   time.monotonic() + args.recover_wait_s))
    sleep_until(time.monotonic() + 2.0)  # and a little more


def hold(nbytes: int) -> int:
    """`throttle.py hold BYTES`: an idle but resident task."""
    m = mmap.mmap(-1, nbytes)
    for off in range(0, nbytes, mmap.PAGESIZE):
        m[off] = 1
    print("held", flush=True)
    while True:
        time.sleep(3600)


class Policy:
    """The sample, attached to low; its lines are read as they come (so it
    never blocks on a full pipe), each with the CLOCK_MONOTONIC time it was
    read."""

    def __init__(self, args: argparse.Namespace):
        self.proc = subprocess.Popen(
            [args.sample, "--window-ms", str(args.window_ms), str(CG / "low"),
             str(CG / "high"), str(args.threshold), str(args.over_high)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        assert self.proc.stdout is not None  # stdout=PIPE
        self.attached = self.proc.stdout.readline()  # its "attached" line: in place
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # stdout=PIPE
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def triggered(self) -> bool:
        """Whether its last line says it is triggered (not yet released)."""
        for _, line in reversed(self.lines):
            if ": triggered" in line:
                return True
            if ": released" in line or "detached" in line:
                return False
        return False

    def detach(self) -> int:
        """SIGTERM, and wait until it has detached and exited."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return rc


def run_scenario(name: str, rep: int, args: argparse.Namespace, out: Path,
                 cwd: str) -> dict[str, Any]:
    reset_cgroups()
    sides = {"high_alone": ["high"], "low_alone": ["low"], "idle_policy": ["low"]}.get(
        name, list(SIDES))
    policy = holder = None
    rec: dict[str, Any] = {"scenario": name, "repeat": rep, "sides": sides}
    if name == "both_memory_low":
        (CG / "high" / "memory.low").write_text(args.protect)
        rec["memory.low"] = args.protect
    elif name == "both_memory_high":
        (CG / "low" / "memory.high").write_text(args.low_high)
        rec["memory.high"] = args.low_high
    if name == "idle_policy":
        # high: resident, then idle for the whole run
        join = f"echo $$ > {CG / 'high' / 'cgroup.procs'} && exec "
        holder = subprocess.Popen(
            ["sh", "-c", join + f"python3 {Path(__file__).resolve()} hold {args.idle_bytes}"],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None  # stdout=PIPE
        line = holder.stdout.readline()
        if line.strip() != "held":
            holder.kill()
            holder.wait(timeout=60)
            rec["policy_error"] = f"the idle holder in high did not start: {line!r}"
            return rec
        rec["idle_bytes"] = args.idle_bytes
    if name in ("both_policy", "policy_detach", "idle_policy"):
        policy = Policy(args)
        rec["policy_attached"] = policy.attached.strip()
        if "attached" not in policy.attached:
            policy.proc.wait(timeout=60)
            policy.reader.join(timeout=10)
            rec["policy_error"] = policy.attached + "\n".join(x for _, x in policy.lines)
            if holder:
                holder.kill()
                holder.wait(timeout=60)
            return rec
    t0 = time.monotonic()
    rec["t0_monotonic"] = t0
    sampler = Sampler(t0)
    sampler.start()
    mechanism = name in ("idle_policy", "policy_detach")
    # mechanism runs are stopped when they have shown what they show
    seconds = args.mechanism_cap_s + 2 * args.observe_s if mechanism else args.seconds
    procs = {s: stressor(s, args, out / f"{name}-{rep}-{s}.yaml", cwd, seconds) for s in sides}
    if mechanism:
        assert policy is not None  # every mechanism scenario attaches the policy
        drive_mechanism(name, args, rec, sampler, policy, t0)
        rec["stopped_s"] = round(time.monotonic() - t0, 3)  # samples after it: the kill
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        rec["stopped"] = True
    logs = {}
    for s, p in procs.items():
        try:  # stress-ng stops at -t; a throttled one may take a while more
            logs[s] = p.communicate(timeout=seconds * 5 + 300)[0]
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            logs[s] = p.communicate(timeout=60)[0] + "\n(killed: no exit in time)"
    rec["wall_s"] = round(time.monotonic() - t0, 2)
    sampler.stop.set()
    sampler.join()
    if holder is not None:
        holder.kill()
        holder.wait(timeout=60)
    if policy is not None:
        if policy.proc.returncode is None:
            rec["policy_rc"] = policy.detach()
        rec["policy_log"] = "\n".join(x for _, x in policy.lines)
        rec["policy_lines"] = [[round(t - t0, 3), x] for t, x in policy.lines]
    rec["rc"] = {s: p.returncode for s, p in procs.items()}
    rec["stress_log"] = {s: logs[s][-2000:] for s in sides}
    rec["yaml"] = {s: f"{name}-{rep}-{s}.yaml" for s in sides}
    rec["samples"] = sampler.samples
    return rec


def main() -> int:
    if sys.argv[1:2] == ["hold"]:
        return hold(int(sys.argv[2]))
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--disk-serial", required=True)
    ap.add_argument("--swap-mb", type=int, default=2048)
    ap.add_argument("--sample", required=True, help="samples/bpf/memcg")
    ap.add_argument("--scenarios", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--vm-bytes", default="300M")
    ap.add_argument("--vm-method", default="flip")
    ap.add_argument("--vm-workers", type=int, default=1, help="stress-ng --vm N per side")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--threshold", type=int, default=100)
    ap.add_argument("--over-high", type=int, default=262144)
    ap.add_argument("--window-ms", type=int, default=1000)
    ap.add_argument("--protect", default="300M", help="memory.low of high")
    ap.add_argument("--low-high", default="100M", help="memory.high of low")
    ap.add_argument("--idle-bytes", type=int, default=150 << 20,
                    help="idle_policy: what high holds while it sleeps")
    ap.add_argument("--idle-scans", type=int, default=1000,
                    help="idle_policy: pages of high's scanned by others before observing")
    ap.add_argument("--fall", type=float, default=0.75,
                    help="policy_detach: detach once low's memory.current is at most this "
                    "times its value at the first trigger")
    ap.add_argument("--fall-wait-s", type=float, default=60.0,
                    help="policy_detach: how long to wait for that")
    ap.add_argument("--observe-s", type=float, default=8.0,
                    help="idle_policy: observed after high's pages were scanned")
    ap.add_argument("--recover-wait-s", type=float, default=40.0,
                    help="policy_detach: how long to wait for low to grow again")
    ap.add_argument("--mechanism-cap-s", type=float, default=150.0,
                    help="mechanism runs: no wait goes on past this after the start")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    env: dict[str, Any] = {"uname": os.uname().release, "nproc": os.cpu_count(),
                 "meminfo": Path("/proc/meminfo").read_text().splitlines()[:3]}
    cwd = setup_swap(args.disk_serial, args.swap_mb, env)
    (CG / "cgroup.subtree_control").write_text("+memory")
    env["stress_ng"] = sh(["stress-ng", "--version"]).stdout.strip()
    runs = []
    scenarios = args.scenarios.split(",")
    for rep in range(args.repeats):
        for name in scenarios:
            t0 = time.monotonic()
            rec = run_scenario(name, rep, args, args.out, cwd)
            runs.append(rec)
            print(f"throttle: {name} #{rep}: {time.monotonic() - t0:.1f}s", flush=True)
            # write as we go: a timeout keeps what was done
            (args.out / "runs.json").write_text(json.dumps({"env": env, "runs": runs}))
    for side in SIDES:
        os.rmdir(CG / side)
    return 0


if __name__ == "__main__":
    sys.exit(main())
