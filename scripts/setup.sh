#!/usr/bin/env bash
# Create .venv and install kt with its test extras. torch is installed first, pinned, so pip takes
# the local CPU wheel (find-links) and never pulls the CUDA build (see ../shared/PLATFORM.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/kt ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade "pip>=23" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/kt --version
