#!/usr/bin/env bash
# `tlsfast proxy` side by side with haproxy, stunnel and hitch (and the proxy
# on stock Twisted TLS): bulk 1/16 connections, new connections/s, 64-byte
# request/response (1/16 connections, p50/p99), memory per idle connection.
# Installs haproxy, stunnel4 and hitch if missing (apt, root), then runs
# `tlsfast bench proxy`, which leaves out whichever is still missing and says
# so.  About 8-12 minutes on 2 cores.
# Results: bench-results/proxy.md and bench-results/proxy.json.
# Extra arguments go to `tlsfast bench proxy` (e.g. --quick, --rounds 3,
# --profile bench-results/proxy-profile).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench-results}

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need+=(stunnel4)
command -v hitch >/dev/null || need+=(hitch)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null \
        || echo "could not install ${need[*]}: the missing ones are left out" >&2
fi

mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true
exec "$PY" -m tlsfast bench proxy --rounds 5 --seconds 2 \
    --markdown "$OUT/proxy.md" --json "$OUT/proxy.json" "$@"
