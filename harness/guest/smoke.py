"""Guest side of the smoke checks: gather facts, write them as JSON.

Runs as root inside the virtme-ng guest with the guest's python3 (stdlib
only). It records what it sees and never decides pass/fail itself: the
host-side pytest suite asserts on the facts, so a failure shows the data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CG = Path("/sys/fs/cgroup")


def sh(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def read(path: Path) -> str:
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


def stress_in_cgroup(name: str, high: str, vm_bytes: str, seconds: int) -> dict[str, Any]:
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


def btf_has_struct(name: str) -> bool | str:
    """Is `struct name` in the running kernel's BTF (bpftool)?"""
    rc, text = sh(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                   "format", "raw"], timeout=120)
    if rc != 0:
        return f"<bpftool failed: {text[-300:]}>"
    return f"STRUCT '{name}'" in text


def memcg_ops_check(tools: Path) -> dict[str, Any] | None:
    """Run the memcg_bpf_ops check program (harness/guest/memcg_ops_check)
    if it was built for this kernel; its JSON, or what went wrong."""
    prog = tools / "memcg_ops_check"
    if not prog.exists():
        return None
    try:
        r = subprocess.run([str(prog), str(CG)], capture_output=True, text=True, timeout=120)
        rc, stdout, stderr = r.returncode, r.stdout, r.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        rc, stdout, stderr = -1, "", str(e)
    lines = stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else {}
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        data = {"unparsed": (stdout + stderr)[-2000:]}
    if not data:
        data = {"unparsed": stderr[-2000:]}
    data["rc"] = rc
    if stderr.strip():
        data["stderr"] = stderr[-2000:]
    return data


def sample_cli(tools: Path) -> dict[str, Any] | None:
    """samples/bpf/memcg's command line: help, bad arguments (exit 2 and a
    message naming what is wrong), and a run ended by SIGTERM (attached
    line, detach, exit 0, no struct_ops link left)."""
    prog = tools / "memcg"
    if not prog.exists():
        return None
    low, high = CG / "sample-low", CG / "sample-high"
    for d in (low, high):
        d.mkdir(exist_ok=True)
    nomem = CG / "sample-low" / "nomem"  # its parent does not enable memory
    nomem.mkdir(exist_ok=True)
    cases = {
        "help": [str(prog), "--help"],
        "no_args": [str(prog)],
        "missing_dir": [str(prog), "/nonexistent", str(high), "100", "1024"],
        "not_cgroup": [str(prog), "/tmp", str(high), "100", "1024"],
        "no_memory": [str(prog), str(nomem), str(high), "100", "1024"],
        "same_cgroup": [str(prog), str(low), str(low), "100", "1024"],
        "threshold_0": [str(prog), str(low), str(high), "0", "1024"],
        "over_high_junk": [str(prog), str(low), str(high), "100", "12x"],
        "window_too_big": [str(prog), "--window-ms", "60001", str(low), str(high), "1", "1"],
    }
    out: dict[str, Any] = {}
    for name, argv in cases.items():
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        out[name] = {"rc": r.returncode, "out": (r.stdout + r.stderr)[:1500]}
    p = subprocess.Popen([str(prog), str(low), str(high), "100", "1024"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None  # stdout=PIPE
    first = p.stdout.readline()
    _, links_attached = sh(["bpftool", "link", "show"])
    p.send_signal(signal.SIGTERM)
    rest = p.communicate(timeout=30)[0]
    _, links_after = sh(["bpftool", "link", "show"])
    out["sigterm"] = {"first": first.strip(), "rest": rest[-600:], "rc": p.returncode,
                      "struct_ops_links_attached": links_attached.count("struct_ops"),
                      "struct_ops_links_after": links_after.count("struct_ops")}
    for d in (nomem, low, high):
        d.rmdir()
    return out


def kernel_log() -> str:
    """The kernel's log buffer (dmesg; /dev/kmsg where dmesg is missing)."""
    rc, text = sh(["dmesg"])
    if rc == 0:
        return text
    lines = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return f"<error: {e}>"
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except OSError:  # EPIPE: a record was overwritten meanwhile
                continue
            lines.append(rec.split(";", 1)[-1].rstrip("\n"))
    finally:
        os.close(fd)
    return "\n".join(lines)


def kunit_suites(log: str) -> dict[str, dict[str, Any]]:
    """The KUnit suites that ran at boot (their KTAP in the kernel log):
    {suite: {"result": "ok"|"not ok", "cases": {case: result}, "ktap": lines}}."""
    suites: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for raw in log.splitlines():
        line = re.sub(r"^\[[ 0-9.]+\] ", "", raw)
        m = re.match(r"^\s*# Subtest: (\S+)", line)
        if m:
            cur = suites.setdefault(m.group(1), {"result": None, "cases": {}, "ktap": []})
        if cur is None:
            continue
        cur["ktap"].append(line)
        m = re.match(r"^(\s*)(not ok|ok) \d+ (\S+)", line)
        if m and m.group(3) in suites and not m.group(1):
            suites[m.group(3)]["result"] = m.group(2)
            cur = None
        elif m:
            cur["cases"][m.group(3)] = m.group(2)
    return suites


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    tools = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    facts: dict[str, Any] = {"uname_r": os.uname().release}
    facts["cgroup_controllers"] = (read(CG / "cgroup.controllers") or "").split()
    facts["kunit"] = kunit_suites(kernel_log())
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
    facts["btf_memcg_bpf_ops"] = btf_has_struct("memcg_bpf_ops")
    facts["memcg_ops_check"] = memcg_ops_check(tools) if tools else None
    facts["sample_cli"] = sample_cli(tools) if tools else None
    (out / "smoke.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps({k: facts[k] for k in ("uname_r", "cgroup_controllers")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
