"""doctor: what this host has, what it lacks, and the command that fixes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import HarnessError
from harness.proc import first_line
from harness.toolchain import MIN_PAHOLE, parse_version, tool_version

# Debian packages the host needs (same names on bookworm and trixie).
# The kernel toolchain itself lives in the build root (harness/toolchain.py).
HOST_PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "quilt": "quilt",
    "patch": "patch",
    "debootstrap": "debootstrap",
    "unshare": "util-linux",
    "dpkg-deb": "dpkg",
    "xz": "xz-utils",
    "git": "git",
    "perl": "perl",
    "mkfs.ext4": "e2fsprogs",
    "depmod": "kmod",
    "busybox": "busybox-static",
    "make": "make",
    # the unit tests build the guest's C workloads on the host (test_reqload.py)
    "gcc": "gcc",
}
EXTRA_PACKAGES = ["python3-venv", "python3-pip", "debian-archive-keyring", "ca-certificates"]
MIN_FREE_GB = 15


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    package: str | None = None


def os_release() -> dict[str, str]:
    data = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            k, _, v = line.partition("=")
            data[k] = v.strip('"')
    except OSError:
        pass
    return data


def machine() -> dict[str, Any]:
    """What a measurement ran on, for its environment record: runs from
    two sittings compare only when this matches (CPU model and count, host
    kernel, OS, QEMU), and the date."""
    import datetime
    import platform
    cpu = ""
    try:
        cpu = next((x.split(":", 1)[1].strip() for x in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if x.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
            "os": os_release().get("PRETTY_NAME", ""),
            "qemu": version_line("qemu-system-x86_64") if shutil.which("qemu-system-x86_64")
            else "", "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def version_line(tool: str) -> str:
    flags = {"qemu-system-x86_64": ["--version"], "quilt": ["--version"],
             "debootstrap": ["--version"], "git": ["--version"], "make": ["--version"],
             "perl": ["-e", "print $^V"], "xz": ["--version"], "patch": ["--version"],
             "mkfs.ext4": ["-V"], "busybox": []}
    line = first_line([tool, *flags.get(tool, ["--version"])], timeout=20, ok_only=False)
    return line[:80] if line else "present"


def kvm_probe_now(build_dir: Path | None = None) -> str:
    """Boot a built kernel under KVM (harness/vm.py's probe): `build_dir`'s
    (doctor --build-dir), else the default build of the Debian tree."""
    from harness import build, source, toolchain, vm
    from harness.errors import HarnessError

    try:
        if build_dir is None:
            info = source.resolve(None, Path("/dev/null"), fetch=False)
            build_dir = build.default_build_dir(Path(info.tree))
        built = build.built_info(build_dir)
        root = toolchain.buildroot_path()
        if not (root / ".harness-complete").exists():
            return "no build root yet to probe with (run: harness build)"
        probe = vm.probe_cache()
        if probe.exists():
            probe.unlink()
        log_dir = paths.cache_root() / "doctor-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        ok, reason = vm.probe_kvm(Path(built.image), root, log_dir)
        return f"probe: {'boots' if ok else 'does NOT boot'} ({reason})"
    except HarnessError as e:
        return f"no kernel to probe with yet ({e.message})"


def checks(probe_kvm: bool = False, build_dir: Path | None = None) -> list[Check]:
    rel = os_release()
    out = [Check("distro", rel.get("ID") == "debian" and rel.get("VERSION_ID") in ("12", "13"),
                 rel.get("PRETTY_NAME", "unknown"))]
    out.append(Check("python", sys.version_info >= (3, 11), sys.version.split()[0]))
    out.append(Check("root", os.geteuid() == 0,
                     "uid 0" if os.geteuid() == 0 else "not root: build root and "
                     "--install need root"))
    for tool, pkg in HOST_PACKAGES.items():
        path = shutil.which(tool)
        out.append(Check(tool, bool(path), version_line(tool) if path else "missing", pkg))
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        v = parse_version(version_line("qemu-system-x86_64"))
        out.append(Check("qemu>=7.0", v >= (7, 0), ".".join(map(str, v)), "qemu-system-x86"))
    vng = Path(sys.executable).parent / "vng"
    vng_found = str(vng) if vng.exists() else shutil.which("vng")
    out.append(Check("vng", bool(vng_found),
                     version_line(vng_found) if vng_found else
                     "missing: pip install virtme-ng==1.42 (ci/bootstrap.sh)"))
    pahole = tool_version(["pahole", "--version"]) if shutil.which("pahole") else None
    pv = parse_version(pahole or "")
    out.append(Check("host pahole (info)", True,
                     f"{pahole or 'missing'}; "
                     + ("suffices for --toolchain host" if pv and pv >= MIN_PAHOLE else
                        f"< {'.'.join(map(str, MIN_PAHOLE))}: kernels build in the Debian 13 "
                        "build root (default)")))
    dev = Path("/dev/kvm")
    kvm = "absent" if not dev.exists() else (
        "present, accessible" if os.access(dev, os.R_OK | os.W_OK) else "present, no access")
    if probe_kvm and os.access(dev, os.R_OK | os.W_OK):
        kvm += "; " + kvm_probe_now(build_dir)
    else:
        probe = paths.cache_root() / "kvm-probe.json"
        if probe.exists():
            data = json.loads(probe.read_text())
            kvm += (f"; last probe: {'boots' if data['ok'] else 'does NOT boot'} "
                    f"({data['reason']})")
        else:
            kvm += "; not probed yet (doctor --probe-kvm, or the first `vm --accel auto`)"
    out.append(Check("kvm (info)", True, kvm))
    root = paths.cache_root()
    st = os.statvfs(root)
    free = st.f_bavail * st.f_frsize / 2**30
    out.append(Check(f"disk>={MIN_FREE_GB}G", free >= MIN_FREE_GB,
                     f"{free:.0f} GiB free in {root}"))
    return out


def missing_packages(results: list[Check]) -> list[str]:
    pkgs = sorted({c.package for c in results if not c.ok and c.package})
    return pkgs


def install_command(pkgs: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]


def install(pkgs: list[str]) -> None:
    if os.geteuid() != 0:
        raise HarnessError("--install needs root", hint="sudo python3 -m harness doctor --install")
    rel = os_release()
    if rel.get("ID") != "debian" or rel.get("VERSION_ID") not in ("12", "13"):
        raise HarnessError(f"--install supports Debian 12 and 13, not {rel.get('PRETTY_NAME')}",
                           hint="install the equivalents of: " + " ".join(pkgs))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=1800)
    subprocess.run(install_command(pkgs), check=True, env=env, timeout=3600)


def all_host_packages() -> list[str]:
    return sorted(set(HOST_PACKAGES.values()) | set(EXTRA_PACKAGES))
