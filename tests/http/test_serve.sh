#!/usr/bin/env bash
# `weft serve` end to end: endpoints, metrics, graceful exit on SIGTERM,
# bad arguments.
set -uo pipefail
WEFT=${1:?usage: test_serve.sh path/to/weft}
PORT=$((20000 + RANDOM % 20000))
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }
OUT=$(mktemp)
$WEFT serve --port $PORT --threads 2 >$OUT 2>&1 &
PID=$!
for i in $(seq 50); do curl -fs http://127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break; sleep 0.1; done
check "plaintext" test "$(curl -s http://127.0.0.1:$PORT/plaintext)" = "Hello, World!"
check "json" test "$(curl -s http://127.0.0.1:$PORT/json)" = '{"message":"Hello, World!"}'
check "healthz" test "$(curl -s http://127.0.0.1:$PORT/healthz)" = "ok"
check "404" test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/nope)" = 404
check "405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:$PORT/json)" = 405
check "metrics by route and status" bash -c "curl -s http://127.0.0.1:$PORT/metrics | grep -q 'weft_http_requests_total{route=\"/plaintext\",status=\"200\"} 1'"
check "prints the URLs to try" grep -q "curl http://127.0.0.1:$PORT/plaintext" $OUT
kill -TERM $PID
for i in $(seq 50); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
check "exits on SIGTERM" bash -c "! kill -0 $PID 2>/dev/null"
wait $PID; rc=$?
check "exit status 0 after SIGTERM" test $rc -eq 0
$WEFT serve --port 0 >/dev/null 2>&1; check "bad port: exit 2" test $? -eq 2
$WEFT serve --threads x >/dev/null 2>&1; check "bad threads: exit 2" test $? -eq 2
rm -f $OUT
echo "serve end-to-end: $fails failed"
[ $fails -eq 0 ]
