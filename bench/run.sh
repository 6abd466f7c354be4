#!/usr/bin/env bash
# make bench: every benchmark beside its anchor, in one run, ratios printed.
#
#   bench/run.sh [build-dir]        RUNS=5 for more repetitions (default 3),
#                                   ONLY=core|http|server|net|pg|redis|queue|service for one part
#                                   (http: the client and the server)
#
# Core microbenchmarks run pinned to CPU 1 next to the Go (GOMAXPROCS=1)
# and asyncio anchors from ../shared/bench/anchors; each figure is the
# median of RUNS runs. Results are also written to <build>/bench/core.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
RUNS=${RUNS:-3}
ANCHORS="$ROOT/../shared/bench/anchors"
OUT="$BUILD/bench"
mkdir -p "$OUT"
PIN="taskset -c 1"
command -v taskset >/dev/null || PIN=""

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

# run CMD RUNS times, collecting "key value" lines (key: text before the last
# field) into $OUT/<name>.<run>
collect() {
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    $PIN "$@" > "$OUT/$name.$i" 2>/dev/null || { echo "bench: $name failed" >&2; return 1; }
  done
}
value() {  # value NAME KEY-PREFIX -> median of that key over the runs
  local name=$1 key=$2
  cat "$OUT/$name".[0-9]* 2>/dev/null | grep -F "$key" | awk '{print $NF}' | median
}

PY=/usr/bin/python3
[ -x $PY ] || PY=python3
ONLY=${ONLY:-all}     # core | http | server | net | pg | redis | queue | service | all

# the data layer's clients beside their anchors (each its own script: they
# run the anchors' own server setups; root, for postgres and huge pages)
if [ "$ONLY" = pg ] || [ "$ONLY" = redis ] || [ "$ONLY" = queue ] || [ "$ONLY" = service ]; then
  exec "$ROOT/bench/$ONLY.sh" "$BUILD"
fi

if [ "$ONLY" = core ] || [ "$ONLY" = all ]; then
echo "== core: weft vs Go 1.19 (GOMAXPROCS=1) and asyncio, CPU 1, median of $RUNS =="
collect weft "$BUILD/bench/core_micro"

have_go=0
if [ -d "$ANCHORS/gomicro" ] && command -v go >/dev/null; then
  rm -rf "$OUT/gomicro" && cp -r "$ANCHORS/gomicro" "$OUT/gomicro" && chmod -R u+w "$OUT/gomicro"
  if (cd "$OUT/gomicro" && GOCACHE="$OUT/gocache" GOFLAGS=-mod=mod GOPROXY=off \
        go build -o gomicro . 2>"$OUT/gomicro.log"); then
    collect go "$OUT/gomicro/gomicro" && have_go=1
  else
    echo "bench: Go anchor did not build (see $OUT/gomicro.log)" >&2
  fi
fi
have_py=0
if [ -f "$ANCHORS/asyncio_micro.py" ]; then
  collect asyncio $PY "$ANCHORS/asyncio_micro.py" && have_py=1
fi

row() {  # label weft-key go-key py-key unit
  local w g p
  w=$(value weft "$2")
  g=$([ $have_go = 1 ] && [ -n "$3" ] && value go "$3" || echo -)
  p=$([ $have_py = 1 ] && [ -n "$4" ] && value asyncio "$4" || echo -)
  awk -v l="$1" -v w="$w" -v g="$g" -v p="$p" -v u="$5" 'BEGIN {
    rg = (g != "-" && w > 0) ? sprintf(g / w < 10 ? "%.2gx" : "%.0fx", g / w) : "-";
    rp = (p != "-" && w > 0) ? sprintf(p / w < 10 ? "%.2gx" : "%.0fx", p / w) : "-";
    printf "%-28s %10s %10s %10s %-6s  Go/weft %-7s asyncio/weft %s\n", l, w, g, p, u, rg, rp }'
}
printf "%-28s %10s %10s %10s %-6s\n" "benchmark" "weft" "Go" "asyncio" "unit"
{
row "task switch (yield)"        "switch_ns"              "Gosched yield ns/switch"     "sleep(0) yield ns/switch"  ns
row "spawn + join (cold)"        "spawn_join_ns"          "spawn+join ns/task"          "spawn+join ns/task"        ns
row "spawn + join (warm)"        "spawn_join_warm_ns"     "spawn+join ns/task"          "spawn+join ns/task"        ns
row "channel ping-pong"          "pingpong_ns"            "chan ping-pong ns/switch"    "event ping-pong ns/switch" ns
row "idle task memory (100k)"    "idle_task_bytes_100k"   "bytes/idle goroutine (100k)" "bytes/idle task (100k)"    bytes
row "idle task memory (1M)"      "idle_task_bytes_1m"     ""                            ""                          bytes
row "timer arm + cancel"         "timer_arm_cancel_ns"    ""                            ""                          ns
row "sem acquire + release"      "sem_acquire_release_ns" ""                            ""                          ns
row "run_blocking round trip"    "run_blocking_ns"        ""                            ""                          ns
} | tee "$OUT/core.txt"

# Instructions per switch from callgrind: repeatable whatever the machine
# is doing. The difference of two run sizes cancels the setup.
if command -v valgrind >/dev/null; then
  ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BUILD/bench/core_micro" "$1" "$2" 2>&1 \
      | awk '/Collected/ {gsub(",", "", $4); print $4}'
  }
  a=$(ir 0.001 switch_ns); b=$(ir 0.002 switch_ns)
  c=$(ir 0.001 pingpong_ns); d=$(ir 0.002 pingpong_ns)
  awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
    printf "callgrind: %.1f instructions per yield switch, %.1f per ping-pong switch\n",
           (b - a) / 20000, (d - c) / 10000 }' | tee -a "$OUT/core.txt"
fi

fi

# ---- pool -------------------------------------------------------------------
if [ "$ONLY" = core ] || [ "$ONLY" = all ]; then
  collect pool "$BUILD/bench/pool_micro"
  echo "pool acquire + release (uncontended): $(value pool pool_acquire_release_ns) ns (goal <= 50)" \
    | tee -a "$OUT/core.txt"
fi

[ "$ONLY" = core ] && exit 0
if [ "$ONLY" = http ] || [ "$ONLY" = all ]; then
  echo
  "$ROOT/bench/http_client.sh" "$BUILD"
fi
if [ "$ONLY" = server ] || [ "$ONLY" = http ] || [ "$ONLY" = all ]; then
  echo
  "$ROOT/bench/http_server.sh" "$BUILD"
fi
case $ONLY in http|server) exit 0 ;; esac
# ---- net: TCP echo, 100 connections, server on CPU 0, client on CPU 1 ----
# Each stack runs both of its own sides: weft (bench/net_echo), Go 1.19
# with GOMAXPROCS=1 (bench/anchors/go_echo), asyncio streams
# (bench/anchors/asyncio_echo.py). SECONDS per run (default 3).
SECS=${SECONDS_PER_RUN:-3}
echo
echo "== net: TCP echo, 100 connections, median of $RUNS runs of ${SECS}s =="
GOECHO="$OUT/goecho/goecho"
rm -rf "$OUT/goecho" && cp -r "$ROOT/bench/anchors/go_echo" "$OUT/goecho"
(cd "$OUT/goecho" && GOCACHE="$OUT/gocache" GOFLAGS=-mod=mod GOPROXY=off go build -o goecho . \
   2>"$OUT/goecho.log") || GOECHO=""
PORT=$((19000 + $$ % 1000))
echo_run() {  # name msg server-cmd... -- client-cmd...
  local name=$1 msg=$2; shift 2
  local srv=() cli=()
  while [ "$1" != "--" ]; do srv+=("$1"); shift; done; shift
  cli=("$@")
  for i in $(seq "$RUNS"); do
    PORT=$((PORT + 1))
    taskset -c 0 "${srv[@]}" server $PORT >/dev/null 2>&1 &
    local spid=$!
    sleep 0.5
    taskset -c 1 "${cli[@]}" client 127.0.0.1 $PORT 100 "$msg" "$SECS" > "$OUT/echo_$name.$msg.$i" 2>/dev/null || true
    kill $spid 2>/dev/null; wait $spid 2>/dev/null || true
  done
}
for msg in 64 65536; do
  echo_run weft $msg "$BUILD/bench/net_echo" -- "$BUILD/bench/net_echo"
  [ -n "$GOECHO" ] && echo_run go $msg env GOMAXPROCS=1 "$GOECHO" -- env GOMAXPROCS=1 "$GOECHO"
  echo_run asyncio $msg $PY "$ROOT/bench/anchors/asyncio_echo.py" -- $PY "$ROOT/bench/anchors/asyncio_echo.py"
done
erow() {  # msg key unit
  local w g p
  w=$(cat "$OUT"/echo_weft.$1.[0-9]* 2>/dev/null | grep "$2" | awk '{print $2}' | median)
  g=$(cat "$OUT"/echo_go.$1.[0-9]* 2>/dev/null | grep "$2" | awk '{print $2}' | median)
  p=$(cat "$OUT"/echo_asyncio.$1.[0-9]* 2>/dev/null | grep "$2" | awk '{print $2}' | median)
  awk -v l="echo $1 B $3" -v w="$w" -v g="$g" -v p="$p" 'BEGIN {
    r = (g != "-" && g > 0) ? sprintf("%.2fx", w / g) : "-";
    q = (p != "-" && p > 0) ? sprintf("%.1fx", w / p) : "-";
    printf "%-28s %10s %10s %10s  weft/Go %-7s weft/asyncio %s\n", l, w, g, p, r, q }'
}
printf "%-28s %10s %10s %10s\n" "benchmark" "weft" "Go" "asyncio"
{
erow 64 round_trips_per_sec "round trips/s"
erow 65536 round_trips_per_sec "round trips/s"
erow 65536 mb_per_sec "MB/s"
} | tee "$OUT/net.txt"

if [ "$ONLY" = all ]; then
  echo "== PostgreSQL: weft_pg vs pgbench and asyncpg (bench/pg.sh) =="
  RUNS=$RUNS "$ROOT/bench/pg.sh" "$BUILD" | grep -E '^[|]|^ratio' || echo "bench: pg.sh failed" >&2
  echo "== Redis: weft_redis vs redis-benchmark and redis-py (bench/redis.sh) =="
  RUNS=$RUNS "$ROOT/bench/redis.sh" "$BUILD" | grep '^|' || echo "bench: redis.sh failed" >&2
  echo "== Durable queue: weft (SQLite) vs Celery, RQ, Redis Streams (bench/queue.sh) =="
  RUNS=$RUNS "$ROOT/bench/queue.sh" "$BUILD" | grep '^|' || echo "bench: queue.sh failed" >&2
  echo "== The service: weft serve vs FastAPI + asyncpg, TechEmpower's tests, POST /events (bench/service.sh) =="
  RUNS=$RUNS "$ROOT/bench/service.sh" "$BUILD" | grep -E '^(\||- |  \()' || echo "bench: service.sh failed" >&2
fi
