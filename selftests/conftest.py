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
from harness.errors import ChangeFailed, HarnessError  # noqa: E402
from harness.pipeline import Options, Pipeline  # noqa: E402


def _terminate(signum, frame):
    # A CI system cancels with SIGTERM, and `harness run` passes its own on:
    # as for Ctrl-C, the running build or VM (each in a process group of its
    # own) is killed by harness.proc before the suite ends.
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _terminate)


# What the session's report.json is made of (pytest_sessionfinish): the
# pipeline the suites used, and whether it stopped for the infrastructure
# (ERROR) rather than the change (FAIL).
_SESSION: dict = {"pipeline": None, "infra_error": False}


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
    _SESSION["pipeline"] = pl
    try:
        if os.environ.get("MEMCG_BPF_PREPARED") == "1":
            pl.source(fetch=False)
            pl.toolchain()
            built_info(pl.build_dir)  # a clear error if it is not there after all
        else:
            pl.prepare()
    except HarnessError as e:
        _SESSION["infra_error"] = not isinstance(e, ChangeFailed)
        pytest.fail(f"pipeline failed before the guest could boot:\n{e}", pytrace=False)
    return pl


@pytest.fixture(scope="session")
def built(pipeline: Pipeline) -> BuildResult:
    return built_info(pipeline.build_dir)


@pytest.fixture(scope="session")
def smoke(pipeline: Pipeline):
    """(VmResult, facts) of one boot running harness/guest/smoke.py."""
    return pipeline.smoke()


def pytest_sessionfinish(session, exitstatus):
    """<out>/pytest/report.json, as every harness verb writes one: the
    pipeline's stage records and a "pytest" stage with the session's
    verdict: PASS; FAIL when tests failed; ERROR when the pipeline stopped
    for the infrastructure (not the change) or pytest itself did not get
    to judge (interrupted, internal or usage error, nothing collected).
    harness.ci_verdict reads it for the CI's exit status, and `harness
    report --kcidb --out <out>/pytest` exports the raw test_progs and
    test_memcontrol cases (selftests/results.json) under their own names."""
    from harness.record import ERROR, FAIL, PASS, StageRecord
    from harness.report import write_json
    code = int(exitstatus)
    status = PASS if code == 0 else \
        FAIL if code == 1 and not _SESSION["infra_error"] else ERROR
    pl = _SESSION["pipeline"]
    out = pl.opts.out if pl is not None else Options.from_env().out / "pytest"
    rec = StageRecord(stage="pytest", status=status,
                      summary=f"pytest exit {code}: {session.testsfailed} failed of "
                      f"{session.testscollected} collected",
                      details={"exitstatus": code, "args": list(session.config.args)})
    records = [*(pl.records if pl is not None else []), rec]
    try:
        write_json(out, records, {})
    except OSError as e:  # the report must not turn a verdict into a crash
        print(f"could not write {out}/report.json: {e}", file=sys.stderr)
