#!/usr/bin/env python3
"""Runs in the guest: the BPF selftests (test_progs) and the memory
controller's own selftests (test_memcontrol), each output kept in a file
under OUT for the host to parse. It judges nothing itself.

Usage: selftests.py OUT [--test-progs DIR] [--filter T] [--repeat N]
                        [--memcontrol FILE] [--disk-serial NAME]

The environment the upstream runners expect: bpffs on /sys/fs/bpf, tmpfs on
/tmp, loopback up, test_progs in a fresh session keyring (it adds its
signing key there), test_memcontrol in a directory on a disk-backed
filesystem (its page-cache tests cannot reclaim shmem without swap).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from disk import find_disk, mount_ext4  # harness/guest/disk.py


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def mounted(path: str, fstype: str) -> bool:
    with open("/proc/mounts") as f:
        return any(ln.split()[1] == path and ln.split()[2] == fstype for ln in f)


def setup(env: dict) -> None:
    if not mounted("/sys/fs/bpf", "bpf"):
        env["bpffs"] = sh(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]).returncode
    if not mounted("/tmp", "tmpfs"):
        env["tmpfs"] = sh(["mount", "-t", "tmpfs", "tmpfs", "/tmp"]).returncode
    env["lo"] = sh(["ip", "link", "set", "lo", "up"]).returncode if shutil.which("ip") else None


def disk_dir(serial: str, env: dict) -> str | None:
    mnt, err = mount_ext4(serial)
    env["disk"] = find_disk(serial)
    if err:
        env["disk_error"] = err
    return mnt


def run(argv: list[str], log: Path, cwd: str, timeout: float) -> dict:
    t0 = time.monotonic()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=cwd,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = None
            f.write(f"\nHARNESS: killed after {timeout:.0f}s\n")
    return {"argv": argv, "log": log.name, "rc": rc,
            "duration_s": round(time.monotonic() - t0, 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--test-progs", help="directory with test_progs")
    ap.add_argument("--filter", action="append", default=[],
                    help="test_progs -t (repeatable)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="test_progs -v: every log")
    ap.add_argument("--memcontrol", help="the test_memcontrol binary")
    ap.add_argument("--memcontrol-repeat", type=int, default=1)
    ap.add_argument("--disk-serial", default="", help="host path of the scratch disk")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    env: dict = {"uname": os.uname().release}
    setup(env)
    runs = []
    if args.test_progs:
        tp = str(Path(args.test_progs) / "test_progs")
        for i in range(args.repeat):
            argv = [tp, "-J", str(args.out / f"test_progs-{i}.json")]
            if args.verbose:
                argv.append("-v")
            for t in args.filter:
                argv += ["-t", t]
            if shutil.which("keyctl"):
                argv = ["keyctl", "session", "-", *argv]
            r = run(argv, args.out / f"test_progs-{i}.log", args.test_progs, args.timeout)
            r.update(suite="test_progs", run=i)
            runs.append(r)
            print(f"test_progs run {i}: rc {r['rc']} in {r['duration_s']}s", flush=True)
    if args.memcontrol:
        cwd = disk_dir(args.disk_serial, env)
        if cwd is None:
            print("no disk for test_memcontrol: running it on tmpfs "
                  "(its page-cache tests will fail)", flush=True)
            cwd = "/tmp"
        for i in range(args.memcontrol_repeat):
            r = run([args.memcontrol], args.out / f"test_memcontrol-{i}.log", cwd,
                    args.timeout)
            r.update(suite="test_memcontrol", run=i)
            runs.append(r)
            print(f"test_memcontrol run {i}: rc {r['rc']} in {r['duration_s']}s", flush=True)
    (args.out / "runs.json").write_text(json.dumps({"env": env, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
