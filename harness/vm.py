"""Boot a kernel with virtme-ng, run a command in the guest, judge the result.

vng's own exit status is not the guest's: it is 255 when QEMU exits without
writing virtme.ret (panic, crash) and in a few other cases. So the guest
command is wrapped to write its status to an rc file in a writable shared
directory and to print a sentinel line; the host trusts those. The whole
console (`vng --verbose`) goes to a log file that is scanned for splats.
A VM that does not finish in time has its process group killed; the log
stays.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import HarnessError
from harness.proc import first_line, require, run_logged
from harness.splat import Splat, scan

GUEST_OUT = "/harness-out"
GUEST_SRC = "/harness-src"
GUEST_BUILD = "/harness-build"
SENTINEL = "HARNESS-RC="
START = "HARNESS-START"
# Kernel command line for test runs (BPF CI uses the same spirit): stop on
# the first oops, no reboot, big log buffer, hung tasks reported quickly.
# printk.time=1: the kernel's console lines carry a timestamp, which tells
# them from the guest command's (harness/splat.py)
KERNEL_ARGS = ["panic=-1", "oops=panic", "log_buf_len=4M", "hung_task_timeout_secs=60",
               "softlockup_panic=0", "printk.time=1"]
PROBE_TIMEOUT = 30.0


# Guest lines shown on the host as they come (long guest steps show progress).
PROGRESS = ("test: ", "throttle: ", "test_progs run ", "test_memcontrol run ", "experiment: ",
            "bench: ")


def vng_path() -> str:
    local = Path(sys.executable).parent / "vng"
    if local.exists():
        return str(local)
    found = shutil.which("vng")
    if not found:
        raise HarnessError("'vng' (virtme-ng) not found",
                           hint="pip install virtme-ng==1.42 (ci/bootstrap.sh does it)")
    return found


@dataclass
class VmRequest:
    kernel: Path  # bzImage
    command: str  # shell command run as root in the guest
    out_dir: Path  # host directory shared read-write at /harness-out
    accel: str = "tcg"  # kvm or tcg
    root: Path | None = None  # guest root filesystem; None = the host's /
    memory: str = "2G"
    cpus: int = 2
    timeout: float = 600.0
    rodirs: list[tuple[str, Path]] = field(default_factory=list)
    disks: list[Path] = field(default_factory=list)
    append: list[str] = field(default_factory=list)
    qemu_opts: list[str] = field(default_factory=list)  # extra QEMU arguments
    name: str = "vm"
    force_9p: bool = field(default_factory=lambda: not virtiofsd_usable())

    @property
    def guest_out(self) -> str:
        """Where out_dir appears in the guest. A root of our own has the
        mount point; the host's read-only / does not, so use the same path."""
        return GUEST_OUT if self.root is not None else str(self.out_dir)


def guest_src(root: Path | None) -> str:
    """Where the repository appears in the guest (see VmRequest.guest_out)."""
    return GUEST_SRC if root is not None else str(paths.REPO)


def guest_build(root: Path | None, host_dir: Path) -> str:
    """Where the guest tools built for the guest appear in it."""
    return GUEST_BUILD if root is not None else str(host_dir)


def wrap_command(command: str, guest_out: str = GUEST_OUT) -> str:
    """The guest-side wrapper: start marker, the command, its rc to a file
    and a sentinel line (vng's own rc cannot be trusted)."""
    out = shlex.quote(guest_out)
    return (f"echo {START}; cd {out} && ( {command} ); rc=$?; "
            f"echo $rc > {out}/rc; sync; echo {SENTINEL}$rc")


def virtiofsd_usable() -> bool:
    """Whether vng can export the root with virtiofs: it needs the Rust
    virtiofsd (>= 1.7). Debian 12 only has QEMU's old C one, which vng
    tries and gives up on after ~9 s before falling back to 9p."""
    for cand in (shutil.which("virtiofsd"), "/usr/libexec/virtiofsd", "/usr/lib/virtiofsd"):
        if not cand or not os.access(cand, os.X_OK):
            continue
        try:
            out = subprocess.run([cand, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(r"virtiofsd (\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (1, 7):
            return True
    return False


def vng_argv(req: VmRequest, vng: str = "vng") -> list[str]:
    argv = [vng, "--run", str(req.kernel), "--verbose", "--user", "root",
            "--cpus", str(req.cpus), "--memory", req.memory,
            "--rwdir", f"{req.guest_out}={req.out_dir}"]
    if req.root is not None:
        argv += ["--root", str(req.root)]
    for guest, host in req.rodirs:
        argv += ["--rodir", f"{guest}={host}"]
    for disk in req.disks:
        argv += ["--disk", str(disk)]
    if req.accel == "tcg":
        argv.append("--disable-kvm")
    elif req.accel != "kvm":
        raise HarnessError(f"unknown accelerator {req.accel!r} (kvm or tcg)")
    if req.force_9p:
        argv.append("--force-9p")
    argv += ["--append", " ".join(KERNEL_ARGS + req.append)]
    argv += ["--exec", wrap_command(req.command, req.guest_out)]
    if req.qemu_opts:  # in one value ("=": it starts with a dash); vng puts it last
        argv.append("--qemu-opts=" + " ".join(req.qemu_opts))
    return argv


@dataclass
class VmResult:
    accel: str
    vng_rc: int
    guest_rc: int | None  # None: the guest command never finished
    timed_out: bool
    console: Path
    duration_s: float
    first_command_s: float | None  # boot to the guest's first command
    splats: list[Splat]

    @property
    def ok(self) -> bool:
        return self.guest_rc == 0 and not self.timed_out and not self.splats

    def problem(self) -> str | None:
        if self.timed_out:
            return "the VM timed out and was killed"
        if self.splats:
            s = self.splats[0]
            return f"kernel splat in the guest: {s.headline()}\n{s.excerpt}"
        if self.guest_rc is None:
            return (f"the guest command did not finish (vng rc {self.vng_rc}): "
                    "kernel panic or crash?")
        if self.guest_rc != 0:
            return f"the guest command exited with {self.guest_rc}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"accel": self.accel, "vng_rc": self.vng_rc, "guest_rc": self.guest_rc,
                "timed_out": self.timed_out, "console": str(self.console),
                "duration_s": round(self.duration_s, 2),
                "first_command_s": None if self.first_command_s is None
                else round(self.first_command_s, 2),
                "splats": [{"kind": s.kind, "line": s.line, "text": s.text} for s in self.splats]}


def guest_rc_from(out_dir: Path, console_text: str) -> int | None:
    """The guest command's status: rc file first, then the sentinel line."""
    rcfile = out_dir / "rc"
    if rcfile.exists():
        try:
            return int(rcfile.read_text().strip())
        except ValueError:
            pass
    m = re.findall(rf"{SENTINEL}(\d+)", console_text)
    return int(m[-1]) if m else None


def vng_env() -> dict[str, str]:
    """vng reads ~/.config/virtme-ng/virtme-ng.conf; keep runs reproducible
    by giving it a clean HOME."""
    home = paths.cache_root() / "vng-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home))
    env.pop("XDG_CONFIG_HOME", None)
    # vng runs virtme-run from PATH: make it the one beside vng.
    env["PATH"] = f"{Path(vng_path()).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def boot(req: VmRequest, log_dir: Path) -> VmResult:
    require("qemu-system-x86_64", "qemu-system-x86")
    if not req.kernel.exists():
        raise HarnessError(f"kernel image {req.kernel} does not exist", hint="run: harness build")
    req.out_dir.mkdir(parents=True, exist_ok=True)
    rcfile = req.out_dir / "rc"
    if rcfile.exists():
        rcfile.unlink()
    console = log_dir / f"{req.name}-console.log"
    t0 = time.monotonic()
    first: list[float] = []

    def on_line(line: str) -> None:
        if not first and line.strip() == START:
            first.append(time.monotonic() - t0)
        elif line.startswith(PROGRESS):  # the guest scripts' progress lines
            print(f"[{req.name}] {time.monotonic() - t0:5.0f}s {line.strip()}",
                  file=sys.stderr, flush=True)

    r = run_logged(vng_argv(req, vng_path()), console, timeout=req.timeout,
                   env=vng_env(), on_line=on_line)
    text = console.read_text(errors="replace")
    return VmResult(accel=req.accel, vng_rc=r.returncode,
                    guest_rc=None if r.timed_out else guest_rc_from(req.out_dir, text),
                    timed_out=r.timed_out, console=console, duration_s=r.duration_s,
                    first_command_s=first[0] if first else None, splats=scan(text))


# -- accelerator choice --------------------------------------------------

def kvm_usable_device() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def tool_version(argv: list[str]) -> str:
    """The first line of `argv --version`, or "" if it cannot be run."""
    return first_line(argv, timeout=30, ok_only=False) or ""


def tool_versions() -> dict[str, str]:
    """QEMU's and vng's versions: the first lines of their --version, ""
    where one cannot be run."""
    qemu = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
    try:
        vng = vng_path()
    except HarnessError:
        vng = "vng"
    return {"qemu": tool_version([qemu, "--version"]), "vng": tool_version([vng, "--version"])}


def probe_key() -> str:
    """What a cached KVM verdict depends on: the host kernel, QEMU's and
    vng's versions (a new QEMU or vng is probed again)."""
    v = tool_versions()
    return paths.short_hash(os.uname().release, os.uname().version, v["qemu"], v["vng"])


def probe_cache() -> Path:
    return paths.cache_root() / "kvm-probe.json"


TCG_PROBE_TIMEOUT = 180.0


def probe_kvm(kernel: Path, root: Path | None, log_dir: Path,
              append: list[str] | None = None) -> tuple[bool, str]:
    """Boot `true` under KVM with a short timeout. A success is cached per
    host (probe_key()); a failure only if it is KVM's: the same boot under
    TCG works. A kernel or root that fails either way says nothing about
    KVM, and the next run probes again."""
    cache = probe_cache()
    key = probe_key()
    if cache.exists():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data["ok"], data["reason"] + " (cached)"
    out = log_dir / "kvm-probe-out"
    res = boot(VmRequest(kernel=kernel, command="true", out_dir=out, accel="kvm", root=root,
                         memory="512M", cpus=1, timeout=PROBE_TIMEOUT, name="kvm-probe",
                         append=list(append or [])), log_dir)
    ok = res.guest_rc == 0
    if ok:
        reason = f"KVM boot ok in {res.duration_s:.1f}s"
    elif res.timed_out:
        reason = (f"a KVM guest hung (no result within {PROBE_TIMEOUT:.0f}s; "
                  f"console {res.console})")
    else:
        last = [x for x in res.console.read_text(errors="replace").splitlines() if x.strip()]
        reason = (f"a KVM guest failed (vng rc {res.vng_rc}: "
                  f"{last[-1][:160] if last else 'no output'}; console {res.console})")
    if not ok:
        tcg = boot(VmRequest(kernel=kernel, command="true", out_dir=out, accel="tcg",
                             root=root, memory="512M", cpus=1, timeout=TCG_PROBE_TIMEOUT,
                             name="tcg-probe", append=list(append or [])), log_dir)
        if tcg.guest_rc != 0:
            return False, (reason + f"; the same boot fails under TCG too (console "
                           f"{tcg.console}): not a KVM problem, not cached")
    cache.write_text(json.dumps({"key": key, "ok": ok, "reason": reason}) + "\n")
    return ok, reason


def choose_accel(requested: str, kernel: Path, root: Path | None,
                 log_dir: Path, append: list[str] | None = None) -> tuple[str, str | None]:
    """(accel, warning). auto: KVM only if a probe boot really works (with
    the run's own kernel arguments, `append`)."""
    if requested in ("kvm", "tcg"):
        if requested == "kvm" and not kvm_usable_device():
            raise HarnessError("--accel kvm: /dev/kvm is missing or not accessible")
        return requested, None
    if requested != "auto":
        raise HarnessError(f"unknown --accel {requested!r} (auto, kvm or tcg)")
    if not kvm_usable_device():
        return "tcg", "no usable /dev/kvm: running under TCG (slower)"
    ok, reason = probe_kvm(kernel, root, log_dir, append)
    if ok:
        return "kvm", None
    return "tcg", (f"warning: /dev/kvm is present but {reason}; falling back to TCG. "
                   "(On a PVM/nested host KVM guests hang; use --accel tcg to skip the probe.)")
