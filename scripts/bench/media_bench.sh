#!/usr/bin/env bash
# Media preprocessing benchmark on ONE core, unigemma and HF transformers side by side on the same inputs and
# the same machine (the GPU machine has transformers). Needs build/carry from prepare_media_carry.sh.
# Output: $OUT/media_bench.txt (or stdout).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
C=build/carry
out="${OUT:-/tmp}/media_bench.txt"
libs=$(mktemp -d) && tar -C "$libs" -xJf $C/libs.tar.xz
export LD_LIBRARY_PATH="$libs" UNIGEMMA_THREADS=1 OMP_NUM_THREADS=1
core=3
{
  echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'); pinned to core $core"
  python3 scripts/bench/media_hf.py make-jpeg /tmp/bench.jpg
  taskset -c $core $C/unigemma preprocess --image /tmp/bench.jpg --image-tokens 280 --out /tmp/p.npy --repeat 21 2>&1
  taskset -c $core python3 scripts/bench/media_hf.py image /tmp/bench.jpg 20
  taskset -c $core $C/unigemma preprocess --audio $C/bench_60s_44k.mp3 --out /tmp/a.npy --repeat 6 2>&1
  taskset -c $core $C/unigemma preprocess --audio $C/bench_60s_44k.wav --out /tmp/a.npy --repeat 6 2>&1
  taskset -c $core python3 scripts/bench/media_hf.py audio $C/bench_60s_44k.wav 5
} | tee "$out"
