#!/usr/bin/env bash
# The main job, end to end on one machine: build, start the reference gateway with the echo agent
# on a free loopback port, then play WeCom with wecom-sim (VerifyURL + a message followed through
# its stream refreshes), print the streamed answer, and stop the gateway.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

echo "== building the release flavour into build/release (scripts/build.sh release)" >&2
build_log=$(mktemp)
if ! "$root/scripts/build.sh" release >"$build_log" 2>&1; then
  cat "$build_log" >&2
  exit 1
fi
rm -f "$build_log"
bin="$root/build/release"
gateway="$bin/gateway/clawdbot-wecom-gateway"
sim="$bin/simulator/wecom-sim"

port=18789
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

work=$(mktemp -d)
gateway_pid=""
cleanup() {
  if [[ -n "$gateway_pid" ]] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid"
    wait "$gateway_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token=hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo
aes_key=6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt
sed -e 's/"port": 18789/"port": '"$port"'/' "$root/examples/gateway.json" >"$work/gateway.json"

echo "== starting clawdbot-wecom-gateway on 127.0.0.1:$port (log: $work/gateway.log)" >&2
"$gateway" run --config "$work/gateway.json" --state-dir "$work/state" 2>"$work/gateway.log" &
gateway_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; exit 1; }
  sleep 0.1
done

url="http://127.0.0.1:$port/wecom"
echo "== wecom-sim verify-url $url" >&2
"$sim" verify-url --url "$url" --token "$token" --aes-key "$aes_key"
echo "== wecom-sim send --text '你好，Clawdbot' --follow" >&2
answer=$("$sim" send --url "$url" --token "$token" --aes-key "$aes_key" --user zhangsan --text "你好，Clawdbot" --follow)
echo "== streamed answer:" >&2
echo "$answer"

# An image: wecom-sim serves it AES-encrypted on loopback like WeCom's CDN; the gateway downloads
# and the plugin decrypts and checks it; the echo agent describes it and sends it back (msg_item).
printf '\x89PNG\r\n\x1a\n%s' "demo-pixels" >"$work/photo.png"
echo "== wecom-sim send --image photo.png --follow" >&2
"$sim" send --url "$url" --token "$token" --aes-key "$aes_key" --user zhangsan --image "$work/photo.png" --follow
echo "== gateway log:" >&2
sed 's/^/   /' "$work/gateway.log" >&2
