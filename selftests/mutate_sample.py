#!/usr/bin/env python3
"""Mutants of samples/bpf/memcg, to see the mechanism checks fail.

Builds, next to the sample in the build's harness-guest/ directory:

  memcg-mut-nofilter  counts every task's stalls, not only those of
                      HIGH_CG's tasks (the current-task filter removed)
  memcg-mut-zero      its memcg_nr_pages_over_high returns 0 (the hook
                      has no effect)

Then, for each NAME:

  .venv/bin/python -m harness throttle --mechanism --repeats 1 --sample NAME

must report failures of harness.studies.throttle.mechanism_failures() (the table
and selftests/test_throttle.py's conditions), while `--sample memcg`
passes. Run after `harness build`, with the same options (--kernel-dir,
--build-dir) as the build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import build as kbuild  # noqa: E402
from harness.pipeline import Options, Pipeline  # noqa: E402
from harness.toolchain import CLANG  # noqa: E402

MUTANTS = {
    "nofilter": ("\tif (pages <= 0 || bpf_current_task_under_cgroup(&high_cgroup, 0) != 1)\n"
                 "\t\treturn;\n",
                 "\tif (pages <= 0)\n\t\treturn;\n"),
    "zero": ("\t__sync_fetch_and_add(&nr_calls, 1);\n\treturn over_high;\n",
             "\t__sync_fetch_and_add(&nr_calls, 1);\n\treturn 0;\n"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel-dir", type=Path)
    ap.add_argument("--build-dir", type=Path)
    args = ap.parse_args()
    pl = Pipeline(Options(kernel_dir=args.kernel_dir, build_dir=args.build_dir,
                          out=Path("/tmp/memcg-bpf-mutants")))
    kb = pl.kernel()
    src = pl.tree / "samples" / "bpf"
    out = kbuild.guest_tools_dir(pl.build_dir)
    lib = out / "libbpf-root"
    if not (src / "memcg.bpf.c").exists() or not (lib / "lib64" / "libbpf.a").exists():
        print("mutate_sample: no sample or no libbpf built: run `harness build` first",
              file=sys.stderr)
        return 2
    inc = f"-I{out} -I{lib}/include -I{pl.tree}/tools/include/uapi"
    for name, (old, new) in MUTANTS.items():
        work = pl.build_dir / "sample-mutants" / name
        work.mkdir(parents=True, exist_ok=True)
        text = (src / "memcg.bpf.c").read_text()
        if old not in text:
            print(f"mutate_sample: {name}: the sample no longer has the code it changes",
                  file=sys.stderr)
            return 1
        (work / "memcg.bpf.c").write_text(text.replace(old, new))
        shutil.copy(src / "memcg.c", work / "memcg.c")
        script = "\n".join([
            "set -e",
            f"{CLANG} -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 {inc} "
            f"-c {work}/memcg.bpf.c -o {work}/memcg.bpf.o",
            f"bpftool gen skeleton {work}/memcg.bpf.o name memcg > {work}/memcg.skel.h",
            f"gcc -O2 -Wall -I{work} {inc} {work}/memcg.c {lib}/lib64/libbpf.a -lelf -lz "
            f"-o {out}/memcg-mut-{name}"])
        r = subprocess.run(kb._wrap(["sh", "-c", script]), capture_output=True, text=True,
                           timeout=600)
        if r.returncode:
            print(f"mutate_sample: {name}: build failed:\n{r.stderr[-2000:]}", file=sys.stderr)
            return 1
        print(f"{out}/memcg-mut-{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
