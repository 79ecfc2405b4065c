"""Paths reach the shell quoted (review m16): a path with a space or a
quote stays one word."""

import shlex
import subprocess
from pathlib import Path

from harness import build, vm


def test_guest_tools_script_quotes_its_paths() -> None:
    tree, out = Path("/a b/li'nux"), Path("/c d/out")
    script = build.guest_tools_script(tree, Path("/b x"), Path("/s y"), out, 3)
    make = next(ln for ln in script.splitlines() if ln.startswith("make "))
    words = shlex.split(make)
    assert words[:4] == ["make", "-s", "-C", f"{tree}/tools/lib/bpf"]
    assert f"OUTPUT={out}/libbpf/" in words
    assert subprocess.run(["bash", "-n"], input=script, text=True, timeout=30).returncode == 0


def test_the_guest_wrapper_quotes_its_directory(tmp_path: Path) -> None:
    d = tmp_path / "out dir"
    d.mkdir()
    r = subprocess.run(["bash", "-c", vm.wrap_command("echo hi", str(d))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "hi" in r.stdout
    assert (d / "rc").read_text().strip() == "0"
