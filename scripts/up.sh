#!/usr/bin/env bash
# `just up`: builds and starts the IdP, the API and the BFF together with the
# default configuration and embedded stores, waits until each answers
# /healthz, prints where to go, and stops all three on Ctrl-C.
#
# Every setting is the binaries' own environment variable (see `--help` of
# each), so e.g. `BFF_SESSION_STORE=redis://127.0.0.1:6379 just up` works.
# The ports move everything that depends on them: `BFF_PORT=3100 just up`
# gives the BFF its public URL on :3100 and registers that URL's callback at
# the IdP (unless IDP_CONFIG names your own configuration).
set -euo pipefail
cd "$(dirname "$0")/.."

IDP_PORT="${IDP_PORT:-9000}"
API_PORT="${API_PORT:-4000}"
BFF_PORT="${BFF_PORT:-3000}"
export IDP_PORT API_PORT BFF_PORT

# The URLs that follow the ports, unless set.
export IDP_ISSUER="${IDP_ISSUER:-http://localhost:$IDP_PORT/oauth2/default}"
export API_ISSUER="${API_ISSUER:-$IDP_ISSUER}"
export BFF_ISSUER="${BFF_ISSUER:-$IDP_ISSUER}"
export BFF_PUBLIC_URL="${BFF_PUBLIC_URL:-http://localhost:$BFF_PORT}"
export BFF_API_URL="${BFF_API_URL:-http://localhost:$API_PORT}"

# The script's own lines; on stderr when the services' lines are JSON, so
# that standard output stays JSON, one object per line.
say() {
  if [ "${LOG_FORMAT:-text}" = json ]; then echo "[up] $*" >&2; else echo "[up] $*"; fi
}

# A port something else listens on would answer our health checks: refuse.
for entry in "idp:$IDP_PORT:IDP_PORT" "api:$API_PORT:API_PORT" "bff:$BFF_PORT:BFF_PORT"; do
  IFS=: read -r name port variable <<<"$entry"
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    exec 3<&-
    say "port $port ($name) is already taken: see what holds it with \`ss -ltnp 'sport = :$port'\`, stop it, or move the $name with $variable=… just up" >&2
    exit 1
  fi
done

# The demo app's URLs at the IdP follow the BFF's public URL.
if [ -z "${IDP_CONFIG:-}" ] && [ "$BFF_PUBLIC_URL" != "http://localhost:3000" ]; then
  mkdir -p data
  sed "s#http://localhost:3000#${BFF_PUBLIC_URL%/}#g" crates/mock-idp/config/default.toml > data/mock-idp.up.toml
  export IDP_CONFIG=data/mock-idp.up.toml
  say "the demo app is registered at the IdP as $BFF_PUBLIC_URL (data/mock-idp.up.toml)"
fi

# UP_NO_BUILD=1 uses the binaries already built (the stack test sets it:
# cargo test holds the build lock while tests run).
if [ -z "${UP_NO_BUILD:-}" ]; then
  say "building the IdP, the API and the BFF (the first build takes a few minutes)…"
  cargo build --quiet -p mock-idp -p api -p bff
fi

pids=()
stop() {
  trap - INT TERM EXIT
  say "stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  say "stopped"
}
trap stop INT TERM EXIT

# Runs a binary with each line of its output labelled with its name: as a
# prefix for people, as a "service" field when the lines are JSON.
start() {
  local name=$1; shift
  if [ "${LOG_FORMAT:-text}" = json ]; then
    "$@" > >(sed -u "s/^{/{\"service\":\"$name\",/") 2>&1 &
  else
    "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  fi
  pids+=($!)
}

# Waits until http://127.0.0.1:$3/healthz answers 200 while the process we
# started ($2) still runs (bash's /dev/tcp: no curl needed).
wait_healthy() {
  local name=$1 pid=$2 port=$3
  for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name stopped before it answered on :$port (its lines above say why)" >&2
      return 1
    fi
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
      if head -n1 <&3 | grep -q ' 200 '; then exec 3<&-; say "$name is up on :$port"; return 0; fi
      exec 3<&-
    fi
    sleep 0.1
  done
  say "$name did not become healthy on :$port" >&2
  return 1
}

start idp target/debug/mock-idp
wait_healthy idp "${pids[-1]}" "$IDP_PORT"
start api target/debug/api
wait_healthy api "${pids[-1]}" "$API_PORT"
start bff target/debug/bff
wait_healthy bff "${pids[-1]}" "$BFF_PORT"

banner() {
  cat <<MSG
[up]
[up]   Open $BFF_PUBLIC_URL in your browser.
[up]
[up]   Demo accounts:  alice@example.com / wonderland
[up]                   bob@example.com   / builder
[up]
[up]   IdP $IDP_ISSUER   API http://localhost:$API_PORT
[up]   Ctrl-C stops all three.
[up]
MSG
}
if [ "${LOG_FORMAT:-text}" = json ]; then banner >&2; else banner; fi

# Stay up until Ctrl-C, or until one of the three stops by itself.
wait -n "${pids[@]}" || true
