#!/usr/bin/env bash
# Installs the pinned client libraries the end-to-end server tests drive `unigemma serve` with:
#   tests/server_e2e/node_modules/openai   the official OpenAI Node client (exact version in package-lock.json)
# Idempotent: does nothing when node_modules already matches package-lock.json. Run from anywhere.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo_root/tests/server_e2e"

command -v node >/dev/null || { echo "fetch_test_clients: node (>= 18) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "fetch_test_clients: npm is required" >&2; exit 1; }

stamp="$dir/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$dir/package-lock.json" -nt "$stamp" ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "fetch_test_clients: clients ready in $dir/node_modules"
