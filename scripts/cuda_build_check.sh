#!/usr/bin/env bash
# CI step: compiles and links the CUDA backend and its tests with the CUDA toolkit of this machine, so CUDA
# compile errors never land even though CI has no GPU (the tests skip themselves without one). The GPU run is
# scripts/gpu_check.sh on the GPU machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH=/usr/local/cuda/bin:$PATH; fi
command -v nvcc >/dev/null || { echo "cuda_build_check: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNIGEMMA_CUDA=ON -DUNIGEMMA_SERVER=OFF >/dev/null
cmake --build build/cuda --target ug_cuda cuda_ops_test
build/cuda/tests/cuda_ops_test --gtest_brief=1
echo "cuda_build_check: CUDA backend compiles and links"
