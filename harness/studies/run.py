"""The studies that boot a kernel many times and measure: the stress-ng
throttling experiment (harness/studies/throttle.py), the phased experiment
(harness/studies/experiment.py) and the hook's cost (harness/studies/bench.py). Each
runs the guest through a Pipeline, writes <out>/<name>/results.json,
table.txt and plots, records a <name>-results stage, and returns a
StudyResult."""

from __future__ import annotations

import functools
import json
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import build as kbuild
from harness import host, paths
from harness.errors import HarnessError
from harness.record import FAIL

if TYPE_CHECKING:
    from harness.pipeline import Pipeline
    from harness.studies.bench import BenchParams
    from harness.studies.experiment import Params as ExperimentParams
    from harness.studies.throttle import Params as ThrottleParams
    from harness.studies.throttle import Run as ThrottleRun
    from harness.vm import VmResult


@dataclass
class StudyResult:
    table: str  # the summary, for the terminal
    results: Path  # results.json: parameters, environment, every run
    png: Path  # the plot of every run
    # rows of the summary; throttle: {scenario: its summary}
    summary: list[dict[str, Any]] | dict[str, dict[str, Any]] = field(default_factory=list)
    # every run
    runs: list[ThrottleRun] | list[dict[str, Any]] = field(default_factory=list)
    every_run: str = ""  # a table of every run
    traces: Path | None = None  # throttle: memory over time, the policy's periods
    timelines: Path | None = None  # experiment: the same, per scenario and arm
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # experiment: the per-run rules
    vm: VmResult | None = None  # throttle: its one boot

    def report(self) -> str:
        """For the terminal: the summary, every run, where the files are."""
        text = self.table
        if self.every_run:
            text += f"\n\nevery run:\n{self.every_run}"
        text += f"\n\nresults: {self.results}\nplot: {self.png}"
        for what, f in (("traces", self.traces), ("timelines", self.timelines)):
            if f:
                text += f"\n{what}: {f}"
        return text


def throttle(pl: Pipeline, params: ThrottleParams, name: str = "throttle") -> StudyResult:
    """The throttling experiment (harness/studies/throttle.py) in one boot;
    writes <out>/<name>/results.json, table.txt (the summary and every
    run), throttle.png and traces.png (memory over time, the policy's
    triggered periods)."""
    from harness.report import table
    from harness.studies import throttle as th
    from harness.studies import throttle_report as thr
    params.validate()
    tools = kbuild.guest_tools_dir(pl.build_dir)
    sample = tools / params.sample
    if set(th.POLICY_SCENARIOS) & set(params.scenarios) and not sample.exists():
        raise HarnessError(f"no policy program {sample} (samples/bpf/memcg is built "
                           "with the series; others: selftests/mutate_sample.py)",
                           hint="harness build")
    out = pl.opts.out / name
    out.mkdir(parents=True, exist_ok=True)
    args = ["{results}", "--disk-serial {disk}", "--sample {tools}/" + params.sample,
            *(shlex.quote(a).replace("{", "{{").replace("}", "}}")
              for a in params.guest_args())]
    # the disk: ext4 with the swap file
    res, gresults = pl.guest_run(name, "throttle.py", args, timeout=params.timeout_s(),
                                   memory=params.memory, cpus=params.cpus,
                                   disk_mb=params.swap_mb + 512)
    with pl.stage(f"{name}-results") as rec:
        env, runs = th.parse_runs(gresults)
        summary = th.summarize(runs, params.scenarios)
        dot = pl.build_dir / ".config"
        data = th.to_json(params, env, runs, summary) | {
            "kernel": pl.source().label(), "vm": res.to_dict(),
            "config": {"fragments": [str(f) for f in kbuild.default_fragments(
                pl.opts.fragments)], "sha256": paths.file_sha256(dot)
                if dot.exists() else None, "build_dir": str(pl.build_dir),
                "lockdep": kbuild.kconfig_has(pl.build_dir, "CONFIG_PROVE_LOCKING")}}
        (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        text = table(thr.table_rows(summary), thr.TABLE_HEADERS)
        every = table(thr.run_rows(runs), thr.RUN_HEADERS)
        (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
        title = (f"stress-ng --vm {params.vm_bytes} per side, {params.seconds} s, "
                 f"{params.repeats} repeats; {params.memory} RAM, "
                 f"{params.swap_mb} MB swap, {params.cpus} vCPUs"
                 + (" (TCG)" if res.accel == "tcg" else ""))
        png = thr.plot(summary, out / "throttle.png", title)
        traced = [r for r in runs if r.scenario in th.POLICY_SCENARIOS + ("both_none",)]
        traces = thr.plot_traces(traced, out / "traces.png", title)
        errors = [r.error for r in runs if r.error]
        rec.details = {"results": str(out / "results.json"), "plot": str(png),
                       "traces": str(traces), "table": str(out / "table.txt"),
                       "errors": errors}
        rec.log = str(out / "results.json")
        rec.summary = f"{len(runs)} runs of {len(params.scenarios)} scenarios"
        if errors:
            rec.status = FAIL
            rec.summary += f"; {len(errors)} failed: {errors[0][:80]}"
        expected = len(params.scenarios) * params.repeats
        if len(runs) < expected:
            rec.status = FAIL
            rec.summary += f"; only {len(runs)} of {expected} runs finished"
    return StudyResult(table=text, results=out / "results.json", png=png, summary=summary,
                       runs=runs, every_run=every, traces=traces, vm=res)


def experiment(pl: Pipeline, params: ExperimentParams, name: str = "experiment") -> StudyResult:
    """The phased throttling experiment (harness/studies/experiment.py) on the
    nodebug kernel: params.boots boots, each running its share of the
    cells in a shuffled order; then experiment_results()."""
    params.validate()
    # the nodebug kernel's pipeline: the same records, out and source
    pl = pl.nodebug("patched", "the experiment")
    tools = kbuild.guest_tools_dir(pl.build_dir)
    if {x.split(":")[0] for a in params.arms for x in a.split("+")} \
            & {"sample", "detach", "reclaim", "whopays"} and \
            not (tools / "memcg").exists():
        raise HarnessError(f"no sample program {tools / 'memcg'} (samples/bpf/memcg is "
                           "built with the series)", hint="harness build")
    print(f"experiment: {len(params.scenarios)} scenarios x {len(params.arms)} arms x "
          f"{params.repeats} repeats over {params.boots} boots"
          + (f", boot {params.only_boot} only" if params.only_boot >= 0 else "")
          + f", about {params.estimate_s() / 60:.0f} min in the guest", flush=True)
    files, accel = [], ""
    for boot in params.boots_to_run():
        # the disk: ext4 with the swap file
        res, gresults = pl.guest_run(
            f"{name}-{boot}", "experiment.py",
            ["{results}", "--tools {tools}", "--disk-serial {disk}",
             f"--swap-mb {params.swap_mb}", f"--swap {params.swap}",
             "--cells {shared}/cells.json",
             f"--boot {boot}"], timeout=params.boot_timeout_s(boot),
            memory=params.memory, cpus=params.cpus, disk_mb=params.swap_mb + 512,
            files={"cells.json": json.dumps(params.cells(boot))})
        accel = res.accel
        files.append(gresults / "runs.jsonl")
    env = {"config": "kernel-config/extra/nodebug.config", "swap": params.swap,
           "config_sha256": paths.short_hash((pl.build_dir / ".config").read_bytes(), n=16),
           "kernel": pl.source().label(), "accel": accel, "host": host.machine(),
           "guest_env": [json.loads(p.with_name("env.json").read_text())
                         for p in files if p.with_name("env.json").exists()]}
    return experiment_results(pl, params, files, env, name)


def reanalyze_experiment(pl: Pipeline, srcs: list[Path], name: str = "experiment"
                         ) -> StudyResult:
    """experiment_results() anew on earlier runs (`harness experiment
    --reanalyze SRC ...`), without a guest. A SRC is an out directory of
    `harness experiment --out DIR` (its parameters and environment from
    DIR/NAME/results.json, its runs from DIR/NAME-*-out/, the metrics
    computed anew) or a summary JSON file as selftests/results/ keeps them
    (the metrics as stored: the 10 ms samples they came from are not
    kept). Several SRCs merge: runs of more arms, or of boots run apart
    (--set only_boot=K), with every other parameter equal; the boots are
    numbered on across sources."""
    from harness.studies import experiment as ex
    parts = [_load_experiment(src, name) for src in srcs]
    if not parts:
        raise HarnessError("--reanalyze: no source")
    base = parts[0]["params"]
    for p in parts[1:]:
        diff = sorted(k for k in set(base) | set(p["params"])
                      if k not in ("arms", "only_boot", "seed")
                      and base.get(k) != p["params"].get(k))
        if diff:
            raise HarnessError(
                f"--reanalyze {p['src']}: its runs had other parameters than those of "
                f"{parts[0]['src']}: " + "; ".join(
                    f"{k} {p['params'].get(k)!r}, not {base.get(k)!r}" for k in diff),
                hint="merge only runs of the same experiment (--set the same values)")
    arms: list[str] = []  # a sweep's new points go next to its others
    for a in (a for p in parts for a in p["params"]["arms"] if a not in arms):
        kin = [i for i, b in enumerate(arms) if b.split(":")[0] == a.split(":")[0]]
        arms.insert(kin[-1] + 1 if kin else len(arms), a)
    params = ex.Params(**(base | {"arms": arms, "only_boot": -1}))
    runs, metrics, shift = [], [], 0
    for p in parts:
        boots = [r.get("boot", 0) for r in p["runs"]]
        runs += [r | {"boot": b + shift} for r, b in zip(p["runs"], boots, strict=True)]
        metrics += p["metrics"]
        shift += max(boots, default=-1) + 1
    env = parts[0]["env"] | {"reanalyzed_from": [str(p["src"]) for p in parts]}
    if len(parts) > 1:
        env["guest_env"] = [g for p in parts for g in p["env"].get("guest_env", [])]
        env["hosts"] = [p["env"].get("host") for p in parts]  # None: not recorded then
    return experiment_results(pl, params, [], env, name, given=(runs, metrics))


def _load_experiment(src: Path, name: str) -> dict[str, Any]:
    """An earlier experiment's parameters, environment, runs and metrics:
    see reanalyze_experiment()."""
    from harness.studies import experiment as ex
    from harness.studies import experiment_report as exr
    from harness.studies.bench import parse_runs
    if src.is_dir():
        prev = src / name / "results.json"
        if not prev.exists():
            raise HarnessError(f"--reanalyze {src}: no {prev}",
                               hint="a directory that `harness experiment --out` wrote")
        data = json.loads(prev.read_text())
        runs = parse_runs(sorted(src.glob(f"{name}-*-out/results/runs.jsonl")))
        metrics = ex.all_metrics(runs)
    else:
        try:
            data = json.loads(src.read_text())
        except (OSError, ValueError) as e:
            raise HarnessError(f"--reanalyze {src}: {e}") from None
        if not isinstance(data, dict) or not {"params", "env", "runs", "metrics"} <= set(data) \
                or len(data["runs"]) != len(data["metrics"]):
            raise HarnessError(f"--reanalyze {src}: not an experiment's summary.json "
                               "(params, env, runs and their metrics)")
        columns = data.get("sample_columns", exr.SAMPLE_COLUMNS)
        runs = [exr.expand(r, columns) for r in data["runs"]]
        metrics = data["metrics"]
    label_sittings(runs, data["env"], int(data["params"].get("boots", 1)), src.name)
    return {"src": src, "params": data["params"], "env": data["env"], "runs": runs,
            "metrics": metrics}


def label_sittings(runs: list[dict[str, Any]], env: dict[str, Any], boots: int,
                   name: str) -> None:
    """Give each run that has none its sitting: the date recorded with its
    sitting (env.host.date, taken when its runs were analysed), or for a
    file merged from sittings (env.hosts, boots numbered on), the sitting
    its boot belongs to; where no date was recorded (older merges kept
    only env.reanalyzed_from), the file's name and the sitting's number."""
    merged = env.get("reanalyzed_from")
    hosts = env.get("hosts") or (
        [None] * len(merged) if isinstance(merged, list) and len(merged) > 1 else None)
    for r in runs:
        if r.get("sitting"):
            continue
        if hosts:
            k = min(int(r.get("boot", 0)) // max(boots, 1), len(hosts) - 1)
            date = (hosts[k] or {}).get("date")
            r["sitting"] = date or f"{name}: sitting {k + 1} of {len(hosts)}"
        else:
            r["sitting"] = (env.get("host") or {}).get("date") or name


def experiment_results(pl: Pipeline, params: ExperimentParams, files: list[Path],
                       env: dict[str, Any], name: str,
                       given: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
                       ) -> StudyResult:
    """Stage NAME-results: the metrics of every run in `files` (runs.jsonl),
    the summary, the per-run verdicts and the targets; writes
    <out>/<name>/results.json, table.txt (all of them and every run),
    plot.png and timelines.png; summary.json is results.json without the
    10 ms progress samples and with the cgroup samples every second (small
    enough to keep in a repository). given: (runs, metrics) already
    computed, instead of files."""
    from harness.report import table
    from harness.studies import experiment as ex
    from harness.studies import experiment_report as exr
    from harness.studies import experiment_stats as st
    from harness.studies.bench import parse_runs
    out = pl.opts.out / name
    out.mkdir(parents=True, exist_ok=True)
    with pl.stage(f"{name}-results") as rec:
        if given is None:
            runs = parse_runs(files)
            metrics = ex.all_metrics(runs)
            label_sittings(runs, env, params.boots, name)
        else:
            runs, metrics = given
        summary = st.summarize(runs, metrics, params)
        verdicts = st.verdicts(runs, metrics, params)
        targets = st.targets(runs, metrics, params)
        data = {"params": asdict(params), "env": env, "stats": {"ci": st.CI_METHOD},
                "sittings": st.sittings(runs), "summary": summary,
                "verdicts": verdicts, "targets": targets, "metrics": metrics,
                "runs": [{k: v for k, v in r.items() if k != "tasks"} | {
                    "tasks": {t: {k: v for k, v in d.items() if k != "lines"}
                              for t, d in r.get("tasks", {}).items()}} for r in runs]}
        (out / "results.json").write_text(json.dumps(data, default=str) + "\n")
        (out / "summary.json").write_text(json.dumps(exr.compact(data), default=str) + "\n")
        note = exr.sittings_note(summary)
        text = (note + "\n\n" if note else "") + table(exr.table_rows(summary),
                                                      exr.TABLE_HEADERS)
        s5 = exr.s5_table_rows(summary)
        if s5:
            text += "\n\ns5 (who pays): the service, the lows, the pod\n" + table(
                s5, exr.S5_HEADERS)
        text += f"\n\nintervals: {st.CI_METHOD}"
        text += "\n\nverdicts (per-run rules):\n" + table(
            [[v["scenario"], v["arm"], v["rule"], f"{v['good']}/{v['runs']}",
              "pass" if v["pass"] else "FAIL", v["text"]] for v in verdicts],
            ["scenario", "arm", "rule", "good runs", "verdict", "rule text"])
        text += "\n\ntargets (medians):\n" + table(
            exr.target_rows(targets), exr.TARGET_HEADERS)
        every = table(exr.run_rows(runs, metrics), exr.RUN_HEADERS)
        (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
        title = exr.figure_title(params, env)
        png = exr.plot(runs, metrics, params, out / "plot.png", title)
        tl = exr.plot_timelines(runs, params, out / "timelines.png", title)
        errors = [m["error"] for m in metrics if "error" in m]
        rec.details = {"results": str(out / "results.json"), "plot": str(png),
                       "timelines": str(tl), "table": str(out / "table.txt"),
                       "summary": str(out / "summary.json"), "errors": errors}
        rec.log = str(out / "results.json")
        expected = len(params.scenarios) * len(params.arms) * sum(
            len(params.reps_in_boot(b)) for b in params.boots_to_run())
        rec.summary = f"{len(runs)} runs of {expected}"
        if errors or len(runs) < expected:
            rec.status = FAIL
            rec.summary += f"; {len(errors)} failed" + (f": {errors[0][:80]}"
                                                         if errors else "")
        # the verdict: the policy's arms pass their rules, the controls fail theirs
        judged = st.judge(verdicts)
        if judged:
            rec.status = FAIL
            rec.summary += f"; {len(judged)} rule verdict(s) wrong: " + "; ".join(judged[:3]) \
                + (" ..." if len(judged) > 3 else "")
        elif st.judged(verdicts):
            rec.summary += "; the policy passes its rules, the controls fail theirs"
        else:
            rec.summary += ("; no policy or control arm with a rule to judge (the rules "
                            "compare with the none arm)")
        rec.details["judged"] = judged
    return StudyResult(table=text, results=out / "results.json", png=png, summary=summary,
                       runs=runs, timelines=tl, verdicts=verdicts)


def bench(pl: Pipeline, params: BenchParams, name: str = "bench") -> StudyResult:
    """harness bench (harness/studies/bench.py): build the unpatched and the
    patched kernel with nodebug.config, each in a build directory of
    its own; boot them in turn, params.boots times each; write
    <out>/<name>/results.json, table.txt and bench.png."""

    from harness.report import table
    from harness.studies import bench as hb
    params.validate()
    kernels = {}
    # unpatched first, then the series: the tree ends with it applied
    for kernel in params.kernels:
        srcu = (lambda tree: functools.partial(
            hb.restore_tree, hb.edit_tree(tree, hb.SRCU_READ_SIDE))) if kernel == "srcu" else None
        kernels[kernel] = pl.nodebug(kernel, "bench", edit_tree=srcu)
        if params.icount:  # QEMU's icount is TCG's
            kernels[kernel].opts.accel = "tcg"
    # membench and the policy holder run on every kernel: the others get a copy
    src = kbuild.guest_tools_dir(kernels["patched"].build_dir) / "membench"
    for kernel in params.kernels:
        if kernel == "patched":
            continue
        dst = kbuild.guest_tools_dir(kernels[kernel].build_dir)
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / "membench")
        shutil.copy2(src.with_name("memcg_ops_check"), dst / "memcg_ops_check")

    out = pl.opts.out / name
    out.mkdir(parents=True, exist_ok=True)
    results_files = []
    accel = ""
    for boot in range(params.boots):
        for kernel in params.kernels:
            res, gresults = kernels[kernel].guest_run(
                f"{name}-{kernel}-{boot}", "bench.py",
                ["{results}", "--tools {tools}",
                 *map(shlex.quote, params.guest_args(kernel, boot))],
                timeout=params.timeout_s(), memory=params.memory, cpus=params.guest_cpus,
                qemu_opts=params.qemu_opts)
            accel = res.accel
            results_files.append(gresults / "runs.jsonl")
    with pl.stage(f"{name}-results") as rec:
        runs = hb.parse_runs(results_files)
        summary = hb.summarize(runs)
        cfg = kbuild.built_info(kernels["patched"].build_dir)
        env = {"config": hb.NODEBUG, "kernels": list(params.kernels),
               "srcu_read_side": hb.SRCU_READ_SIDE if params.srcu else None,
               "config_sha256": paths.short_hash(
                   (kernels["patched"].build_dir / ".config").read_bytes(), n=16),
               "kernel": pl.source().label(), "accel": accel,
               "icount": params.qemu_opts or None, "vcpus": params.guest_cpus,
               "release": cfg.release, "build_dirs": {
                   k: str(v.build_dir) for k, v in kernels.items()}}
        data = hb.to_json(params, runs, summary, env)
        (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        text = table(hb.table_rows(summary), hb.TABLE_HEADERS)
        added = [r for r in summary if "added_ns_per_page" in r]
        for r in added:
            text += (f"\n{r['workload']}: {r['variant']} adds {r['added_ns_per_page']} "
                     f"ns per page over {r['added_over']} (95 % interval "
                     f"{r['added_ci'][0]} .. {r['added_ci'][1]}), "
                     f"{r['added_ns_per_batch']} ns per 64-page charge batch")
        every = table([[r["boot"], r["order"], r["kernel"], r["variant"], r["workload"],
                        r["ns_per_page"], r["pages"], r["high_events"]] for r in runs],
                      ["boot", "order", "kernel", "variant", "workload", "ns/page",
                       "pages", "high events"])
        (out / "table.txt").write_text(text + "\n\nevery run:\n" + every + "\n")
        title = (f"membench {params.mb} MB x {params.secs} s, {params.reps} runs per "
                 f"variant per boot, {params.boots} boots per kernel; nodebug.config; "
                 f"{params.guest_cpus} vCPUs" + (" (QEMU TCG)" if accel == "tcg" else "")
                 + (", icount: ns = instructions" if params.icount else ""))
        png = hb.plot(runs, summary, out / "bench.png", title)
        rec.details = {"results": str(out / "results.json"), "plot": str(png),
                       "table": str(out / "table.txt")}
        rec.log = str(out / "results.json")
        expected = params.expected_runs()
        rec.summary = f"{len(runs)} runs of {expected}"
        if len(runs) < expected:
            rec.status = FAIL
            rec.summary += f"; only {len(runs)} of {expected} finished"
    return StudyResult(table=text, results=out / "results.json", png=png, summary=summary,
                       runs=runs, every_run=every)
