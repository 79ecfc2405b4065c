"""Every subprocess the harness runs has a timeout: a hung tool (git, apt,
b4, a guest helper) ends the run with an error instead of hanging a CI job
until its own limit kills everything without a report."""
import argparse
import ast
from pathlib import Path
from typing import NoReturn

import pytest

HARNESS = Path(__file__).resolve().parents[1]
CALLS = {"run", "check_output", "check_call", "call"}


def calls_without_timeout(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr in CALLS and isinstance(f.value, ast.Name)
                and f.value.id == "subprocess"):
            if not any(k.arg == "timeout" for k in node.keywords):
                out.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno} "
                           f"subprocess.{f.attr}")
        if (isinstance(f, ast.Attribute) and f.attr in ("wait", "communicate")
                and not node.args and not any(k.arg == "timeout" for k in node.keywords)):
            out.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno} .{f.attr}()")
    return out


def test_every_subprocess_call_has_a_timeout() -> None:
    missing = [m for p in sorted(HARNESS.rglob("*.py")) if "tests" not in p.parts
               for m in calls_without_timeout(p)]
    assert not missing, "no timeout:\n" + "\n".join(missing)


def test_the_check_sees_a_call_without_timeout(tmp_path: Path) -> None:
    f = HARNESS / "tests" / "data" / "_timeouts_probe.py"
    f.write_text("import subprocess\nsubprocess.run(['true'])\np.wait()\n"
                 "subprocess.run(['true'], timeout=5)\n")
    try:
        assert [m.split()[-1] for m in calls_without_timeout(f)] == ["subprocess.run",
                                                                      ".wait()"]
    finally:
        f.unlink()


def test_a_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    from harness import cli

    def hang(args: argparse.Namespace) -> NoReturn:
        raise subprocess.TimeoutExpired(["git", "-C", "/t", "describe"], 600)
    monkeypatch.setattr(cli, "cmd_doctor", hang)
    assert cli.main(["doctor"]) == 2
    assert "git -C /t describe did not finish within 600 s" in capsys.readouterr().err


def test_a_suite_that_overruns_gets_sigterm_to_clean_up(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """run_suite passes SIGTERM on (as it does for our own SIGTERM or
    Ctrl-C): the suite's conftest turns it into KeyboardInterrupt, which
    kills the VM it runs, instead of leaving QEMU behind."""
    import subprocess
    import sys

    from harness import pipeline
    flag = tmp_path / "got-term"
    code = ("import signal, sys, time\n"
            "def term(*a):\n"
            f"    open({str(flag)!r}, 'w').write('term'); sys.exit(3)\n"
            "signal.signal(signal.SIGTERM, term)\n"
            "time.sleep(60)\n")
    monkeypatch.setattr(pipeline, "SUITE_TIMEOUT_S", 1.0)
    with pytest.raises(subprocess.TimeoutExpired):
        pipeline.run_suite([sys.executable, "-c", code], env={})
    assert flag.read_text() == "term"
