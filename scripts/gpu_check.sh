#!/usr/bin/env bash
# On the GPU machine (the `run` device tool; see docs): configures build/gpu with the CUDA backend, builds the
# CUDA op tests (+ the CPU backend/core tests), runs them (the GEMM throughput test too, and compute-sanitizer
# memcheck over the element-wise ops), and writes a summary to $OUT/gpu_check.txt (full log beside it).
# Usage: scripts/gpu_check.sh            (OUT defaults to build/gpu_out when unset)
# If the machine has no GoogleTest, a copy of its source carried as build/gtest_src is built first.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-build/gpu_out}"
mkdir -p "$OUT"
summary="$OUT/gpu_check.txt"
log="$OUT/gpu_check_full.log"
: >"$summary"
: >"$log"
say() { echo "$*" | tee -a "$summary"; }
jobs=$(nproc)

say "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi 2>&1 | tee -a "$summary"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$summary"
nvcc --version 2>&1 | tail -1 | tee -a "$summary"
cmake --version | head -1 | tee -a "$summary"

cfg=(-S . -B build/gpu -G Ninja -DUNIGEMMA_CUDA=ON -DUNIGEMMA_MEDIA_REQUIRED=OFF -DUNIGEMMA_SERVER=OFF
     -DCMAKE_BUILD_TYPE=Release)
if ! cmake "${cfg[@]}" >>"$log" 2>&1; then
  if grep -q "GTest" "$log" && [ -d build/gtest_src ]; then
    say "configure: no GoogleTest here; building the carried build/gtest_src"
    cmake -S build/gtest_src -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/tmp/gtest \
      >>"$log" 2>&1 && ninja -C /tmp/gtest-build install >>"$log" 2>&1 || { say "gtest build FAILED"; tail -30 "$log"; exit 1; }
    cfg+=(-DCMAKE_PREFIX_PATH=/tmp/gtest)
    rm -rf build/gpu
    cmake "${cfg[@]}" >>"$log" 2>&1 || { say "configure FAILED"; tail -40 "$log" | tee -a "$summary"; exit 1; }
  else
    say "configure FAILED"; tail -40 "$log" | tee -a "$summary"; exit 1
  fi
fi
say "configure: ok"
t0=$(date +%s)
if ! ninja -C build/gpu -j"$jobs" cuda_ops_test matmul_test bf16_test >>"$log" 2>&1; then
  say "build FAILED"; grep -E "error|FAILED" "$log" | head -40 | tee -a "$summary"; exit 1
fi
say "build: ok ($(( $(date +%s) - t0 )) s)"

status=0
run_test() {  # name, then arguments
  local name=$1; shift
  local t=$(date +%s)
  timeout 300 "build/gpu/tests/$name" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  say "-- $name $* : rc=$rc ($(( $(date +%s) - t )) s)"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|^GEMM |Failure|error" "$OUT/$name.txt" | head -60 | tee -a "$summary"
  [ $rc -eq 0 ] || status=1
}
run_test cuda_ops_test --gtest_also_run_disabled_tests
run_test matmul_test
run_test bf16_test

# Memory checker over the custom kernels (the GEMM is cuBLASLt's and slow under the checker).
if command -v compute-sanitizer >/dev/null; then
  t=$(date +%s)
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 build/gpu/tests/cuda_ops_test \
    --gtest_filter='CudaOps.RmsNormInPlace*:CudaOps.Gelu*:CudaOps.Softcap*:CudaOps.ToBf16*:CudaOps.Rope*' \
    >"$OUT/memcheck.txt" 2>&1
  rc=$?
  say "-- compute-sanitizer memcheck (rope, gelu, softcap, to_bf16, rms_norm in place): rc=$rc ($(( $(date +%s) - t )) s)"
  grep -E "ERROR SUMMARY|PASSED|FAILED|Invalid" "$OUT/memcheck.txt" | head -10 | tee -a "$summary"
else
  say "-- compute-sanitizer: not on PATH"
fi
say "== overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
