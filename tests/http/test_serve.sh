#!/usr/bin/env bash
# `weft serve` end to end: endpoints, metrics, graceful exit on SIGTERM,
# bad arguments. Nothing sleeps to synchronise: every wait polls for what
# it waits for, with a bound.
set -uo pipefail
WEFT=$(realpath "${1:?usage: test_serve.sh path/to/weft}")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }
# runs the command every 0.1 s until it succeeds, for at most 15 s
wait_for() { for _ in $(seq 150); do "$@" && return 0; sleep 0.1; done; return 1; }
up() { curl -fs http://127.0.0.1:$PORT/healthz >/dev/null 2>&1; }
# grep reads it all: with -q it could exit first, and curl's SIGPIPE fails the pipe
metric() { curl -s http://127.0.0.1:$PORT/metrics | grep "$1" >/dev/null; }
OUT=$(mktemp)
DB=$(mktemp -u /tmp/weft-serve-XXXXXX.db)
# /proxy may reach the test's upstreams on 127.0.0.1 (any port)
(cd /tmp && exec $WEFT serve --port $PORT --threads 2 --db $DB --attempts 2 --proxy-allow 127.0.0.1 >$OUT 2>&1) &
PID=$!
wait_for up || { echo "weft serve did not start:"; cat $OUT; exit 1; }
check "plaintext" test "$(curl -s http://127.0.0.1:$PORT/plaintext)" = "Hello, World!"
check "json" test "$(curl -s http://127.0.0.1:$PORT/json)" = '{"message":"Hello, World!"}'
check "healthz" test "$(curl -s http://127.0.0.1:$PORT/healthz)" = "ok"
check "404" test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/nope)" = 404
check "405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:$PORT/json)" = 405
U=http://127.0.0.1:$PORT
check "user from SQLite" test "$(curl -s $U/users/42)" = '{"id":42,"name":"User 42","email":"user42@example.com"}'
check "absent user: 404 JSON" test "$(curl -s -w ' %{http_code}' $U/users/5000)" = '{"error":"no such user","id":5000} 404'
check "non-numeric id: 400" test "$(curl -s -o /dev/null -w '%{http_code}' $U/users/abc)" = 400
check "id with a space: 400" test "$(curl -s -o /dev/null -w '%{http_code}' $U/users/%201)" = 400
check "id out of range: 400" test "$(curl -s -o /dev/null -w '%{http_code}' $U/users/99999999999999999999)" = 400
check "zero id: 400" test "$(curl -s -o /dev/null -w '%{http_code}' $U/users/0)" = 400
check "SQLite pool in /metrics" bash -c "curl -s $U/metrics | grep -q '^weft_pool_size{pool=\"sqlite\"} [1-9]'"
J='Content-Type: application/json'
check "event accepted: 202 with its id" bash -c "curl -s -w ' %{http_code}' -H '$J' -d '{\"type\":\"signup\",\"user_id\":42,\"data\":{\"a\":1}}' $U/events | grep -qx '{\"status\":\"accepted\",\"id\":[0-9]*} 202'"
check "event without type: 400" test "$(curl -s -w ' %{http_code}' -H "$J" -d '{"user_id":42}' $U/events)" = '{"error":"type must be a non-empty string"} 400'
check "event with bad user_id: 400" test "$(curl -s -o /dev/null -w '%{http_code}' -H "$J" -d '{"type":"x","user_id":0}' $U/events)" = 400
check "event with non-object data: 400" test "$(curl -s -o /dev/null -w '%{http_code}' -H "$J" -d '{"type":"x","user_id":1,"data":3}' $U/events)" = 400
check "event not JSON: 400" test "$(curl -s -o /dev/null -w '%{http_code}' -H "$J" -d 'nope' $U/events)" = 400
LATE=$(curl -s -H "$J" -d '{"type":"late","user_id":5000}' $U/events | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
check "event for an absent user: accepted ($LATE)" test -n "$LATE"
check "event not application/json: 415" test "$(curl -s -o /dev/null -w '%{http_code}' -d '{}' $U/events)" = 415
check "event over 64 KiB: 413" test "$(head -c 70000 /dev/zero | tr '\0' x | curl -s -o /dev/null -w '%{http_code}' -H "$J" --data-binary @- $U/events)" = 413
check "event id not a number: 400" test "$(curl -s -o /dev/null -w '%{http_code}' $U/events/abc)" = 400
check "no such event: 404" test "$(curl -s -w ' %{http_code}' $U/events/999999)" = '{"error":"no such event","id":999999} 404'
check "proxy through the pooled client" test "$(curl -s "$U/proxy?url=$U/json")" = '{"message":"Hello, World!"}'
check "proxy with an encoded url" test "$(curl -s -G --data-urlencode "url=$U/users/7?x=1&y=2" "$U/proxy")" = '{"id":7,"name":"User 7","email":"user7@example.com"}'
# a /proxy URL that points back at /proxy is a loop: refused at the second
# pass (our own Via entry), not relayed until the connections run out
INNER=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$U/proxy?url=$U/json")
check "proxy loop: 508, said by the second pass" test "$(curl -s -w ' %{http_code}' "$U/proxy?url=$U/proxy?url=$INNER")" = '{"error":"proxy loop (Via)"} 508'
check "proxy chain of 8 via headers: 508" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Via: 1.1 a, 1.1 b, 1.1 c, 1.1 d, 1.1 e, 1.1 f, 1.1 g, 1.1 h' "$U/proxy?url=$U/json")" = 508
check "proxy to a refused upstream: 502" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy?url=http://127.0.0.1:1/")" = 502
# an upstream that accepts and never answers: the 5 s deadline gives 504
SILENT_OUT=$(mktemp)
python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True: held.append(s.accept()[0])' >$SILENT_OUT &
SILENT=$!
wait_for test -s $SILENT_OUT
R=$(curl -s -o /dev/null --max-time 15 -w '%{http_code} %{time_total}' "$U/proxy?url=http://127.0.0.1:$(cat $SILENT_OUT)/")
check "proxy to a silent upstream: 504 after the 5 s deadline ($R)" \
  awk -v r="$R" 'BEGIN { split(r, a, " "); exit !(a[1] == 504 && a[2] >= 4.9 && a[2] < 8) }'
check "proxy without url: 400" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy")" = 400
check "proxy to an upstream not allowed: 403" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy?url=http://example.invalid/")" = 403
# an upstream that switches protocols (and keeps speaking HTTP after the
# 101): a proxy never passes a 1xx on as its final answer
EVIL_OUT=$(mktemp)
python3 -c '
import socket, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.recv(4096)
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    c.recv(4096); c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()' >$EVIL_OUT &
EVIL=$!
wait_for test -s $EVIL_OUT
check "proxy to an upstream answering 101: 502" test "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$U/proxy?url=http://127.0.0.1:$(cat $EVIL_OUT)/")" = 502
kill $EVIL; wait $EVIL 2>/dev/null; rm -f $EVIL_OUT
# a gzip bomb behind /proxy: 2 MiB decoded from 2 KB is over the relay's
# 1 MiB, 502 (it was held whole: 60 of them took the server to 1 GB)
EVIL_OUT=$(mktemp)
python3 -c '
import gzip, socket, threading
bomb = gzip.compress(b"\0" * (2 << 20))
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)
    c.recv(4096); c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()' >$EVIL_OUT &
EVIL=$!
wait_for test -s $EVIL_OUT
check "proxy to a gzip bomb: 502" test "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$U/proxy?url=http://127.0.0.1:$(cat $EVIL_OUT)/")" = 502
kill $EVIL; wait $EVIL 2>/dev/null; rm -f $EVIL_OUT
G=$(curl -s $U/metrics | grep "^weft_http_in_flight")
check "in-flight gauge ($G)" test "$G" = "weft_http_in_flight 1"
# events are jobs of the durable queue, run by the workers in a while
check "the event is done" wait_for bash -c "curl -s $U/events/1 | grep -qx '{\"id\":1,\"state\":\"done\",\"attempts\":1}'"
check "the event for an absent user: dead with the reason, after 2 attempts (--attempts 2)" wait_for bash -c "curl -s $U/events/$LATE | grep -qx '{\"id\":$LATE,\"state\":\"dead\",\"attempts\":2,\"error\":\"no such user 5000\"}'"
check "events in /metrics" metric 'weft_queue_jobs_total{queue="events",result="succeeded"} 1'
check "a dead event in /metrics" metric 'weft_queue_jobs_total{queue="events",result="dead"} 1'
check "a dead event in the log" grep -q "event $LATE 'late' (attempt 2 of 2) failed: no such user 5000, dead" $OUT
check "the event recorded in the database" test "$(sqlite3 $DB 'SELECT job_id, type, user_id, data FROM events')" = '1|signup|42|{"a":1}'
check "metrics by route and status" bash -c "curl -s http://127.0.0.1:$PORT/metrics | grep -q 'weft_http_requests_total{route=\"/plaintext\",status=\"200\"} 1'"
check "prints the URLs to try" grep -q "curl http://127.0.0.1:$PORT/plaintext" $OUT
# SIGTERM while a request is in flight: it is answered before the exit
curl -s -o $OUT.inflight --max-time 15 -w '%{http_code}' "$U/proxy?url=http://127.0.0.1:$(cat $SILENT_OUT)/" >$OUT.code &
CURL=$!
# in flight: it and the /metrics request that sees it
check "a request in flight before SIGTERM" wait_for metric '^weft_http_in_flight 2'
kill -TERM $PID
check "refuses new connections while draining" wait_for bash -c "! curl -s --max-time 2 $U/healthz"
check "... while the request in flight is still waiting" kill -0 $CURL
wait $CURL
check "the in-flight request is answered after SIGTERM ($(cat $OUT.code))" test "$(cat $OUT.code)" = 504
check "exits on SIGTERM" wait_for bash -c "! kill -0 $PID 2>/dev/null"
kill $SILENT; wait $SILENT 2>/dev/null; rm -f $SILENT_OUT $OUT.inflight $OUT.code
wait $PID; rc=$?
check "exit status 0 after SIGTERM" test $rc -eq 0
# SIGINT (Ctrl-C) stops it gracefully as well; by default /proxy reaches
# nothing, not even the service itself (its /metrics, behind a front end)
(cd /tmp && exec $WEFT serve --port $PORT --threads 1 --db $DB >/dev/null 2>&1) &
PID=$!
wait_for up
check "default proxy allow-list: not the service itself" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy?url=http://localhost:$PORT/metrics")" = 403
check "default proxy allow-list: another port is 403" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy?url=http://127.0.0.1:1/")" = 403
check "default proxy allow-list: another host is 403" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/proxy?url=http://example.invalid:$PORT/")" = 403
kill -INT $PID
wait $PID; rc=$?
check "exit status 0 after SIGINT" test $rc -eq 0
# a flood of events: every one accepted (202) is durable and processed
(cd /tmp && exec $WEFT serve --port $PORT --threads 1 --db $DB --workers 4 >/dev/null 2>&1) &
PID=$!
wait_for up
cat >$OUT.lua <<'LUA'
wrk.method = "POST"
wrk.body = '{"type":"flood","user_id":3}'
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
accepted = 0
function response(status, headers, body) if status == 202 then accepted = accepted + 1 end end
function done(summary, latency, requests)
  local s = 0
  for _, t in ipairs(threads) do s = s + t:get("accepted") end
  io.write(string.format("accepted %d\n", s))
end
LUA
wrk -t1 -c50 -d1s -s $OUT.lua $U/events >$OUT.flood 2>&1
ACCEPTED=$(awk '/^accepted / {print $2}' $OUT.flood)
recorded() { sqlite3 $DB "SELECT count(*) FROM events WHERE type = 'flood'"; }
# wrk counts the answers it read before it stopped: the server may have accepted a few more
enqueued() { curl -s $U/metrics | awk '/^weft_queue_jobs_total{queue="events",result="enqueued"} / {print $2}'; }
wait_for bash -c "test \"\$(sqlite3 $DB \"SELECT count(*) FROM events WHERE type = 'flood'\")\" = \"\$(curl -s $U/metrics | awk '/^weft_queue_jobs_total{queue=\"events\",result=\"enqueued\"} / {print \$2}')\""
check "flood: every accepted event recorded ($(recorded) of $(enqueued), wrk read ${ACCEPTED:-?} 202s)" test "$(recorded)" = "$(enqueued)" -a "$(recorded)" -ge "${ACCEPTED:-1}" -a "${ACCEPTED:-0}" -gt 0
check "flood: none dead" bash -c "! curl -s $U/metrics | grep -q 'result=\"dead\"} [1-9]'"
kill $PID; wait $PID 2>/dev/null; rm -f $OUT.flood $OUT.lua
# out of descriptors: it keeps serving what it holds, logs, and recovers
(cd /tmp && ulimit -n 200 && exec $WEFT serve --port $PORT --threads 1 --db $DB >$OUT 2>&1) &
PID=$!
wait_for up
check "out of descriptors: serves and recovers" python3 - $PORT <<'PY'
import socket, sys
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
def ask(s):
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"); s.settimeout(3)
    return b"Hello, World!" in s.recv(1000)
held = sum(ask(s) for s in conns[:100])
for s in conns: s.close()
sys.exit(0 if held == 100 and ask(socket.create_connection(("127.0.0.1", port))) else 1)
PY
check "out of descriptors: logged" wait_for grep -q "Too many open files" $OUT
kill -TERM $PID; wait $PID
$WEFT serve --port 0 >/dev/null 2>&1; check "bad port: exit 2" test $? -eq 2
$WEFT serve --threads x >/dev/null 2>&1; check "bad threads: exit 2" test $? -eq 2
# a port another process holds, even one sharing it with SO_REUSEPORT: refused
STRANGER_OUT=$(mktemp)
python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(30)' >$STRANGER_OUT &
STRANGER=$!
wait_for test -s $STRANGER_OUT
ERR=$($WEFT serve --port "$(cat $STRANGER_OUT)" --threads 1 --db $DB 2>&1 >/dev/null); rc=$?
check "a port a REUSEPORT stranger holds: exit 1 ($ERR)" test $rc -eq 1 -a -n "$(echo "$ERR" | grep 'in use by another socket')"
kill $STRANGER; wait $STRANGER 2>/dev/null; rm -f $STRANGER_OUT
$WEFT serve --proxy-allow ::1 >/dev/null 2>&1; check "bad --proxy-allow: exit 2" test $? -eq 2
$WEFT serve --proxy-allow 'example.com/x' >/dev/null 2>&1; check "--proxy-allow with a path: exit 2" test $? -eq 2
check "--help names --proxy-allow" bash -c "$WEFT serve --help | grep -q -- --proxy-allow"
check "bad host: exit 2, named" bash -c "$WEFT serve --host nosuch.invalid 2>&1 >/dev/null | grep -q \"not 'nosuch.invalid'\"; test \${PIPESTATUS[0]} -eq 2"
rm -f $OUT $DB ${DB%.db}-queue.db*
echo "serve end-to-end: $fails failed"
[ $fails -eq 0 ]
