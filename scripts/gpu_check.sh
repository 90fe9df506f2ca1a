#!/usr/bin/env bash
# On the GPU machine (the `run` device tool; docs/perf.md): builds build/gpu with the CUDA backend, runs every
# GPU test (CUDA ops, attention, the whole decoder vs the fixtures and vs the CPU backend), compute-sanitizer
# over the custom kernels, and a tiny-model smoke bench; writes a summary to $OUT/gpu_check.txt.
#   scripts/gpu_check.sh          tests + smoke bench
#   scripts/gpu_check.sh full     + a random model of the real 12B shape (unigemma init-random): CUDA vs CPU
#                                 logits on a short prompt, `unigemma bench --device cuda` (prefill 512 / 2048 /
#                                 8192, decode batch 1 / 8 / 32 / 64 at context 1k and 16k, TTFT of one image (a
#                                 1280x960 PNG: the GPU machine has no BMP decoder) + 50
#                                 text tokens; the same with the fp8 KV cache) and the HF
#                                 transformers peer on the same shapes (scripts/bench/hf_peer.py)
# OUT defaults to build/gpu_out: the summary is $OUT/gpu_check.txt, each step's whole output is in $OUT/logs/.
# PACK_LOGS=1 packs $OUT/logs into $OUT/gpu_check_logs.tgz (the device tool brings back at most 8 files).
# If the machine has no GoogleTest, a copy carried as build/gtest_src is built.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
mode="${1:-quick}"
OUT="${OUT:-build/gpu_out}"
mkdir -p "$OUT"
summary="$OUT/gpu_check.txt"
logs="$OUT/logs"
mkdir -p "$logs"
log="$logs/gpu_check_full.log"
: >"$summary"
: >"$log"
say() { echo "$*" | tee -a "$summary"; }
jobs=$(nproc)
BW_GBS=4240       # device-to-device copy ceiling measured on the project's H200 (docs/perf.md)
TFLOPS=743        # dense bf16 GEMM ceiling measured there

say "== gpu_check $mode $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$summary"
nvcc --version 2>&1 | tail -1 | tee -a "$summary"

cfg=(-S . -B build/gpu -G Ninja -DUNIGEMMA_CUDA=ON -DUNIGEMMA_TESTS=ON -DUNIGEMMA_MEDIA_REQUIRED=OFF -DUNIGEMMA_SERVER=OFF
     -DCMAKE_BUILD_TYPE=Release)
if ! cmake "${cfg[@]}" >>"$log" 2>&1; then
  if grep -q "GTest" "$log" && [ -d build/gtest_src ]; then
    say "configure: no GoogleTest here; building the carried build/gtest_src"
    cmake -S build/gtest_src -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/tmp/gtest \
      >>"$log" 2>&1 && ninja -C /tmp/gtest-build install >>"$log" 2>&1 || { say "gtest build FAILED"; exit 1; }
    cfg+=(-DCMAKE_PREFIX_PATH=/tmp/gtest)
    rm -rf build/gpu
    cmake "${cfg[@]}" >>"$log" 2>&1 || { say "configure FAILED"; tail -40 "$log" | tee -a "$summary"; exit 1; }
  else
    say "configure FAILED"; tail -40 "$log" | tee -a "$summary"; exit 1
  fi
fi
t0=$(date +%s)
if ! ninja -C build/gpu -j"$jobs" unigemma cuda_ops_test cuda_fused_ops_test cuda_attention_test cuda_decoder_test cuda_top_logits_test cuda_media_embedder_test device_memory_test matmul_test >>"$log" 2>&1; then
  say "build FAILED"; grep -E "error|FAILED" "$log" | head -40 | tee -a "$summary"; exit 1
fi
say "build: ok ($(( $(date +%s) - t0 )) s)"
bin=build/gpu/unigemma

status=0
run_step() {  # name, timeout, command...
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" >"$logs/$name.txt" 2>&1
  local rc=$?
  say "-- $name: rc=$rc ($(( $(date +%s) - t )) s)"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|^GEMM |^GEMV |^ATTN |^RMSNORM |^TOPK |Failure|rror|^\| |max_abs|tok/s|GB" "$logs/$name.txt" \
    | head -60 | tee -a "$summary"
  [ $rc -eq 0 ] || status=1
}
run_step cuda_ops_test 300 build/gpu/tests/cuda_ops_test --gtest_also_run_disabled_tests
run_step cuda_fused_ops_test 300 build/gpu/tests/cuda_fused_ops_test
run_step cuda_attention_test 300 build/gpu/tests/cuda_attention_test --gtest_also_run_disabled_tests
run_step cuda_decoder_test 300 build/gpu/tests/cuda_decoder_test
run_step cuda_top_logits_test 300 build/gpu/tests/cuda_top_logits_test --gtest_also_run_disabled_tests
run_step cuda_media_embedder_test 300 build/gpu/tests/cuda_media_embedder_test
run_step device_memory_test 120 build/gpu/tests/device_memory_test
if command -v compute-sanitizer >/dev/null; then
  run_step memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 build/gpu/tests/cuda_attention_test \
    --gtest_filter='*Prefill*:*Decode*:*Mixed*'
  run_step memcheck_fused 300 compute-sanitizer --tool memcheck --error-exitcode 9 build/gpu/tests/cuda_fused_ops_test
  run_step memcheck_top_logits 300 compute-sanitizer --tool memcheck --error-exitcode 9 build/gpu/tests/cuda_top_logits_test
  run_step memcheck_media_embedder 300 compute-sanitizer --tool memcheck --error-exitcode 9 build/gpu/tests/cuda_media_embedder_test
  grep -E "ERROR SUMMARY" "$logs/memcheck.txt" | tee -a "$summary"
fi
run_step bench_tiny 120 "$bin" bench -m tests/data/tiny_kv_eq/model-bf16 --device cuda -p 512 -n 64 -b 1,8 -r 3 \
  --bandwidth-ceiling $BW_GBS --compute-ceiling $TFLOPS

if [ "$mode" = full ]; then
  model=/tmp/gemma-4-12b-random
  if [ ! -f "$model/config.json" ]; then
    run_step init_random_12b 600 "$bin" init-random --preset gemma-4-12b --out "$model"
  fi
  prompt=2,106,1645,108,2094,563,496,1722,236761,106,107,105,4368  # a short chat-shaped prompt
  # faithful (f32 KV, f32-faithful matmuls) against the CPU backend tightly; balanced (the default: bf16 KV) only
  # by argmax: a random-weight 48-layer stack amplifies bf16 KV rounding (max |diff| 4.55 measured, docs/perf.md)
  run_step logits_12b_cpu 300 "$bin" logits -m "$model" --device cpu -t $prompt -o "$logs/l_cpu.npy"
  for prec in faithful balanced; do
    run_step logits_12b_cuda_$prec 300 "$bin" logits -m "$model" --device cuda --precision $prec -t $prompt \
      -o "$logs/l_cuda_$prec.npy"
    limit=0.25; [ $prec = balanced ] && limit=1e9
    run_step compare_12b_$prec 60 python3 - "$logs/l_cuda_$prec.npy" "$logs/l_cpu.npy" $limit <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = np.abs(a - b)
print(f"12B CUDA vs CPU logits: max_abs {d.max():.4g} mean_abs {d.mean():.4g} |logits| max {np.abs(b).max():.3g}; "
      f"argmax equal at {int((a.argmax(-1) == b.argmax(-1)).sum())}/{a.shape[0]} positions")
sys.exit(0 if d.max() < float(sys.argv[3]) and (a.argmax(-1) == b.argmax(-1)).mean() >= 0.9 else 1)
PY
  done
  run_step bench_12b 400 "$bin" bench -m "$model" --device cuda -p 512,2048,8192 -n 32 -b 1,8,32,64 --ctx 1024,16384 \
    --ttft-image --ttft-image-file tests/data/media/large.png \
    -r 2 --bandwidth-ceiling $BW_GBS --compute-ceiling $TFLOPS
  run_step bench_12b_sampled 200 "$bin" bench -m "$model" --device cuda -p 0 -n 32 -b 1,8,32,64 --ctx 1024 --sample \
    -r 2 --bandwidth-ceiling $BW_GBS
  # The fp8 KV cache (README's fp8 numbers): prefill on the wgmma kernel, decode on the fp8 decode kernels.
  run_step bench_12b_fp8kv 300 "$bin" bench -m "$model" --device cuda --kv-cache-dtype fp8 -p 2048,8192 -n 32 \
    -b 1,8,32,64 --ctx 1024,16384 -r 2 --bandwidth-ceiling $BW_GBS --compute-ceiling $TFLOPS
  for prec in fast faithful; do
    run_step bench_12b_$prec 200 "$bin" bench -m "$model" --device cuda --precision $prec -p 2048,8192 -n 32 -b 1,64 \
      --ctx 1024 -r 2 --bandwidth-ceiling $BW_GBS --compute-ceiling $TFLOPS
  done
  run_step hf_peer_12b 600 python3 scripts/bench/hf_peer.py "$model" --prompts 512,2048,8192 --decode 32
fi
say "== overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
if [ -n "${PACK_LOGS:-}" ]; then
  tar czf "$OUT/gpu_check_logs.tgz" -C "$OUT" logs && rm -rf "$logs"
fi
exit $status
