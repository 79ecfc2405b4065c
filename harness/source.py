"""Obtain a kernel tree: the user's (--kernel-dir) or Debian's linux-source-7.3.

Debian's package is fetched with a private apt configuration (own source
list, lists and cache under the harness cache), so the host's apt sources
are never touched: adding sid/backports there would upgrade the system.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import locks, paths
from harness.errors import HarnessError
from harness.proc import Progress, require, run_logged, tail

PACKAGE = "linux-source-7.3"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MIRROR = os.environ.get("MEMCG_BPF_MIRROR", "http://deb.debian.org/debian")
SUITES = ["trixie-backports", "sid", "experimental"]


@dataclass
class SourceInfo:
    tree: str
    kernelversion: str  # from the tree's Makefile, e.g. 7.3.4
    origin: str  # "debian-package" or "user-tree"
    package_version: str | None = None  # e.g. 7.3.4-1~bpo13+1
    sha256: str | None = None
    git_describe: str | None = None

    def label(self) -> str:
        if self.origin == "debian-package":
            return f"{PACKAGE} {self.package_version} (Linux {self.kernelversion})"
        extra = f", {self.git_describe}" if self.git_describe else ""
        return f"Linux {self.kernelversion} at {self.tree}{extra}"


def makefile_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION from a tree's top Makefile."""
    fields = {}
    try:
        head = tree.joinpath("Makefile").read_text(errors="replace").splitlines()[:12]
    except OSError:
        head = []
    for line in head:
        m = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", line)
        if m:
            fields[m.group(1)] = m.group(2)
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        return ""
    v = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields.get("SUBLEVEL", "0") not in ("", "0"):
        v += f".{fields['SUBLEVEL']}"
    return v + fields.get("EXTRAVERSION", "")


def check_tree(tree: Path) -> str:
    """Raise a clear error unless `tree` is a kernel source tree; return version."""
    if not tree.is_dir():
        raise HarnessError(f"--kernel-dir {tree}: no such directory")
    missing = [p for p in ("Makefile", "Kconfig", "mm/memcontrol.c", "arch/x86",
                           "scripts/kconfig/merge_config.sh") if not (tree / p).exists()]
    version = makefile_version(tree)
    if missing or not version:
        raise HarnessError(
            f"--kernel-dir {tree} is not a Linux kernel source tree"
            + (f" (missing: {', '.join(missing)})" if missing else " (no VERSION in Makefile)"),
            hint="pass the top directory of a kernel checkout (where MAINTAINERS is)")
    return version


def user_tree(tree: Path) -> SourceInfo:
    tree = tree.resolve()
    version = check_tree(tree)
    describe = None
    if (tree / ".git").exists() and shutil.which("git"):
        r = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=600)
        describe = r.stdout.strip() or None
    if not version.startswith("7.3"):
        print(f"warning: {tree} is Linux {version}; the series targets 7.3", file=sys.stderr)
    return SourceInfo(tree=str(tree), kernelversion=version, origin="user-tree",
                      git_describe=describe)


def apt_dir() -> Path:
    return paths.cache_root() / "apt"


def apt_options() -> list[str]:
    """apt options that make it use only the private configuration."""
    d = apt_dir()
    return [
        "-o", f"Dir::Etc::SourceList={d / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={d / 'sources.list.d'}",
        "-o", f"Dir::State::Lists={d / 'lists'}",
        "-o", f"Dir::Cache={d / 'cache'}",
        "-o", "Acquire::Check-Valid-Until=false",  # sid's Release is expired there
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]


def write_apt_config() -> None:
    d = apt_dir()
    for sub in ("sources.list.d", "lists/partial", "cache/archives/partial", "debs"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "sources.list").write_text("".join(
        f"deb [signed-by={KEYRING}] {MIRROR} {s} main\n" for s in SUITES))


def deb_file_version(deb: Path) -> str:
    """The version in apt's file name PACKAGE_VERSION_ARCH.deb (an epoch's
    colon is written %3a)."""
    name = deb.name.removesuffix(".deb")
    return name.split("_")[1].replace("%3a", ":")


def dpkg_newer(a: str, b: str) -> bool:
    """Debian version a > b, by dpkg itself (7.3.10 > 7.3.9; 7.3.4-1 >
    7.3.4-1~bpo13+1): a string sort gets both wrong."""
    require("dpkg", "dpkg")
    r = subprocess.run(["dpkg", "--compare-versions", a, "gt", b], capture_output=True,
                       timeout=30)
    return r.returncode == 0


def newest_deb(debs: list[Path]) -> Path:
    """The newest of debs (not empty), by dpkg's version order."""
    best = debs[0]
    for d in debs[1:]:
        if dpkg_newer(deb_file_version(d), deb_file_version(best)):
            best = d
    return best


def fetch_deb(log: Path, refresh: bool) -> Path:
    """The newest linux-source-7.3 .deb (by dpkg's version order),
    downloaded once and kept."""
    debs = apt_dir() / "debs"
    cached = list(debs.glob(f"{PACKAGE}_*_all.deb")) if debs.exists() else []
    if cached and not refresh:
        return newest_deb(cached)
    with locks.scoped(debs, "package download"):
        cached = list(debs.glob(f"{PACKAGE}_*_all.deb")) if debs.exists() else []
        if cached and not refresh:  # another run downloaded it meanwhile
            return newest_deb(cached)
        return _download_deb(debs, log)


def _download_deb(debs: Path, log: Path) -> Path:
    require("apt-get", "apt")
    if not Path(KEYRING).exists():
        raise HarnessError(f"{KEYRING} missing", hint="apt-get install -y debian-archive-keyring")
    write_apt_config()
    prog = Progress("source")
    prog.maybe(f"apt-get update (private config in {apt_dir()})", force=True)
    r = run_logged(["apt-get", *apt_options(), "update"], log, timeout=600)
    if r.returncode != 0:
        raise HarnessError(f"apt-get update failed:\n{tail(log)}", log=str(log))
    prog.maybe(f"apt-get download {PACKAGE}", force=True)
    r = run_logged(["apt-get", *apt_options(), "download", PACKAGE], log, cwd=debs,
                   timeout=1200, append=True)
    if r.returncode != 0:
        raise HarnessError(f"apt-get download {PACKAGE} failed:\n{tail(log)}", log=str(log))
    cached = list(debs.glob(f"{PACKAGE}_*_all.deb"))
    if not cached:
        raise HarnessError(f"apt-get download left no {PACKAGE} .deb in {debs}", log=str(log))
    return newest_deb(cached)


def deb_version(deb: Path) -> str:
    require("dpkg-deb", "dpkg")
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


def extract(deb: Path, dest: Path, log: Path) -> None:
    """Unpack the tarball inside the .deb to dest (atomically: tmp + rename)."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    prog = Progress("source")
    prog.maybe(f"unpacking {deb.name} into {dest}", force=True)
    tarball = f"./usr/src/{PACKAGE}.tar.xz"
    q = shlex.quote
    cmd = (f"dpkg-deb --fsys-tarfile {q(str(deb))} | tar -xO {q(tarball)} | "
           f"tar -xJ -C {q(str(tmp))} --strip-components=1")
    r = run_logged(["bash", "-o", "pipefail", "-c", cmd], log, timeout=1200, append=True)
    if r.returncode != 0:
        raise HarnessError(f"unpacking {deb} failed:\n{tail(log)}", log=str(log))
    check_tree(tmp)
    tmp.rename(dest)


def debian_tree(log: Path, refresh: bool = False) -> SourceInfo:
    deb = fetch_deb(log, refresh)
    sha = paths.file_sha256(deb)
    version = deb_version(deb)
    dest = paths.cache_root() / "trees" / f"{PACKAGE}_{version}_{sha[:12]}"
    if not (dest / "Makefile").exists():
        with locks.scoped(dest, "kernel tree being unpacked"):
            if not (dest / "Makefile").exists():  # or another run did meanwhile
                extract(deb, dest, log)
    info = SourceInfo(tree=str(dest), kernelversion=makefile_version(dest),
                      origin="debian-package", package_version=version, sha256=sha)
    current_pointer().write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


def current_pointer() -> Path:
    return paths.cache_root() / "current-source.json"


def resolve(kernel_dir: Path | None, log: Path, fetch: bool = True,
            refresh: bool = False) -> SourceInfo:
    """The tree to work on: --kernel-dir, else the cached Debian tree
    (fetched if `fetch`)."""
    if kernel_dir is not None:
        return user_tree(kernel_dir)
    ptr = current_pointer()
    if ptr.exists() and not refresh:
        info = SourceInfo(**json.loads(ptr.read_text()))
        if (Path(info.tree) / "Makefile").exists():
            return info
    if not fetch:
        raise HarnessError("no kernel tree yet", hint="run: python3 -m harness source")
    return debian_tree(log, refresh=refresh)
