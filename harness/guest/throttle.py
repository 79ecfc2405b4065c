#!/usr/bin/env python3
"""Runs in the guest: the throttling experiment of harness/throttle.py.

Two cgroups, `high` and `low`, each runs the same stress-ng --vm stressor
(fixed method and seed, --metrics --yaml), in scenarios that differ only in
the policy: none, the series' sample (samples/bpf/memcg) attached to low,
memory.low protecting high, a static memory.high on low. The guest has swap
on a file of an ext4 virtio disk. While a scenario runs, a sampler reads
the two cgroups' memory.stat (pgscan), memory.events (high) and
memory.pressure every 100 ms. Everything is written to OUT for the host to
judge; nothing is judged here.

Usage: throttle.py OUT --disk-serial PATH --sample PROG --scenarios a,b
                        --repeats N --seconds S --vm-bytes 1200M ...
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
from pathlib import Path

from disk import find_disk, mount_ext4  # harness/guest/disk.py

CG = Path("/sys/fs/cgroup")
SIDES = ("high", "low")


def sh(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


def setup_swap(serial: str, size_mb: int, env: dict) -> str:
    """ext4 on the scratch disk; a swap file on it; the workdir too."""
    mnt, err = mount_ext4(serial)
    if not mnt:
        raise SystemExit(err)
    for argv in (["fallocate", "-l", f"{size_mb}M", f"{mnt}/swapfile"],
                 ["chmod", "600", f"{mnt}/swapfile"],
                 ["mkswap", f"{mnt}/swapfile"], ["swapon", f"{mnt}/swapfile"]):
        r = sh(argv)
        if r.returncode:
            raise SystemExit(f"{' '.join(argv)}: {r.stderr.strip()}")
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
    def __init__(self, period: float = 0.1):
        super().__init__(daemon=True)
        self.period = period
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            s: dict = {"t": round(time.monotonic() - self.t0, 3)}
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
    for side in SIDES:
        d = CG / side
        if d.exists():
            os.rmdir(d)
        d.mkdir()
    for side in SIDES:
        (CG / side / "memory.low").write_text("0")
        (CG / side / "memory.high").write_text("max")


def stressor(side: str, args: argparse.Namespace, yaml: Path, cwd: str) -> subprocess.Popen:
    argv = ["stress-ng", "--vm", "1", "--vm-bytes", args.vm_bytes, "--vm-keep",
            "--vm-method", args.vm_method, "--seed", str(args.seed), "-t", str(args.seconds),
            "--metrics", "--yaml", str(yaml)]
    procs = str(CG / side / "cgroup.procs")

    def join() -> None:
        with open(procs, "w") as f:
            f.write("0")

    return subprocess.Popen(argv, cwd=cwd, preexec_fn=join, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_scenario(name: str, rep: int, args: argparse.Namespace, out: Path, cwd: str) -> dict:
    reset_cgroups()
    sides = {"high_alone": ["high"], "low_alone": ["low"]}.get(name, list(SIDES))
    policy = None
    rec: dict = {"scenario": name, "repeat": rep, "sides": sides}
    if name == "both_memory_low":
        (CG / "high" / "memory.low").write_text(args.protect)
        rec["memory.low"] = args.protect
    elif name == "both_memory_high":
        (CG / "low" / "memory.high").write_text(args.low_high)
        rec["memory.high"] = args.low_high
    elif name == "both_policy":
        policy = subprocess.Popen(
            [args.sample, "--window-ms", str(args.window_ms), str(CG / "low"),
             str(CG / "high"), str(args.threshold), str(args.over_high)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # its "attached" line says it is in place
        line = policy.stdout.readline()
        rec["policy_attached"] = line.strip()
        if "attached" not in line:
            policy.wait()
            rec["policy_error"] = line + policy.stdout.read()
            return rec
    sampler = Sampler()
    sampler.start()
    t0 = time.monotonic()
    procs = {s: stressor(s, args, out / f"{name}-{rep}-{s}.yaml", cwd) for s in sides}
    logs = {s: p.communicate()[0] for s, p in procs.items()}
    rec["wall_s"] = round(time.monotonic() - t0, 2)
    sampler.stop.set()
    sampler.join()
    if policy is not None:
        policy.send_signal(signal.SIGTERM)
        rec["policy_log"] = policy.communicate(timeout=30)[0]
        rec["policy_rc"] = policy.returncode
    rec["rc"] = {s: p.returncode for s, p in procs.items()}
    rec["stress_log"] = {s: logs[s][-2000:] for s in sides}
    rec["yaml"] = {s: f"{name}-{rep}-{s}.yaml" for s in sides}
    rec["samples"] = sampler.samples
    return rec


def main() -> int:
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
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--threshold", type=int, default=100)
    ap.add_argument("--over-high", type=int, default=262144)
    ap.add_argument("--window-ms", type=int, default=1000)
    ap.add_argument("--protect", default="300M", help="memory.low of high")
    ap.add_argument("--low-high", default="100M", help="memory.high of low")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    env: dict = {"uname": os.uname().release, "nproc": os.cpu_count(),
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
