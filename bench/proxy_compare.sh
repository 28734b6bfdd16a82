#!/usr/bin/env bash
# `tlsfast proxy` side by side with haproxy and stunnel (and the proxy on stock
# Twisted TLS): bulk 1/16 connections, new connections/s, 64-byte
# request/response (1/16 connections, p50/p99), memory per idle connection.
# Installs haproxy and stunnel4 if missing.  About 8-10 minutes on 2 cores.
# Results: bench-results/proxy.md and bench-results/proxy.json.
# Extra arguments go to bench/proxy_compare.py (e.g. --quick, --rounds 3,
# --profile bench-results/proxy-profile).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench-results}

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need+=(stunnel4)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true
exec "$PY" bench/proxy_compare.py --rounds 5 --seconds 2 \
    --markdown "$OUT/proxy.md" --json "$OUT/proxy.json" "$@"
