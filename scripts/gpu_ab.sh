#!/usr/bin/env bash
# On the GPU machine: an A/B of a temporary switch (an environment variable a variant reads) in one run, the way
# docs/perf.md's same-run tables are made: the two values alternate ROUNDS times over the same binary and model,
# so machine-to-machine spread (~2%) does not enter the comparison.
#   AB_VAR=UG_GEMV_UNROLL AB_A=4 AB_B=8 scripts/gpu_ab.sh
#   AB_VAR=UG_FP8_WIDE_ON_LOAD AB_A=1 AB_B=0 BENCH="-p 0 -n 32 -b 1,32,64 --ctx 1024 --kv-cache-dtype fp8" \
#     KERNELS='ATTN decode.*mode=3' scripts/gpu_ab.sh
# BENCH: `unigemma bench` arguments (default: decode at batch 1 / 8 / 32 / 64, context 1k); BENCH=none skips it.
# KERNELS: a regex of the decode-kernel throughput test's lines to print for each value (default: none).
# ROUNDS: 2. MODEL: the random 12B (made by `unigemma init-random` when missing). Builds build/gpu through
# scripts/gpu_dev.sh (carry build/gtest_src where the machine has no GoogleTest).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${AB_VAR:?AB_VAR (the switch) must be set}" "${AB_A:?AB_A must be set}" "${AB_B:?AB_B must be set}"
bench_args=${BENCH:--p 0 -n 32 -b 1,8,32,64 --ctx 1024 -r 2}
model=${MODEL:-/tmp/g12}
TARGETS="unigemma cuda_attention_test" scripts/gpu_dev.sh || exit 1
bin=build/gpu/unigemma
if [ "$bench_args" != none ] && [ ! -f "$model/config.json" ]; then
  "$bin" init-random --preset gemma-4-12b --out "$model" >/dev/null || { echo "init-random failed"; exit 1; }
fi
for round in $(seq "${ROUNDS:-2}"); do
  for value in "$AB_A" "$AB_B"; do
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
