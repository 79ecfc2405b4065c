#!/usr/bin/env python3
"""Runs in the guest: one boot's share of `harness bench`.

Usage: bench.py OUT --tools DIR --kernel unpatched|patched|srcu [--reps R]
                [--secs S] [--mb MB] [--seed N] [--boot B]

membench (harness/guest/memcg_ops_check/membench.c) maps, touches and
unmaps MB of anonymous memory for S seconds in a cgroup and reports ns per
page. Three workloads:

  fault      in /sys/fs/cgroup/bench/fault, memory.high "max";
  over_high  in /sys/fs/cgroup/bench/high, memory.high a quarter megabyte
             below the peak a calibration run reached: the cgroup goes over
             memory.high at the end of every pass, by less than 1 %, which
             runs the memory.high paths without a throttling sleep;
  batch      in /sys/fs/cgroup/bench/batch, 64 pages a pass: one charge
             batch per mmap(), as many system calls as batches (the return
             to user space after every batch).

Both cgroups have memory.min above the working set, in every variant and
on both kernels, so that an active policy's episode (which never goes
below memory.min) reclaims and throttles nothing: what is measured is the
hook, not a policy's decisions. Variants (patched kernel):

  nothing    no policy attached anywhere;
  unrelated  a policy answering 0 on /sys/fs/cgroup/bench_other;
  zero       a policy answering 0 on the measured cgroup;
  active     a policy answering 1 on the measured cgroup (an episode).

On the unpatched kernel the only variant is "unpatched"; on the series
with an SRCU read side added (harness bench --srcu), srcu-zero and
srcu-active, as zero and active. Runs go in an
order shuffled with the seed; each is a line of OUT/runs.jsonl. It judges
nothing: the host computes the ratios and their intervals.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CG = Path("/sys/fs/cgroup")
KERNEL_VARIANTS = {"unpatched": ("unpatched",),
                   "patched": ("nothing", "unrelated", "zero", "active"),
                   "srcu": ("srcu-zero", "srcu-active")}
WORKLOADS = ("fault", "over_high", "batch")
# membench's size per workload: --mb, but 64 pages (one charge batch) for batch
BATCH_SIZE = "256k"


def write(path: Path, value: str) -> None:
    path.write_text(value)


def membench(tools: Path, cg: Path, mb: int | str, secs: float) -> dict[str, Any]:
    r = subprocess.run(["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$0" "$@"',
                        str(tools / "membench"), str(mb), str(secs)],
                       capture_output=True, text=True, timeout=secs * 20 + 60)
    if r.returncode:
        raise RuntimeError(f"membench in {cg}: rc {r.returncode}: {r.stderr.strip()}")
    data: dict[str, Any] = json.loads(r.stdout)  # membench prints one JSON object
    return data


def hold(tools: Path, cg: Path, answer: int) -> subprocess.Popen[str]:
    p = subprocess.Popen([str(tools / "memcg_ops_check"), "--hold-answer", str(cg),
                          str(answer)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None  # stdout=PIPE
    first = json.loads(p.stdout.readline() or "{}")
    if first.get("attach_err") != 0:
        p.kill()
        raise RuntimeError(f"attaching a policy to {cg}: {first}")
    return p


def release(p: subprocess.Popen[str]) -> None:
    p.communicate(timeout=60)


def setup(mb: int, tools: Path, secs: float) -> dict[str, Path]:
    write(CG / "cgroup.subtree_control", "+memory")
    cgs = {"fault": CG / "bench" / "fault", "over_high": CG / "bench" / "high",
           "batch": CG / "bench" / "batch", "other": CG / "bench_other"}
    (CG / "bench").mkdir(exist_ok=True)
    write(CG / "bench" / "cgroup.subtree_control", "+memory")
    for p in cgs.values():
        p.mkdir(exist_ok=True)
    for w in WORKLOADS:
        write(cgs[w] / "memory.min", str((2 * mb) << 20))
    # calibrate: the peak of a pass, then memory.high a quarter MB below it
    membench(tools, cgs["over_high"], mb, min(secs, 0.5))
    peak = int((cgs["over_high"] / "memory.peak").read_text())
    write(cgs["over_high"] / "memory.high", str(peak - (256 << 10)))
    return cgs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--tools", type=Path, required=True)
    ap.add_argument("--kernel", choices=tuple(KERNEL_VARIANTS), required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--secs", type=float, default=1.0)
    ap.add_argument("--mb", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boot", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cgs = setup(args.mb, args.tools, args.secs)
    high = int((cgs["over_high"] / "memory.high").read_text())
    variants = KERNEL_VARIANTS[args.kernel]
    order = [(v, w, i) for v in variants for w in WORKLOADS for i in range(args.reps)]
    random.Random(args.seed).shuffle(order)
    with open(args.out / "runs.jsonl", "w") as f:
        for n, (variant, workload, rep) in enumerate(order):
            target = {"unrelated": cgs["other"], "zero": cgs[workload],
                      "active": cgs[workload], "srcu-zero": cgs[workload],
                      "srcu-active": cgs[workload]}.get(variant)
            policy = hold(args.tools, target, 1 if variant.endswith("active") else 0) \
                if target else None
            try:
                r = membench(args.tools, cgs[workload],
                             BATCH_SIZE if workload == "batch" else args.mb, args.secs)
            finally:
                if policy:
                    release(policy)
            ev = (cgs[workload] / "memory.events").read_text().split()
            r.update(kernel=args.kernel, variant=variant, workload=workload, rep=rep,
                     order=n, boot=args.boot, memory_high=high if workload == "over_high"
                     else None, high_events=int(ev[ev.index("high") + 1]),
                     time=time.time())
            f.write(json.dumps(r) + "\n")
            f.flush()
            print(f"bench: [{n + 1}/{len(order)}] {variant} {workload}: "
                  f"{r['ns_per_page']:.0f} ns/page", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
