#!/usr/bin/env bash
# The main job on built-in defaults: ml-100k, no network, no LLM server. Knowledge comes from item
# metadata (kt embed --from-metadata) until LLM profiles land; a rerun reuses every stored result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" KT_STORE="${KT_STORE:-$PWD/kt.duckdb}"
kt data list
kt embed --dataset ml-100k --from-metadata --name genres
kt reduce --dataset ml-100k --from genres --method pca --dim 32
kt train --dataset ml-100k --model multvae --name mv-base
kt train --dataset ml-100k --model multvae --knowledge genres-pca32 --alpha 0.5 --name mv-kt
kt eval mv-base mv-kt > /dev/null
kt compare mv-base mv-kt --metrics ndcg,recall,hit
kt compare mv-base mv-kt --metrics ndcg,recall,hit --max-train 20
