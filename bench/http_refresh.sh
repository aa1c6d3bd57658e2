#!/usr/bin/env bash
# Load test of the reference gateway's hot path on loopback: WeCom stream refresh callbacks
# (verify, decrypt, parse, stream lookup, encrypt + sign the reply) driven by wrk.
#   bench/http_refresh.sh [connections=32] [seconds=20] [threads=2]
# Needs a release build (scripts/build.sh release; BUILD_DIR=<dir> to use another build) and
# wrk (scripts/setup.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
connections=${1:-32}
seconds=${2:-20}
wrk_threads=${3:-2}
bin=${BUILD_DIR:-$root/build/release}
gateway="$bin/gateway/clawdbot-wecom-gateway"
sim="$bin/simulator/wecom-sim"
[[ -x "$gateway" && -x "$sim" ]] || { echo "build first: scripts/build.sh release" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh" >&2; exit 2; }

work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=lib.sh
source "$root/bench/lib.sh"
sed -e 's/"port": 18789/"port": 0/' -e 's/"delayMs": 300/"delayMs": 0/' "$root/examples/gateway.json" >"$work/gateway.json"
"$gateway" run --config "$work/gateway.json" --state-dir "$work/state" --log-level info --log-file "$work/gateway.log" \
  2>"$work/stderr" &
pid=$!
port=$(listening_port "$work/gateway.log")
[[ -n "$port" ]] || { echo "gateway did not start" >&2; cat "$work/stderr" >&2; exit 1; }
url="http://127.0.0.1:$port/wecom"

# One real message opens a stream with a ~300-byte answer; the load then refreshes it.
first=$("$sim" send --url "$url" --token "$token" --aes-key "$key" --user bench --text "$(printf 'x%.0s' $(seq 1 290))")
stream_id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$first")
sleep 0.5
sealed=$("$sim" encrypt --token "$token" --aes-key "$key" --nonce 8427661 \
  --plaintext "{\"msgid\":\"r1\",\"aibotid\":\"B\",\"chattype\":\"single\",\"from\":{\"userid\":\"bench\"},\"msgtype\":\"stream\",\"stream\":{\"id\":\"$stream_id\"}}")
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$sealed"; }
cat >"$work/refresh.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"encrypt":"$(field encrypt)"}'
wrk.headers["Content-Type"] = "application/json"
wrk.path = "/wecom?msg_signature=$(field msg_signature)&timestamp=$(field timestamp)&nonce=8427661"
LUA
echo "== wrk -t$wrk_threads -c$connections -d${seconds}s (stream refresh, ~300-byte answer)" >&2
wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --latency -s "$work/refresh.lua" "http://127.0.0.1:$port"
echo "gateway RSS after the run: $(ps -o rss= -p "$pid") KiB"
