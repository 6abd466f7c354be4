#!/usr/bin/env bash
# kill -9 of weft serve during a load of POST /events: after a restart
# every event it answered 202 to is processed (recorded in PostgreSQL, its
# job done), none lost. The queue: sqlite (beside --db, the default) or
# postgres:// (the third argument).
#   test_kill9.sh WEFT_BINARY PG_URL_FILE sqlite|pg
source "$(dirname "$0")/lib.sh"
MODE=${3:-sqlite}
P=$(free_port); U=http://127.0.0.1:$P
ARGS=(--threads 2 --pg "$DB_URL")
[ "$MODE" = pg ] && ARGS+=(--queue "$DB_URL")
serve_start a $P "${ARGS[@]}" || exit 1
python3 "$(dirname "$0")/load.py" events $U --out $T/ids --threads 8 &
LOAD=$!
# killed mid-load, once a good number of events were accepted
WAIT=60 wait_for bash -c "test -f $T/ids && test \$(wc -l <$T/ids) -ge 500"
serve_stop a KILL
wait $LOAD
N=$(sort -un $T/ids | wc -l)
check "events accepted before the kill ($N)" test "$N" -ge 500
check "every accepted id is distinct" test "$N" -eq "$(wc -l <$T/ids)"
# the jobs running at the kill run again once their lease (10 s) expires
serve_start a $P "${ARGS[@]}" || exit 1
sort -un $T/ids | awk '{print "(" $1 ")"}' | paste -sd, >$T/values
lost() { sql "SELECT count(*) FROM (VALUES $(cat $T/values)) v(id) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.job_id = v.id)"; }
none_lost() { test "$(lost)" = 0; }
WAIT=90 wait_for none_lost
check "after the restart every accepted event is recorded ($(lost) missing of $N)" test "$(lost)" = 0
# recorded is not yet done: a job whose event was recorded before the kill
# and whose ack was not committed runs again once its lease expires
cat >$T/done.py <<'PY'
import json, sys, urllib.request
ids = sorted(set(int(l) for l in open(sys.argv[2])))
bad = [i for i in ids if json.load(urllib.request.urlopen("%s/events/%d" % (sys.argv[1], i)))["state"] != "done"]
if bad: print("not done:", bad[:10])
sys.exit(1 if bad else 0)
PY
all_done() { python3 $T/done.py $U $T/ids >$T/not-done; }
WAIT=90 wait_for all_done
check "every accepted event's job is done $(cat $T/not-done)" all_done
check "no event dead" bash -c "! curl -s $U/metrics | grep -q '^weft_queue_jobs_total{queue=\"events\",result=\"dead\"} [1-9]'"
serve_stop a; check "SIGTERM after: exit 0" test $? -eq 0
finish
