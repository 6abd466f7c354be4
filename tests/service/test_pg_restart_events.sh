#!/usr/bin/env bash
# Review of issue 14: PostgreSQL restarted under a load of POST /events and
# GET /events/{id} on a postgres:// queue. During the outage the answers
# must be 503 (with Retry-After) or 504, as test_pg_restart.sh asks of the
# data endpoints; the queue's -WEFT_EPG (the server's 57P01 "terminating
# connection due to administrator command", or a refusal while it starts)
# reaches svc_data_error unmapped and is a 500 with no reason.
# With REDIS_URL_FILE the queue is on that Redis, and Redis is what
# restarts (the fixture's keeps nothing on disk: a GET of an event from
# before the restart may then be 404).
#   test_pg_restart_events.sh WEFT_BINARY PG_URL_FILE [REDIS_URL_FILE]
source "$(dirname "$0")/lib.sh"
SERVICES=$(realpath "$(dirname "$0")/../../scripts/services")
SVC=pg; SVCDIR=$(dirname "$(realpath "$2")"); QUEUE=$DB_URL; OK='200|202|503|504'
if [ -n "${3:-}" ]; then
    SVC=redis; SVCDIR=$(dirname "$(realpath "$3")"); QUEUE=$(cat "$3"); OK='200|202|404|503|504'
fi
P=$(free_port)
serve_start a $P --threads 2 --pg "$DB_URL" --queue "$QUEUE" --timeout 2 || exit 1
python3 - $P $T/log $T/stop <<'PY' &
import http.client, json, os, sys, threading, time
port, log, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
def note(s):
    with lock, open(log, "a") as f:
        f.write(s + "\n")
def go():
    while not os.path.exists(stop):
        try:
            h = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            h.request("POST", "/events", json.dumps({"type": "t", "user_id": 5}),
                      {"Content-Type": "application/json"})
            r = h.getresponse(); r.read(); note("%d POST" % r.status)
            h.request("GET", "/events/1"); r = h.getresponse(); r.read(); note("%d GET" % r.status)
            h.close()
        except Exception as e:
            note("error " + type(e).__name__)
        time.sleep(0.02)
ts = [threading.Thread(target=go) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
LOAD=$!
oks() { test -f $T/log && test "$(tail -n +$1 $T/log | grep -c '^20[02] ')" -ge "$2"; }
WAIT=30 wait_for oks 1 50
L0=$(wc -l <$T/log)
"$SERVICES" restart $SVC "$SVCDIR" >/dev/null
L1=$(wc -l <$T/log)
WAIT=60 wait_for oks $((L1 + 1)) 50
touch $T/stop; wait $LOAD
tail -n +$((L0 + 1)) $T/log >$T/during
check "during the $SVC outage: only ${OK//|/, } ($(cut -d' ' -f1,2 $T/during | sort | uniq -c | tr -s ' \n' ' '))" \
    bash -c "! grep -vqE '^($OK) ' $T/during"
check "no 500 logged ($(grep -c 'handler failed' $T/a.out))" bash -c "! grep -q 'handler failed' $T/a.out"
serve_stop a
finish
