import shutil
from pathlib import Path

import pytest

from harness import source
from harness.errors import HarnessError


def fake_tree(root: Path, version: tuple[str, str, str, str] = ("7", "3", "4", "")) -> Path:
    for d in ("mm", "arch/x86", "scripts/kconfig"):
        (root / d).mkdir(parents=True, exist_ok=True)
    v, p, s, e = version
    (root / "Makefile").write_text(
        f"# SPDX\nVERSION = {v}\nPATCHLEVEL = {p}\nSUBLEVEL = {s}\nEXTRAVERSION = {e}\n")
    (root / "Kconfig").write_text("")
    (root / "mm/memcontrol.c").write_text("")
    (root / "scripts/kconfig/merge_config.sh").write_text("")
    return root


def test_makefile_version(tmp_path: Path) -> None:
    assert source.makefile_version(fake_tree(tmp_path)) == "7.3.4"
    assert source.makefile_version(fake_tree(tmp_path, ("7", "3", "0", "-rc7"))) == "7.3-rc7"


def test_user_tree_ok(tmp_path: Path) -> None:
    info = source.user_tree(fake_tree(tmp_path))
    assert info.origin == "user-tree" and info.kernelversion == "7.3.4"
    assert "Linux 7.3.4 at" in info.label()


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no such directory"):
        source.user_tree(tmp_path / "nope")


def test_not_a_kernel_tree(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(HarnessError) as ei:
        source.user_tree(tmp_path)
    assert "is not a Linux kernel source tree" in str(ei.value)
    assert "mm/memcontrol.c" in str(ei.value)


def test_private_apt_config_never_uses_system_lists(tmp_path: Path) -> None:
    source.write_apt_config()
    opts = " ".join(source.apt_options())
    assert "/etc/apt" not in opts
    assert "Dir::State::Lists=" + str(source.apt_dir() / "lists") in opts
    assert "Acquire::Check-Valid-Until=false" in opts
    text = (source.apt_dir() / "sources.list").read_text()
    for suite in ("trixie-backports", "sid", "experimental"):
        assert f" {suite} main" in text
    assert text.count("signed-by=/usr/share/keyrings/debian-archive-keyring.gpg") == 3


def test_resolve_without_tree_and_no_fetch(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no kernel tree yet"):
        source.resolve(None, tmp_path / "log", fetch=False)


def test_tree_with_version_but_missing_parts(tmp_path: Path) -> None:
    fake_tree(tmp_path)
    (tmp_path / "mm/memcontrol.c").unlink()
    with pytest.raises(HarnessError, match="missing: mm/memcontrol.c"):
        source.user_tree(tmp_path)


@pytest.mark.skipif(not shutil.which("dpkg"), reason="needs dpkg (Debian)")
def test_newest_deb_by_dpkg_version_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A string sort picks 7.3.9 over 7.3.10, and the backport over the
    Debian revision it backports: dpkg's order picks the right one."""
    monkeypatch.setattr(source, "apt_dir", lambda: tmp_path)
    debs = tmp_path / "debs"
    debs.mkdir()
    names = ["linux-source-7.3_7.3.9-1_all.deb", "linux-source-7.3_7.3.10-1~bpo13+1_all.deb",
             "linux-source-7.3_7.3.10-1_all.deb", "linux-source-7.3_7.3.4-1~bpo13+1_all.deb"]
    for n in names:
        (debs / n).write_bytes(b"")
    assert sorted(names)[-1] != "linux-source-7.3_7.3.10-1_all.deb"  # what used to win
    got = source.fetch_deb(tmp_path / "log", refresh=False)
    assert got.name == "linux-source-7.3_7.3.10-1_all.deb"
    assert source.deb_file_version(Path("linux-source-7.3_1%3a7.3.1-1_all.deb")) == "1:7.3.1-1"
    assert source.newest_deb([debs / names[0], Path("linux-source-7.3_1%3a7.3.1-1_all.deb")]) \
        .name.startswith("linux-source-7.3_1%3a")
