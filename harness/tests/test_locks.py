"""harness.locks: two runs on one tree or build directory wait for each
other instead of corrupting each other."""
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import build as kbuild
from harness import locks, series
from harness.errors import HarnessError
from harness.toolchain import Toolchain

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_locks_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(locks.ENV, raising=False)
    yield
    locks.release_all()


def holder(target: Path) -> subprocess.Popen[str]:
    """Another harness process holding the lock on `target`."""
    code = ("import sys, time; from pathlib import Path; from harness import locks; "
            "locks.hold(Path(sys.argv[1]), 'kernel tree'); print('held', flush=True); "
            "time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=REPO,
                         stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "held"
    return p


def test_quilt_on_a_tree_in_use_waits_then_fails(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    monkeypatch.setenv("MEMCG_BPF_LOCK_TIMEOUT", "1")
    p = holder(tree)
    try:
        t = time.monotonic()
        with pytest.raises(HarnessError, match=f"in use by pid {p.pid}"):
            series.Quilt(tree, tmp_path / "log")
        assert time.monotonic() - t >= 1.0
    finally:
        p.kill()
        p.wait()
    series.Quilt(tree, tmp_path / "log")  # free again: taken at once


def test_a_build_in_a_build_dir_in_use_does_not_start(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree, bdir = tmp_path / "tree", tmp_path / "build"
    tree.mkdir()
    bdir.mkdir()
    (bdir / ".config").write_text("")
    monkeypatch.setenv("MEMCG_BPF_LOCK_TIMEOUT", "0.5")
    ran = []
    monkeypatch.setattr(kbuild, "run_logged", lambda *a, **k: ran.append(a))

    class TC(Toolchain):
        def wrap(self, argv: list[str], env: dict[str, str] | None = None,
                 binds: list[Path] | None = None, cwd: Path | None = None) -> list[str]:
            return argv
    kb = kbuild.KernelBuild(tree=tree, build=bdir, toolchain=TC("host"), log_dir=tmp_path)
    p = holder(bdir)
    try:
        with pytest.raises(HarnessError, match="build directory"):
            kb.build_kernel()
    finally:
        p.kill()
        p.wait()
    assert not ran  # make never started


def test_a_child_uses_its_parents_locks(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    locks.hold(tree, "kernel tree")
    env = dict(os.environ, **locks.held_env(), MEMCG_BPF_LOCK_TIMEOUT="1")
    code = ("import sys; from pathlib import Path; from harness import locks; "
            "locks.hold(Path(sys.argv[1]), 'kernel tree'); print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(tree)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "ok", r.stderr
    # without the hand-down, the child waits and fails
    env.pop(locks.ENV)
    r = subprocess.run([sys.executable, "-c", code, str(tree)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "in use by" in r.stderr


def test_the_same_process_takes_its_own_lock_again(tmp_path: Path) -> None:
    locks.hold(tmp_path, "kernel tree")
    locks.hold(tmp_path, "kernel tree", timeout=0)


def test_a_scoped_lock_is_given_back_after_its_block(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a cache entry (build root, unpacked tree, download) holds
    the entry's lock for the creation only: another run waits for it, and
    can go on as soon as the block ends, not when this process exits."""
    import fcntl
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = tmp_path / "rootfs"
    with locks.scoped(target, "build root being created"):
        fd = os.open(locks.lock_file(target), os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with locks.scoped(target, "the same, nested"):  # not taken twice
            pass
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    os.close(fd)


def test_a_second_creator_waits_then_finds_the_entry_made(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """source.debian_tree's pattern: re-check inside the lock."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MEMCG_BPF_LOCK_TIMEOUT", "20")
    dest = tmp_path / "tree"
    code = ("import sys, time; from pathlib import Path; from harness import locks\n"
            "d = Path(sys.argv[1])\n"
            "with locks.scoped(d, 'kernel tree being unpacked'):\n"
            "    print('held', flush=True); time.sleep(2); d.mkdir(); (d / 'Makefile').touch()\n")
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-c", code, str(dest)], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "held"
    made = []
    with locks.scoped(dest, "kernel tree being unpacked"):
        if not (dest / "Makefile").exists():
            made.append("again")
    p.wait(timeout=30)
    assert made == [] and (dest / "Makefile").exists()
