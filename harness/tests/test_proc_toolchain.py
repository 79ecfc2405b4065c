import os
from pathlib import Path

import pytest

from harness import proc, toolchain
from harness.errors import HarnessError, MissingTool


def test_missing_tool_names_package() -> None:
    with pytest.raises(MissingTool) as ei:
        proc.require("surely-not-a-tool-xyz", "some-package")
    assert "apt-get install -y some-package" in str(ei.value)


def test_run_logged_captures_and_times_out(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    r = proc.run_logged(["sh", "-c", "echo hello; exit 4"], log)
    assert r.returncode == 4 and not r.timed_out
    assert "hello" in log.read_text()
    r = proc.run_logged(["sh", "-c", "echo start; sleep 30"], log, timeout=1)
    assert r.timed_out and r.duration_s < 15
    assert "start" in log.read_text()


def test_parse_version() -> None:
    assert toolchain.parse_version("v1.24") == (1, 24)
    assert toolchain.parse_version("QEMU emulator version 7.2.19") == (7, 2, 19)
    assert toolchain.parse_version("none") == ()


def test_chroot_argv_binds_same_paths(tmp_path: Path) -> None:
    argv = toolchain.chroot_argv(tmp_path / "root", ["make", "-j3"], env={"A": "1"},
                                 binds=[tmp_path / "src", tmp_path / "src"], cwd=tmp_path / "src")
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    script = argv[-1]
    assert script.count("mount --bind") == 1  # deduplicated
    assert f"mount --bind {tmp_path / 'src'} {tmp_path / 'root'}{tmp_path / 'src'}" in script
    assert "env -i" in script and "A=1" in script and "make -j3" in script


def test_buildroot_key_tracks_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    k1 = toolchain.buildroot_key()
    monkeypatch.setattr(toolchain, "GUEST_PACKAGES", toolchain.GUEST_PACKAGES + ["x"])
    assert toolchain.buildroot_key() != k1


def test_host_toolchain_refused_with_reason(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(toolchain, "host_build_problems", lambda: ["pahole 1.24 < 1.26"])
    with pytest.raises(Exception, match="pahole 1.24"):
        toolchain.make_toolchain("host", tmp_path)


def test_buildroot_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(Exception) as ei:
        toolchain.ensure_buildroot(tmp_path)
    assert "needs root" in str(ei.value) and "--toolchain host" in str(ei.value)


def test_buildroot_reused_when_complete(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = toolchain.buildroot_path()
    root.mkdir(parents=True)
    (root / ".harness-complete").write_text("x\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # would fail if it rebuilt
    assert toolchain.ensure_buildroot(tmp_path) == root


def test_an_existing_build_root_is_still_refused_without_root(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The build root exists (made by root earlier); a non-root user gets a
    clear error at once, not a failed mount in a build log later."""
    monkeypatch.setattr(toolchain, "ensure_buildroot", lambda log_dir: tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HarnessError, match="needs root") as ei:
        toolchain.make_toolchain("buildroot", tmp_path)
    assert "--toolchain host" in str(ei.value)
    with pytest.raises(HarnessError, match="running make in the build root needs root"):
        toolchain.Toolchain("buildroot", root=tmp_path).wrap(["make"])
