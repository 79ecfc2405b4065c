"""A run's results as KCIDB JSON (https://docs.kernelci.org/kcidb/), so
that KernelCI can ingest them: `harness report --kcidb [--out RUN]`.

One checkout (the kernel source with the series' patch files), one build
per kernel build stage of the run, and one test per result the run has:
each test_progs test and subtest and each test_memcontrol test of the
guest (selftests/results.json), each pytest test of the suites (JUnit
XML), and each item of `check`. Statuses map to KCIDB's: PASS, FAIL,
ERROR, SKIP; a result that was expected and never reported is MISS; a
failure the unpatched kernel has too is FAIL with misc.known_failure, and
an issue ("fails without the series too", culprit: the tested code, not
the series) with an incident that links it to the test, as KCIDB's
dashboards triage known failures.
The schema version written is kcidb-io's v5.3; the unit tests validate
the output with kcidb-io itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness import paths, series
from harness.errors import HarnessError

ORIGIN = "memcgbpf"
VERSION = {"major": 5, "minor": 3}
CASE_STATUS = {"OK": "PASS", "FAIL": "FAIL", "SKIP": "SKIP", "MISSING": "MISS",
               "KNOWN": "FAIL", "KNOWN-FAIL": "FAIL", "FLAKY": "SKIP"}
STAGE_STATUS = {"PASS": "PASS", "FAIL": "FAIL", "ERROR": "ERROR", "SKIP": "SKIP"}


def _id(*parts: str) -> str:
    return f"{ORIGIN}:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:24]}"


def test_path(*parts: str) -> str:
    """A KCIDB test path: dot-separated parts of [a-zA-Z0-9_-]."""
    out = []
    for p in parts:
        for q in re.split(r"[/.]", p):
            q = re.sub(r"[^a-zA-Z0-9_-]", "_", q)
            if q:
                out.append(q)
    return ".".join(out)


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


def patchset(patches: Path = series.PATCHES) -> tuple[list[dict[str, str]], str]:
    """patchset_files and patchset_hash as KCIDB defines them: the sha256
    of the newline-terminated sha256 of each patch, in order."""
    names = series.series_names(patches)
    files = [{"name": n, "url": (patches / n).resolve().as_uri()} for n in names]
    hashes = "".join(hashlib.sha256((patches / n).read_bytes()).hexdigest() + "\n"
                     for n in names)
    return files, hashlib.sha256(hashes.encode()).hexdigest() if names else ""


def junit_tests(path: Path) -> list[tuple[str, str, float, str]]:
    """(path, status, seconds, message) of each testcase of a JUnit file."""
    out = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        cls, name = tc.get("classname", ""), tc.get("name", "")
        status, msg = "PASS", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                status = "FAIL" if child.tag == "failure" else "ERROR"
                msg = child.get("message", "")
            elif child.tag == "skipped":
                status, msg = "SKIP", child.get("message", "")
        # the test's own name is one part, whatever its parameters hold
        tpath = test_path("pytest", cls) + "." + re.sub(r"[^a-zA-Z0-9_-]", "_", name)
        out.append((tpath, status, float(tc.get("time") or 0), msg))
    return out


def from_run(out: Path, patches: Path = series.PATCHES) -> dict[str, Any]:
    """The KCIDB object of the run whose records are in `out`."""
    report_file = out / "report.json"
    if not report_file.exists():
        raise HarnessError(f"no report.json in {out}: not a harness run's output directory",
                           hint="point --out at one (default: out/latest)")
    report = json.loads(report_file.read_text())
    stages = {s["stage"]: s for s in report.get("stages", [])}
    src = report.get("source") or stages.get("source", {}).get("details", {})
    repro = report.get("reproducer", {})
    start = report_file.stat().st_mtime - sum(s.get("duration_s", 0) for s in stages.values())
    run_key = f"{out.resolve()}@{report.get('generated', '')}"
    files, phash = patchset(patches)
    # the patches/ of this checkout, unless the run built the tree without
    # the series (a baseline) or as it was (--series none)
    with_patches = not repro.get("unpatched") and repro.get("series", "quilt") == "quilt"
    checkout: dict[str, Any] = {
        "id": _id("checkout", run_key), "origin": ORIGIN,
        "tree_name": "debian-linux-source-7.3" if src.get("origin") == "debian-package"
        else "user-tree",
        "start_time": _time(start), "valid": stages.get("series", {}).get("status") in (
            "PASS", "SKIP", None),
        "misc": {"source": src, "harness_out": str(out.resolve()),
                 "argv": repro.get("argv")},
    }
    if with_patches and files:
        checkout["patchset_files"], checkout["patchset_hash"] = files, phash
    if src.get("git_describe"):
        checkout["git_commit_name"] = src["git_describe"]
    data: dict[str, Any] = {"version": VERSION, "checkouts": [checkout], "builds": [],
                            "tests": [], "issues": [], "incidents": []}
    versions = repro.get("versions", {})
    build_id = None
    for name in ("build",):
        st = stages.get(name)
        if not st:
            continue
        build_id = _id("build", run_key, name)
        b: dict[str, Any] = {
            "id": build_id, "origin": ORIGIN, "checkout_id": checkout["id"],
            "architecture": "x86_64", "status": STAGE_STATUS.get(st["status"], "ERROR"),
            "duration": float(st.get("duration_s", 0)), "start_time": _time(start),
            "misc": {"summary": st.get("summary", ""), "release":
                     st.get("details", {}).get("release")}}
        if versions.get("gcc"):
            b["compiler"] = versions["gcc"]
        if st.get("log") and Path(st["log"]).is_absolute():
            b["log_url"] = Path(st["log"]).as_uri()
        if repro.get("kernel_config_sha256"):
            b["config_name"] = f"memcg-bpf kernel-config/ ({repro['kernel_config_sha256'][:12]})"
        data["builds"].append(b)
    if build_id is None:  # no build stage (check, series): the tests hang off a stand-in
        build_id = _id("build", run_key, "none")
        data["builds"].append({"id": build_id, "origin": ORIGIN, "checkout_id": checkout["id"],
                               "status": "SKIP", "misc": {"note": "no kernel build in this run"}})

    # where the guest tests ran: the boot stages' accelerator and command line
    boots = [s for s in stages.values() if s.get("details", {}).get("accel")]
    env: dict[str, Any] | None = None
    if boots:
        d0 = boots[-1]["details"]
        env = {"comment": f"QEMU {d0['accel'].upper()} guest (virtme-ng)",
               "misc": {k: d0.get(k) for k in ("accel", "cmdline", "qemu", "vng")
                        if d0.get(k)}}

    def add(path: str, status: str, duration: float | None = None,
            excerpt: str | None = None, guest: bool = True, **misc: Any) -> None:
        t: dict[str, Any] = {
            "id": _id("test", run_key, path, str(len(data["tests"]))), "origin": ORIGIN,
            "build_id": build_id, "path": path, "status": status, "start_time": _time(start)}
        if duration is not None:
            t["duration"] = float(duration)
        if excerpt:  # the failure's own text, where dashboards look for it
            t["log_excerpt"] = excerpt[-16384:].replace("\0", "")
        if guest and env:
            t["environment"] = env
        misc = {k: v for k, v in misc.items() if v not in (None, "")}
        if misc:
            t["misc"] = misc
        data["tests"].append(t)

    def known(path: str, suite: str, name: str) -> None:
        """An issue per test that fails without the series too (its id
        stable across runs, so dashboards group the incidents), and the
        incident of this run's failing test."""
        iid = f"{ORIGIN}:known-{hashlib.sha256(path.encode()).hexdigest()[:16]}"
        if not any(i["id"] == iid for i in data["issues"]):
            data["issues"].append({
                "id": iid, "version": 1, "origin": ORIGIN,
                "comment": f"{suite} {name} fails on the same kernel without the series "
                           "(selftests/baselines/): not a regression of the series",
                "culprit": {"code": True, "tool": False, "harness": False},
                "misc": {"suite": suite, "test": name}})
        test_id = data["tests"][-1]["id"]
        data["incidents"].append({"id": _id("incident", run_key, iid, test_id),
                                  "origin": ORIGIN, "issue_id": iid, "issue_version": 1,
                                  "test_id": test_id, "present": True})

    res = out / "selftests" / "results.json"
    if res.exists():
        for r in json.loads(res.read_text()).get("runs", []):
            for c in r.get("cases", []):
                path = test_path(c["suite"], c["name"])
                add(path, CASE_STATUS.get(c["status"], "ERROR"),
                    excerpt=c.get("message") or None,
                    run=c.get("run") or None, number=c.get("number"))
                if c["status"].startswith("KNOWN"):
                    known(path, c["suite"], c["name"])
    for junit in sorted(out.glob("junit-*.xml")):
        for p, status, secs, msg in junit_tests(junit):
            add(p, status, secs, excerpt=msg or None)
    for item in stages.get("check", {}).get("details", {}).get("items", []):
        add(test_path("check", item.get("kind", ""), item.get("name", "")),
            STAGE_STATUS.get(item.get("status"), "ERROR"), guest=False,
            excerpt=item.get("summary") if item.get("status") == "FAIL" else None,
            summary=item.get("summary"))
    err = stages.get("error")  # what stopped the verb outside any stage
    if err:
        add("harness.error", STAGE_STATUS.get(err.get("status"), "ERROR"), guest=False,
            excerpt=err.get("summary"), log=err.get("log"))
    return data


def validate(data: dict[str, Any]) -> str | None:
    """The kcidb-io schema's complaint about `data`, or None if it is valid
    (or kcidb-io is not installed: the unit tests install it)."""
    try:
        import kcidb_io
    except ImportError:
        return None
    try:
        kcidb_io.schema.LATEST.validate(data)
    except Exception as e:  # jsonschema.ValidationError, with the path in it
        return str(e).splitlines()[0]
    return None


def write(out: Path, dest: Path | None = None) -> Path:
    data = from_run(out)
    problem = validate(data)
    if problem:
        raise HarnessError(f"the KCIDB export of {out} does not validate: {problem}")
    dest = dest or out / "kcidb.json"
    dest.write_text(json.dumps(data, indent=1) + "\n")
    return dest


def default_run() -> Path:
    return paths.default_out() / "latest"
