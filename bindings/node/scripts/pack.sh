#!/usr/bin/env bash
# Builds the npm package @clawdbot/wecom as a tarball:
#   1. builds the clawdbot_wecom target (release flavour, static hidden OpenSSL) unless
#      CLAWDBOT_WECOM_SO names a ready library;
#   2. copies it, debug info stripped, to native/linux-x64/libclawdbot_wecom.so;
#   3. generates clawdbot.plugin.json / openclaw.plugin.json from the top-level plugin.json;
#   4. npm pack into $PACK_DIR (default <repo>/build/npm) and prints the tarball's path last.
#   bindings/node/scripts/pack.sh [--build-dir DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
build_dir=${CWC_BUILD_DIR:-$root/build/release}
[[ "${1:-}" == "--build-dir" ]] && build_dir=$2
pack_dir=${PACK_DIR:-$root/build/npm}

so=${CLAWDBOT_WECOM_SO:-}
if [[ -z "$so" ]]; then
  if [[ ! -f "$build_dir/build.ninja" ]]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$build_dir" --target clawdbot_wecom >&2
  so=$build_dir/src/libclawdbot_wecom.so
fi
[[ -f "$so" ]] || { echo "pack: $so not found" >&2; exit 1; }

# The shipped library must not take OpenSSL from the host process (node exports its own).
if nm -D --undefined-only "$so" | grep -Eq ' (EVP_|OPENSSL_|RAND_|CRYPTO_)'; then
  echo "pack: $so imports OpenSSL symbols; configure with -DCWC_STATIC_OPENSSL=ON" >&2
  exit 1
fi

# ...and must load on any glibc Linux: only the C library family may be a dynamic dependency
# (pugixml and the C++ runtime are linked in, see src/CMakeLists.txt).
unexpected=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
  grep -Ev '^(libc|libm|libdl|libpthread|librt)\.so\.[0-9]+$|^ld-linux-x86-64\.so\.2$' || true)
if [[ -n "$unexpected" ]]; then
  echo "pack: $so depends on $(echo $unexpected) — build it with -DCWC_STATIC_OPENSSL=ON and without sanitizers" >&2
  exit 1
fi

dest=$here/native/linux-x64
mkdir -p "$dest"
objcopy --strip-debug "$so" "$dest/libclawdbot_wecom.so.tmp"
mv "$dest/libclawdbot_wecom.so.tmp" "$dest/libclawdbot_wecom.so"
node "$here/scripts/gen-manifest.js" >&2

mkdir -p "$pack_dir"
tgz=$(cd "$here" && npm pack --silent --pack-destination "$pack_dir" 2>/dev/null | tail -n 1)
echo "$pack_dir/$tgz"
