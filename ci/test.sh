#!/usr/bin/env bash
# The tests: set up the host, then every tox environment (lint, unit, vm,
# series).
# Extra arguments go to tox (e.g. `ci/test.sh -e unit`). Exit status: 0
# PASS, 1 FAIL (the change), 2 ERROR (the infrastructure): harness/ci_verdict.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/bootstrap.sh
start=$(date +%s)
mkdir -p out
rc=0
.venv/bin/tox --result-json out/tox-result.json "$@" || rc=$?
echo "ci/test.sh: tox finished in $(( $(date +%s) - start ))s (exit $rc)"
# tox exits 1 for any failure; the verdict keeps FAIL (1: the change) apart
# from ERROR (2: the infrastructure), as every harness verb does
if [ "$rc" -ne 0 ]; then
    exec .venv/bin/python -m harness.ci_verdict out/tox-result.json out
fi
