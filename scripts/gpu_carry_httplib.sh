#!/usr/bin/env bash
# Run HERE (Debian 12 with libcpp-httplib-dev): packs what `unigemma serve` needs from cpp-httplib into
# build/carry/httplib (gitignored) for a machine that has no cpp-httplib (the GPU machine: Ubuntu 24.04, glibc
# 2.39, no package registry). Pass it in the device tool's carry list; scripts/gpu_serve_check.sh uses it there:
#   PKG_CONFIG_PATH=$PWD/build/carry/httplib/lib/pkgconfig cmake ... -DUNIGEMMA_SERVER=ON -DUNIGEMMA_MEDIA_REQUIRED=OFF
# (an ABSOLUTE path: the .pc locates itself through ${pcfiledir}).
#
# Layout (~4.5 MB):
#   include/httplib.h         Debian's header (declarations and a few inline templates; the code is in the .so)
#   include/deps/             openssl/, zlib.h + zconf.h, brotli/: httplib.h includes them under the CPPHTTPLIB_*
#                             defines the .so was built with (which must be kept: they change class layouts).
#                             Added with -idirafter, so the machine's own headers win where it has them.
#   lib/libcpp-httplib.so.0.11 and a copy as libcpp-httplib.so; lib/libbrotli{common,dec,enc}.so.1 (see below);
#                             plain files, no symlinks
#   lib/pkgconfig/cpp-httplib.pc   relocatable; no Requires.private (the GPU machine has no openssl/zlib/brotli
#                             .pc files; nothing of ours calls those libraries, the .so brings its own NEEDED)
#   check.txt                 readelf/ldd of the .so and the result of the self-check below
# and build/carry/tokenizer/tokenizer.json.gz (5.5 MB) from build/test_assets/tokenizer (scripts/fetch_tokenizer.sh)
# or env TOKENIZER: serving a random checkpoint needs the Gemma 4 tokenizer, which the GPU machine cannot fetch.
#
# Run-time needs of libcpp-httplib.so.0.11 (readelf -d, objdump -T): libssl.so.3 + libcrypto.so.3 (OPENSSL_3.0.0),
# libz.so.1, libbrotlidec.so.1 + libbrotlienc.so.1, libstdc++.so.6 (up to GLIBCXX_3.4.30, CXXABI_1.3.13),
# libgcc_s.so.1, libc.so.6 (up to GLIBC_2.34). Ubuntu 24.04 has all of these sonames (libssl3t64, zlib1g,
# libbrotli1, g++ 13's libstdc++, glibc 2.39), but libbrotli1 is not in every minimal image, so Debian's brotli
# 1.0.9 libraries (800 KB, need glibc >= 2.29) are carried beside the .so. The .pc links with an old-style DT_RPATH
# (--disable-new-dtags): unlike RUNPATH it also applies to the .so's own NEEDED, so the binary finds the carried
# .so and brotli without LD_LIBRARY_PATH (and the system's libssl / libcrypto / libz, which are not carried).
#
# Ends with a self-check: a small program built against ONLY the carried .pc (PKG_CONFIG_LIBDIR) must link to
# and load the carried .so.
#   scripts/gpu_carry_httplib.sh [DEST]     (default build/carry/httplib)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
die() { echo "gpu_carry_httplib: $*" >&2; exit 1; }

dest="${1:-build/carry/httplib}"
case "$dest" in ""|/|.|..) die "DEST $dest: expected a folder of its own (it is replaced)" ;; esac
tok_dest="$(dirname "$dest")/tokenizer"
arch=$(gcc -print-multiarch 2>/dev/null || true)
[ -n "$arch" ] || arch=x86_64-linux-gnu
sys_lib=/usr/lib/$arch
sys_pc=$sys_lib/pkgconfig/cpp-httplib.pc
[ -f /usr/include/httplib.h ] && [ -f "$sys_pc" ] && [ -e "$sys_lib/libcpp-httplib.so" ] ||
  die "Debian's cpp-httplib is missing: apt-get install libcpp-httplib-dev (scripts/install_deps.sh)"
so=$(readlink -f "$sys_lib/libcpp-httplib.so")
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] || die "$so: no SONAME"
version=$(sed -n 's/^Version: *//p' "$sys_pc")
defines=$(sed -n 's/^Cflags://p' "$sys_pc" | tr ' ' '\n' | grep '^-D' | tr '\n' ' ')

rm -rf "$dest"
mkdir -p "$dest/include/deps" "$dest/lib/pkgconfig" || die "cannot create $dest"
cp /usr/include/httplib.h "$dest/include/" || die "copy httplib.h"
# Plain files, no symlinks (a carry may not keep links): the soname the loader looks for, and the name -l links.
cp "$so" "$dest/lib/$soname" && cp "$so" "$dest/lib/libcpp-httplib.so" || die "copy $so"

# Headers httplib.h includes under its defines (openssl's per-architecture configuration.h / opensslconf.h live
# in /usr/include/$arch/openssl on Debian: merged into deps/openssl).
case "$defines" in *OPENSSL*)
  cp -r /usr/include/openssl "$dest/include/deps/" || die "copy the openssl headers (libssl-dev)"
  cp /usr/include/"$arch"/openssl/*.h "$dest/include/deps/openssl/" 2>/dev/null || true ;;
esac
case "$defines" in *ZLIB*) cp /usr/include/zlib.h /usr/include/zconf.h "$dest/include/deps/" || die "copy zlib.h (zlib1g-dev)" ;; esac
case "$defines" in *BROTLI*) cp -r /usr/include/brotli "$dest/include/deps/" || die "copy the brotli headers (libbrotli-dev)" ;; esac

# Brotli run-time libraries (see the header comment), under their sonames.
for b in brotlicommon brotlidec brotlienc; do
  cp -L "$sys_lib/lib$b.so.1" "$dest/lib/" || die "lib$b.so.1 missing (libbrotli1)"
done

cat >"$dest/lib/pkgconfig/cpp-httplib.pc" <<EOF
# Debian 12's cpp-httplib $version, carried by scripts/gpu_carry_httplib.sh. Relocatable: use an absolute
# PKG_CONFIG_PATH. The defines must stay those the .so was built with.
prefix=\${pcfiledir}/../..
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: cpp-httplib
Description: A C++ HTTP/HTTPS server and client library (Debian 12 build, carried)
Version: $version
Libs: -L\${libdir} -lcpp-httplib -Wl,--disable-new-dtags -Wl,-rpath,\${libdir}
Libs.private: -pthread
Cflags: -I\${includedir} -idirafter\${includedir}/deps $defines
EOF

# Optional: the Gemma 4 tokenizer for serving random checkpoints on the GPU machine.
tok="${TOKENIZER:-build/test_assets/tokenizer/tokenizer.json}"
if [ -f "$tok" ]; then
  mkdir -p "$tok_dest" && gzip -c "$tok" >"$tok_dest/tokenizer.json.gz" || die "gzip $tok"
  [ -f "$(dirname "$tok")/tokenizer_config.json" ] && cp "$(dirname "$tok")/tokenizer_config.json" "$tok_dest/"
else
  echo "gpu_carry_httplib: note: $tok missing (scripts/fetch_tokenizer.sh): no tokenizer carried" >&2
fi

# Self-check: compile, link and run a server against the carried .pc alone; it must load the carried .so and
# brotli.
check="$dest/check.txt"
{
  echo "# $(date -u +%FT%TZ) $(basename "$so") from $(dpkg -S "$so" 2>/dev/null | cut -d: -f1-2)"
  readelf -d "$dest/lib/$soname" | grep -E "NEEDED|SONAME"
  ldd "$dest/lib/$soname"
} >"$check"
tmp=$(mktemp -d) || die "mktemp"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/t.cc" <<'EOF'
#include <httplib.h>
int main() {
  httplib::Server s;
  s.Get("/", [](const httplib::Request&, httplib::Response& r) { r.set_content("ok", "text/plain"); });
  return s.bind_to_any_port("127.0.0.1") > 0 ? 0 : 1;
}
EOF
pc_dir="$(cd "$dest/lib/pkgconfig" && pwd)"
flags=$(PKG_CONFIG_LIBDIR="$pc_dir" PKG_CONFIG_PATH='' pkg-config --cflags --libs cpp-httplib) || die "pkg-config cannot read the carried .pc"
loaded_from() { ldd "$tmp/t" | awk -v l="$1" '$1 == l {print $3}' | xargs -r readlink -f | xargs -r dirname; }
lib_abs=$(cd "$dest/lib" && pwd -P)
# shellcheck disable=SC2086  # $flags: pkg-config output, split on purpose
if timeout 300 g++ -std=c++20 -O0 "$tmp/t.cc" -o "$tmp/t" $flags >>"$check" 2>&1 && timeout 30 "$tmp/t" &&
   [ "$(loaded_from "$soname")" = "$lib_abs" ] && [ "$(loaded_from libbrotlidec.so.1)" = "$lib_abs" ]; then
  echo "self-check: ok: a program built with only the carried .pc loads $soname and brotli from $lib_abs" | tee -a "$check"
else
  cat "$check" >&2
  die "self-check FAILED: a program built with the carried .pc alone did not link to / load the carried .so"
fi
echo "carried: $dest ($(du -sh "$dest" | cut -f1))$([ -f "$tok_dest/tokenizer.json.gz" ] && echo ", $tok_dest ($(du -sh "$tok_dest" | cut -f1))")"
echo "device carry list: [\"$dest\"$([ -f "$tok_dest/tokenizer.json.gz" ] && echo ", \"$tok_dest\"")]"
