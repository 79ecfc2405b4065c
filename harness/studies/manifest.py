"""selftests/results/ as a lab notebook: MANIFEST.md, one row per result
set (a data file and the tables, plots and logs that go with it), with the
command that reproduces its parameters, its seed, date, host, config hash,
boots, sittings and merges, and its known defects.

What the data files record is read from them; what they do not (dates and
hosts before the harness recorded them, the defects found since) comes
from the tables below, each entry saying so. Regenerate with
`python -m harness.studies.manifest`; `--check` exits 1 when MANIFEST.md
differs (harness/tests/test_manifest.py runs it), so a new file in
selftests/results/ without a row fails the unit tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import paths

RESULTS = paths.REPO / "selftests" / "results"
MANIFEST = "MANIFEST.md"
NOTES = "NOTES.md"

# When and where a file's runs were made, for the files whose JSON predates
# the harness recording it: the day the file was first committed (git log
# --diff-filter=A), and the host as the docs of that day describe it.
NOT_RECORDED: dict[str, str] = {
    "bench.json": "committed 2026-12-01",
    "bench-srcu.json": "committed 2026-12-01",
    "bench-icount.json": "committed 2026-12-07",
    "experiment-s1.json": "committed 2026-12-01 (two sittings merged)",
    "experiment-s2.json": "committed 2026-12-01 (two sittings merged)",
    "experiment-s3.json": "committed 2026-12-01",
    "experiment-s4.json": "committed 2026-12-01 (two sittings merged)",
    "throttle.json": "committed 2026-11-28, rerun 2026-11-30",
    "throttle-rfc.json": "committed 2026-12-01",
    "throttle-lease.json": "committed 2026-12-07",
    "throttle-v1-investigation.json": "committed 2026-11-30",
}

# What is known to be wrong with, or special about, a result set (see
# NOTES.md for the stories).
DEFECTS: dict[str, str] = {
    "experiment-s1.json": "mhigh:100M and mhigh:200M ran in another sitting (boots 2-3), "
                          "merged with --reanalyze",
    "experiment-s2.json": "v2 episodes; mhigh:100M/200M from another sitting (boots 2-3); "
                          "resume_s corrected to 10 s at the merge (the runs predate the "
                          "parameter)",
    "experiment-s3.json": "v2 episodes; the `reclaim` cell's lows throughput in `large` is "
                          "missing (None) in 2 of its 10 runs: its median is of 8; "
                          "mhigh:100M and mhigh:200M ran in another sitting and were "
                          "labelled boots 0/1 until 2026-12-07 (now 2/3)",
    "experiment-s4.json": "v2 episodes; mhigh:50M and mhigh:150M ran in another sitting "
                          "(boots 2-3), merged with --reanalyze",
    "experiment-matrix-r1.json": "1 run per cell, 1 boot: a survey, no statistics",
    "experiment-s2-defaults.json": "v2 episodes",
    "experiment-s2-sigagent.json": "v2 episodes; no `none` arm in this sitting",
    "experiment-s3-sigagent.json": "v2 episodes",
    "experiment-s1-mhigh.json": "v2 episodes",
    "experiment-s4-mhigh.json": "v2 episodes",
    "experiment-s3-lease-disk.json": "the PSI agent's onset is logged after its blocking "
                                     "write (up to ~1 s late); the sample's at its decision",
    "experiment-s3-lease-zram.json": "the PSI agent's onset is logged after its blocking "
                                     "write (up to ~1 s late); the sample's at its decision",
    "experiment-s2-lease-disk.json": "the PSI agent's onset is logged after its blocking "
                                     "write (the agent of before 2026-12-07 10:34)",
    "experiment-s2-lease-zram.json": "no sigagent:nb arm: whether a non-blocking agent "
                                     "that reclaims by itself matches the lease is not "
                                     "measured",
    "experiment-s1-lease-zram.json": "one no-policy run (boot 1, #9) had high resident "
                                     "(1,044 kpages/s): the gain rule's bar, 2x the best "
                                     "no-policy run, is that run's",
    "bench.json": "real guest time under TCG: boot-to-boot drift +-4-6 %",
    "bench-srcu.json": "real guest time under TCG: boot-to-boot drift",
    "bench-icount.json": "icount counts instructions, not cache or TLB misses",
    "throttle.json": "lockdep (debug) kernel, the RFC-era series: mechanism, not performance",
    "throttle-rfc.json": "the RFC's own setup (4 stress-ng workers, 80 %), one boot",
    "throttle-lease.json": "the CI (debug) kernel: mechanism, not performance",
    "throttle-v1-investigation.json": "the first sample; traces of two host loads, "
                                      "no parameters kept",
}

# Files kept without a data file of their own.
LOGS: dict[str, tuple[str, str]] = {
    "lifetime": ("the test_progs logs and consoles of `harness test` on "
                 "kernel-config/extra/lifetime.config (KASAN, kmemleak, failslab): its first "
                 "and final runs, the debug kernel's final run, and the three mutations that "
                 "fail it (committed 2026-12-06); memcg_ops with the verdict on that kernel "
                 "(committed 2026-12-08); see docs/series.md", "committed 2026-12-06, 2026-12-08"),
}


@dataclasses.dataclass
class Row:
    data: str
    files: list[str]
    command: str
    seed: str
    date: str
    host: str
    config: str
    boots: str
    sittings: str
    defects: str
    what: str = ""
    unset: str = ""  # parameters no flag sets today that differ from the defaults
    intervals: str = ""


def _cli_value(v: Any) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, list) else str(v)


def experiment_command(params: dict[str, Any]) -> str:
    """`harness experiment` with the flags and --sets that give exactly
    these parameters with today's defaults."""
    from harness.studies.experiment import Params
    default = dataclasses.asdict(Params())
    argv = ["harness", "experiment"]
    for flag, key in (("--scenarios", "scenarios"), ("--arms", "arms"),
                      ("--repeats", "repeats"), ("--boots", "boots"), ("--seed", "seed")):
        if params.get(key) != default[key] or key in ("scenarios", "arms", "seed"):
            argv += [flag, _cli_value(params[key])]
    for k in sorted(params):
        if k not in ("scenarios", "arms", "repeats", "boots", "seed") and k in default \
                and params[k] != default[k]:
            argv += ["--set", f"{k}={_cli_value(params[k])}"]
    return shlex.join(argv)


def bench_command(params: dict[str, Any]) -> str:
    from harness.studies.bench import BenchParams
    default = dataclasses.asdict(BenchParams())
    argv = ["harness", "bench"]
    for flag, key in (("--boots", "boots"), ("--repeats", "reps"), ("--secs", "secs"),
                      ("--mb", "mb"), ("--seed", "seed")):
        if params.get(key, default[key]) != default[key]:
            argv += [flag, str(params[key])]
    argv += [f"--{k}" for k in ("srcu", "icount") if params.get(k)]
    return shlex.join(argv)


_THROTTLE_FLAGS = (("--repeats", "repeats"), ("--seconds", "seconds"),
                   ("--vm-bytes", "vm_bytes"), ("--vm-workers", "vm_workers"),
                   ("--vm-method", "vm_method"), ("--guest-memory", "memory"),
                   ("--threshold", "threshold"), ("--over-high", "over_high"),
                   ("--sample", "sample"))


def throttle_command(params: dict[str, Any], nodebug: bool) -> tuple[str, str]:
    """`harness throttle` with the flags that give these parameters, and
    those no flag sets that differ from today's defaults."""
    from harness.studies.throttle import Params
    default = dataclasses.asdict(Params())
    argv = ["harness", "throttle", "--scenarios", _cli_value(params["scenarios"])]
    for flag, key in _THROTTLE_FLAGS:
        if key in params and params[key] != default[key]:
            argv += [flag, str(params[key])]
    if nodebug:
        argv.append("--nodebug")
    flagged = {k for _, k in _THROTTLE_FLAGS} | {"scenarios"}
    other = [f"{k}={params[k]}" for k in sorted(params)
             if k not in flagged and k in default and params[k] != default[k]]
    return shlex.join(argv), ", ".join(other)


def _host(h: dict[str, Any] | None) -> str:
    if not h:
        return ""
    return f"{h.get('os', '?')}, {h.get('cpus', '?')} CPUs, QEMU " \
           f"{str(h.get('qemu', '?')).split('version ')[-1].split(' ')[0]}"


def row_for(path: Path, companions: list[str]) -> Row:
    d: dict[str, Any] = json.loads(path.read_text())
    name = path.name
    params: dict[str, Any] = d.get("params", {}) if isinstance(d.get("params"), dict) else {}
    env: dict[str, Any] = d.get("env", {}) if isinstance(d.get("env"), dict) else {}
    runs: list[dict[str, Any]] = d.get("runs", []) if isinstance(d.get("runs"), list) else []
    host = env.get("host") if isinstance(env.get("host"), dict) else None
    hosts = [h for h in env.get("hosts") or [] if h]
    date = host.get("date", "") if host else ""
    if hosts:
        date = ", ".join(str(h.get("date")) for h in hosts)
    if not date:
        date = NOT_RECORDED.get(name, "not recorded")
    config = env.get("config_sha256") or d.get("config_sha256") or ""
    if not config and isinstance(d.get("config"), dict):
        config = str(d["config"].get("sha256", ""))[:16]
    cfg_file = env.get("config") or (d.get("config") if isinstance(d.get("config"), str)
                                     else "")
    if cfg_file:
        config = f"{config} ({Path(str(cfg_file)).name})" if config else str(cfg_file)
    elif isinstance(d.get("config"), dict):
        frags = [Path(f).name for f in d["config"].get("fragments", [])]
        config = f"{config} ({'nodebug' if 'nodebug.config' in frags else 'debug'} kernel)"
    unset, intervals = "", ""
    if name.startswith("experiment-"):
        stats: dict[str, Any] = d["stats"] if isinstance(d.get("stats"), dict) else {}
        intervals = stats.get("ci") or (
            "as kept (its -table.txt), the runs resampled as if independent; "
            "docs/experiment.md recomputes its numbers with the two-stage bootstrap")
        command = experiment_command(params)
        boots = sorted({r.get("boot", 0) for r in runs})
        nboots = f"{len(boots)} ({len(runs)} runs)"
    elif name.startswith("bench") and params:
        command = bench_command(params)
        nboots = f"{params.get('boots')} per kernel ({len(runs)} runs)"
    elif name.startswith("throttle") and params:
        nodebug = isinstance(d.get("config"), dict) and any(
            f.endswith("nodebug.config") for f in d["config"].get("fragments", []))
        command, unset = throttle_command(params, nodebug)
        nboots = f"1 ({len(runs)} runs)"
    else:
        command, nboots = "not kept", "not kept"
    merged = env.get("reanalyzed_from")
    if isinstance(merged, list) and len(merged) > 1:
        sittings = f"{len(merged)}, merged with --reanalyze"
    elif env.get("hosts") and len(env["hosts"]) > 1:
        sittings = f"{len(env['hosts'])} (boots relabelled: env.boots_relabelled)"
    elif isinstance(merged, (list, str)):
        sittings = "1, reanalyzed"
    else:
        sittings = "1"
    return Row(data=name, files=companions, command=command,
               seed=str(params.get("seed", "")), date=date,
               host=_host(host) or ("; ".join(_host(h) for h in hosts) if hosts else ""),
               config=config, boots=nboots, sittings=sittings,
               defects=DEFECTS.get(name, ""), unset=unset, intervals=intervals)


def rows(results: Path = RESULTS) -> list[Row]:
    files = sorted(p for p in results.iterdir()
                   if p.is_file() and p.name not in (MANIFEST, NOTES))
    out: list[Row] = []
    taken: set[str] = set()
    for p in files:
        if p.suffix != ".json":
            continue
        stem = p.stem
        comp = [q.name for q in files if q != p and q.name.startswith(stem)
                and q.name[len(stem)] in "-." and not _is_other_data(q.name, stem, files)]
        taken |= {p.name, *comp}
        out.append(row_for(p, comp))
    for d in sorted(p for p in results.iterdir() if p.is_dir()):
        names = sorted(q.name for q in d.iterdir())
        what, date = LOGS.get(d.name, ("", "not recorded"))
        out.append(Row(data=f"{d.name}/", files=names, command="", seed="", date=date,
                       host="", config="", boots="", sittings="", defects="", what=what))
    left = [p.name for p in files if p.name not in taken]
    if left:
        raise ValueError(f"files in {results} with no data file of their own: {left}")
    return out


def _is_other_data(name: str, stem: str, files: Iterable[Path]) -> bool:
    """Whether `name` belongs to a longer data file's stem (experiment-s2-sigagent
    is not experiment-s2's)."""
    return any(q.suffix == ".json" and q.stem != stem and q.stem.startswith(stem)
               and name.startswith(q.stem) for q in files)


def render(rs: list[Row]) -> str:
    out = ["# selftests/results: the manifest", "",
           "<!-- generated by `python -m harness.studies.manifest`; do not edit. "
           "harness/tests/test_manifest.py checks it. -->", "",
           "One entry per result set: the data file, the files that go with it, the "
           "command that gives its parameters with today's harness (`harness` is "
           "`python -m harness`), its seed, when and where it ran, the kernel config's "
           "hash, boots and sittings, and what is known to be wrong with it. The stories "
           "(reruns, traces, the lockdep-era results) are in [NOTES.md](NOTES.md); the "
           "tables and plots are explained in docs/experiment.md and docs/bench.md.", ""]
    for r in rs:
        out += [f"## {r.data}", ""]
        if r.files:
            out.append("- files: " + ", ".join(f"`{f}`" for f in r.files))
        if r.what:
            out.append(f"- what: {r.what}")
        if r.command:
            out.append(f"- command: `{r.command}`" if r.command.startswith("harness")
                       else f"- command: {r.command}")
        for label, v in (("parameters no flag sets today", r.unset), ("seed", r.seed),
                         ("date", r.date), ("host", r.host),
                         ("config", r.config), ("boots", r.boots),
                         ("sittings", r.sittings), ("intervals", r.intervals),
                         ("known defects", r.defects)):
            if v:
                out.append(f"- {label}: {v}")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.studies.manifest",
                                 description="write selftests/results/MANIFEST.md")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when MANIFEST.md differs from what would be written")
    args = ap.parse_args(argv)
    text = render(rows())
    path = RESULTS / MANIFEST
    if args.check:
        return 0 if paths.generated_is_current(
            path, text, "python -m harness.studies.manifest") else 1
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
