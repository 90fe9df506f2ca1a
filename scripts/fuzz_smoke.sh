#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a short time (CI smoke run).
# Usage: scripts/fuzz_smoke.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-30}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
for target in build/fuzz/fuzz/*_fuzz; do
  name=$(basename "$target")
  corpus="fuzz/corpus/${name%_fuzz}"
  work=$(mktemp -d)
  [[ -d $corpus ]] && cp -r "$corpus"/. "$work"/
  echo "fuzz_smoke: $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$work" 2>&1 | tail -n 4
  rm -rf "$work"
done
echo "fuzz_smoke: no crashes"
