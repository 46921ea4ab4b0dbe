#!/usr/bin/env bash
# The test suite, on one thread. pytest exits 5 when it collects nothing; that fails here too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
KT_THREADS=1 .venv/bin/python -m pytest -q "$@"
