"""The build record (.harness-build.json) says which image a boot gets. A
build that fails, or a config that changed, must not leave the record of
the last good build behind: the next boot would test a stale kernel."""
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import build as kbuild
from harness import locks
from harness.errors import HarnessError
from harness.toolchain import Toolchain


class TC(Toolchain):
    """The host's, running a command as it is."""

    def wrap(self, argv: list[str], env: dict[str, str] | None = None,
             binds: list[Path] | None = None, cwd: Path | None = None) -> list[str]:
        return argv


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    yield
    locks.release_all()


def test_a_failed_build_leaves_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = tmp_path / "build"
    b.mkdir()
    (b / ".config").write_text("CONFIG_X=y\n")
    (b / ".harness-build.json").write_text(json.dumps({"release": "7.3.4-old"}))
    assert kbuild.built_info(b).release == "7.3.4-old"
    log = tmp_path / "build.log"
    log.write_text("mm/memcontrol.c:1:1: error: expected ';'\n")
    monkeypatch.setattr(kbuild, "run_logged", lambda *a, **k: SimpleNamespace(
        timed_out=False, returncode=2, duration_s=1.0, log=log))
    kb = kbuild.KernelBuild(tree=tmp_path / "tree", build=b, toolchain=TC("host"), log_dir=tmp_path)
    with pytest.raises(HarnessError, match="kernel build failed"):
        kb.build_kernel()
    with pytest.raises(HarnessError, match="no built kernel"):
        kbuild.built_info(b)


def test_a_partial_build_keeps_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = tmp_path / "build"
    b.mkdir()
    (b / ".config").write_text("CONFIG_X=y\n")
    (b / ".harness-build.json").write_text(json.dumps({"release": "7.3.4"}))
    monkeypatch.setattr(kbuild, "run_logged", lambda *a, **k: SimpleNamespace(
        timed_out=False, returncode=0, duration_s=1.0, log=tmp_path / "l"))
    kb = kbuild.KernelBuild(tree=tmp_path / "tree", build=b, toolchain=TC("host"), log_dir=tmp_path)
    kb.build_kernel(targets=["mm/"])  # objects only: the image is still the recorded one
    assert kbuild.built_info(b).release == "7.3.4"
