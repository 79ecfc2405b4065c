"""The CI entry point's exit status from tox's result JSON: 0 PASS, 1 FAIL
(the change under test failed: a test, a patch, a build, lint), 2 ERROR
(the infrastructure or the usage). tox itself returns 1 for any failure of
several environments, which loses that split (harness-v2 review, N5).

    python -m harness.ci_verdict TOX_RESULT_JSON OUT_DIR

Each environment's verdict:
- lint, unit: the tool's status 1 is FAIL (ruff found something, a test
  failed); any other failure is ERROR (pytest: interrupted, internal error,
  usage);
- vm and the other pytest suites that drive the guest: the status of the
  report.json the suite wrote (OUT_DIR/pytest/report.json, selftests/
  conftest.py), ERROR if there is none;
- series: its commands are harness verbs, whose status already is 0/1/2.
The run's verdict is the worst of them (ERROR over FAIL over PASS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CODES = {"PASS": 0, "FAIL": 1, "ERROR": 2}
TOOLS = {"lint", "unit"}  # a status 1 from their tool is a FAIL
VERBS = {"series"}  # their commands are harness verbs (0/1/2)


def env_verdict(name: str, env: dict[str, Any], out: Path) -> tuple[str, str]:
    """(verdict, why) of one tox environment."""
    result = env.get("result", {})
    if result.get("success", False) or result.get("skipped"):
        return "PASS", "passed" if result.get("success") else "skipped"
    if any(c.get("retcode", 0) != 0 for c in env.get("setup", [])):
        return "ERROR", "its set-up failed (installing the environment)"
    codes = [c.get("retcode", 0) for c in env.get("test", [])]
    bad = [c for c in codes if c != 0]
    if not bad:
        return "ERROR", f"tox says it failed (exit {result.get('exit_code')}), no command did"
    if name in TOOLS:
        return ("FAIL", "a check or test failed") if set(bad) == {1} else \
            ("ERROR", f"the tool exited {bad[0]}")
    if name in VERBS:
        return ("FAIL", "a verb reported FAIL") if set(bad) == {1} else \
            ("ERROR", f"a verb exited {[c for c in bad if c != 1][0]}")
    rep = out / "pytest" / "report.json"
    if not rep.exists():
        return "ERROR", f"pytest exited {bad[0]} and wrote no {rep}"
    status = json.loads(rep.read_text()).get("status", "ERROR")
    if status == "PASS":
        return "ERROR", f"pytest exited {bad[0]} but {rep} says PASS"
    return status, f"{rep}: {status}"


def verdict(result_json: Path, out: Path) -> tuple[int, list[str]]:
    data = json.loads(result_json.read_text())
    lines, worst = [], "PASS"
    for name, env in sorted(data.get("testenvs", {}).items()):
        if name.startswith("."):  # tox's packaging environments
            continue
        v, why = env_verdict(name, env, out)
        lines.append(f"{name}: {v} ({why})")
        if CODES[v] > CODES[worst]:
            worst = v
    lines.append(f"verdict: {worst}")
    return CODES[worst], lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    result_json, out = Path(argv[0]), Path(argv[1])
    if not result_json.exists():
        print(f"ci_verdict: no {result_json}: tox did not get as far as running", file=sys.stderr)
        return 2
    try:
        code, lines = verdict(result_json, out)
    except (ValueError, KeyError, OSError) as e:
        print(f"ci_verdict: cannot read {result_json}: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
