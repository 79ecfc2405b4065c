"""The stage order is defined once (pipeline.PREPARE, PLANS), and prepare()
and the config verb run their stages in that order."""

from pathlib import Path
from typing import Any

import pytest

from harness import pipeline, verbs
from harness.options import Options


def recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[
        pipeline.Pipeline, list[str]]:
    pl = pipeline.Pipeline(Options(out=tmp_path))
    seen: list[str] = []
    names = {"source": "source", "toolchain": "toolchain", "series": "series",
             "config": "config", "build": "build", "guest_tools": "guest-tools",
             "selftests_build": "selftests-build"}
    for meth, stage in names.items():
        def stub(*a: Any, _stage: str = stage, **k: Any) -> None:
            with pl.stage(_stage):
                seen.append(_stage)
        monkeypatch.setattr(pl, meth, stub)
    return pl, seen


def test_prepare_runs_the_plan_in_order(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    pl, seen = recording(monkeypatch, tmp_path)
    pl.prepare()
    assert tuple(seen) == pipeline.PREPARE == pipeline.PLANS["build"]
    assert [r.stage for r in pl.records] == list(pipeline.PREPARE)


def test_the_config_verb_runs_its_plan(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    pl, seen = recording(monkeypatch, tmp_path)
    verbs.verb_config(pl, verbs.NoRequest())
    assert tuple(seen) == pipeline.PLANS["config"]


def test_every_plan_starts_with_the_preparation() -> None:
    for verb, plan in pipeline.PLANS.items():
        head = plan[:len(pipeline.PREPARE)]
        assert head == pipeline.PREPARE[:len(head)] or verb == "config", verb


def test_a_stage_resolves_its_tree_before_it_starts(tmp_path: Path) -> None:
    """series on a tree that does not exist: the source stage fails, first
    and alone; the series stage is not recorded as failing before it
    (review m17)."""
    from harness import cli
    out = tmp_path / "o"
    rc = cli.main(["series", "status", "--kernel-dir", str(tmp_path / "nonexistent"),
                   "--out", str(out)])
    import json
    rep = json.loads((out / "report.json").read_text())
    stages = [(s["stage"], s["status"]) for s in rep["stages"]]
    assert rc == 2 and stages[0] == ("source", "ERROR")
    assert ("series", "ERROR") not in stages
