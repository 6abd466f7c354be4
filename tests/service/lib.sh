# Shared by the tests of `weft serve` against PostgreSQL (sourced):
#   WEFT, URL (the fixture server's), T (a temporary folder), DB_URL (a
#   database of the test's own on that server, made here and dropped at
#   the end), check, wait_for, serve_start/serve_stop, free_port.
# Every wait polls for what it waits for, with a bound; nothing sleeps to
# synchronise. 127.0.0.1 only.
set -uo pipefail
WEFT=$(realpath "${1:?usage: $0 path/to/weft PG_URL_FILE}")
URL=$(cat "${2:?usage: $0 path/to/weft PG_URL_FILE}")
T=$(mktemp -d /tmp/weft-service-XXXXXX)
DBNAME=svc_$(basename "$T" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
DB_URL=${URL%/*}/$DBNAME
PIDS=()
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }
# runs the command every 0.1 s until it succeeds, for at most $WAIT s (15)
wait_for() { local n=$(( ${WAIT:-15} * 10 )); for _ in $(seq $n); do "$@" && return 0; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sql() { psql "$DB_URL" -XAtqc "$1"; }
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    psql "$URL" -Xqc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
psql "$URL" -Xqc "CREATE DATABASE $DBNAME" >/dev/null || { echo "cannot create database $DBNAME"; exit 1; }

# serve_start NAME PORT ARGS...: weft serve in the background (its output
# in $T/NAME.out, its pid in $T/NAME.pid), up when /healthz answers
serve_start() {
    local name=$1 port=$2; shift 2
    (cd "$T" && exec "$WEFT" serve --port "$port" --db "$T/$name.db" "$@" >"$T/$name.out" 2>&1) &
    local pid=$!
    echo $pid >"$T/$name.pid"
    PIDS+=($pid)
    wait_for curl -fs "http://127.0.0.1:$port/healthz" -o /dev/null || {
        echo "weft serve $name did not start:"; cat "$T/$name.out"; return 1; }
}
# serve_stop NAME [SIGNAL]: the exit status of the server
serve_stop() {
    local pid; pid=$(cat "$T/$1.pid")
    kill -"${2:-TERM}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
# serve_wait NAME: its exit status, once it exits by itself
serve_wait() { wait "$(cat "$T/$1.pid")" 2>/dev/null; }
# code URL [curl args]: the status only
code() { curl -s -o /dev/null --max-time 20 -w '%{http_code}' "$@"; }
finish() {
    # under ASan/UBSan (WEFT_UNDER_SANITIZER=1, a build-asan weft): no report
    check "no sanitizer report" bash -c "! grep -l -E 'Sanitizer|runtime error:' $T/*.out"
    echo "$(basename "$0"): $fails failed"; [ $fails -eq 0 ]
}
