import stat
import time
from pathlib import Path
from typing import Any

import pytest

from harness import vm
from harness.errors import HarnessError


def req(tmp_path: Path, **kw: Any) -> vm.VmRequest:
    k = tmp_path / "bzImage"
    k.write_bytes(b"\0")
    base: dict[str, Any] = dict(kernel=k, command="uname -r", out_dir=tmp_path / "out",
                                accel="tcg", root=tmp_path / "root", timeout=20)
    base.update(kw)
    return vm.VmRequest(**base)


def test_argv_tcg_with_root_and_dirs(tmp_path: Path) -> None:
    r = req(tmp_path, rodirs=[("/harness-src", tmp_path)], disks=[tmp_path / "d.img"])
    argv = vm.vng_argv(r, "vng")
    assert argv[:3] == ["vng", "--run", str(r.kernel)]
    assert "--disable-kvm" in argv
    assert argv[argv.index("--root") + 1] == str(tmp_path / "root")
    assert argv[argv.index("--rwdir") + 1] == f"/harness-out={tmp_path / 'out'}"
    assert argv[argv.index("--rodir") + 1] == f"/harness-src={tmp_path}"
    assert argv[argv.index("--disk") + 1] == str(tmp_path / "d.img")
    assert "--verbose" in argv  # the whole console goes to the log
    assert "oops=panic" in argv[argv.index("--append") + 1]
    script = argv[argv.index("--exec") + 1]
    assert "( uname -r )" in script and "/harness-out/rc" in script and "HARNESS-RC=" in script


def test_argv_kvm_has_no_disable_flag(tmp_path: Path) -> None:
    assert "--disable-kvm" not in vm.vng_argv(req(tmp_path, accel="kvm"))
    with pytest.raises(HarnessError, match="unknown accelerator"):
        vm.vng_argv(req(tmp_path, accel="xen"))


def test_guest_rc_sources(tmp_path: Path) -> None:
    assert vm.guest_rc_from(tmp_path, "noise\nHARNESS-RC=3\n") == 3
    (tmp_path / "rc").write_text("7\n")
    assert vm.guest_rc_from(tmp_path, "HARNESS-RC=3\n") == 7
    (tmp_path / "rc").unlink()
    assert vm.guest_rc_from(tmp_path, "Kernel panic - not syncing") is None


def fake_vng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A stand-in for vng: a shell script that sees the same argv."""
    script = tmp_path / "vng"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(vm, "vng_path", lambda: str(script))
    monkeypatch.setattr(vm, "require", lambda *a: "/bin/true")
    return script


def test_boot_reads_rc_file_and_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vng(tmp_path, monkeypatch, 'echo "[ 0.1] Linux version 7.3.4"\necho HARNESS-START\n'
             f'echo 0 > {tmp_path}/out/rc\necho HARNESS-RC=0\nexit 255\n')
    res = vm.boot(req(tmp_path), tmp_path / "logs")
    assert res.ok and res.guest_rc == 0 and res.vng_rc == 255
    assert res.first_command_s is not None
    assert "Linux version" in res.console.read_text()


def test_boot_guest_failure_rc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vng(tmp_path, monkeypatch, f"echo 3 > {tmp_path}/out/rc\nexit 3\n")
    res = vm.boot(req(tmp_path), tmp_path / "logs")
    assert res.guest_rc == 3 and not res.ok
    assert res.problem() == "the guest command exited with 3"


def test_boot_panic_without_rc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vng(tmp_path, monkeypatch, 'echo "[ 1.0] BUG: kernel NULL pointer dereference"\n'
             'echo "[ 1.1] Kernel panic - not syncing: Fatal exception"\nexit 255\n')
    res = vm.boot(req(tmp_path), tmp_path / "logs")
    assert res.guest_rc is None
    assert [s.kind for s in res.splats] == ["bug", "panic"]
    problem = res.problem()
    assert problem is not None and "kernel splat" in problem and "NULL pointer" in problem


def test_boot_splat_fails_even_with_rc_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vng(tmp_path, monkeypatch, 'echo "[ 2.0] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1"\n'
             f"echo 0 > {tmp_path}/out/rc\n")
    res = vm.boot(req(tmp_path), tmp_path / "logs")
    assert res.guest_rc == 0 and not res.ok
    problem = res.problem()
    assert problem is not None and problem.startswith("kernel splat in the guest: warning")


def test_hung_vm_is_killed_and_log_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "child.pid"
    fake_vng(tmp_path, monkeypatch, f'echo booting\nsleep 300 &\necho $! > {pidfile}\nwait\n')
    res = vm.boot(req(tmp_path, timeout=2), tmp_path / "logs")
    assert res.timed_out and res.guest_rc is None
    problem = res.problem()
    assert problem is not None and "timed out" in problem
    assert "booting" in res.console.read_text()
    child = int(pidfile.read_text())
    # the whole process group was signalled, not just vng: the grandchild
    # goes away too (give the signal a moment to land)
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child)


def alive(pid: int) -> bool:
    """True if pid runs (a zombie waiting for its reaper does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stale_rc_file_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/rc").write_text("0\n")
    fake_vng(tmp_path, monkeypatch, "exit 255\n")
    assert vm.boot(req(tmp_path), tmp_path / "logs").guest_rc is None


def test_auto_without_kvm_device_is_tcg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: False)
    accel, warning = vm.choose_accel("auto", tmp_path / "k", None, tmp_path)
    assert accel == "tcg" and warning is not None and "TCG" in warning


def test_auto_falls_back_when_probe_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: True)
    calls: list[vm.VmRequest] = []

    def fake_boot(r: vm.VmRequest, log_dir: Path) -> vm.VmResult:
        calls.append(r)
        if r.accel == "tcg":  # the same kernel boots under TCG: KVM's fault
            return vm.VmResult("tcg", 0, 0, False, log_dir / "t.log", 6.0, 3.0, [])
        return vm.VmResult(accel="kvm", vng_rc=-15, guest_rc=None, timed_out=True,
                           console=log_dir / "c.log", duration_s=30, first_command_s=None,
                           splats=[])
    monkeypatch.setattr(vm, "boot", fake_boot)
    accel, warning = vm.choose_accel("auto", tmp_path / "k", None, tmp_path)
    assert accel == "tcg" and warning is not None and "falling back to TCG" in warning
    assert calls[0].accel == "kvm" and calls[0].timeout == vm.PROBE_TIMEOUT
    assert calls[1].accel == "tcg"
    # the verdict is cached: no second probe boot
    accel, warning = vm.choose_accel("auto", tmp_path / "k", None, tmp_path)
    assert accel == "tcg" and warning is not None and "(cached)" in warning and len(calls) == 2


def test_a_kernel_that_fails_everywhere_is_no_kvm_verdict(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that panics under KVM and under TCG says nothing about KVM:
    nothing is cached, and the next run (a fixed kernel) probes again."""
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: True)
    console = tmp_path / "c.log"
    console.write_text("Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    calls: list[str] = []

    def broken(r: vm.VmRequest, d: Path) -> vm.VmResult:
        calls.append(r.accel)
        return vm.VmResult(r.accel, 255, None, False, console, 2.0, None, [])
    monkeypatch.setattr(vm, "boot", broken)
    accel, warning = vm.choose_accel("auto", tmp_path / "k", None, tmp_path)
    assert accel == "tcg" and warning is not None and "not a KVM problem" in warning
    assert calls == ["kvm", "tcg"]
    assert not vm.probe_cache().exists()
    monkeypatch.setattr(vm, "boot", lambda r, d: vm.VmResult(
        r.accel, 0, 0, False, console, 1.0, 0.5, []))
    assert vm.choose_accel("auto", tmp_path / "k", None, tmp_path) == ("kvm", None)


def test_kvm_verdict_is_keyed_by_qemu_and_vng_versions(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"qemu": "QEMU emulator version 7.2.19", "vng": "virtme-ng 1.38"}
    monkeypatch.setattr(vm, "tool_version", lambda argv: versions[
        "qemu" if "qemu" in argv[0] else "vng"])
    k1 = vm.probe_key()
    versions["vng"] = "virtme-ng 1.39"
    k2 = vm.probe_key()
    versions["qemu"] = "QEMU emulator version 10.0.2"
    assert len({k1, k2, vm.probe_key()}) == 3


def test_auto_uses_kvm_when_probe_boots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: True)
    monkeypatch.setattr(vm, "boot", lambda r, d: vm.VmResult(
        "kvm", 0, 0, False, d / "c", 1.0, 0.5, []))
    assert vm.choose_accel("auto", tmp_path / "k", None, tmp_path) == ("kvm", None)


def test_forced_kvm_needs_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: False)
    with pytest.raises(HarnessError, match="/dev/kvm"):
        vm.choose_accel("kvm", tmp_path / "k", None, tmp_path)


def test_host_root_uses_host_paths_in_guest(tmp_path: Path) -> None:
    r = req(tmp_path, root=None)
    argv = vm.vng_argv(r, "vng")
    assert "--root" not in argv
    assert argv[argv.index("--rwdir") + 1] == f"{tmp_path / 'out'}={tmp_path / 'out'}"
    assert f"cd {tmp_path / 'out'}" in argv[argv.index("--exec") + 1]
    assert vm.guest_src(None) != vm.GUEST_SRC and vm.guest_src(tmp_path) == vm.GUEST_SRC


def test_force_9p_flag(tmp_path: Path) -> None:
    assert "--force-9p" in vm.vng_argv(req(tmp_path, force_9p=True))
    assert "--force-9p" not in vm.vng_argv(req(tmp_path, force_9p=False))


def test_probe_that_fails_fast_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "kvm_usable_device", lambda: True)
    console = tmp_path / "c.log"
    console.write_text("$ vng ...\nqemu-system-x86_64: error: failed to set MSR 0x10a\n")
    monkeypatch.setattr(vm, "boot", lambda r, d: vm.VmResult(
        "kvm", 255, None, False, console, 1.0, None, []))
    accel, warning = vm.choose_accel("auto", tmp_path / "k", None, tmp_path)
    assert accel == "tcg" and warning is not None
    assert "failed (vng rc 255: qemu-system-x86_64: error" in warning
