#!/usr/bin/env python3
"""Runs in the guest: the BPF selftests (test_progs) and the memory
controller's own selftests (test_memcontrol), each output kept in a file
under OUT for the host to parse. It judges nothing itself.

Usage: selftests.py OUT [--test-progs DIR] [--filter T] [--repeat N]
                        [--swap-mb MB] [--memcontrol FILE]
                        [--memcontrol-policy PROGRAM] [--disk-serial NAME]

The environment the upstream runners expect: bpffs on /sys/fs/bpf, tmpfs on
/tmp, loopback up, test_progs in a fresh session keyring (it adds its
signing key there), test_memcontrol in a directory on a disk-backed
filesystem (its page-cache tests cannot reclaim shmem without swap).

With --swap-mb, test_progs runs with a swap file on the scratch disk (the
memcg_ops subtests that reclaim anonymous memory need it); it is removed
before test_memcontrol, which runs as upstream's CI runs it. test_progs
gets MEMCG_OPS_DIR, the scratch disk's mount, for memcg_ops' page cache. With
--memcontrol-policy (memcg_ops_check), test_memcontrol runs with a
memcg_bpf_ops policy that answers 0 attached to the root cgroup, above
all of its cgroups, and the run records how often the policy was asked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from disk import find_disk, mount_ext4, swap_off, swap_on  # harness/guest/disk.py


def sh(argv: list[str], timeout: float = 600,
       **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def mounted(path: str, fstype: str) -> bool:
    with open("/proc/mounts") as f:
        return any(ln.split()[1] == path and ln.split()[2] == fstype for ln in f)


def setup(env: dict[str, Any]) -> None:
    if not mounted("/sys/fs/bpf", "bpf"):
        env["bpffs"] = sh(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]).returncode
    if not mounted("/tmp", "tmpfs"):
        env["tmpfs"] = sh(["mount", "-t", "tmpfs", "tmpfs", "/tmp"]).returncode
    env["lo"] = sh(["ip", "link", "set", "lo", "up"]).returncode if shutil.which("ip") else None


def disk_dir(serial: str, env: dict[str, Any]) -> str | None:
    mnt: str | None
    err: str
    mnt, err = mount_ext4(serial)
    env["disk"] = find_disk(serial)
    if err:
        env["disk_error"] = err
    return mnt


# test_memcontrol, run with an N = 0 policy on the root cgroup
ZERO_POLICY_SUITE = "test_memcontrol_zero_policy"


def hold_policy(program: str) -> subprocess.Popen[str]:
    """memcg_ops_check --hold: an N = 0 policy on the root cgroup, attached
    once the first line is out, until its stdin closes."""
    p = subprocess.Popen([program, "--hold", "/sys/fs/cgroup"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None  # stdout=PIPE
    p.attached = p.stdout.readline().strip()  # type: ignore[attr-defined]
    return p


def release_policy(p: subprocess.Popen[str]) -> dict[str, Any]:
    """{"attach_err": E, "over_high_total": N, "rc": rc} of a held policy."""
    out, _ = p.communicate(timeout=60)
    res: dict[str, Any] = {"rc": p.returncode}
    for line in (p.attached, *out.splitlines()):  # type: ignore[attr-defined]
        try:
            res.update(json.loads(line))
        except ValueError:
            res.setdefault("unparsed", []).append(line)
    return res


# One progress line per test as it ends, from test_progs' result lines
# ("#55/2 memcg_ops/attach:OK") and test_memcontrol's TAP ("ok 3 name",
# "not ok 3 name", "ok 3 # SKIP name"); the host shows the lines that
# start with "test: " as they come (harness/vm.py, PROGRESS).
RESULT = re.compile(r"^#\d+(?:/\d+)?\s+(?P<name>\S+):(?P<status>OK|FAIL|SKIP)\s*$"
                    r"|^(?P<not>not )?ok \d+ (?P<skip># SKIP )?(?P<tap>\S+)")


def progress_line(suite: str, line: str, since_s: float) -> str | None:
    """The progress line for one line of a suite's output, or None."""
    m = RESULT.match(line)
    if not m:
        return None
    if m.group("name"):
        name, status = m.group("name"), m.group("status")
    else:
        name = m.group("tap")
        status = "FAIL" if m.group("not") else "SKIP" if m.group("skip") else "OK"
    return f"test: {suite} {name} {status} (+{since_s:.1f}s)"


def run(argv: list[str], log: Path, cwd: str, timeout: float,
        suite: str = "") -> dict[str, Any]:
    """Runs argv with its output in `log`, printing a progress line per
    test result it prints (with `suite`; once per test: test_progs repeats
    its failures under "All error logs:"); killed after `timeout` s."""
    t0 = last = time.monotonic()
    shown: set[str] = set()
    killed = threading.Event()
    with open(log, "w") as f:
        # its own process group: a child left holding the pipe is killed too
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                             text=True, errors="replace", start_new_session=True)

        def kill() -> None:
            killed.set()
            os.killpg(p.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert p.stdout is not None
            for line in p.stdout:
                f.write(line)
                now = time.monotonic()
                msg = progress_line(suite, line, now - last) if suite else None
                if msg and msg.rsplit(" (+", 1)[0] not in shown:
                    shown.add(msg.rsplit(" (+", 1)[0])
                    print(msg, flush=True)
                    last = now
            rc: int | None = p.wait(timeout=timeout)
        finally:
            timer.cancel()
        if killed.is_set():
            rc = None
            f.write(f"\nHARNESS: killed after {timeout:.0f}s\n")
    return {"argv": argv, "log": log.name, "rc": rc,
            "duration_s": round(time.monotonic() - t0, 2)}


def passed_once(out: Path, suite: str, last: int, tests: list[str]) -> bool:
    """Whether each of `tests` that test_memcontrol ran has passed ("ok N
    name" in its TAP output) in one of the runs 0..last of `suite`."""
    seen: dict[str, bool] = {}
    for i in range(last + 1):
        log = out / f"{suite}-{i}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        for m in re.finditer(r"^(not )?ok \d+ (\S+)", text, re.M):
            seen[m.group(2)] = seen.get(m.group(2), False) or not m.group(1)
    return all(seen.get(t, True) for t in tests)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--test-progs", help="directory with test_progs")
    ap.add_argument("--filter", action="append", default=[],
                    help="test_progs -t (repeatable)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="test_progs -v: every log")
    ap.add_argument("--memcontrol", help="the test_memcontrol binary")
    ap.add_argument("--memcontrol-repeat", type=int, default=1,
                    help="at most this many runs of each test_memcontrol suite")
    ap.add_argument("--memcontrol-until-pass", default="",
                    help="comma-separated tests: stop repeating once each has passed "
                    "in every suite (those flaky without the series)")
    ap.add_argument("--disk-serial", default="", help="host path of the scratch disk")
    ap.add_argument("--swap-mb", type=int, default=0, help="swap for test_progs")
    ap.add_argument("--memcontrol-policy", help="memcg_ops_check: hold an N=0 policy")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    env: dict[str, Any] = {"uname": os.uname().release}
    setup(env)
    runs = []
    mnt = disk_dir(args.disk_serial, env) if args.disk_serial else None
    if args.test_progs:
        tp = str(Path(args.test_progs) / "test_progs")
        if args.swap_mb and mnt:
            env["swap_error"] = swap_on(mnt, args.swap_mb)
            env["swap"] = Path("/proc/swaps").read_text()
        if mnt:  # memcg_ops/min_floor's page cache: a disk-backed filesystem
            os.environ["MEMCG_OPS_DIR"] = mnt
        for i in range(args.repeat):
            argv = [tp, "-J", str(args.out / f"test_progs-{i}.json")]
            if args.verbose:
                argv.append("-v")
            for t in args.filter:
                argv += ["-t", t]
            if shutil.which("keyctl"):
                argv = ["keyctl", "session", "-", *argv]
            r = run(argv, args.out / f"test_progs-{i}.log", args.test_progs, args.timeout,
                    "test_progs")
            r.update(suite="test_progs", run=i)
            runs.append(r)
            print(f"test_progs run {i}: rc {r['rc']} in {r['duration_s']}s", flush=True)
        if args.swap_mb and mnt and not env["swap_error"]:
            env["swapoff_error"] = swap_off(mnt)
    if args.memcontrol:
        cwd = mnt
        if cwd is None:
            print("no disk for test_memcontrol: running it on tmpfs "
                  "(its page-cache tests will fail)", flush=True)
            cwd = "/tmp"
        suites = ["test_memcontrol"]
        if args.memcontrol_policy:
            suites.append(ZERO_POLICY_SUITE)
        for i in range(args.memcontrol_repeat):
            for suite in suites:
                policy = hold_policy(args.memcontrol_policy) if suite != suites[0] else None
                r = run([args.memcontrol], args.out / f"{suite}-{i}.log", cwd, args.timeout,
                        suite)
                if policy:
                    r["policy"] = release_policy(policy)
                r.update(suite=suite, run=i)
                runs.append(r)
                print(f"{suite} run {i}: rc {r['rc']} in {r['duration_s']}s "
                      f"{r.get('policy', '')}", flush=True)
            wanted = [t for t in args.memcontrol_until_pass.split(",") if t]
            if wanted and all(passed_once(args.out, suite, i, wanted) for suite in suites):
                print(f"test_memcontrol: {', '.join(wanted)} passed in every suite "
                      f"after {i + 1} run(s); no more runs", flush=True)
                break
    (args.out / "runs.json").write_text(json.dumps({"env": env, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
