#!/usr/bin/env bash
# Peer comparison on loopback: clawdbot-wecom-gateway against a Node webhook built on the official
# @wecom/crypto package (bench/node-peer/server.mjs), both answering the same WeCom stream refresh
# callback (verify, decrypt, parse, stream lookup, encrypt + sign a ~300-byte answer) under the
# same wrk workload, back to back.
#   bench/compare_node.sh [connections=32] [seconds=20] [rounds=1] [wrk_threads=2]
# Environment: BUILD_DIR (default build/release), BENCH_NODE_DIR (where @wecom/crypto is
# installed; default ~/.cache/clawdbot-wecom/bench-node, never the repository), NODE (the node
# binary; default the one on PATH).
# Needs a build with the gateway and wecom-sim, wrk, node ≥ 18 and npm (first run only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
connections=${1:-32}
seconds=${2:-20}
rounds=${3:-1}
wrk_threads=${4:-2}
bin=${BUILD_DIR:-$root/build/release}
gateway="$bin/gateway/clawdbot-wecom-gateway"
sim="$bin/simulator/wecom-sim"
node_dir=${BENCH_NODE_DIR:-$HOME/.cache/clawdbot-wecom/bench-node}
# NODE=<path> measures another Node.js than the one on PATH (the version goes into the table).
node_bin=${NODE:-node}
wecom_crypto_version=1.0.1
[[ -x "$gateway" && -x "$sim" ]] || { echo "build first: scripts/build.sh release (or set BUILD_DIR)" >&2; exit 2; }
for tool in wrk "$node_bin" npm curl; do command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }; done

# The official package, pinned, outside the repository.
if [[ ! -f "$node_dir/node_modules/@wecom/crypto/package.json" ]] ||
   ! grep -q "\"version\": \"$wecom_crypto_version\"" "$node_dir/node_modules/@wecom/crypto/package.json"; then
  mkdir -p "$node_dir"
  [[ -f "$node_dir/package.json" ]] || echo '{"name":"cwc-bench-node","private":true}' >"$node_dir/package.json"
  echo "== installing @wecom/crypto@$wecom_crypto_version into $node_dir" >&2
  (cd "$node_dir" && npm install --no-audit --no-fund --silent "@wecom/crypto@$wecom_crypto_version") >&2
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$root/bench/lib.sh"
text=$(printf 'x%.0s' $(seq 1 290))

# Our gateway, started exactly as bench/http_refresh.sh starts it (echo agent, delayMs 0).
sed -e 's/"port": 18789/"port": 0/' -e 's/"delayMs": 300/"delayMs": 0/' "$root/examples/gateway.json" >"$work/gateway.json"
"$gateway" run --config "$work/gateway.json" --state-dir "$work/state" --log-level info --log-file "$work/gateway.log" \
  2>"$work/gateway.stderr" &
pids+=($!)
gateway_pid=$!
gateway_port=$(listening_port "$work/gateway.log")
[[ -n "$gateway_port" ]] || { echo "gateway did not start" >&2; cat "$work/gateway.stderr" >&2; exit 1; }

NODE_PATH="$node_dir/node_modules" "$node_bin" "$root/bench/node-peer/server.mjs" --token "$token" --aes-key "$key" --port 0 \
  >"$work/node.log" 2>&1 &
pids+=($!)
node_pid=$!
node_port=$(listening_port "$work/node.log")
[[ -n "$node_port" ]] || { echo "node peer did not start" >&2; cat "$work/node.log" >&2; exit 1; }

# For each server: open one stream with a real message, then seal a refresh of it, check that one
# refresh answer decrypts (wecom-sim decrypt verifies its signature too) to the expected stream
# JSON, and write the wrk script that replays that refresh.
prepare() {  # name port
  local name=$1 port=$2 url="http://127.0.0.1:$2/wecom"
  local first stream_id sealed field_enc field_sig field_ts reply r_enc r_sig r_ts r_nonce plain
  first=$("$sim" send --url "$url" --token "$token" --aes-key "$key" --user bench --text "$text")
  stream_id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$first")
  [[ -n "$stream_id" ]] || { echo "$name: no stream id in $first" >&2; exit 1; }
  sleep 0.5
  sealed=$("$sim" encrypt --token "$token" --aes-key "$key" --nonce 8427661 \
    --plaintext "{\"msgid\":\"r1\",\"aibotid\":\"B\",\"chattype\":\"single\",\"from\":{\"userid\":\"bench\"},\"msgtype\":\"stream\",\"stream\":{\"id\":\"$stream_id\"}}")
  field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2"; }
  field_enc=$(field encrypt "$sealed")
  field_sig=$(field msg_signature "$sealed")
  field_ts=$(field timestamp "$sealed")
  reply=$(curl -sS --fail -X POST -H 'Content-Type: application/json' --data "{\"encrypt\":\"$field_enc\"}" \
    "$url?msg_signature=$field_sig&timestamp=$field_ts&nonce=8427661")
  r_enc=$(field encrypt "$reply"); r_sig=$(field msgsignature "$reply"); r_ts=$(field timestamp "$reply"); r_nonce=$(field nonce "$reply")
  plain=$("$sim" decrypt --token "$token" --aes-key "$key" --timestamp "$r_ts" --nonce "$r_nonce" --signature "$r_sig" \
    --encrypt "$r_enc") || { echo "$name: the refresh answer does not verify/decrypt: $reply" >&2; exit 1; }
  local expected="{\"msgtype\":\"stream\",\"stream\":{\"id\":\"$stream_id\",\"finish\":true,\"content\":\"echo: $text\"}}"
  [[ "$plain" == "$expected" ]] || { echo "$name: unexpected refresh answer: $plain" >&2; exit 1; }
  echo "== $name: refresh answer verified (signature, AES, ${#plain}-byte stream JSON, finish:true; envelope ${#reply} bytes)" >&2
  cat >"$work/$name.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"encrypt":"$field_enc"}'
wrk.headers["Content-Type"] = "application/json"
wrk.path = "/wecom?msg_signature=$field_sig&timestamp=$field_ts&nonce=8427661"
LUA
}
prepare ours "$gateway_port"
prepare node "$node_port"

to_ms() {  # wrk latency such as 812.00us, 1.23ms, 1.02s → milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
declare -A rps p50 p99 errors
run_wrk() {  # name port round
  local out="$work/$1.$3.wrk"
  wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --latency -s "$work/$1.lua" "http://127.0.0.1:$2" >"$out"
  rps[$1.$3]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50[$1.$3]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99[$1.$3]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  errors[$1.$3]=$(awk '/Non-2xx|Socket errors/ { $1 = $1; print }' "$out" | paste -sd';' -)
  printf '%-5s round %d: %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %s\n' "$1" "$3" "${rps[$1.$3]}" "${p50[$1.$3]}" \
    "${p99[$1.$3]}" "${errors[$1.$3]:-}" >&2
}

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)  (wrk -t$wrk_threads -c$connections -d${seconds}s --latency, $rounds round(s), order alternates)" >&2
for round in $(seq 1 "$rounds"); do
  if (( round % 2 )); then run_wrk ours "$gateway_port" "$round"; run_wrk node "$node_port" "$round"
  else run_wrk node "$node_port" "$round"; run_wrk ours "$gateway_port" "$round"; fi
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
collect() { local -n arr=$1; for round in $(seq 1 "$rounds"); do echo "${arr[$2.$round]}"; done | median; }
o_rps=$(collect rps ours); o_p50=$(collect p50 ours); o_p99=$(collect p99 ours)
n_rps=$(collect rps node); n_p50=$(collect p50 node); n_p99=$(collect p99 node)
echo
echo "| server (median of $rounds) | requests/s | p50 | p99 | RSS after |"
echo "| --- | --- | --- | --- | --- |"
printf '| clawdbot-wecom-gateway | %.0f | %.3f ms | %.3f ms | %s KiB |\n' "$o_rps" "$o_p50" "$o_p99" "$(ps -o rss= -p "$gateway_pid" | tr -d ' ')"
printf '| node %s + @wecom/crypto %s | %.0f | %.3f ms | %.3f ms | %s KiB |\n' "$("$node_bin" --version)" "$wecom_crypto_version" "$n_rps" "$n_p50" "$n_p99" "$(ps -o rss= -p "$node_pid" | tr -d ' ')"
awk -v orps="$o_rps" -v nrps="$n_rps" -v op99="$o_p99" -v np99="$n_p99" 'BEGIN {
  t = orps / nrps; l = op99 / np99
  printf "\nthroughput ours/node: %.2fx (goal >= 5x: %s)\n", t, (t >= 5 ? "met" : "NOT met")
  printf "p99 ours/node: %.2f (goal <= 0.5: %s)\n", l, (l <= 0.5 ? "met" : "NOT met")
}'
