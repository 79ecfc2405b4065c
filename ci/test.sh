#!/usr/bin/env bash
# The tests: set up the host, then every tox environment (lint, unit, vm,
# series).
# Extra arguments go to tox (e.g. `ci/test.sh -e unit`).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/bootstrap.sh
start=$(date +%s)
.venv/bin/tox "$@"
echo "ci/test.sh: tox finished in $(( $(date +%s) - start ))s"
