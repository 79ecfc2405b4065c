"""Fixtures that drive the guest: build once per session, boot once per suite.

Options come from the environment (MEMCG_BPF_*; `harness run` sets them),
so `pytest selftests/` on its own does the whole pipeline: source, series,
config, build (each a no-op when nothing changed), then the boots.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.build import BuildResult, built_info  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.pipeline import Options, Pipeline  # noqa: E402


def _terminate(signum, frame):
    # A CI system cancels with SIGTERM, and `harness run` passes its own on:
    # as for Ctrl-C, the running build or VM (each in a process group of its
    # own) is killed by harness.proc before the suite ends.
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """The pipeline the suites boot with. Started by `harness run`, which has
    just prepared everything (MEMCG_BPF_PREPARED=1), it builds nothing: it
    only finds the tree, the toolchain and the build. On its own (`pytest
    selftests`, tox -e vm) it prepares first, each step a no-op when
    nothing changed."""
    opts = Options.from_env()
    opts.out = opts.out / "pytest"
    pl = Pipeline(opts)
    try:
        if os.environ.get("MEMCG_BPF_PREPARED") == "1":
            pl.source(fetch=False)
            pl.toolchain()
            built_info(pl.build_dir)  # a clear error if it is not there after all
        else:
            pl.prepare()
    except HarnessError as e:
        pytest.fail(f"pipeline failed before the guest could boot:\n{e}", pytrace=False)
    return pl


@pytest.fixture(scope="session")
def built(pipeline: Pipeline) -> BuildResult:
    return built_info(pipeline.build_dir)


@pytest.fixture(scope="session")
def smoke(pipeline: Pipeline):
    """(VmResult, facts) of one boot running harness/guest/smoke.py."""
    return pipeline.smoke()
