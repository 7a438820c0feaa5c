#!/usr/bin/env bash
# User-space instructions a server spends per request at -P 1, counted by callgrind: steadier on
# these shared machines than CPU time, so a change to the connection loop shows up at once.
#
#   benches/callgrind.sh [SERVER_BINARY ...]   (default: target/release/respite-server redis-server)
#
# Each server runs under valgrind --tool=callgrind on a free loopback port, takes 20,000 SETs
# and 40,000 GETs from redis-benchmark (50 clients, -P 1, keys random over 100k) and is shut
# down; the script prints its total instructions and instructions per request. Startup is in
# the total (a few million), and the count moves ~10% between runs with how requests happen
# to batch: compare medians of a few runs. Needs valgrind, redis-benchmark and redis-cli.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -gt 0 ] || set -- "$ROOT/target/release/respite-server" redis-server
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
requests=60000
for bin in "$@"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  timeout 300 valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" --port "$port" --bind 127.0.0.1 \
    --save '' --appendonly no >"$out/log" 2>&1 &
  vg=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  timeout 120 redis-benchmark -p "$port" -t set -n 20000 -c 50 -P 1 -r 100000 -q >/dev/null 2>&1
  timeout 120 redis-benchmark -p "$port" -t get -n 40000 -c 50 -P 1 -r 100000 -q >/dev/null 2>&1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$vg" || true
  total=$(awk '/^totals:/ {print $2}' "$out/cg")
  printf '%-50s %12s instructions  %6d per request\n' "$(basename "$bin")" "$total" $((total / requests))
done
