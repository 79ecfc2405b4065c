"""Fixtures that drive the guest: build once per session, boot once per suite.

Options come from the environment (MEMCG_BPF_*; `harness run` sets them),
so `pytest selftests/` on its own does the whole pipeline: source, series,
config, build (each a no-op when nothing changed), then the boots.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.errors import HarnessError  # noqa: E402
from harness.pipeline import Options, Pipeline  # noqa: E402


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    opts = Options.from_env()
    opts.out = opts.out / "pytest"
    pl = Pipeline(opts)
    try:
        pl.prepare()
    except HarnessError as e:
        pytest.fail(f"pipeline failed before the guest could boot:\n{e}", pytrace=False)
    return pl


@pytest.fixture(scope="session")
def built(pipeline: Pipeline) -> dict:
    from harness.build import built_info
    return built_info(pipeline.build_dir)


@pytest.fixture(scope="session")
def smoke(pipeline: Pipeline):
    """(VmResult, facts) of one boot running harness/guest/smoke.py."""
    return pipeline.smoke()
