#!/usr/bin/env bash
# The GPU machine's short development loop (the `run` device tool; docs/perf.md "Build and run"): configure
# build/gpu once (the CUDA backend, tests; GoogleTest from a carried build/gtest_src where the machine has none),
# build only TARGETS, then run STEPS. One call does what would otherwise take several, and a machine that is still
# warm keeps build/gpu, so the next call rebuilds only what changed.
#   TARGETS="unigemma cuda_attention_test" \
#   STEPS='build/gpu/tests/cuda_attention_test --gtest_filter="*Wgmma*"' scripts/gpu_dev.sh
# Defaults: TARGETS="unigemma cuda_attention_test", STEPS empty. Logs go to $OUT (default build/gpu_out):
# configure.log, build.log; STEPS print to stdout.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-build/gpu_out}"
mkdir -p "$OUT"
cfg=(-S . -B build/gpu -G Ninja -DUNIGEMMA_CUDA=ON -DUNIGEMMA_TESTS=ON -DUNIGEMMA_MEDIA_REQUIRED=OFF -DUNIGEMMA_SERVER=OFF
     -DCMAKE_BUILD_TYPE=Release)
if [ ! -f build/gpu/build.ninja ]; then
  if ! cmake "${cfg[@]}" >"$OUT/configure.log" 2>&1; then
    [ -d build/gtest_src ] || { echo "configure failed (no GoogleTest here: carry build/gtest_src)"; tail -20 "$OUT/configure.log"; exit 1; }
    cmake -S build/gtest_src -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/tmp/gtest \
      >>"$OUT/configure.log" 2>&1 && ninja -C /tmp/gtest-build install >>"$OUT/configure.log" 2>&1 ||
      { echo "GoogleTest build failed"; tail -20 "$OUT/configure.log"; exit 1; }
    rm -rf build/gpu
    cmake "${cfg[@]}" -DCMAKE_PREFIX_PATH=/tmp/gtest >>"$OUT/configure.log" 2>&1 ||
      { echo "configure failed"; tail -20 "$OUT/configure.log"; exit 1; }
  fi
fi
t0=$(date +%s)
# shellcheck disable=SC2086  # TARGETS is a word list
if ! ninja -C build/gpu ${TARGETS:-unigemma cuda_attention_test} >"$OUT/build.log" 2>&1; then
  echo "build failed"; grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1
fi
echo "build: ok ($(( $(date +%s) - t0 )) s)"
eval "${STEPS:-true}"
