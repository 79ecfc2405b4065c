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
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode:
            return None, f"{' '.join(argv)}: {r.stderr.strip()[-300:]}"
    return mnt, ""
