#!/usr/bin/env bash
# Media preprocessing on ONE core, unigemma and HF transformers side by side, same inputs, same machine (run
# it where transformers is installed: the GPU machine). Builds unigemma with whatever codecs the machine has
# (there: libjpeg + libpng, no FFmpeg), makes the inputs with Python, pins both sides to one core.
# Output: $OUT/media_bench.txt (or /tmp/media_bench.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out="${OUT:-/tmp}/media_bench.txt"
cmake -S . -B build/media-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNIGEMMA_SERVER=OFF \
  -DUNIGEMMA_MEDIA_REQUIRED=OFF -DUNIGEMMA_TESTS=OFF >/dev/null
ninja -C build/media-bench unigemma >/dev/null
B=build/media-bench/unigemma
dir=$(mktemp -d)
export UNIGEMMA_THREADS=1 OMP_NUM_THREADS=1
core=3
python3 scripts/bench/media_hf.py make-inputs "$dir"
{
  echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'); both sides pinned to core $core"
  echo "## 1920x1080 JPEG (q90) -> 280 tokens, decode included"
  taskset -c $core $B preprocess --image "$dir/bench.jpg" --image-tokens 280 --out "$dir/p.npy" --repeat 21 2>&1
  taskset -c $core python3 scripts/bench/media_hf.py image "$dir/bench.jpg" 20
  echo "## 60 s of 44.1 kHz stereo (float array) -> 16 kHz mono -> 1500 frames"
  taskset -c $core $B preprocess --audio "$dir/bench_60s_44k.npy" --audio-rate 44100 --out "$dir/a.npy" --repeat 11 2>&1
  taskset -c $core python3 scripts/bench/media_hf.py audio "$dir/bench_60s_44k.npy" 10
} | tee "$out"
