from pathlib import Path

import pytest

from harness import kconfig
from harness.build import FRAGMENTS, default_fragments
from harness.errors import HarnessError

FRAG = """\
# why: test fragment
CONFIG_MEMCG=y
CONFIG_PSI=y
# CONFIG_MEMCG_V1 is not set
CONFIG_NR_CPUS=8
CONFIG_ZRAM=n
"""


def test_parse_values_and_unset() -> None:
    e = kconfig.parse(FRAG, "f.config")
    assert e["CONFIG_MEMCG"].value == "y"
    assert e["CONFIG_MEMCG_V1"].value == "n"
    assert e["CONFIG_ZRAM"].value == "n"
    assert e["CONFIG_NR_CPUS"].value == "8"
    assert e["CONFIG_PSI"].origin == "f.config:3"


def test_parse_rejects_garbage() -> None:
    with pytest.raises(HarnessError, match="f.config:2"):
        kconfig.parse("# ok\nMEMCG=y\n", "f.config")


def test_mismatches_dropped_and_wrong_values() -> None:
    req = kconfig.parse(FRAG, "f")
    final = kconfig.parse("CONFIG_MEMCG=y\nCONFIG_NR_CPUS=64\nCONFIG_ZRAM=y\n", ".config")
    bad = {e.name: actual for e, actual in kconfig.mismatches(req, final)}
    # PSI dropped (absent), NR_CPUS changed, ZRAM asked n but y; MEMCG_V1 absent == n: fine
    assert bad == {"CONFIG_PSI": "(not set)", "CONFIG_NR_CPUS": "64", "CONFIG_ZRAM": "y"}


def test_verify_names_dropped_options(tmp_path: Path) -> None:
    cfg = tmp_path / ".config"
    cfg.write_text("CONFIG_MEMCG=y\n# CONFIG_PSI is not set\nCONFIG_NR_CPUS=8\n")
    with pytest.raises(HarnessError) as ei:
        kconfig.verify(kconfig.parse(FRAG, "f.config"), cfg)
    assert "CONFIG_PSI: asked y (f.config:3), got (not set)" in str(ei.value)
    assert "1 option(s)" in str(ei.value)


def test_fragment_needs_header_comment(tmp_path: Path) -> None:
    f = tmp_path / "x.config"
    f.write_text("CONFIG_MEMCG=y\n")
    with pytest.raises(HarnessError, match="must start with a comment"):
        kconfig.load_fragments([f])


def test_project_fragments_load_and_say_why() -> None:
    frags = default_fragments()
    assert {f.name for f in frags} >= {"base.config", "vm.config", "bpf.config",
                                       "memcg.config", "debug.config"}
    merged = kconfig.load_fragments(frags)
    for name in ("CONFIG_MEMCG", "CONFIG_DEBUG_INFO_BTF", "CONFIG_VIRTIO_CONSOLE",
                 "CONFIG_CGROUP_BPF", "CONFIG_PSI"):
        assert merged[name].value == "y", name
    for f in frags:
        assert len(kconfig.header_comment(f.read_text())) > 40, f


def test_extra_fragment_must_exist(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        default_fragments([tmp_path / "nope.config"])
    assert FRAGMENTS.is_dir()


def test_optional_option_may_be_absent_but_not_wrong() -> None:
    """`# harness: optional` right above an option: a tree without it (a
    prefix of the series) leaves it out; a tree with it must honour it."""
    req = kconfig.parse("# why\n# harness: optional: the series adds it\n"
                        "CONFIG_MEMCG_KUNIT_TEST=y\nCONFIG_KUNIT=y\n", "d.config")
    assert req["CONFIG_MEMCG_KUNIT_TEST"].optional and not req["CONFIG_KUNIT"].optional
    absent = kconfig.parse("CONFIG_KUNIT=y\n", ".config")
    assert kconfig.mismatches(req, absent) == []
    unset = kconfig.parse("CONFIG_KUNIT=y\n# CONFIG_MEMCG_KUNIT_TEST is not set\n", ".config")
    assert [e.name for e, _ in kconfig.mismatches(req, unset)] == ["CONFIG_MEMCG_KUNIT_TEST"]
    # a blank line ends the directive's reach
    req2 = kconfig.parse("# why\n# harness: optional\n\nCONFIG_X=y\n", "d.config")
    assert not req2["CONFIG_X"].optional


def test_nodebug_turns_off_what_depends_on_what_it_turns_off() -> None:
    """nodebug.config turns debug options of debug.config off; an option of
    the default fragments that lives under one of them (its name extends it:
    FAULT_INJECTION_DEBUG_FS under FAULT_INJECTION, KUNIT_* under KUNIT)
    must be turned off there too, or its request goes unmet and every
    nodebug build stops at config (as it did twice). FAILSLAB, which no
    name can tell, is listed by hand."""
    defaults = kconfig.load_fragments(default_fragments())
    nodebug = kconfig.parse((FRAGMENTS / "extra" / "nodebug.config").read_text(), "nodebug")
    off = {n for n, e in nodebug.items() if e.value == "n"}
    under = {"CONFIG_FAILSLAB": "CONFIG_FAULT_INJECTION"}
    for name, e in defaults.items():
        if e.value == "n" or e.optional:
            continue
        parents = [p for p in off if name.startswith(p + "_")]
        if name in under and under[name] in off:
            parents.append(under[name])
        if parents:
            assert name in nodebug and nodebug[name].value == "n", (name, parents)
