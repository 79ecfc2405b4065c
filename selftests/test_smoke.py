"""VM smoke tests: the kernel we built boots and has what the series needs."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.timeout(3600)]


def test_guest_ran_clean(smoke):
    res, facts = smoke
    problem = res.problem()
    assert problem is None, f"{problem}\nconsole: {res.console}"
    assert facts, f"the guest wrote no smoke.json; console: {res.console}"


def test_uname_is_the_kernel_just_built(smoke, built):
    _, facts = smoke
    assert facts["uname_r"] == built.release


def test_memory_controller_available(smoke):
    _, facts = smoke
    assert "memory" in facts["cgroup_controllers"], facts["cgroup_controllers"]


def test_btf_vmlinux_exists(smoke):
    _, facts = smoke
    assert facts["btf_vmlinux_bytes"] > 1024, "no /sys/kernel/btf/vmlinux"


def test_bpffs_mounts(smoke):
    _, facts = smoke
    assert facts["bpffs"]["mount_rc"] == 0, facts["bpffs"]
    assert facts["bpffs"]["mounted"], facts["bpffs"]


def test_memory_high_events_grow(smoke):
    """A stress-ng child over a small memory.high raises memory.events:high;
    the same stressor with memory.high=max (the control) does not."""
    _, facts = smoke
    limited, control = facts["high_limited"], facts["high_control"]
    assert limited["stress_rc"] == 0, limited["stress_output"]
    assert control["stress_rc"] == 0, control["stress_output"]
    grew = limited["events_after"].get("high", 0) - limited["events_before"].get("high", 0)
    assert grew > 0, limited
    assert control["events_after"].get("high", 0) == 0, control


def test_kunit_memcg_high_delay(smoke, pipeline):
    """The series' KUnit suite of the memory.high delay (patch 7,
    CONFIG_MEMCG_KUNIT_TEST) ran at boot and every case passed."""
    dot = pipeline.build_dir / ".config"
    if "\nCONFIG_MEMCG_KUNIT_TEST=y\n" not in "\n" + dot.read_text():
        pytest.skip("the kernel has no CONFIG_MEMCG_KUNIT_TEST (a tree without patch 7)")
    _, facts = smoke
    suite = facts["kunit"].get("memcg_high_delay")
    assert suite, f"no KTAP of memcg_high_delay in the kernel log: {sorted(facts['kunit'])}"
    ktap = "\n".join(suite["ktap"])
    assert suite["result"] == "ok", ktap
    assert len(suite["cases"]) == 4 and set(suite["cases"].values()) == {"ok"}, ktap
