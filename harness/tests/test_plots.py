"""The experiment's figures stand on their own (issue 28, item 6): every
panel has its axis labels, the figure a legend that names the median, the
interval, the rule's threshold, the boots and, for the timelines, the
policy's switches; arms from another sitting are marked. Built from kept
runs."""

import json
from pathlib import Path
from typing import Any

import pytest

from harness.studies import experiment as ex
from harness.studies import experiment_report as exr
from harness.studies.run import label_sittings

RESULTS = Path(__file__).resolve().parents[2] / "selftests" / "results"


def kept(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ex.Params]:
    d = json.loads((RESULTS / f"{name}.json").read_text())
    p = ex.Params(**{k: v for k, v in d["params"].items() if k in ex.Params.__dataclass_fields__})
    runs = [exr.expand(r, d.get("sample_columns", exr.SAMPLE_COLUMNS)) for r in d["runs"]]
    label_sittings(runs, d["env"], p.boots, f"{name}.json")
    return runs, d["metrics"], p


def legend_texts(fig: Any) -> list[str]:
    return [t.get_text() for lg in fig.legends for t in lg.get_texts()]


@pytest.mark.parametrize("name", ["experiment-s3-lease-disk", "experiment-s4"])
def test_the_runs_figure_explains_itself(name: str) -> None:
    import matplotlib.pyplot as plt
    runs, metrics, params = kept(name)
    fig = exr.plot_figure(runs, metrics, params, "t")
    try:
        for ax in fig.axes:
            assert ax.get_xlabel().startswith("arm") and "kpages/s" in ax.get_ylabel()
            assert ax.get_title()
            # no run's point above the panel
            lo, hi = ax.get_ylim()
            assert all(y <= hi for line in ax.get_lines() for y in line.get_ydata())
        texts = legend_texts(fig)
        assert any("median" in t for t in texts) and any("interval" in t for t in texts)
        assert any("gain rule" in t for t in texts)
        assert "a run of boot 0" in texts and "a run of boot 1" in texts
        if name == "experiment-s4":  # two sittings: the second's arms carry a "*"
            labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
            assert "mhigh:50M*" in labels and "none" in labels
            assert "another sitting" in fig.axes[0].get_xlabel()
    finally:
        plt.close(fig)


def test_the_timelines_explain_themselves() -> None:
    import matplotlib.pyplot as plt
    runs, _, params = kept("experiment-s3-lease-disk")
    fig = exr.timelines_figure(runs, params, "t")
    try:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert len(shown) == len(params.arms)
        for ax in shown:
            assert ax.get_xlabel() and ax.get_ylabel() == "memory.current MiB"
            assert {t.get_text() for t in ax.texts} >= {"populate", "small", "large"}
        texts = legend_texts(fig)
        assert "policy on (trigger)" in texts and "policy off (release)" in texts
        # the sample's panel has its trigger marks
        sample = next(ax for ax in shown if " sample " in ax.get_title())
        assert any(line.get_color() == "tab:green" for line in sample.get_lines())
    finally:
        plt.close(fig)
