#!/usr/bin/env bash
# HTTP server: wrk against weft serve and the anchors (nginx, h2o, Go
# net/http, uvicorn/Starlette) in one run, TechEmpower plaintext and JSON.
#
#   bench/http_server.sh BUILD_DIR      D=5 (seconds per run) RUNS=3 C=100
#                                       SERVERS="weft nginx h2o go starlette"
#
# Modes: plaintext and json with 100 keep-alive connections, plaintext
# pipelined 16 deep (pipeline.lua), each with the server on CPU 0 (1
# thread/worker) and wrk -t1 on CPU 1; then plaintext with 2 server threads
# and wrk -t2 sharing both cores. Server CPU per request (user+sys of all
# its processes over the run / requests) separates servers when wrk is the
# bottleneck. Each figure is the median of RUNS runs, interleaved across
# the servers; ratios are to nginx.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
A="$ROOT/bench/anchors/http_server"
D=${D:-5}; RUNS=${RUNS:-3}; C=${C:-100}
SERVERS=${SERVERS:-"weft nginx h2o go starlette"}
OUT="$BUILD/bench/http_server"; mkdir -p "$OUT"
PORT=18180
HZ=$(getconf CLK_TCK)

(cd "$A/gohttp" && GOCACHE="$BUILD/bench/gocache" GOPROXY=off GOFLAGS=-mod=mod \
   go build -o "$OUT/gohttp" . 2>"$OUT/gohttp.log") || echo "bench: Go anchor did not build" >&2

cpu_ticks() {  # user+sys ticks of every process in the group of pid $1
  local t=0 s
  for p in $(pgrep -g "$1" 2>/dev/null); do
    s=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null) && t=$((t + s))
  done
  echo $t
}

start() {  # server threads cpus -> pid (a session leader); port in $PORT
  local w=$2 cpus=$3
  PORT=$((PORT + 1))
  local conf="$OUT/$1.conf"
  case $1 in
  weft) set -- "$BUILD/weft" serve --port $PORT --threads "$w" --db "$BUILD/bench/users.db" ;;
  nginx) sed "s/WORKERS/$w/;s/PORT/$PORT/" "$A/nginx.conf" > "$conf"; set -- nginx -c "$conf" ;;
  h2o) sed "s/WORKERS/$w/;s/PORT/$PORT/" "$A/h2o.conf" > "$conf"; set -- h2o -c "$conf" ;;
  go) set -- "$OUT/gohttp" $PORT "$w" ;;
  starlette) set -- env PYTHONPATH="$A" /usr/bin/python3 -m uvicorn starlette_app:app \
                 --port $PORT --workers "$w" --log-level error --no-access-log ;;
  esac
  command -v "$1" >/dev/null || [ -x "$1" ] || return 1
  setsid taskset -c "$cpus" "$@" >/dev/null 2>"$OUT/server.err" &
  SPID=$!
  for i in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/plaintext" -o /dev/null 2>/dev/null && return 0
    sleep 0.1
  done
  stop; return 1
}
stop() { kill -- -"$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }

# one wrk run -> "req/s p99 cpu_us_per_req"
measure() {  # wrk-cpus wrk-threads path [lua depth]
  local c0 c1 out wc=$1 wt=$2
  shift 2
  c0=$(cpu_ticks "$SPID")
  if [ $# -gt 1 ]; then
    out=$(taskset -c "$wc" wrk -t"$wt" -c"$C" -d"${D}s" --latency -s "$A/pipeline.lua" \
          "http://127.0.0.1:$PORT$1" -- "$3")
  else
    out=$(taskset -c "$wc" wrk -t"$wt" -c"$C" -d"${D}s" --latency "http://127.0.0.1:$PORT$1")
  fi
  c1=$(cpu_ticks "$SPID")
  awk -v c=$((c1 - c0)) -v hz="$HZ" '
    /Requests\/sec/ { r = $2 } / 99%/ { p = $2 } /requests in/ { n = $1 }
    END { if (n > 0) printf "%s %s %.2f\n", r, p, c * 1e6 / hz / n }' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

mode() {  # label threads server-cpus wrk-cpus wrk-threads path [lua depth]
  local label=$1 w=$2 scpu=$3 wcpu=$4 wt=$5; shift 5
  echo
  echo "== $label: wrk -t$wt -c$C ${D}s, server threads $w, median of $RUNS =="
  printf "%-10s %10s %9s %12s %9s %9s\n" server req/s p99 "CPU us/req" "rps/nginx" "cpu/nginx"
  local s
  for s in $SERVERS; do : > "$OUT/runs.$s"; done
  for i in $(seq "$RUNS"); do             # interleaved: drift hits every server alike
    for s in $SERVERS; do
      start "$s" "$w" "$scpu" || { echo "bench: $s did not start" >&2; continue; }
      measure "$wcpu" "$wt" "$@" >> "$OUT/runs.$s"
      stop
    done
  done
  local nr nc
  nr=$(awk '{print $1}' "$OUT/runs.nginx" 2>/dev/null | median)
  nc=$(awk '{print $3}' "$OUT/runs.nginx" 2>/dev/null | median)
  for s in $SERVERS; do
    [ -s "$OUT/runs.$s" ] || continue
    local r p c
    r=$(awk '{print $1}' "$OUT/runs.$s" | median)
    p=$(awk '{print $2}' "$OUT/runs.$s" | sed 's/us$/e-3/;s/ms$//;s/s$/e3/' | median)
    c=$(awk '{print $3}' "$OUT/runs.$s" | median)
    awk -v s="$s" -v r="$r" -v p="$p" -v c="$c" -v nr="$nr" -v nc="$nc" 'BEGIN {
      printf "%-10s %10.0f %7.2fms %12.2f %8.2fx %8.2fx\n", s, r, p, c,
             (nr > 0 ? r / nr : 0), (nc > 0 ? c / nc : 0) }'
  done | tee -a "$OUT/table"
}

: > "$OUT/table"
mode "plaintext" 1 0 1 1 /plaintext
mode "json" 1 0 1 1 /json
mode "plaintext, pipelined 16 deep" 1 0 1 1 /plaintext lua 16
mode "plaintext, 2 threads" 2 0,1 0,1 2 /plaintext
