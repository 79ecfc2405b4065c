"""Runs in the guest: the host's scratch disk (vng --disk PATH), made ext4
and mounted. Shared by selftests.py and throttle.py (same directory)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def find_disk(serial: str) -> str | None:
    """The virtio disk the host attached (vng --disk PATH gives it the
    serial PATH, cut to 20 characters); else the only one. No udev here."""
    devs = sorted(Path("/sys/block").glob("vd*"))
    for dev in devs:
        s = dev / "serial"
        text = s.read_text().strip() if s.exists() else ""
        if text and serial.startswith(text):
            return f"/dev/{dev.name}"
    return f"/dev/{devs[0].name}" if len(devs) == 1 else None


def mount_ext4(serial: str, mnt: str = "/tmp/disk") -> tuple[str | None, str]:
    """(mount point, "") with a fresh ext4 on the scratch disk, or (None,
    what went wrong)."""
    dev = find_disk(serial)
    if not dev:
        return None, "no scratch disk found"
    os.makedirs(mnt, exist_ok=True)
    for argv in (["mkfs.ext4", "-q", "-F", dev], ["mount", "-t", "ext4", dev, mnt]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode:
            return None, f"{' '.join(argv)}: {r.stderr.strip()[-300:]}"
    return mnt, ""


def swap_on(mnt: str, size_mb: int) -> str:
    """A swap file of size_mb on the mounted scratch disk, enabled; "" or
    what went wrong."""
    for argv in (["fallocate", "-l", f"{size_mb}M", f"{mnt}/swapfile"],
                 ["chmod", "600", f"{mnt}/swapfile"],
                 ["mkswap", f"{mnt}/swapfile"], ["swapon", f"{mnt}/swapfile"]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode:
            return f"{' '.join(argv)}: {r.stderr.strip()[-300:]}"
    return ""


def zram_on(size_mb: int, dev: str = "zram0") -> str:
    """size_mb of zram (compressed RAM, the kernel's default compressor) as
    the only swap; "" or what went wrong."""
    sysfs = Path("/sys/block", dev)
    if not sysfs.exists():
        return f"no {sysfs}: a kernel without CONFIG_ZRAM"
    try:
        (sysfs / "disksize").write_text(f"{size_mb}M")
    except OSError as e:
        return f"{sysfs}/disksize: {e}"
    for argv in (["mkswap", f"/dev/{dev}"], ["swapon", f"/dev/{dev}"]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode:
            return f"{' '.join(argv)}: {r.stderr.strip()[-300:]}"
    return ""


def swap_off(mnt: str) -> str:
    """Disable and remove the swap file of swap_on(); "" or what went wrong."""
    r = subprocess.run(["swapoff", f"{mnt}/swapfile"], capture_output=True, text=True,
                       timeout=600)
    if r.returncode:
        return f"swapoff: {r.stderr.strip()[-300:]}"
    Path(mnt, "swapfile").unlink(missing_ok=True)
    return ""
