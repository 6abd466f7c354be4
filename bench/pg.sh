#!/usr/bin/env bash
# weft_pg beside its anchors (../shared/bench/anchors/pg: pgbench, asyncpg),
# in one run on the anchors' own cluster setup: PostgreSQL 15 pinned to
# CPU 0 (fsync off, 256 MB shared buffers, huge pages), pgbench -i -s 10,
# clients pinned to CPU 1 by the anchors' harness.py, RUNS runs each.
#
#   bench/pg.sh [build-dir]          RUNS (3), T seconds per run (10)
#
# Rows: pgbench -S -M prepared (20 clients), pgbench pipelined x16,
# asyncpg create_pool(5,20) with and without uvloop, weft_pg with
# exclusive connections (pipeline 1) and pipelined across tasks (8).
# Needs root (postgres runs as its user, huge pages are reserved).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/pg
RUNS=${RUNS:-3}; T=${T:-10}
BIN=/usr/lib/postgresql/15/bin; W=/tmp/weft-bench-pg; PORT=55432
PGU=$(id -u postgres); PGG=$(id -g postgres)
HUGEPAGES=${HUGEPAGES:-1}; OLD_HP=$(cat /proc/sys/vm/nr_hugepages); HP=off
if [ "$HUGEPAGES" = 1 ] && echo 160 > /proc/sys/vm/nr_hugepages 2>/dev/null; then HP=on; fi
rm -rf $W; mkdir -p $W/sock; chown -R postgres:postgres $W
setpriv --reuid=$PGU --regid=$PGG --init-groups -- $BIN/initdb -D $W/data -U postgres -A trust \
  -E UTF8 --locale=C --no-sync >$W/initdb.log
setsid taskset -c 0 setpriv --reuid=$PGU --regid=$PGG --init-groups -- $BIN/postgres -D $W/data -p $PORT \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$W/sock -c max_connections=100 \
  -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c huge_pages=$HP -c logging_collector=off -c log_min_messages=warning >$W/server.log 2>&1 & PG=$!
trap 'kill -INT $PG 2>/dev/null; wait $PG 2>/dev/null || true; echo $OLD_HP > /proc/sys/vm/nr_hugepages 2>/dev/null || true' EXIT
for i in $(seq 100); do $BIN/pg_isready -q -h 127.0.0.1 -p $PORT && break; sleep 0.1; done
export PGUSER=postgres PGDATABASE=postgres PGPORT=$PORT
taskset -c 1 $BIN/pgbench -h 127.0.0.1 -i -s 10 -q >$W/init.log 2>&1
taskset -c 1 $BIN/pgbench -h 127.0.0.1 -S -M prepared -c 20 -j 1 -T 3 >/dev/null 2>&1   # warm the cache

OUT=$BUILD/bench/pg.jsonl; mkdir -p "$BUILD/bench"; : > "$OUT"
URL=postgresql://postgres@127.0.0.1:$PORT/postgres
H() { (cd "$ANCH" && /usr/bin/python3 harness.py run --out "$OUT" --runs "$RUNS" --server-pid "$PG" "$@"); }
H --name "pgbench (libpq) -S -M prepared" --target "TCP 127.0.0.1" --parser pgbench -- \
  $BIN/pgbench -h 127.0.0.1 -S -M prepared -c 20 -j 1 -T $T
H --name "pgbench (libpq) pipeline x16" --target "TCP 127.0.0.1" --parser pgbench --scale-ops 16 -- \
  $BIN/pgbench -h 127.0.0.1 -M prepared -f select_pipe16.sql -c 20 -j 1 -T $T
if /usr/bin/python3 -c 'import asyncpg, uvloop' 2>/dev/null; then
  H --name "asyncpg 0.27 create_pool(5,20)" --target "TCP 127.0.0.1" --parser json -- \
    /usr/bin/python3 py_pg.py asyncpg $T 20
  H --name "asyncpg 0.27 create_pool(5,20) + uvloop" --target "TCP 127.0.0.1" --parser json -- \
    /usr/bin/python3 py_pg.py asyncpg uvloop $T 20
fi
H --name "weft_pg exclusive (pipeline 1), 20 tasks" --target "TCP 127.0.0.1" --parser json -- \
  "$BUILD/bench/pg_select" "$URL" $T 20 1
H --name "weft_pg pipelined across tasks (pipeline 8), 20 tasks" --target "TCP 127.0.0.1" --parser json -- \
  "$BUILD/bench/pg_select" "$URL" $T 20 8
(cd "$ANCH" && /usr/bin/python3 harness.py table "$OUT") | tee "$BUILD/bench/pg.md"
