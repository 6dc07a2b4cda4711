#!/usr/bin/env bash
# `just up`: builds and starts the IdP, the API and the BFF together with the
# default configuration and embedded stores, waits until each answers
# /healthz, prints where to go, and stops all three on Ctrl-C.
#
# Every setting is the binaries' own environment variable (see `--help` of
# each), so e.g. `BFF_SESSION_STORE=redis://127.0.0.1:6379 just up` works.
set -euo pipefail
cd "$(dirname "$0")/.."

IDP_PORT="${IDP_PORT:-9000}"
API_PORT="${API_PORT:-4000}"
BFF_PORT="${BFF_PORT:-3000}"
export IDP_PORT API_PORT BFF_PORT

# UP_NO_BUILD=1 uses the binaries already built (the stack test sets it:
# cargo test holds the build lock while tests run).
if [ -z "${UP_NO_BUILD:-}" ]; then
  echo "[up] building the IdP, the API and the BFF…"
  cargo build --quiet -p mock-idp -p api -p bff
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "[up] stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "[up] stopped"
}
trap stop INT TERM EXIT

# Runs a binary with each line of its output labelled with its name.
start() {
  local name=$1; shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

# Waits until http://127.0.0.1:$2/healthz answers 200 (bash's /dev/tcp: no
# curl needed).
wait_healthy() {
  local name=$1 port=$2
  for _ in $(seq 300); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
      if head -n1 <&3 | grep -q ' 200 '; then exec 3<&-; echo "[up] $name is up on :$port"; return 0; fi
      exec 3<&-
    fi
    sleep 0.1
  done
  echo "[up] $name did not become healthy on :$port" >&2
  return 1
}

start idp target/debug/mock-idp
wait_healthy idp "$IDP_PORT"
start api target/debug/api
wait_healthy api "$API_PORT"
start bff target/debug/bff
wait_healthy bff "$BFF_PORT"

cat <<MSG
[up]
[up]   Open ${BFF_PUBLIC_URL:-http://localhost:$BFF_PORT} in your browser.
[up]
[up]   Demo accounts:  alice@example.com / wonderland
[up]                   bob@example.com   / builder
[up]
[up]   IdP ${IDP_ISSUER:-http://localhost:$IDP_PORT/oauth2/default}   API http://localhost:$API_PORT
[up]   Ctrl-C stops all three.
[up]
MSG

# Stay up until Ctrl-C, or until one of the three stops by itself.
wait -n "${pids[@]}" || true
