import json
import stat
from pathlib import Path

from harness import build
from harness.guest import smoke


def test_guest_tools_script_uses_tree_libbpf_and_uapi(tmp_path: Path) -> None:
    s = build.guest_tools_script(tmp_path / "tree", tmp_path / "b", tmp_path / "src",
                                 tmp_path / "out", 3)
    assert f"make -s -C {tmp_path}/tree/tools/lib/bpf" in s and "BUILD_STATIC_ONLY=1" in s
    assert f"bpftool btf dump file {tmp_path}/b/vmlinux format c" in s
    # the tree's uapi (query.type_id, link_info.struct_ops.cgroup_id) first
    # check program, sigagent, sample: each its BPF object and its loader
    assert s.count(f"-I{tmp_path}/tree/tools/include/uapi") == 6
    assert f"-o {tmp_path}/out/sigagent\n" in s
    assert "clang-21 " in s and "-target bpf" in s
    assert s.startswith("set -e")
    # the sample only when the tree has it (the series' patch 13)
    assert f"if [ -f {tmp_path}/tree/samples/bpf/memcg.bpf.c ]; then" in s
    assert f"-o {tmp_path}/out/memcg\n" in s


def test_kernel_has_memcg_bpf_ops(tmp_path: Path) -> None:
    assert not build.kernel_has_memcg_bpf_ops(tmp_path)
    (tmp_path / "System.map").write_text("ffffffff81000000 T _text\n")
    assert not build.kernel_has_memcg_bpf_ops(tmp_path)
    (tmp_path / "System.map").write_text("ffffffff81234560 T __memcg_bpf_nr_pages_over_high\n")
    assert build.kernel_has_memcg_bpf_ops(tmp_path)


def fake_prog(tmp_path: Path, body: str) -> None:
    p = tmp_path / "memcg_ops_check"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def test_smoke_runs_check_program(tmp_path: Path) -> None:
    assert smoke.memcg_ops_check(tmp_path) is None  # not built: no facts
    fake_prog(tmp_path, 'echo noise >&2\necho \'{"load_errno": 0, "attach_err": 0}\'\n')
    assert smoke.memcg_ops_check(tmp_path) == {"load_errno": 0, "attach_err": 0, "rc": 0,
                                                "stderr": "noise\n"}


def test_smoke_keeps_unparsable_output(tmp_path: Path) -> None:
    fake_prog(tmp_path, "echo 'libbpf: failed to load'\nexit 1\n")
    data = smoke.memcg_ops_check(tmp_path)
    assert data is not None
    assert data["rc"] == 1 and "failed to load" in data["unparsed"]
    json.dumps(data)
