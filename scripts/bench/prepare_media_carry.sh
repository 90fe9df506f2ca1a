#!/usr/bin/env bash
# Prepares build/carry/ for scripts/bench/media_bench.sh on the GPU machine, which has no FFmpeg, libwebp or
# libsoxr: the release unigemma binary, the shared libraries it needs beyond the C/C++ runtime (xz, ~50 MB),
# and the benchmark inputs. Run here, then carry build/carry to the GPU machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cmake --preset release -DUNIGEMMA_BENCH=ON >/dev/null
cmake --build --preset release --target unigemma make_media_inputs
rm -rf build/carry && mkdir -p build/carry/libs
cp build/release/unigemma build/carry/
build/release/bench/make_media_inputs build/carry
ldd build/release/unigemma | awk '$3 ~ /^\// {print $3}' |
  grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
  xargs -I{} cp -L {} build/carry/libs/
tar -C build/carry/libs -cJf build/carry/libs.tar.xz . && rm -rf build/carry/libs
du -sh build/carry/*
