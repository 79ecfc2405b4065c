"""send: b4 prep (enroll, cover letter, recipients, --check) and the mails."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.send.common import _ANSI, _CHECK_SUMMARY, B4_PIN, Runner, _config_env, git


def b4_argv() -> list[str]:
    """The b4 of this Python environment (the pinned one), else PATH's."""
    local = Path(sys.executable).with_name("b4")
    if local.exists():
        return [str(local)]
    found = shutil.which("b4")
    if found:
        return [found]
    raise HarnessError("'b4' not found",
                       hint=f"install it into the harness's environment: pip install {B4_PIN}")


def b4_version(b4: list[str]) -> str:
    r = subprocess.run([*b4, "--version"], capture_output=True, text=True, timeout=120)
    return (r.stdout.strip() or r.stderr.strip()).splitlines()[-1] if r.returncode == 0 else "?"


@dataclass
class CheckResult:
    summary: dict[str, int]  # b4's own: success (patches), warning and error (lines)
    issues: dict[str, list[str]]  # "sha: subject" -> the check's lines for that patch
    output: str
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """checkpatch's ERROR/WARNING/CHECK lines; "other" is anything else
        b4 reported (e.g. a helper script's traceback on stderr, which b4
        counts as an error)."""
        counts = {"error": 0, "warning": 0, "check": 0, "other": 0}
        for lines in self.issues.values():
            for line in lines:
                m = re.search(r"\b(ERROR|WARNING|CHECK): ", line)
                counts[m.group(1).lower() if m else "other"] += 1
        return counts

    @property
    def status(self) -> str:
        c = self.counts()
        if c["error"]:
            return "FAIL"
        return "WARN" if c["warning"] or c["check"] or c["other"] else "PASS"


def parse_b4_check(output: str) -> CheckResult:
    """`b4 prep --check` output: per-patch lines, indented issues, a summary."""
    text = _ANSI.sub("", output)
    m = _CHECK_SUMMARY.search(text)
    if not m:
        raise HarnessError("b4 prep --check printed no summary:\n" + text[-1000:])
    summary = {"success": int(m.group(1)), "warning": int(m.group(2)), "error": int(m.group(3))}
    issues: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        pm = re.match(r"^\S+ ([0-9a-f]{7,}: .*)$", line)
        if pm:
            current = pm.group(1)
            issues[current] = []
        elif current and re.match(r"^\s+\S+ ", line):
            issues[current].append(line.strip().split(" ", 1)[1])
        elif line.startswith("---") and current:
            current = None
    return CheckResult(summary, issues, text)


def spdxcheck_problem(repo: Path, env: dict[str, str]) -> str | None:
    """In a git tree checkpatch runs scripts/spdxcheck.py with the python3 of
    PATH, which needs the modules ply and git; without them each SPDX line
    gives a traceback, which b4 counts as an error."""
    if not (repo / ".git").exists() or not (repo / "scripts" / "spdxcheck.py").exists():
        return None
    py = shutil.which("python3", path=env.get("PATH"))
    if not py:
        return None
    r = subprocess.run([py, "-c", "import ply, git"], capture_output=True, text=True, env=env,
                       timeout=120)
    if r.returncode == 0:
        return None
    return (f"checkpatch's SPDX check cannot run: scripts/spdxcheck.py needs the Python modules "
            f"ply and git in {py} (Debian: apt-get install python3-ply python3-git); its "
            "tracebacks are in the check output")


def author_signoff_missing(repo: Path, commits: Sequence[str]) -> list[str]:
    """Subjects of commits whose author did not sign off. checkpatch reports
    that as an ERROR, but with --mailback (as b4 runs it) only on patches that
    have another problem too."""
    missing = []
    for c in commits:
        ae, subject, body = git(repo, "show", "-s", "--format=%ae%x1f%s%x1f%B", c).split("\x1f", 2)
        if not re.search(rf"^Signed-off-by:.*<{re.escape(ae)}>\s*$", body, re.M | re.I):
            missing.append(subject)
    return missing


def b4_prepare(repo: Path, base: str, cover: Path, b4: list[str], run: Runner) -> CheckResult:
    """b4 prep: enroll the branch, set the cover letter, To/Cc, check."""
    with run.step("b4_enroll", "b4 prep --enroll"):
        run.must([*b4, "--offline-mode", "-c", "b4.prep-cover-strategy=commit", "prep",
                  "--enroll", base], repo, "b4 prep --enroll")
    with run.step("b4_cover", f"b4 prep --edit-cover (from {cover})"):
        # b4's own editing path, with an "editor" that copies the file in:
        # core.editor outranks $EDITOR in b4, so set that (command-line scope).
        env = _config_env(run.env, {"core.editor": f"cp -- {shlex.quote(str(cover.resolve()))}"})
        out = run.must([*b4, "--offline-mode", "prep", "--edit-cover"], repo,
                       "b4 prep --edit-cover", env=env)
        if "Cover letter updated" not in out:
            raise HarnessError(f"b4 did not take the cover letter from {cover}:\n{out.strip()}")
    getm = repo / "scripts" / "get_maintainer.pl"
    with run.step("b4_auto_to_cc", "b4 prep --auto-to-cc"):
        if os.access(getm, os.X_OK):
            run.must([*b4, "--offline-mode", "prep", "--auto-to-cc"], repo, "b4 prep --auto-to-cc")
        else:
            run.prog.maybe(f"no executable {getm}: To/Cc not computed", force=True)
    note = spdxcheck_problem(repo, run.env)
    if note:
        run.prog.maybe(f"warning: {note}", force=True)
    with run.step("b4_check", "b4 prep --check (checkpatch)"):
        out = run.must([*b4, "--offline-mode", "prep", "--check"], repo, "b4 prep --check")
    result = parse_b4_check(out)
    result.notes += [note] if note else []
    return result


def b4_write_mails(repo: Path, mails: Path, b4: list[str], run: Runner) -> list[Path]:
    """b4 send -o: the mails as b4 would send them, written to `mails`.

    --no-sign: patatt signing needs a key, and the web endpoint (which b4
    picks in a kernel tree without sendemail.smtpserver) insists on signing;
    an inert smtpserver (never run with -o) keeps b4 off that path."""
    if mails.exists():
        shutil.rmtree(mails)
    with run.step("b4_send_o", f"b4 send -o {mails}"):
        run.must([*b4, "--offline-mode", "-c", "sendemail.smtpserver=/bin/false", "send",
                  "-o", str(mails.resolve()), "--no-sign"], repo, "b4 send -o")
    files = sorted(mails.glob("*.eml"))
    if not files:
        raise HarnessError(f"b4 send -o wrote no mails to {mails}", log=str(run.log))
    return files


def read_mail(path: Path) -> email.message.EmailMessage:
    with open(path, "rb") as f:
        return email.parser.BytesParser(policy=email.policy.default).parse(f)


def recipients(files: Sequence[Path]) -> tuple[list[str], list[str]]:
    """To and Cc of the series: the cover letter's, plus any per-patch Cc."""
    to: list[str] = []
    cc: list[str] = []
    seen: set[str] = set()
    for f in files:
        msg = read_mail(f)
        for dest, key in ((to, "To"), (cc, "Cc")):
            for header in msg.get_all(key, []):
                for a in header.addresses:
                    if a.addr_spec and a.addr_spec not in seen:
                        seen.add(a.addr_spec)
                        dest.append(f"{a.display_name} <{a.addr_spec}>" if a.display_name
                                    else a.addr_spec)
    return to, cc


def really_send(repo: Path, b4: list[str], run: Runner, diffs: list[str]) -> bool:
    """`b4 send` for real, on a terminal: b4 shows the recipients and asks."""
    if diffs:
        raise HarnessError("not sending: the mails do not round-trip (see above)")
    if not sys.stdin.isatty():
        raise HarnessError("--really-send needs a terminal: b4 asks for confirmation")
    print(f"\nb4 send in {repo}: b4 lists the recipients and asks before sending", flush=True)
    run.commands.append(f"(cd {repo} && {shlex.join([*b4, 'send'])})")
    r = subprocess.run([*b4, "send"], cwd=repo, env=run.env, timeout=3600)
    if r.returncode != 0:
        raise HarnessError(f"b4 send exited with {r.returncode}; nothing or not everything "
                           "was sent (see b4's messages above)")
    return True
