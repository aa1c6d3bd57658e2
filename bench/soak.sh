#!/usr/bin/env bash
# Soak test of the reference gateway on loopback (issue #7): the embedded gateway with the echo
# agent, driven by wrk for a while with a mix of WeCom traffic:
#   new text messages (each msgid of the pool; once the pool wraps, they are WeCom retries),
#   immediate retries of the same msgid, msgtype=stream refreshes of open and finished streams,
#   and ~10 % malformed requests (bad signature, bad base64 with a valid signature, encrypted
#   non-JSON, truncated JSON envelope, wrong path, missing query params).
# wrk's Lua cannot encrypt, so a pool of signed requests is made beforehand with `wecom-sim
# encrypt` (bench/soak.lua cycles through it). Checks, and prints:
#   - no 5xx answer and no wrk timeout;
#   - the gateway is alive after the run and exits 0 on SIGTERM;
#   - RSS at start (after warm-up), during the run and at the end; the growth is bounded;
#   - every valid message reached the echo agent exactly once (its debug log line
#     `echo agent: run msgid=...`), and a WeCom retry of a pooled msgid names the same stream.
#
#   bench/soak.sh [seconds=60] [connections=16] [messages=1000]
# BUILD_DIR (default build/release) selects the build; RSS_GROWTH_MAX_KIB (default 65536) the
# bound. Exit status 0 only if every check passed. Nothing leaves 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
connections=${2:-16}
messages=${3:-1000}
bin=${BUILD_DIR:-$root/build/release}
rss_growth_max=${RSS_GROWTH_MAX_KIB:-65536}
gateway="$bin/gateway/clawdbot-wecom-gateway"
sim="$bin/simulator/wecom-sim"
[[ -x "$gateway" && -x "$sim" ]] || { echo "build first: scripts/build.sh release (or set BUILD_DIR)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh" >&2; exit 2; }

work=$(mktemp -d)
pid=""
sampler=""
cleanup() {
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n "${KEEP_SOAK_DIR:-}" ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$root/bench/lib.sh"
seeds=20
users=50
cat >"$work/gateway.json" <<JSON
// bench/soak.sh: loopback only, echo agent, debug log (the echo agent's run lines are counted)
{
  "gateway": { "port": 0, "bind": "127.0.0.1", "shutdownGraceMs": 2000 },
  "channels": { "wecom": { "enabled": true, "webhookPath": "/wecom", "token": "$token",
                           "encodingAESKey": "$key", "receiveId": "",
                           "dm": { "policy": "open", "allowFrom": ["*"] } } },
  "agent": { "kind": "echo", "echo": { "delayMs": 20 } }
}
JSON
"$gateway" run --config "$work/gateway.json" --state-dir "$work/state" --log-level debug --log-file "$work/gateway.log" \
  2>/dev/null &
pid=$!
port=$(listening_port "$work/gateway.log")
[[ -n "$port" ]] || { echo "gateway did not start" >&2; cat "$work/gateway.log" >&2; exit 1; }
url="http://127.0.0.1:$port/wecom"
rss() { ps -o rss= -p "$pid" | tr -d ' '; }

# Seed streams (real messages through wecom-sim) so that refreshes have something to read.
echo "== pool: $seeds seed messages, $messages pooled messages, refreshes, malformed requests" >&2
: >"$work/stream_ids"
for i in $(seq 1 "$seeds"); do
  "$sim" send --url "$url" --token "$token" --aes-key "$key" --user "seed$i" --msgid "soak-seed-$i" --text "seed $i" \
    | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' >>"$work/stream_ids"
done
[[ $(wc -l <"$work/stream_ids") -eq $seeds ]] || { echo "seeding failed" >&2; exit 1; }

# seal <plaintext> → "path body" fields for the Lua pool (one wecom-sim process per request).
seal() {
  "$sim" encrypt --token "$token" --aes-key "$key" --nonce 8427661 --plaintext "$1"
}
export -f seal
export sim token key
seq 1 "$messages" | xargs -P 2 -I{} bash -c \
  'u=$(( {} % '"$users"' )); seal "{\"msgid\":\"soak-{}\",\"aibotid\":\"BOT\",\"chattype\":\"single\",\"from\":{\"userid\":\"user$u\"},\"msgtype\":\"text\",\"text\":{\"content\":\"soak message {}\"}}"' \
  >"$work/new.jsonl"
i=0
: >"$work/refresh.jsonl"
while read -r sid; do
  for k in 1 2 3 4 5; do
    i=$((i + 1))
    seal "{\"msgid\":\"soak-refresh-$i\",\"aibotid\":\"BOT\",\"chattype\":\"single\",\"from\":{\"userid\":\"seed$k\"},\"msgtype\":\"stream\",\"stream\":{\"id\":\"$sid\"}}" \
      >>"$work/refresh.jsonl"
  done
done <"$work/stream_ids"
seal "{not json" >"$work/notjson.jsonl"
[[ $(wc -l <"$work/new.jsonl") -eq $messages ]] || { echo "sealing the pool failed" >&2; exit 1; }

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2"; }
sign() {  # WeCom's msg_signature: sha1 of the sorted (token, timestamp, nonce, encrypt)
  printf '%s' "$(printf '%s\n' "$token" "$1" "$2" "$3" | LC_ALL=C sort | tr -d '\n')" | sha1sum | cut -d' ' -f1
}
lua_entry() {  # lua_entry <list> <path> <body>
  printf '%s[#%s+1] = {p = [[%s]], b = [[%s]]}\n' "$1" "$1" "$2" "$3"
}
{
  echo "new, refresh, bad = {}, {}, {}"
  while read -r line; do
    lua_entry new "/wecom?msg_signature=$(field msg_signature "$line")&timestamp=$(field timestamp "$line")&nonce=8427661" \
      "{\"encrypt\":\"$(field encrypt "$line")\"}"
  done <"$work/new.jsonl"
  while read -r line; do
    lua_entry refresh "/wecom?msg_signature=$(field msg_signature "$line")&timestamp=$(field timestamp "$line")&nonce=8427661" \
      "{\"encrypt\":\"$(field encrypt "$line")\"}"
  done <"$work/refresh.jsonl"
  # Malformed, each answered 4xx by the plugin or the gateway.
  line=$(head -n 1 "$work/new.jsonl")
  enc=$(field encrypt "$line")
  ts=$(field timestamp "$line")
  sig=$(field msg_signature "$line")
  badsig=$( [[ ${sig:0:1} == 0 ]] && echo "1${sig:1}" || echo "0${sig:1}")
  q="msg_signature=$sig&timestamp=$ts&nonce=8427661"
  lua_entry bad "/wecom?msg_signature=$badsig&timestamp=$ts&nonce=8427661" "{\"encrypt\":\"$enc\"}"  # 401
  junk='@@not*base64!!'
  lua_entry bad "/wecom?msg_signature=$(sign "$ts" 8427661 "$junk")&timestamp=$ts&nonce=8427661" \
    "{\"encrypt\":\"$junk\"}"                                                                          # 400 base64
  nj=$(head -n 1 "$work/notjson.jsonl")
  lua_entry bad "/wecom?msg_signature=$(field msg_signature "$nj")&timestamp=$(field timestamp "$nj")&nonce=8427661" \
    "{\"encrypt\":\"$(field encrypt "$nj")\"}"                                                         # 400 not JSON inside
  lua_entry bad "/wecom?$q" "{\"encrypt\":\"${enc:0:40}"                                             # 400 truncated JSON
  lua_entry bad "/wecom-nope?$q" "{\"encrypt\":\"$enc\"}"                                             # 404 wrong path
  lua_entry bad "/wecom" "{\"encrypt\":\"$enc\"}"                                                     # 400 no query
  lua_entry bad "/wecom?timestamp=$ts&nonce=8427661" "{\"encrypt\":\"$enc\"}"                         # 400 no signature
} >"$work/pool.lua"
cat "$work/pool.lua" "$root/bench/soak.lua" >"$work/soak.lua"

sleep 0.5
rss_start=$(rss)
echo "== wrk -t2 -c$connections -d${seconds}s against $url (RSS at start: $rss_start KiB)" >&2
(while kill -0 "$pid" 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 5; done) >"$work/rss.log" 2>/dev/null &
sampler=$!
wrk -t2 -c"$connections" -d"${seconds}s" --timeout 5s -s "$work/soak.lua" "http://127.0.0.1:$port" | tee "$work/wrk.out"
kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true
sampler=""

failures=0
check() {  # check <ok?> <message>
  if [[ "$1" == 1 ]]; then echo "ok    $2"; else echo "FAIL  $2"; failures=$((failures + 1)); fi
}
alive=0
kill -0 "$pid" 2>/dev/null && alive=1
check "$alive" "gateway still running after the load (no crash)"
sleep 1  # let the last answers finish
rss_end=$(rss || echo 0)
rss_max=$(awk 'BEGIN{m=0} {if ($2>m) m=$2} END{print m}' "$work/rss.log")

get() { sed -n "s/^soak: .*$1=\([0-9]*\).*/\1/p" "$work/wrk.out"; }
total=$(get total); s2=$(get 2xx); s4=$(get 4xx); s5=$(get 5xx); other=$(get other)
timeouts=$(sed -n 's/.*Socket errors:.*timeout \([0-9]*\).*/\1/p' "$work/wrk.out"); timeouts=${timeouts:-0}
bad_share=$(awk -v b="$s4" -v t="$total" 'BEGIN{printf "%.1f", t ? 100*b/t : 0}')
check "$([[ -n "$total" && $total -gt 0 ]] && echo 1 || echo 0)" "requests answered: ${total:-0} (2xx ${s2:-?}, 4xx ${s4:-?} = ${bad_share} %, 5xx ${s5:-?}, other ${other:-?})"
check "$([[ "${s5:-1}" == 0 ]] && echo 1 || echo 0)" "zero 5xx"
check "$([[ "${other:-1}" == 0 ]] && echo 1 || echo 0)" "no status outside 2xx/4xx"
check "$([[ "$timeouts" == 0 ]] && echo 1 || echo 0)" "no wrk timeouts"
check "$(awk -v s="$bad_share" 'BEGIN{print (s >= 5 && s <= 15) ? 1 : 0}')" "malformed requests ~10 % of the mix, all answered 4xx"

# Exactly once: every pooled and seeded msgid has exactly one echo-agent run.
grep -o 'echo agent: run msgid=[^ ]* stream=[^ ]*' "$work/gateway.log" | sed 's/echo agent: run //' | sort >"$work/runs"
runs=$(wc -l <"$work/runs")
distinct=$(cut -d' ' -f1 "$work/runs" | sort -u | wc -l)
expected=$((messages + seeds))
check "$([[ $runs -eq $expected && $distinct -eq $expected ]] && echo 1 || echo 0)" \
  "every valid message dispatched exactly once: $runs agent runs, $distinct distinct msgids, $expected sent"
dups=$(grep -c 'duplicate msgid=soak-' "$work/gateway.log" || true)
echo "      (WeCom retries answered from the existing stream: $dups)"
# A WeCom retry of a pooled msgid names the stream its first delivery opened.
same=1
for n in 1 $((messages / 2)) "$messages"; do
  sid=$(sed -n "s/^msgid=soak-$n stream=//p" "$work/runs")
  got=$("$sim" send --url "$url" --token "$token" --aes-key "$key" --user "user$((n % users))" --msgid "soak-$n" \
        --text "soak message $n" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  [[ -n "$sid" && "$sid" == "$got" ]] || { same=0; echo "      soak-$n: agent stream '$sid', retry answered '$got'"; }
done
check "$same" "a retried msgid gets the same stream id (3 samples)"
check "$([[ $(grep -c 'echo agent: run' "$work/gateway.log") -eq $expected ]] && echo 1 || echo 0)" "the sampled retries did not run the agent again"

echo "      RSS every 5 s during the run (KiB): $(awk '{printf "%s ", $2}' "$work/rss.log")"
growth=$(( ${rss_end:-0} - rss_start ))
check "$([[ ${rss_end:-0} -gt 0 && $growth -le $rss_growth_max ]] && echo 1 || echo 0)" \
  "RSS start $rss_start KiB, max $rss_max KiB, end $rss_end KiB (growth $growth KiB, bound $rss_growth_max KiB)"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
check "$([[ $code -eq 0 ]] && grep -q 'stopped' "$work/gateway.log" && echo 1 || echo 0)" "SIGTERM: exit $code, \"stopped\" logged"
echo "soak summary: ${seconds}s, $connections connections, $total requests, 5xx=${s5:-?}, agent runs $runs/$expected," \
  "RSS $rss_start→$rss_end KiB (max $rss_max), failures $failures"
exit $((failures > 0))
