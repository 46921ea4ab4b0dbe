#!/usr/bin/env bash
# The test suite, on one thread, with its 15 slowest tests listed (the suite's time is watched in CI).
# pytest exits 5 when it collects nothing; that fails here too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
KT_THREADS=1 .venv/bin/python -m pytest -q --durations=15 "$@"
