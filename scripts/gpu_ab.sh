#!/usr/bin/env bash
# On the GPU machine: an A/B of a knob or a temporary switch (an environment variable a variant reads) in one run,
# the way docs/perf.md's same-run tables are made: the values alternate ROUNDS times over the same binary and
# model, so machine-to-machine spread (~2%) does not enter the comparison.
#   AB_VAR=UG_GEMM_AUTOTUNE AB_A=1 AB_B=8 BENCH="-p 2048 -n 32 -b 1,32,64 --ctx 1024" scripts/gpu_ab.sh
#   AB_VAR=UG_GEMM_DECODE_ROWS AB_A=0 AB_B=16 BENCH="-p 0 -n 32 -b 4,8,16 --ctx 1024 --kv-cache-dtype fp8" scripts/gpu_ab.sh
#   AB_VAR=UG_ATTN_MQA_WARPS AB_A=8 AB_B=16 KERNELS='ATTN decode.*d=512 mode=[13] mqa' \
#     BENCH="-p 0 -n 32 -b 8,32,64 --ctx 1024,16384 --kv-cache-dtype fp8" scripts/gpu_ab.sh
#   AB_VAR=UG_ATTN_MQA AB_A=1 AB_B=0 BENCH="-p 0 -n 32 -b 8,32,64 --ctx 1024,16384" scripts/gpu_ab.sh
# AB_VALUES: more than two values (space-separated; replaces AB_A / AB_B). Several knobs: one call each, chained in
# one device command (the second build is a no-op, the model is made once).
# BENCH: `unigemma bench` arguments (default: decode at batch 1 / 8 / 32 / 64, context 1k); BENCH=none skips it.
# KERNELS: a regex of the decode-kernel throughput test's lines to print for each value (default: none).
# ROUNDS: 2. MODEL: the random 12B (made by `unigemma init-random` when missing). Builds build/gpu through
# scripts/gpu_dev.sh (carry build/gtest_src where the machine has no GoogleTest).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${AB_VAR:?AB_VAR (the switch) must be set}"
if [ -n "${AB_VALUES:-}" ]; then
  read -r -a values <<<"$AB_VALUES"
else
  values=("${AB_A:?AB_A (or AB_VALUES) must be set}" "${AB_B:?AB_B (or AB_VALUES) must be set}")
fi
bench_args=${BENCH:--p 0 -n 32 -b 1,8,32,64 --ctx 1024 -r 2}
model=${MODEL:-/tmp/g12}
TARGETS="unigemma cuda_attention_test" scripts/gpu_dev.sh || exit 1
bin=build/gpu/unigemma
if [ "$bench_args" != none ] && [ ! -f "$model/config.json" ]; then
  "$bin" init-random --preset gemma-4-12b --out "$model" >/dev/null || { echo "init-random failed"; exit 1; }
fi
for round in $(seq "${ROUNDS:-2}"); do
  for value in "${values[@]}"; do
    echo "== round $round: $AB_VAR=$value"
    if [ -n "${KERNELS:-}" ]; then
      env "$AB_VAR=$value" timeout 120 build/gpu/tests/cuda_attention_test --gtest_filter='*DecodeKernelThroughput12B*' \
        --gtest_also_run_disabled_tests 2>&1 | grep -E "$KERNELS"
    fi
    if [ "$bench_args" != none ]; then
      # shellcheck disable=SC2086  # bench_args is a word list
      env "$AB_VAR=$value" timeout 300 "$bin" bench -m "$model" --device cuda $bench_args 2>&1 | grep -E '^\| (tg|pp)'
    fi
  done
done
