"""selftests/results/MANIFEST.md (harness/studies/manifest.py): every kept
file has an entry, the entry's facts come from the file, and the command it
gives reproduces the file's parameters."""

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from harness.studies import manifest
from harness.studies.experiment import Params


def test_the_manifest_is_up_to_date() -> None:
    assert manifest.main(["--check"]) == 0, \
        "selftests/results/MANIFEST.md is stale: run python -m harness.studies.manifest"


def test_every_kept_file_has_an_entry() -> None:
    listed = {f for r in manifest.rows() for f in [r.data, *r.files]}
    for p in manifest.RESULTS.iterdir():
        if p.name in (manifest.MANIFEST, manifest.NOTES):
            continue
        if p.is_dir():
            assert f"{p.name}/" in listed
            row = next(r for r in manifest.rows() if r.data == f"{p.name}/")
            assert sorted(row.files) == sorted(q.name for q in p.iterdir())
        else:
            assert p.name in listed, p.name


def test_a_file_without_a_data_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "experiment-x.json").write_text(
        json.dumps({"params": dataclasses.asdict(Params()), "runs": []}))
    (tmp_path / "experiment-x.png").write_bytes(b"")
    (tmp_path / "stray-table.txt").write_text("")
    with pytest.raises(ValueError, match="stray-table.txt"):
        manifest.rows(tmp_path)


def parse_experiment_command(cmd: str) -> dict[str, object]:
    """The Params the CLI would make of the manifest's command."""
    argv = shlex.split(cmd)
    assert argv[:2] == ["harness", "experiment"]
    p = dataclasses.asdict(Params())
    types = {f.name: f.type for f in dataclasses.fields(Params)}
    it = iter(argv[2:])
    for flag in it:
        val = next(it)
        if flag == "--set":
            flag, val = "--" + val.split("=", 1)[0], val.split("=", 1)[1]
        key = flag[2:].replace("-", "_")
        t = str(types[key])
        if key in ("scenarios", "arms"):
            p[key] = val.split(",")
        elif t.startswith("list"):
            p[key] = [int(x) for x in val.split(",")]
        elif t == "int":
            p[key] = int(val)
        elif t == "float":
            p[key] = float(val)
        else:
            p[key] = val
    return p


def test_each_experiment_command_gives_the_kept_parameters() -> None:
    """The command, run with today's harness, would make exactly the
    parameters the file records (except only_boot, which a merge resets)."""
    n = 0
    for r in manifest.rows():
        if not r.data.startswith("experiment-"):
            continue
        kept = json.loads((manifest.RESULTS / r.data).read_text())["params"]
        made = parse_experiment_command(r.command)
        for k, v in kept.items():
            assert made[k] == v, (r.data, k, made[k], v)
        n += 1
    assert n >= 10


def test_entries_read_their_facts_from_the_file() -> None:
    rows = {r.data: r for r in manifest.rows()}
    z = rows["experiment-s3-lease-zram.json"]
    assert z.seed == "9" and z.date == "2026-12-07T05:15:33+00:00"
    assert "--set swap=zram" in z.command
    assert z.config.startswith("3c7ec806d8d93e1c")
    assert z.boots == "2 (50 runs)" and z.sittings == "1"
    s2 = rows["experiment-s2.json"]
    assert s2.sittings.startswith("2, merged") and s2.boots.startswith("4 ")
    assert "--set resume_s=10.0" in s2.command
    assert rows["bench-icount.json"].command.endswith("--icount")


def test_no_two_runs_of_one_boot_overlap() -> None:
    """A boot runs its cells one after another, so two runs labelled with
    the same boot that overlap in time came from different boots: a merge
    that mislabelled them (experiment-s3.json did until 2026-12-07)."""
    for p in sorted(manifest.RESULTS.glob("experiment-*.json")):
        runs = json.loads(p.read_text())["runs"]
        by: dict[int, list[tuple[float, float]]] = {}
        for r in runs:
            if r.get("t0") is not None and r.get("end") is not None:
                by.setdefault(r["boot"], []).append((r["t0"], r["end"]))
        for boot, spans in by.items():
            spans.sort()
            for (a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
                assert b0 >= a1 - 1.0, (p.name, boot, a0, a1, b0)
