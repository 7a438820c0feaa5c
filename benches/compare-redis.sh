#!/usr/bin/env bash
# respite vs real Redis, side by side on this machine (issues 3 and 4).
#
#   benches/compare-redis.sh [--quick] [--rounds N] [--only tput,mem,idle,evict,flood]
#                            [--respite PATH] [--redis PATH] [--out DIR]
#
# Starts target/release/respite-server and redis-server with the same arguments on free
# 127.0.0.1 ports, runs the workloads on both A B / B A per round, and prints a table
# (workload | metric | respite | redis | ratio | better) with medians over rounds, the
# geomean throughput ratios, the eviction hit ratios against an exact LRU and the write
# flood figures.  OUT/table.md holds the same table in Markdown, OUT/results.json the raw
# data, OUT/logs the server and redis-benchmark output.
#
#   full run (3 rounds): under 10 minutes;  --quick (1 round, fewer requests): under 2.
#
# Needs: python3 (3.8+, standard library only), redis-server and redis-benchmark 7
# (Debian: apt-get install redis-server redis-tools), a release build of respite
# (cargo build --release -p respite).  COMPARE_TIMEOUT=S overrides the hard time limit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

respite="$ROOT/target/release/respite-server"
redis="redis-server"
quick=0
rounds=""
args=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage 0 ;;
    --quick) quick=1 ;;
    --rounds) rounds="${2:-}"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --respite) respite="${2:-}"; shift ;;
    --respite=*) respite="${1#*=}" ;;
    --redis) redis="${2:-}"; shift ;;
    --redis=*) redis="${1#*=}" ;;
  esac
  shift
done

die() { echo "compare-redis.sh: $*" >&2; exit 2; }

command -v "$PY" >/dev/null || die "python3 not found"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 8))' || die "python 3.8 or newer needed"
command -v timeout >/dev/null || die "timeout (coreutils) not found"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (apt-get install redis-tools)"
if [[ "$redis" != */* ]]; then
  command -v "$redis" >/dev/null || die "$redis not found (apt-get install redis-server)"
else
  [[ -x "$redis" ]] || die "$redis is not executable"
fi
[[ -x "$respite" ]] || die "$respite not found: build it with 'cargo build --release -p respite' or pass --respite PATH"

# 5,000 idle connections and redis-benchmark -c 1000 need file descriptors on both sides;
# the servers inherit this limit.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Hard upper bound on the whole run.  The script keeps its own (smaller) time budget and
# prints what it has if it gets SIGTERM from here.
if [[ -n "${COMPARE_TIMEOUT:-}" ]]; then
  limit="$COMPARE_TIMEOUT"
elif [[ $quick == 1 && ( -z "$rounds" || "$rounds" == 1 ) ]]; then
  limit=118
elif [[ -z "$rounds" || "$rounds" -le 3 ]]; then
  limit=595
else
  limit=$(( 60 + 180 * rounds ))
fi

export COMPARE_CMDLINE="benches/compare-redis.sh${args[*]:+ ${args[*]}}"
cd "$ROOT"
exec timeout --signal=TERM --kill-after=15 "$limit" "$PY" "$HERE/compare_redis.py" --respite "$respite" "${args[@]}"
