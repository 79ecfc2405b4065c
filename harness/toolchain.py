"""Where kernels are built and what the guest runs: a Debian 13 build root.

Debian 12's pahole (1.24) cannot produce the BTF that Linux 7.x BPF needs
(no kfunc declaration tags), and no Debian stable host has the pahole 1.32 +
clang 21 pair the BPF selftests build with. So by default the harness makes
one cached Debian 13 (trixie) root with `debootstrap`, adds pahole from sid,
and uses it twice: as the build environment (chroot in a private mount
namespace) and, through `vng --root`, as the guest's userspace, so the guest
runs the same stress-ng, bpftool and libc whatever the host is.
`--toolchain host` builds with the host's tools instead when they suffice.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import locks, paths
from harness.errors import HarnessError
from harness.proc import Progress, first_line, require, run_logged, tail

MIRROR = os.environ.get("MEMCG_BPF_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"
# Build tools for the kernel; then what the guest runs.
BUILD_PACKAGES = [
    "gcc", "make", "bc", "flex", "bison", "libelf-dev", "zlib1g-dev", "libssl-dev",
    "ccache", "cpio", "kmod", "python3", "xz-utils", "perl", "rsync", "pkg-config",
]
# No udev on purpose: virtme-ng-init would use it for the
# /dev/virtio-ports/virtme.* links (script I/O over virtio-serial), but its
# coldplug and systemd-tmpfiles cost ~9 s per boot under TCG. Without them
# script output goes to the console, which the harness logs anyway, and the
# guest's exit status comes back through the rc file (harness/vm.py).
GUEST_PACKAGES = [
    "stress-ng", "iproute2", "keyutils", "procps", "bpftool", "e2fsprogs",
    "util-linux", "iputils-ping",
]
# (package, suite): newer pieces than trixie has. clang 21 builds the BPF
# programs (the BPF selftests of 7.x need it, with pahole 1.32).
PINNED_PACKAGES = [("pahole", "sid"), ("clang-21 lld-21 llvm-21", "trixie-backports")]
CLANG = "clang-21"
LLC = "llc-21"
LLVM_STRIP = "llvm-strip-21"
APT_SOURCES = f"""\
deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-backports main
deb {MIRROR} sid main
"""
# Nothing comes from backports or sid unless asked for by name.
APT_PREFERENCES = """\
Package: *
Pin: release n=sid
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100
"""
# Guest mount points that must exist in the (read-only) root.
GUEST_DIRS = ["harness-out", "harness-src", "harness-build"]
MIN_PAHOLE = (1, 26)
LAYOUT_VERSION = "1"


def parse_version(text: str) -> tuple[int, ...]:
    """First dotted version in text: 'v1.24' -> (1, 24)."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return ()
    return tuple(int(x) for x in m.groups() if x is not None)


@dataclass
class Toolchain:
    """Runs build commands on the host or inside the build root."""

    kind: str  # "buildroot" or "host"
    root: Path | None = None

    def wrap(self, argv: list[str], env: dict[str, str] | None = None,
             binds: list[Path] | None = None, cwd: Path | None = None) -> list[str]:
        env = dict(env or {})
        if self.kind == "host":
            prefix = ["env"] + [f"{k}={v}" for k, v in env.items()]
            inner = prefix + argv
            if cwd:
                return ["sh", "-c", f"cd {shlex.quote(str(cwd))} && exec "
                        + shlex.join(inner)]
            return inner
        assert self.root is not None
        require_root(f"running {argv[0]} in the build root")
        return chroot_argv(self.root, argv, env=env, binds=binds or [], cwd=cwd)


def require_root(why: str) -> None:
    """A clear error before any chroot (mount namespaces, bind mounts and
    chroot(2) need root), instead of a failing mount deep in a build log."""
    if os.geteuid() != 0:
        raise HarnessError(f"{why} needs root: the Debian 13 build root is used through "
                           "chroot with bind mounts",
                           hint="run the harness as root, or use --toolchain host (needs "
                           "pahole >= 1.26 and clang on the host; see harness doctor)")


def chroot_argv(root: Path, argv: list[str], *, env: dict[str, str],
                binds: list[Path], cwd: Path | None) -> list[str]:
    """argv that runs `argv` chrooted into root, with host paths bound at the
    same place, in a private mount namespace (mounts vanish with it)."""
    q = shlex.quote
    lines = ["set -e", f"mount -t proc proc {q(str(root / 'proc'))}",
             f"mount --rbind /dev {q(str(root / 'dev'))}",
             # compilers' scratch files (and clang's crash reproducers) must
             # not pile up in the root, which is also the guest's
             f"mount -t tmpfs tmpfs {q(str(root / 'tmp'))}"]
    seen: set[Path] = set()
    for b in binds:
        b = b.resolve()
        if b in seen:
            continue
        seen.add(b)
        target = root / str(b).lstrip("/")
        lines.append(f"mkdir -p {q(str(target))}")
        lines.append(f"mount --bind {q(str(b))} {q(str(target))}")
    base_env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
    }
    base_env.update(env)
    envs = " ".join(q(f"{k}={v}") for k, v in base_env.items())
    inner = shlex.join(argv)
    if cwd:
        inner = f"cd {q(str(cwd))} && exec {inner}"
    lines.append(f"exec chroot {q(str(root))} env -i {envs} sh -c {q(inner)}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)]


def buildroot_key() -> str:
    return paths.short_hash(LAYOUT_VERSION, SUITE, MIRROR, APT_SOURCES, APT_PREFERENCES,
                            " ".join(BUILD_PACKAGES), " ".join(GUEST_PACKAGES),
                            repr(PINNED_PACKAGES), " ".join(GUEST_DIRS))


def buildroot_path() -> Path:
    return paths.cache_root() / "rootfs" / f"{SUITE}-{buildroot_key()}"


def ensure_buildroot(log_dir: Path) -> Path:
    """Create (once) the cached Debian 13 root. Safe to interrupt: work
    happens in a temporary directory renamed into place when complete."""
    final = buildroot_path()
    if (final / ".harness-complete").exists():
        return final
    with locks.scoped(final, "build root being created"):
        if (final / ".harness-complete").exists():  # another run made it meanwhile
            return final
        return _create_buildroot(final, log_dir)


def _create_buildroot(final: Path, log_dir: Path) -> Path:
    require_root("creating the Debian 13 build root (debootstrap)")
    require("debootstrap", "debootstrap")
    require("unshare", "util-linux")
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    prog = Progress("rootfs")
    log = log_dir / "rootfs.log"
    prog.maybe(f"debootstrap {SUITE} into {final} (once; ~1 min)", force=True)
    r = run_logged(["debootstrap", "--variant=minbase", "--include=ca-certificates",
                    SUITE, str(tmp), MIRROR], log, timeout=1800,
                   on_line=lambda line: prog.maybe(line[:100]))
    if r.returncode != 0:
        raise HarnessError(f"debootstrap failed (rc {r.returncode}):\n{tail(log, 15)}",
                           log=str(log))
    (tmp / "etc/apt/sources.list").write_text(APT_SOURCES)
    (tmp / "etc/apt/preferences.d").mkdir(parents=True, exist_ok=True)
    (tmp / "etc/apt/preferences.d/harness").write_text(APT_PREFERENCES)
    # sid's Release file on the registry is expired.
    (tmp / "etc/apt/apt.conf.d/99harness").write_text(
        'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n')
    pinned = " && ".join(
        f"apt-get install -y -q -t {suite} {pkg}" for pkg, suite in PINNED_PACKAGES)
    script = ("apt-get update -q && apt-get install -y -q "
              + " ".join(BUILD_PACKAGES + GUEST_PACKAGES)
              + (f" && {pinned}" if pinned else "") + " && apt-get clean")
    argv = chroot_argv(tmp, ["sh", "-c", script],
                       env={"DEBIAN_FRONTEND": "noninteractive"}, binds=[], cwd=None)
    prog.maybe("installing toolchain and guest packages", force=True)
    r = run_logged(argv, log, append=True, timeout=1800,
                   on_line=lambda line: prog.maybe(line[:100]))
    if r.returncode != 0:
        raise HarnessError(f"installing packages in the build root failed:\n{tail(log, 15)}",
                           log=str(log))
    for d in GUEST_DIRS:
        (tmp / d).mkdir(exist_ok=True)
    (tmp / ".harness-complete").write_text(buildroot_key() + "\n")
    tmp.rename(final)
    prog.maybe("build root ready", force=True)
    for stale in final.parent.glob(f"{SUITE}-*"):
        if stale != final and stale.is_dir():
            prog.maybe(f"removing the previous build root {stale}", force=True)
            shutil.rmtree(stale, ignore_errors=True)
    return final


def tool_version(argv: list[str], root: Path | None = None) -> str | None:
    """First line of `argv` (e.g. pahole --version), host or chroot."""
    if root is not None:
        argv = chroot_argv(root, argv, env={}, binds=[], cwd=None)
    return first_line(argv)


def host_build_problems() -> list[str]:
    """Why the host cannot build a 7.3 kernel with BTF (empty list: it can)."""
    problems = []
    for tool, pkg in [("gcc", "gcc"), ("make", "make"), ("flex", "flex"), ("bison", "bison"),
                      ("bc", "bc"), ("perl", "perl"), ("pahole", "dwarves")]:
        if not shutil.which(tool):
            problems.append(f"{tool} missing (package {pkg})")
    if not Path("/usr/include/libelf.h").exists():
        problems.append("libelf headers missing (package libelf-dev)")
    if not Path("/usr/include/openssl/ssl.h").exists():
        problems.append("openssl headers missing (package libssl-dev)")
    if shutil.which("pahole"):
        v = parse_version(tool_version(["pahole", "--version"]) or "")
        if v and v < MIN_PAHOLE:
            problems.append(f"pahole {'.'.join(map(str, v))} < "
                            f"{'.'.join(map(str, MIN_PAHOLE))} (no kfunc declaration tags)")
    return problems


def make_toolchain(kind: str, log_dir: Path) -> Toolchain:
    if kind == "host":
        problems = host_build_problems()
        if problems:
            raise HarnessError("the host toolchain cannot build this kernel: "
                               + "; ".join(problems),
                               hint="use --toolchain buildroot (the default)")
        return Toolchain("host")
    if kind == "buildroot":
        require_root("--toolchain buildroot (the default)")
        return Toolchain("buildroot", root=ensure_buildroot(log_dir))
    raise HarnessError(f"unknown toolchain {kind!r} (host or buildroot)")
