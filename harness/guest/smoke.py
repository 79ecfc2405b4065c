"""Guest side of the smoke checks: gather facts, write them as JSON.

Runs as root inside the virtme-ng guest with the guest's python3 (stdlib
only). It records what it sees and never decides pass/fail itself: the
host-side pytest suite asserts on the facts, so a failure shows the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CG = Path("/sys/fs/cgroup")


def sh(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError as e:
        return f"<error: {e}>"


def events(cg: Path) -> dict[str, int]:
    out = {}
    for line in (read(cg / "memory.events") or "").splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def writable_tmp() -> str:
    """stress-ng needs a writable cwd; the guest root is read-only."""
    d = Path("/tmp/harness-smoke")
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / ".w").write_text("x")
        return str(d)
    except OSError:
        sh(["mount", "-t", "tmpfs", "tmpfs", "/tmp"])
        d.mkdir(parents=True, exist_ok=True)
        return str(d)


def stress_in_cgroup(name: str, high: str, vm_bytes: str, seconds: int) -> dict:
    cg = CG / name
    cg.mkdir(exist_ok=True)
    (cg / "memory.high").write_text(high)
    before = events(cg)
    procs = str(cg / "cgroup.procs")

    def enter() -> None:  # runs in the child: move itself, then exec stress-ng
        with open(procs, "w") as f:
            f.write("0")

    argv = ["stress-ng", "--vm", "1", "--vm-bytes", vm_bytes, "--vm-keep",
            "--vm-method", "write64", "--timeout", f"{seconds}s", "--seed", "2025"]
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, preexec_fn=enter, capture_output=True, text=True,
                           timeout=seconds * 10 + 30, cwd=writable_tmp())
        rc, output = r.returncode, (r.stdout + r.stderr)[-2000:]
    except (OSError, subprocess.TimeoutExpired) as e:
        rc, output = -1, str(e)
    result = {
        "memory.high": read(cg / "memory.high").strip(),
        "events_before": before,
        "events_after": events(cg),
        "peak": (read(cg / "memory.peak") or "").strip(),
        "stress_rc": rc,
        "stress_output": output,
        "wall_s": round(time.monotonic() - t0, 2),
    }
    try:
        cg.rmdir()
    except OSError:
        pass
    return result


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    facts: dict = {"uname_r": os.uname().release}
    facts["cgroup_controllers"] = (read(CG / "cgroup.controllers") or "").split()
    btf = Path("/sys/kernel/btf/vmlinux")
    facts["btf_vmlinux_bytes"] = btf.stat().st_size if btf.exists() else 0
    rc, msg = sh(["mount", "-t", "bpf", "bpffs", "/sys/fs/bpf"])
    mounts = read(Path("/proc/mounts")) or ""
    facts["bpffs"] = {"mount_rc": rc, "message": msg,
                      "mounted": any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"]
                                     for line in mounts.splitlines() if line.strip())}
    (CG / "cgroup.subtree_control").write_text("+memory")
    # Same stressor twice: with a small memory.high, and with no limit as
    # the control (its 'high' counter must stay 0).
    facts["high_limited"] = stress_in_cgroup("smoke-high", "32M", "64M", 3)
    facts["high_control"] = stress_in_cgroup("smoke-control", "max", "64M", 2)
    (out / "smoke.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps({k: facts[k] for k in ("uname_r", "cgroup_controllers")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
