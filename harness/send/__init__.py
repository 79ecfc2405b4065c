"""send: turn the quilt series into mails with b4, and check they apply.

1. A git base: the user's kernel tree (--kernel-dir, a clean git checkout;
   the series goes on branch memcg-bpf/send at --base, default HEAD), or a
   repository made once from the harness's Debian tree: a copy of the tree
   with the quilt series popped (the tree itself is only read), committed as
   "Linux 7.3.4 (Debian linux-source-7.3 ...)" under
   ~/.cache/memcg-bpf/send/<tree>/repo.
2. `git quiltimport` of patches/series onto the base (author and subject from
   each patch's From:/Subject:), then the sender's Signed-off-by (the git
   identity b4 uses: user.name/user.email) appended to every commit unless it
   is already among its trailers; other trailers stay as written in patches/.
3. b4: `prep --enroll BASE`, the cover letter from patches/cover-letter.txt
   (b4's own `prep --edit-cover`, with an editor that copies the file),
   `prep --auto-to-cc` (scripts/get_maintainer.pl), `prep --check`
   (scripts/checkpatch.pl), `send -o DIR` (writes the mails, sends nothing).
4. Round trip: the mails are applied with `git am` on a clean checkout of
   the base (a git worktree); the result must equal, tree and commit
   messages, the imported branch, and, tree, `quilt push -a` of patches/.

With --upstream the series is patches/upstream (the memcg part rebased on
upstream, with its own cover letter) and the base must be the user's
bpf-next checkout (--kernel-dir): that part does not apply to 7.3.

Nothing is sent unless --really-send is given; then b4 asks for confirmation
itself (b4 send has no option that skips its prompt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths, source
from harness.errors import HarnessError
from harness.proc import require, tail
from harness.record import StageRecord, Status
from harness.report import write_json
from harness.send.b4 import (
    CheckResult,
    author_signoff_missing,
    b4_argv,
    b4_prepare,
    b4_version,
    b4_write_mails,
    parse_b4_check,
    really_send,
    recipients,
    spdxcheck_problem,
)
from harness.send.base import (
    _reset_own_repo,
    add_signoffs,
    check_patches,
    debian_base,
    import_series,
    user_base,
)
from harness.send.common import B4_PIN, B4_VERSION, BRANCH, COVER, PATCHES, Runner, git
from harness.send.identity import Identity, identity
from harness.send.roundtrip import round_trip
from harness.series import UPSTREAM

# The pieces, for callers and tests: identity (the sender), base (the git
# base and the imported series), b4 (prep, check, mails), roundtrip.
__all__ = ["B4_PIN", "B4_VERSION", "BRANCH", "CheckResult", "Identity", "Runner", "SendOptions",
           "add_parser", "add_signoffs", "author_signoff_missing", "b4_argv", "b4_prepare",
           "b4_version", "b4_write_mails", "check_patches", "cmd_send", "debian_base",
           "identity", "import_series", "parse_b4_check", "really_send", "recipients",
           "round_trip", "send", "source", "spdxcheck_problem", "user_base"]


@dataclass
class SendOptions:
    kernel_dir: Path | None = None
    base: str | None = None
    patches: Path = PATCHES
    cover: Path = COVER
    out_dir: Path = field(default_factory=lambda: paths.default_out() / "send")  # --out
    reset_author: bool = False
    really_send: bool = False
    upstream: bool = False  # the memcg part on the user's bpf-next (needs kernel_dir)
    records: list[StageRecord] = field(default_factory=list)  # the stage records, by send()


def _print_summary(res: dict[str, Any]) -> None:
    print(f"\nbranch {res['branch']} in {res['repo']} (base {res['base']['commit'][:12]}: "
          f"{res['base']['label']})")
    print(f"mails ({len(res['files'])}) in {Path(res['files'][0]).parent}:")
    for f in res["files"]:
        print(f"  {Path(f).name}")
    print("To: " + (", ".join(res["to"]) or "(none)"))
    print("Cc: " + (", ".join(res["cc"]) or "(none)"))
    chk = res["check"]
    s, c = chk["summary"], chk["counts"]
    print(f"b4 prep --check: {chk['status']}: checkpatch {c['error']} errors, {c['warning']} "
          f"warnings, {c['check']} checks, {c['other']} other lines (b4's summary: "
          f"Success: {s['success']}, Warning: {s['warning']}, Error: {s['error']}); "
          f"output: {chk['file']}")
    for subject, lines in chk["issues"].items():
        for line in lines:
            if (re.search(r"\b(ERROR|WARNING|CHECK): ", line)
                    and "by nominal patch author" not in line):  # listed below, for all
                print(f"  {subject[:50]}: {line}")
    for subject in chk["author_signoff_missing"]:
        print(f"  {subject[:50]}: the author has no Signed-off-by (checkpatch ERROR; "
              "without --keep-author the sender is the author and signs off)")
    for note in chk["notes"]:
        print(f"  note: {note}")
    rt = res["round_trip"]
    print("round trip (git am of the mails vs the branch and quilt push -a): "
          + ("OK" if rt["ok"] else "FAILED"))
    for d in rt["differences"]:
        print(f"  {d}")


def send(opts: SendOptions) -> dict[str, Any]:
    """The whole flow; returns what send.json holds. Its status is PASS when
    the mails were written and round-trip; check.status (PASS/WARN/FAIL) is
    checkpatch's verdict, reported beside it."""
    out = opts.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "send.log"
    log.write_text("")
    (out / "send.json").unlink(missing_ok=True)
    require("git", "git")
    names = check_patches(opts.patches)
    if not opts.cover.is_file():
        raise HarnessError(f"cover letter {opts.cover} not found",
                           hint="its first line is the subject of mail 0/N, then a blank line "
                           "and the text (lines starting with # are b4 comments: write >#)")
    if opts.upstream and opts.kernel_dir is None:
        raise HarnessError("--upstream sends the memcg part rebased on upstream: it goes on "
                           "your bpf-next checkout, not on the Debian 7.3 tree",
                           hint="pass --kernel-dir DIR (a clean git checkout of bpf-next); "
                           "`harness series --check-apply DIR` tells first whether it applies")
    if opts.base and opts.kernel_dir is None:
        raise HarnessError("--base goes with --kernel-dir (the Debian tree's base is the "
                           "tree without the series)")
    user = None
    if opts.kernel_dir is not None:
        repo, base, user = user_base(opts.kernel_dir, opts.base)
        ident = identity(repo)
    else:
        ident = identity()  # before minutes of base making
    b4 = b4_argv()
    version = b4_version(b4)
    if version != B4_VERSION:
        print(f"warning: b4 {version}; the harness is tested with {B4_PIN}", file=sys.stderr)
    run = Runner(log=log, env=dict(os.environ, **ident.committer_env(), GIT_EDITOR="true"),
                 out=out)
    opts.records[:] = []
    run.records = opts.records
    res: dict[str, Any] = {"status": Status.FAIL, "b4": {"version": version, "argv": b4},
                 "identity": str(ident), "branch": BRANCH, "series": names,
                 "sent": False, "log": str(log)}
    try:
        if user is None:
            info = source.resolve(None, log, fetch=False)
            label = (f"Linux {info.kernelversion} (Debian {source.PACKAGE} "
                     f"{info.package_version})" if info.package_version
                     else f"Linux {info.kernelversion}")
            with run.step("base_repo", "base repository"):
                repo, base = debian_base(Path(info.tree), label, run, opts.patches)
            _reset_own_repo(repo)
        else:
            label = git(repo, "log", "-1", "--format=%h %s", base).strip()
        res.update(repo=str(repo), base={"commit": base, "label": label})
        with run.step("import", f"git quiltimport of {len(names)} patches"):
            import_series(repo, base, opts.patches, run, force=user is None)
            commits = add_signoffs(repo, base, ident, run, opts.reset_author)
        res["commits"] = [{"sha": c, "subject": git(repo, "log", "-1", "--format=%s", c).strip()}
                          for c in commits]
        check = b4_prepare(repo, base, opts.cover, b4, run)
        (out / "check.txt").write_text(check.output)
        unsigned = author_signoff_missing(repo, commits)
        status = "FAIL" if unsigned else check.status
        res["check"] = {"status": status, "counts": check.counts(), "summary": check.summary,
                        "issues": check.issues, "author_signoff_missing": unsigned,
                        "notes": check.notes, "file": str(out / "check.txt")}
        with run.step("check_report", "b4 prep --check's findings") as rec:
            # reported, not judged: checkpatch's verdict on the series is
            # harness check's, with patches/checkpatch.exceptions; b4 runs it
            # without them (the `__u32 :32;` uapi padding is an ERROR here)
            rec.summary = (f"b4 prep --check: {status} {check.counts()} (reported; "
                           "judged by harness check with its listed exceptions)"
                           + (f"; no author Signed-off-by: {len(unsigned)}" if unsigned else ""))
            rec.details = res["check"]
        files = b4_write_mails(repo, out / "mails", b4, run)
        res["files"] = [str(f) for f in files]
        res["to"], res["cc"] = recipients(files)
        key = "user-" + paths.short_hash(str(repo)) if user else repo.parent.name
        wt = paths.cache_root() / "send" / key / "roundtrip"
        with run.step("round_trip", "round trip: git am of the mails on the base") as rec:
            diffs = round_trip(out / "mails", repo, [BRANCH, opts.patches.resolve()],
                               base=base, worktree=wt, log=log, env=run.env)
            rec.status = Status.FAIL if diffs else Status.PASS
            rec.summary = (f"{len(diffs)} difference(s): {diffs[0][:100]}" if diffs else
                           "the mails applied with git am equal the branch and quilt push -a")
        res["round_trip"] = {"ok": not diffs, "differences": diffs, "worktree": str(wt)}
        # the verdict is the mails'; checkpatch's is reported beside it (the
        # series has known false positives, e.g. on `__u32 :32;` padding)
        res["status"] = Status.PASS if not diffs else Status.FAIL
        res["commands"], res["timings"] = run.commands, run.timings
        _print_summary(res)
        if opts.really_send:
            if status == "FAIL":
                print("\nnote: b4 prep --check reports errors (above); b4 will not stop you",
                      flush=True)
            res["sent"] = really_send(repo, b4, run, diffs)
        return res
    finally:
        res.setdefault("commands", run.commands)
        res.setdefault("timings", run.timings)
        if user is not None:
            git(repo, "checkout", "-q", user, check=False)
        (out / "send.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        write_json(out, run.records, {"send": str(out / "send.json")})


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    p = sub.add_parser("send", help="the series as mails: a git branch, b4 prep/--check, "
                       "b4 send -o, and a git am round trip (sends nothing without "
                       "--really-send)")
    p.add_argument("--kernel-dir", type=Path,
                   help="your kernel git tree (clean); default: a repository made once "
                   "from the harness's Debian tree")
    p.add_argument("--base", help=f"with --kernel-dir: the commit to put {BRANCH} on "
                   "(default: HEAD)")
    p.add_argument("--upstream", action="store_true",
                   help="send the memcg part rebased on upstream (patches/upstream, with its "
                   "cover letter) on your bpf-next checkout (--kernel-dir); without it, the "
                   "whole 7.3 series with its 7.3-only prerequisites")
    p.add_argument("--patches", type=Path, default=None,
                   help=f"the quilt series directory (default: {PATCHES}; with --upstream: "
                   f"{UPSTREAM})")
    p.add_argument("--cover-letter", type=Path, default=None, dest="cover",
                   help="cover letter: subject line, blank line, text (default: "
                   "cover-letter.txt of the series directory)")
    p.add_argument("--out", type=Path, default=None, dest="out_dir",
                   help="where mails/, send.json, the stage records, report.json and the "
                   "log go (default: a new ./out/send-DATE-TIME, as for every verb)")
    p.add_argument("--keep-author", action="store_true",
                   help="keep the From: of patches/ (the project) as the patches' author; by "
                   "default the sender is the author, as checkpatch wants the author's "
                   "Signed-off-by and a project address cannot sign off")
    p.add_argument("--really-send", action="store_true",
                   help="then run b4 send for real (b4 shows the recipients and asks)")
    return p


def cmd_send(args: argparse.Namespace) -> int:
    out = (args.out_dir.resolve() if args.out_dir is not None else
           paths.invocation_out(paths.default_out(), "send"))
    patches = args.patches or (UPSTREAM if args.upstream else PATCHES)
    cover = args.cover or patches / "cover-letter.txt"
    opts = SendOptions(kernel_dir=args.kernel_dir, base=args.base, patches=patches,
                       cover=cover, out_dir=out, reset_author=not args.keep_author,
                       really_send=args.really_send, upstream=args.upstream)
    try:
        res = send(opts)
    except HarnessError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        report = opts.out_dir / "send.json"
        try:
            data = json.loads(report.read_text()) if report.exists() else {}
        except ValueError:
            data = {}
        data.update(status=Status.ERROR, error=str(e))
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(data, indent=2, default=str) + "\n")
        write_json(opts.out_dir, opts.records, {"send": str(report)})
        log = opts.out_dir / "send.log"
        if log.exists() and "log:" not in str(e):
            print(f"log: {log}\n{tail(log, 15)}", file=sys.stderr)
        return 2
    print(f"\nreport: {opts.out_dir / 'report.json'} (stages), {opts.out_dir / 'send.json'}")
    return 0 if res["status"] == Status.PASS else 1
