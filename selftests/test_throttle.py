"""The sample policy's mechanism, in the guest, per run (harness/studies/throttle.py,
scenarios idle_policy and policy_detach; 2 repeats of each in one boot).

What is asserted is what the policy must do on any machine, fast or slow,
KVM or TCG, and what a broken sample or kernel does not do:

- the sample attaches (its "attached" line; it exits 0 on SIGTERM);
- high idle (holding memory that low's reclaim reaches, its task asleep):
  the policy never triggers and low gets no memory.high event;
- both running: the policy triggers (high's tasks stall on memory), low
  gets memory.high events and its memory.current falls;
- the policy detached mid-run, both cgroups and stressors kept: low's
  memory.high events stop and its memory.current recovers.

See harness.studies.throttle.mechanism_failures() for the exact conditions and
their margins. Throughput (does high run faster?) depends on the machine
and is not asserted here: `harness throttle` and the main job report it,
every run shown.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]

REPEATS = 2


@pytest.fixture(scope="module")
def experiment(pipeline):
    from harness.build import guest_tools_dir
    from harness.studies.throttle import MECHANISM_SCENARIOS, Params
    if not (guest_tools_dir(pipeline.build_dir) / "memcg").exists():
        pytest.skip("samples/bpf/memcg was not built (series not applied?)")
    params = Params(scenarios=list(MECHANISM_SCENARIOS), repeats=REPEATS)
    from harness.studies import run as studies
    return studies.throttle(pipeline, params, name="throttle-mechanism")


def runs_of(experiment, scenario):
    runs = [r for r in experiment.runs if r.scenario == scenario]
    assert len(runs) == REPEATS, f"{scenario}: {len(runs)} of {REPEATS} runs finished"
    return runs


def explain(experiment, run, failures):
    return (f"{run.scenario} #{run.repeat}: " + "; ".join(failures)
            + f"\n(traces: {experiment.traces}; every run:\n{experiment.every_run})")


def test_every_run_completed(experiment):
    errors = [f"{r.scenario} #{r.repeat}: {r.error}" for r in experiment.runs if r.error]
    assert not errors, errors


@pytest.mark.parametrize("scenario", ["idle_policy", "policy_detach"])
def test_policy_attaches(experiment, scenario):
    for r in runs_of(experiment, scenario):
        assert r.nr_triggers is not None, f"{scenario} #{r.repeat}: no detach summary"


def test_no_trigger_while_high_is_idle(experiment):
    from harness.studies.throttle import mechanism_failures
    for r in runs_of(experiment, "idle_policy"):
        failures = mechanism_failures(r)
        assert not failures, explain(experiment, r, failures)


def test_trigger_throttle_detach_release(experiment):
    from harness.studies.throttle import mechanism_failures
    for r in runs_of(experiment, "policy_detach"):
        failures = mechanism_failures(r)
        assert not failures, explain(experiment, r, failures)
