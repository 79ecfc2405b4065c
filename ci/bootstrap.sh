#!/usr/bin/env bash
# Set up a fresh Debian 12 or 13 host, as root: the Debian packages the
# harness needs (doctor --install), then a virtual environment in .venv
# with the harness, virtme-ng, pytest and tox. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "ci/bootstrap.sh: run as root (it installs Debian packages and debootstraps a build root)" >&2
    exit 1
fi
echo "== host packages"
if ! command -v python3 >/dev/null; then
    # minimal images: the harness itself needs python3 to install the rest
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3
fi
python3 -m harness doctor --install
echo "== python environment (.venv)"
if [ ! -x .venv/bin/python ]; then  # pip is upgraded once, when the venv is made
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
.venv/bin/pip install -q -e '.[test,lint]' 'tox>=4'
.venv/bin/python -m harness doctor || true
