#!/usr/bin/env bash
# HTTP client: fetch 20,000 URLs with 50 in flight from local nginx (13 B
# and 64 KiB bodies), weft fetch beside the anchors of
# ../shared/bench/anchors/client (httpx, aiohttp, curl --parallel, Go
# net/http, wrk -c50 as the upper bound), in one run. nginx on CPU 0,
# clients on CPU 1. Prints req/s and client CPU per request: user+sys of the
# whole process from /usr/bin/time for weft fetch (start-up and its 20,000
# JSON lines included), curl and wrk; the Go and Python anchors' own
# figures around the fetch loop; and weft's ratio to wrk.
#
#   bench/http_client.sh BUILD_DIR        N=20000 C=50 RUNS=3
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
A="$ROOT/../shared/bench/anchors/client"
N=${N:-20000}; C=${C:-50}; RUNS=${RUNS:-3}
W=/tmp/anchor-client; OUT="$BUILD/bench/http"
mkdir -p $W/www $W/tmp "$OUT"
[ -f $W/www/64k ] || head -c 65536 /dev/urandom > $W/www/64k
[ -d "$A" ] || { echo "bench: no anchors at $A" >&2; exit 0; }
(cd "$A/goclient" && GOCACHE="$BUILD/bench/gocache" GOPROXY=off GOFLAGS=-mod=mod \
   go build -o $W/goclient . 2>/dev/null) || true
setsid taskset -c 0 nginx -c "$A/nginx.conf" >/dev/null 2>&1 & NGINX=$!
trap 'kill -QUIT $NGINX 2>/dev/null; wait $NGINX 2>/dev/null' EXIT
for i in $(seq 50); do curl -fsS http://127.0.0.1:18091/hello -o /dev/null 2>/dev/null && break; sleep 0.1; done

# timed CMD... -> "secs cpu_s" (wall, user+sys)
# jtimed CMD... -> the same from the JSON line the anchor prints itself
# (ops / ops_s and cpu_s measured around fetch_all only, without the
# interpreter's start-up)
jtimed() { taskset -c 1 "$@" 2>/dev/null | grep '^{' | tr -d '{}" ' | tr ',' '\n' | \
           awk -F: '$1=="ops"{o=$2} $1=="ops_s"{r=$2} $1=="cpu_s"{c=$2} END {print o / r, c}'; }
timed() { /usr/bin/time -f '%e %U %S' -o "$OUT/time" taskset -c 1 "$@" >"$OUT/stdout" 2>/dev/null
          awk '{print $1, $2 + $3}' "$OUT/time"; }
median() { sort -g | awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : "-"}'; }

row() {  # label, then "secs cpu" lines on stdin for N ops
  awk -v l="$1" -v n="$2" '{ r = n / $1; c = $2 * 1e6 / n; print r, c }' | sort -g > "$OUT/rows"
  local rps cpu
  rps=$(awk '{print $1}' "$OUT/rows" | median)
  cpu=$(awk '{print $2}' "$OUT/rows" | median)
  printf "%-34s %10.0f req/s %8.1f us CPU/req\n" "$1" "$rps" "$cpu" | tee -a "$OUT/table"
  echo "$rps $cpu" > "$OUT/last"
}

for path in hello 64k; do
  U=http://127.0.0.1:18091/$path
  : > "$OUT/table"
  echo "== fetch $N x /$path, $C in flight, median of $RUNS =="
  for i in $(seq $N); do echo "$U"; done > "$OUT/urls"
  for i in $(seq $RUNS); do timed "$BUILD/weft" fetch -c $C -i "$OUT/urls"; done | row "weft fetch" $N
  read -r weft_rps weft_cpu < "$OUT/last"
  if [ -x $W/goclient ]; then
    for i in $(seq $RUNS); do jtimed env GOMAXPROCS=1 $W/goclient $U $N $C; done | row "Go net/http (GOMAXPROCS=1)" $N
  fi
  awk -v n=$N -v u=$U 'BEGIN{for(i=0;i<n;i++){print "url = \"" u "\""; print "output = \"/dev/null\""}}' > "$OUT/curl.cfg"
  for i in $(seq $RUNS); do timed curl -s --parallel --parallel-max $C -K "$OUT/curl.cfg"; done | row "curl --parallel" $N
  for lib in httpx aiohttp; do
    /usr/bin/python3 -c "import $lib" 2>/dev/null || { echo "($lib not installed)"; continue; }
    n=$((N / 10))
    for i in $(seq $RUNS); do jtimed /usr/bin/python3 "$A/py_fetch.py" $lib $U $n $C; done | row "$lib (N/10)" $n
  done
  # wrk: requests/s from its own count, CPU from /usr/bin/time
  for i in $(seq $RUNS); do
    /usr/bin/time -f '%e %U %S' -o "$OUT/time" taskset -c 1 wrk -t1 -c$C -d5s $U >"$OUT/stdout" 2>/dev/null
    reqs=$(awk '/requests in/ {print $1}' "$OUT/stdout")
    awk -v q="$reqs" '{print $1 * 1.0, $2 + $3, q}' "$OUT/time"
  done | awk '{ print $1 * ($3 / $1) / $3 * $1, $2 * $1 / $1 }' | \
    awk -v n=1 '{print}' > /dev/null
  for i in $(seq $RUNS); do
    /usr/bin/time -f '%e %U %S' -o "$OUT/time" taskset -c 1 wrk -t1 -c$C -d5s $U >"$OUT/stdout" 2>/dev/null
    reqs=$(awk '/requests in/ {print $1}' "$OUT/stdout")
    awk -v q="$reqs" '{ printf "%f %f\n", q / $1, ($2 + $3) * 1e6 / q }' "$OUT/time"
  done | sort -g > "$OUT/rows"
  wrk_rps=$(awk '{print $1}' "$OUT/rows" | median); wrk_cpu=$(awk '{print $2}' "$OUT/rows" | median)
  printf "%-34s %10.0f req/s %8.1f us CPU/req\n" "wrk -t1 -c$C (upper bound)" "$wrk_rps" "$wrk_cpu"
  awk -v a="$weft_rps" -v b="$wrk_rps" -v c="$weft_cpu" -v d="$wrk_cpu" 'BEGIN {
    printf "weft/wrk: %.2fx req/s, %.2fx CPU per request\n", a / b, c / d }'
done
