#!/usr/bin/env bash
# weft_pg beside its anchors (../shared/bench/anchors/pg: pgbench, asyncpg),
# in one run on the anchors' own cluster setup: PostgreSQL 15 pinned to
# CPU 0 (fsync off, 256 MB shared buffers, huge pages), pgbench -i -s 10,
# clients pinned to CPU 1 by the anchors' harness.py, RUNS rounds of every row.
#
#   bench/pg.sh [build-dir]          RUNS rounds (3), T seconds per run (10)
#
# Rows: pgbench -S -M prepared (20 clients), pgbench pipelined x16,
# asyncpg create_pool(5,20) with and without uvloop, weft_pg with
# exclusive connections (pipeline 1) and pipelined across tasks (8), each
# also with weft_set_poll_spin (WEFT_POLL_SPIN_US=50).
# Needs root (postgres runs as its user, huge pages are reserved).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/pg
RUNS=${RUNS:-3}; T=${T:-10}
[ "$RUNS" -ge 1 ] 2>/dev/null || { echo "pg.sh: RUNS must be a number >= 1" >&2; exit 2; }
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
$BIN/pg_isready -q -h 127.0.0.1 -p $PORT || { echo "pg.sh: PostgreSQL did not start:" >&2; tail -5 $W/server.log >&2; exit 1; }
export PGUSER=postgres PGDATABASE=postgres PGPORT=$PORT
taskset -c 1 $BIN/pgbench -h 127.0.0.1 -i -s 10 -q >$W/init.log 2>&1
taskset -c 1 $BIN/pgbench -h 127.0.0.1 -S -M prepared -c 20 -j 1 -T 3 >/dev/null 2>&1   # warm the cache

OUT=$BUILD/bench/pg.jsonl; mkdir -p "$BUILD/bench"; : > "$OUT"; : > "$OUT.round"   # harness.py appends
URL=postgresql://postgres@127.0.0.1:$PORT/postgres
# Rounds, not runs back to back: the machine drifts by 10-20 % over minutes
# (measured: the same client 43k then 52k q/s five minutes apart), so each
# round runs every row once and the table takes each row's median over the
# rounds; a ratio compares rows measured in the same minutes.
H() { (cd "$ANCH" && /usr/bin/python3 harness.py run --out "$OUT.round" --runs 1 --server-pid "$PG" "$@"); }
ASYNCPG=0; /usr/bin/python3 -c 'import asyncpg, uvloop' 2>/dev/null && ASYNCPG=1
for round in $(seq "$RUNS"); do
  H --name "pgbench (libpq) -S -M prepared" --target "TCP 127.0.0.1" --parser pgbench -- \
    $BIN/pgbench -h 127.0.0.1 -S -M prepared -c 20 -j 1 -T $T
  H --name "weft_pg exclusive (pipeline 1), 20 tasks" --target "TCP 127.0.0.1" --parser json -- \
    "$BUILD/bench/pg_select" "$URL" $T 20 1
  H --name "weft_pg pipelined across tasks (pipeline 8), 20 tasks" --target "TCP 127.0.0.1" --parser json -- \
    "$BUILD/bench/pg_select" "$URL" $T 20 8
  # the same with the loop polling up to 50 us before it sleeps
  # (weft_set_poll_spin): PostgreSQL's send then finds the client awake and
  # wakes no idle core (on this VM that wake-up is ~10 % of the server's CPU)
  H --name "weft_pg exclusive (pipeline 1), 20 tasks, poll spin 50 us" --target "TCP 127.0.0.1" --parser json -- \
    env WEFT_POLL_SPIN_US=50 "$BUILD/bench/pg_select" "$URL" $T 20 1
  H --name "weft_pg pipelined across tasks (pipeline 8), 20 tasks, poll spin 50 us" --target "TCP 127.0.0.1" --parser json -- \
    env WEFT_POLL_SPIN_US=50 "$BUILD/bench/pg_select" "$URL" $T 20 8
  H --name "pgbench (libpq) pipeline x16" --target "TCP 127.0.0.1" --parser pgbench --scale-ops 16 -- \
    $BIN/pgbench -h 127.0.0.1 -M prepared -f select_pipe16.sql -c 20 -j 1 -T $T
  if [ $ASYNCPG = 1 ]; then
    H --name "asyncpg 0.27 create_pool(5,20)" --target "TCP 127.0.0.1" --parser json -- \
      /usr/bin/python3 py_pg.py asyncpg $T 20
    H --name "asyncpg 0.27 create_pool(5,20) + uvloop" --target "TCP 127.0.0.1" --parser json -- \
      /usr/bin/python3 py_pg.py asyncpg uvloop $T 20
  fi
done
# one record per row, its runs in round order (what harness.py table reads)
/usr/bin/python3 - "$OUT.round" "$OUT" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault(d["name"], dict(d, runs=[]))["runs"] += d["runs"]
with open(sys.argv[2], "w") as f:
    for d in rows.values():
        f.write(json.dumps(d) + "\n")
PY
rm -f "$OUT.round"
(cd "$ANCH" && /usr/bin/python3 harness.py table "$OUT") | tee "$BUILD/bench/pg.md"
# the issue's goals as ratios of medians (same rounds)
/usr/bin/python3 - "$OUT" <<'PY' | tee -a "$BUILD/bench/pg.md"
import json, statistics, sys
med = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    med[d["name"]] = (statistics.median(r["ops_s"] for r in d["runs"]),
                      statistics.median(r["cpu_per_1k"] for r in d["runs"]) * 1000)
def ratio(a, b, what):
    if a in med and b in med:
        print(f"ratio: {what}: {med[a][0] / med[b][0]:.2f}x  ({med[a][0]:,.0f} / {med[b][0]:,.0f} q/s; "
              f"client CPU {med[a][1]:.1f} / {med[b][1]:.1f} us per query)")
pgb, uv = "pgbench (libpq) -S -M prepared", "asyncpg 0.27 create_pool(5,20) + uvloop"
excl, pipe = "weft_pg exclusive (pipeline 1), 20 tasks", "weft_pg pipelined across tasks (pipeline 8), 20 tasks"
spin = ", poll spin 50 us"
for sfx, how in (("", ""), (spin, ", poll spin")):
    ratio(excl + sfx, pgb, f"weft exclusive{how} / pgbench (goal >= 1)")
    ratio(pipe + sfx, pgb, f"weft pipelined{how} / pgbench (goal >= 2, CPU <= pgbench's)")
    ratio(pipe + sfx, uv, f"weft pipelined{how} / asyncpg+uvloop (goal >= 5)")
PY
