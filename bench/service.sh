#!/usr/bin/env bash
# Issue 14's benchmark: weft serve beside the seed's FastAPI + asyncpg
# service (../shared/bench/anchors/service) in one run. A throwaway
# PostgreSQL 15 cluster set up as the anchor's run.sh sets it up (port
# 55432, fsync off, 256 MB shared buffers, huge pages) pinned to CPU 0 with
# the server under test; wrk -t1 -c50 pinned to CPU 1.
#
#   bench/service.sh [build-dir]    RUNS (3) runs of D (10) seconds each, medians;
#                                   WARM (2) seconds of warm-up before each;
#                                   LOOPS uvicorn loops[:parser] ("asyncio:h11,asyncio,uvloop";
#                                   httptools unless said; "" none);
#                                   HUGEPAGES (1)
#
# Rows: GET /users/{id} (random ids 1..10000, the anchor's rand.lua), /db,
# /queries?queries=20, /fortunes, /updates?queries=20 on weft serve --pg
# --threads 1 (its own database `weft` in the cluster, made by its
# migrations) and on uvicorn (1 process, httptools, asyncio and uvloop):
# the seed's app.py for /users/{id}, bench/anchors/service/app_te.py (the
# same app with TechEmpower's tests added) for the rest, both on database
# `postgres` (the seed's users table, World and Fortune: anchors/service/te.sql).
# Then POST /events on weft serve's embedded SQLite queue (no --pg; a fresh
# --db under /var/tmp, on disk): accepted durable events/s. Server CPU per
# request: the server process's utime+stime (PostgreSQL's apart).
# Results: <build>/bench/service.{jsonl,md}, logs in <build>/bench/service/.
# As root PostgreSQL runs as its user (setpriv), as the anchors run it;
# otherwise only the POST /events row is measured.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/service
OURS=$ROOT/bench/anchors/service
RUNS=${RUNS:-3}; D=${D:-10}; WARM=${WARM:-2}; LOOPS=${LOOPS-asyncio:h11,asyncio,uvloop}
BIN=/usr/lib/postgresql/15/bin; PORT=55432         # where the seed's app.py connects
PY=/usr/bin/python3
[ -x "$BUILD/weft" ] || { echo "bench: $BUILD/weft is not built" >&2; exit 1; }
for t in wrk taskset setpriv $PY; do
  command -v "$t" >/dev/null || { echo "bench: $t is missing (scripts/bootstrap)" >&2; exit 1; }
done
OUT=$BUILD/bench/service.jsonl; LOGS=$BUILD/bench/service
mkdir -p "$BUILD/bench"; : > "$OUT"; rm -rf "$LOGS"; mkdir -p "$LOGS"

PGROWS=1
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: PostgreSQL runs as the user postgres (setpriv), which needs root: POST /events alone" >&2
  PGROWS=0
elif ! [ -x $BIN/postgres ]; then
  echo "bench: PostgreSQL 15 is missing (scripts/bootstrap): POST /events alone" >&2
  PGROWS=0
elif (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
  echo "bench: port $PORT is taken (another benchmark's cluster?)" >&2
  exit 1
fi
if [ -n "$LOOPS" ] && ! $PY -c 'import fastapi, asyncpg, uvloop, httptools, uvicorn' 2>/dev/null; then
  echo "bench: the FastAPI anchor needs Debian's python3-fastapi python3-asyncpg python3-uvloop" \
       "python3-httptools python3-uvicorn: weft alone" >&2
  LOOPS=""
fi

W=$(mktemp -d /var/tmp/weft-bench-service.XXXXXX)   # on disk: the queue's fsync is real
chmod 755 "$W"                                      # PostgreSQL runs as postgres
PG=""; HARNESS=""; HP=off; OLD_HP=$(cat /proc/sys/vm/nr_hugepages)
cleanup() {
  if [ -n "$HARNESS" ]; then kill -TERM "$HARNESS" 2>/dev/null; wait "$HARNESS" 2>/dev/null || true; fi
  local p                                  # servers the harness could not stop itself
  for p in $(cat "$W/servers" 2>/dev/null); do kill -KILL -- -"$p" 2>/dev/null || true; done
  if [ -n "$PG" ]; then kill -INT "$PG" 2>/dev/null; wait "$PG" 2>/dev/null || true; fi
  if [ "$HP" = on ]; then echo "$OLD_HP" > /proc/sys/vm/nr_hugepages 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

H=("$PY" "$OURS/harness.py")
HARGS=(--out "$OUT" --work "$W" --logs "$LOGS" --weft "$BUILD/weft" --anchor "$ANCH"
       --runs "$RUNS" --d "$D" --warm "$WARM" --loops "$LOOPS")
if [ $PGROWS = 1 ]; then
  PGU=$(id -u postgres); PGG=$(id -g postgres)
  mkdir -p "$W/pg/sock"; chown -R postgres:postgres "$W/pg"
  if [ "${HUGEPAGES:-1}" = 1 ] && echo 160 > /proc/sys/vm/nr_hugepages 2>/dev/null; then
    HP=on                                   # restored by the trap
    [ "$(cat /proc/sys/vm/nr_hugepages)" -ge 160 ] ||
      { echo "bench: the kernel gave fewer than 160 huge pages: huge_pages=off" >&2; PGHP=off; }
  fi
  setpriv --reuid="$PGU" --regid="$PGG" --init-groups -- $BIN/initdb -D "$W/pg/data" -U postgres \
    -A trust -E UTF8 --locale=C --no-sync > "$LOGS/initdb.log"
  setsid taskset -c 0 setpriv --reuid="$PGU" --regid="$PGG" --init-groups -- $BIN/postgres \
    -D "$W/pg/data" -p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories="$W/pg/sock" \
    -c max_connections=100 -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c huge_pages=${PGHP:-$HP} -c logging_collector=off \
    -c log_min_messages=warning > "$LOGS/postgres.log" 2>&1 &
  PG=$!
  for _ in $(seq 100); do $BIN/pg_isready -q -h 127.0.0.1 -p $PORT && break; sleep 0.1; done
  $BIN/pg_isready -q -h 127.0.0.1 -p $PORT ||
    { echo "bench: PostgreSQL did not start (see $LOGS/postgres.log)" >&2; exit 1; }
  PSQL=("$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1)
  "${PSQL[@]}" -d postgres -f "$OURS/te.sql"
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE weft"
  URL=postgresql://postgres@127.0.0.1:$PORT/weft
  HARGS+=(--pg-url "$URL" --pg-pid "$PG" --anchor-dsn "postgresql://postgres@127.0.0.1:$PORT/postgres")
  "${H[@]}" migrate "${HARGS[@]}"
  "${PSQL[@]}" -d postgres -c "VACUUM ANALYZE"
  "${PSQL[@]}" -d weft -c "VACUUM ANALYZE"
fi

# in the background, so that a signal reaches the trap at once (which
# stops the harness: its servers with it)
"${H[@]}" run "${HARGS[@]}" & HARNESS=$!
wait $HARNESS; HARNESS=""
{
  echo "# weft serve beside FastAPI + asyncpg ($(date -u +%F), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), RUNS=$RUNS D=$D)"
  echo
  "$PY" "$OURS/harness.py" table "$OUT"
} | tee "$BUILD/bench/service.md"
