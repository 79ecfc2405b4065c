"""A test skipped for a missing tool fails in CI (MEMCG_BPF_NO_SKIP=1, set
by tox's unit environment), and is a skip elsewhere (review m19)."""

import os
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")


def run_one(tmp_path: Path, no_skip: str) -> int:
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_needs_tool.py").write_text(
        "import pytest\n\n\n@pytest.mark.skipif(True, reason='quilt not installed')\n"
        "def test_x() -> None:\n    pass\n")
    env = os.environ | {"MEMCG_BPF_NO_SKIP": no_skip}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120).returncode


def test_a_skip_fails_in_ci_only(tmp_path: Path) -> None:
    assert run_one(tmp_path / "a", "1") == 1
    assert run_one(tmp_path / "b", "0") == 0
