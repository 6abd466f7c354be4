#!/usr/bin/env bash
# COPY FROM STDIN of N rows (1,000,000) with weft_pg_copy_in beside psql's
# \copy (libpq's own COPY loop), both reading the same file into the same
# table, in one run against a throwaway PostgreSQL 15 set up as bench/pg.sh
# sets up its own (server pinned to CPU 0, fsync off; the clients on CPU 1).
#
#   bench/pg_copy.sh [build-dir]     N rows (1000000), RUNS runs each (3)
#
# Each run: TRUNCATE, then the client as a whole process (connect + COPY),
# timed the same way for both; the median of RUNS runs is printed as rows/s
# with the ratio weft / psql. Rows: "id<TAB>100 bytes of text".
# Needs root (postgres runs as its user) or a user that can run postgres.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
N=${N:-1000000}; RUNS=${RUNS:-3}
BIN=/usr/lib/postgresql/15/bin; W=/tmp/weft-bench-pgcopy; PORT=${PORT:-55433}
[ -x "$BUILD/bench/pg_copy" ] || { echo "pg_copy.sh: build $BUILD/bench/pg_copy first" >&2; exit 1; }
AS=(); PIN0=(); PIN1=()
if [ "$(id -u)" = 0 ]; then AS=(setpriv --reuid="$(id -u postgres)" --regid="$(id -g postgres)" --init-groups --); fi
if command -v taskset >/dev/null; then PIN0=(taskset -c 0); PIN1=(taskset -c 1); fi

rm -rf $W; mkdir -p $W/sock
[ "$(id -u)" = 0 ] && chown -R postgres:postgres $W
"${AS[@]}" $BIN/initdb -D $W/data -U postgres -A trust -E UTF8 --locale=C --no-sync >$W/initdb.log
setsid "${PIN0[@]}" "${AS[@]}" $BIN/postgres -D $W/data -p $PORT \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$W/sock -c max_connections=20 \
  -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_wal_size=4GB -c logging_collector=off -c log_min_messages=warning >$W/server.log 2>&1 & PG=$!
trap 'kill -INT $PG 2>/dev/null; wait $PG 2>/dev/null || true' EXIT
for i in $(seq 100); do $BIN/pg_isready -q -h 127.0.0.1 -p $PORT && break; sleep 0.1; done
export PGUSER=postgres PGDATABASE=postgres PGPORT=$PORT PGHOST=127.0.0.1
URL=postgresql://postgres@127.0.0.1:$PORT/postgres
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

PAD=$(printf '%0100d' 0 | tr 0 x)
awk -v n="$N" -v pad="$PAD" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\t%s\n", i, pad }' > $W/rows.tsv
"${PSQL[@]}" -c "CREATE TABLE copy_bench (id int8, pad text)"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
check() {
  local got; got=$("${PSQL[@]}" -At -c "SELECT count(*) FROM copy_bench")
  [ "$got" = "$N" ] || { echo "pg_copy.sh: $1 copied $got rows, not $N" >&2; exit 1; }
}
: > $W/psql.s; : > $W/weft.s
for r in $(seq "$RUNS"); do
  "${PSQL[@]}" -c "TRUNCATE copy_bench"
  t0=$(now); "${PIN1[@]}" "${PSQL[@]}" -c "\\copy copy_bench FROM '$W/rows.tsv'"; t1=$(now)
  check psql; awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >> $W/psql.s
  "${PSQL[@]}" -c "TRUNCATE copy_bench"
  t0=$(now); "${PIN1[@]}" "$BUILD/bench/pg_copy" "$URL" $W/rows.tsv copy_bench > $W/weft.json; t1=$(now)
  check weft; awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >> $W/weft.s
done
P=$(median < $W/psql.s); F=$(median < $W/weft.s)
awk -v n="$N" -v p="$P" -v f="$F" -v runs="$RUNS" 'BEGIN {
  printf "COPY FROM STDIN, %d rows of ~108 bytes, median of %d runs (process start to exit)\n", n, runs
  printf "  %-34s %12.0f rows/s  (%.3f s)\n", "psql \\copy (libpq)", n / p, p
  printf "  %-34s %12.0f rows/s  (%.3f s)\n", "weft_pg_copy_in", n / f, f
  printf "  ratio weft / psql: %.2f\n", p / f }'
