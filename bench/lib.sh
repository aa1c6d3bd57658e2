# Sourced by the bench scripts: the credentials every bench run uses (test values, never real
# ones) and the wait for a server's start-up line.
# shellcheck shell=bash
token=hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo
key=6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt

# listening_port <log file>: prints the port of its "listening on http://127.0.0.1:N" line once
# it appears (waits up to 10 s; prints nothing if it never does).
listening_port() {
  local port=""
  for _ in $(seq 1 200); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$' || true)
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  echo "$port"
}
