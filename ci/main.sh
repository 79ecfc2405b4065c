#!/usr/bin/env bash
# The main job: set up the host, then build, boot and check the patched
# kernel (harness run). Extra arguments go to `harness run`.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/bootstrap.sh
exec .venv/bin/python -m harness run "$@"
