"""harness/guest/smoke.py's reading of the kernel log (KUnit's KTAP)."""

from harness.guest import smoke

LOG = """\
[    0.9] Run /init as init process
[    1.0] KTAP version 1
[    1.0] 1..2
[    1.1]     KTAP version 1
[    1.1]     # Subtest: memcg_high_delay
[    1.1]     1..4
[    1.2]     ok 1 memcg_high_delay_no_overage
[    1.2]     ok 2 memcg_high_delay_table
[    1.2]     # memcg_high_delay_monotonic: EXPECTATION FAILED at mm/x.h:80
[    1.2]     not ok 3 memcg_high_delay_monotonic
[    1.2]     ok 4 memcg_high_delay_saturates
[    1.3] # memcg_high_delay: pass:3 fail:1 skip:0 total:4
[    1.3] not ok 1 memcg_high_delay
[    1.4]     KTAP version 1
[    1.4]     # Subtest: other
[    1.4]     1..1
[    1.4]     ok 1 other_case
[    1.4] ok 2 other
"""


def test_kunit_suites_and_cases_from_the_kernel_log() -> None:
    s = smoke.kunit_suites(LOG)
    assert set(s) == {"memcg_high_delay", "other"}
    m = s["memcg_high_delay"]
    assert m["result"] == "not ok"
    assert m["cases"]["memcg_high_delay_monotonic"] == "not ok"
    assert list(m["cases"].values()).count("ok") == 3
    assert any("EXPECTATION FAILED" in x for x in m["ktap"])
    assert s["other"] == {"result": "ok", "cases": {"other_case": "ok"},
                          "ktap": s["other"]["ktap"]}


def test_no_kunit_in_the_log() -> None:
    assert smoke.kunit_suites("[    0.1] Linux version 7.3.4\n") == {}
