#!/usr/bin/env bash
# On the GPU machine: where the GPU time of the random 12B's steps goes, per op (UNIGEMMA_CUDA_PROFILE=1; the
# table goes to stderr when the bench ends). Needs build/gpu (scripts/gpu_check.sh builds it).
#   scripts/gpu_profile.sh                 decode at batch 1 and 64, context 1k, balanced
#   BATCHES="8 32" CTX=16384 PRECISION=fast PREFILL=2048 scripts/gpu_profile.sh
# MODEL (default /tmp/g12) is made by `unigemma init-random --preset gemma-4-12b` when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${BIN:-build/gpu/unigemma}
model=${MODEL:-/tmp/g12}
[ -f "$model/config.json" ] || "$bin" init-random --preset gemma-4-12b --out "$model" >/dev/null
prec=${PRECISION:-balanced}
if [ -n "${PREFILL:-}" ]; then
  echo "== prefill $PREFILL, $prec"
  UNIGEMMA_CUDA_PROFILE=1 "$bin" bench -m "$model" --device cuda --precision "$prec" -p "$PREFILL" -n 0 -r 1 2>&1
fi
for b in ${BATCHES:-1 64}; do
  echo "== decode batch $b, context ${CTX:-1024}, $prec"
  UNIGEMMA_CUDA_PROFILE=1 "$bin" bench -m "$model" --device cuda --precision "$prec" -p 0 -n 16 -b "$b" \
    --ctx "${CTX:-1024}" -r 1 2>&1
done
