#!/usr/bin/env bash
# weft_redis beside its anchors (../shared/bench/anchors/redis:
# redis-benchmark, redis-py asyncio), in one run on the anchors' setup:
# redis-server on 127.0.0.1:56379 pinned to CPU 0, no persistence; clients
# pinned to CPU 1 by the anchors' harness.py; RUNS runs each.
#
#   bench/redis.sh [build-dir]          RUNS (3), T seconds (10), N requests (200000)
#
# Rows: redis-benchmark -t get,set -c 50 (and -P 16), redis-py asyncio with
# a 50-connection pool (hiredis parser when installed), weft_redis with 50
# tasks: auto-pipelined (max_in_flight 1024) and one command per connection
# (max_in_flight 1, 16 and 50 connections).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/redis
RUNS=${RUNS:-3}; T=${T:-10}; N=${N:-200000}
W=/tmp/weft-bench-redis; mkdir -p $W
setsid taskset -c 0 redis-server --port 56379 --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --dir $W --logfile $W/redis.log --protected-mode no & RS=$!
trap 'kill -TERM $RS 2>/dev/null; wait $RS 2>/dev/null || true' EXIT
for i in $(seq 100); do redis-cli -p 56379 ping >/dev/null 2>&1 && break; sleep 0.1; done

OUT=$BUILD/bench/redis.jsonl; mkdir -p "$BUILD/bench"; : > "$OUT"
H() { (cd "$ANCH" && /usr/bin/python3 harness.py run --out "$OUT" --runs "$RUNS" --server-pid "$RS" "$@"); }
H --name "redis-benchmark" --target "127.0.0.1:56379" --parser redisbench --ops $N -- \
  redis-benchmark -p 56379 -t get,set -c 50 -n $N --csv
H --name "redis-benchmark -P 16" --target "127.0.0.1:56379" --parser redisbench --ops $((10*N)) -- \
  redis-benchmark -p 56379 -t get,set -c 50 -n $((10*N)) -P 16 --csv
if /usr/bin/python3 -c 'import redis.asyncio' 2>/dev/null; then
  P=python; /usr/bin/python3 -c 'import hiredis' 2>/dev/null && P=hiredis
  H --name "redis-py asyncio ($P parser), pool of 50" --target "127.0.0.1:56379" --parser json -- \
    /usr/bin/python3 py_redis.py $P $T 50
fi
URL=redis://127.0.0.1:56379
H --name "weft_redis auto-pipelined (max_in_flight 1024), 50 tasks" --target "127.0.0.1:56379" \
  --parser json -- "$BUILD/bench/redis_getset" $URL $T 50 1024 16
H --name "weft_redis one command per connection, 16 connections, 50 tasks" --target "127.0.0.1:56379" \
  --parser json -- "$BUILD/bench/redis_getset" $URL $T 50 1 16
H --name "weft_redis one command per connection, 50 connections, 50 tasks" --target "127.0.0.1:56379" \
  --parser json -- "$BUILD/bench/redis_getset" $URL $T 50 1 50
(cd "$ANCH" && /usr/bin/python3 harness.py table "$OUT") | tee "$BUILD/bench/redis.md"
