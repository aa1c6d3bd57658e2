#!/usr/bin/env bash
# What wrk can get out of this machine's loopback at all: nginx answering a constant `200 ok`
# (no parsing of a body, no crypto, no allocation per request) under the same workload as
# bench/http_refresh.sh and bench/compare_node.sh (wrk -t2 -c32, on the same cores). No server
# that does real work can beat it; docs/performance.md compares the gateway's figures to it.
#   bench/loopback_ceiling.sh [connections=32] [seconds=10] [workers=1 2]
# Needs nginx (apt-get install nginx-light; not installed by scripts/setup.sh), wrk, curl, python3.
set -euo pipefail
connections=${1:-32}
seconds=${2:-10}
shift 2 2>/dev/null || shift $# || true
worker_counts=("$@")
((${#worker_counts[@]})) || worker_counts=(1 2)
for tool in nginx wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install nginx-light wrk)" >&2; exit 2; }
done
work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for workers in "${worker_counts[@]}"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
error_log $work/error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:$port; location / { return 200 "ok"; } }
}
CONF
  nginx -c "$work/nginx.conf" -p "$work" &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
  result=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port/")
  printf 'nginx %s worker(s): %s req/s  p50 %s  p99 %s\n' "$workers" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$result")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$result")" "$(awk '$1 == "99%" {print $2}' <<<"$result")"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
done
