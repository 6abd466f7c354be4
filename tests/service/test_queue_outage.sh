#!/usr/bin/env bash
# Review of issue 14: the events' queue on PostgreSQL, which is away for
# 35 s (longer than weft_queue_work's 30 s GIVE_UP). weft_queue_work
# returns, events.c's worker task logs "the event workers stopped" and
# ends, and nothing restarts it: once PostgreSQL is back, POST /events
# answers 202 again, /healthz says ok, but no event is ever processed by
# this instance until it is restarted.
#   test_queue_outage.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
SERVICES=$(realpath "$(dirname "$0")/../../scripts/services")
PGDIR=$(dirname "$(realpath "$2")")
P=$(free_port); U=http://127.0.0.1:$P; J='Content-Type: application/json'
serve_start a $P --threads 1 --pg "$DB_URL" --queue "$DB_URL" || exit 1
"$SERVICES" stop pg "$PGDIR" >/dev/null
t0=$(date +%s)
gave_up() { grep -q 'the worker stops' $T/a.out; }
WAIT=60 wait_for gave_up
echo "# worker gave up after $(( $(date +%s) - t0 )) s"
metrics() { curl -s $U/metrics | grep '^weft_example_event_workers' | tr '\n' ' '; }
# (the page read whole first: grep -q ending early would fail curl's write, and the pipe)
metric() { local m; m=$(curl -s $U/metrics) && grep -qE "^weft_example_event_workers$1" <<<"$m"; }
# given up: the workers pause (1 s), then run again; the count says so
check "metrics: the workers' state shown ($(metrics))" metric '\{state="paused"\} [01]$'
check "metrics: the workers run again after giving up ($(metrics))" \
    wait_for metric '_restarts_total [1-9]'
"$SERVICES" start pg "$PGDIR" >/dev/null
accepted() { curl -s -H "$J" -d '{"type":"after","user_id":3}' $U/events >$T/r && grep -q accepted $T/r; }
check "PostgreSQL back: an event accepted" wait_for accepted
ID=$(sed -n 's/.*"id":\([0-9]*\)}$/\1/p' $T/r)
check "healthz ok" test "$(code $U/healthz)" = 200
done_() { curl -s $U/events/$ID | grep -q '"state":"done"'; }
WAIT=30 wait_for done_
check "the event accepted after the outage is processed ($(curl -s $U/events/$ID))" done_
check "metrics: the workers running ($(metrics))" metric '\{state="running"\} 1$'
serve_stop a
finish
