#!/usr/bin/env bash
# The Twisted drop-in targets, measured over loopback: stock Twisted TLS vs
# tlsfast vs Twisted plain TCP (and asyncio and uvloop with stdlib ssl) side by side in one run per
# scenario, server and client in separate processes pinned to different cores,
# stacks interleaved, medians of the server's CPU per operation.
# About 8-10 minutes.  Results: bench-results/*.json and *.md; the tables in
# docs/benchmarks.md ("Twisted over loopback") come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench-results}
mkdir -p "$OUT"
run() {  # name, then tlsfast bench arguments
    local name=$1; shift
    "$PY" -m tlsfast bench "$@" --json "$OUT/$name.json" --markdown "$OUT/$name.md"
}
STACKS=tcp,twisted,tlsfast,asyncio,uvloop  # uvloop is in the bench extra
run echo64x1   echo --size 64   --connections 1  --reps 5 --seconds 2 --stacks $STACKS
run echo1kx1   echo --size 1024 --connections 1  --reps 5 --seconds 2 --stacks $STACKS
run echo64x50  echo --size 64   --connections 50 --reps 5 --seconds 2 --stacks $STACKS
run echo1kx50  echo --size 1024 --connections 50 --reps 5 --seconds 2 --stacks $STACKS
run bulk       bulk --megabytes 512 --write-size 65536 --reps 5 --stacks $STACKS
run handshake  handshake --connections 8 --reps 5 --seconds 3 --stacks twisted,tlsfast,asyncio,uvloop
run handshake-client handshake-client --reps 5 --seconds 3 --stacks twisted,tlsfast,asyncio,uvloop
run idle       idle --connections 1000 --reps 3 --stacks tcp,twisted,tlsfast,uvloop
