#!/usr/bin/env bash
# Two `weft serve` on different ports sharing PostgreSQL and a postgres://
# queue: events posted to both are each processed once (one successful
# run per job, across the two), and either one answers for any event.
#   test_two_instances.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
P1=$(free_port); P2=$(free_port); U1=http://127.0.0.1:$P1; U2=http://127.0.0.1:$P2
serve_start a $P1 --threads 1 --pg "$DB_URL" --queue "$DB_URL" || exit 1
serve_start b $P2 --threads 1 --pg "$DB_URL" --queue "$DB_URL" || exit 1
check "the second instance applies no migration" bash -c "! grep -q 'migrations* applied' $T/b.out"
python3 "$(dirname "$0")/load.py" events $U1 $U2 --out $T/ids --threads 8 --max 2000
N=$(sort -un $T/ids | wc -l)
check "events accepted by the two ($N)" test "$N" -ge 2000
sort -un $T/ids | awk '{print "(" $1 ")"}' | paste -sd, >$T/values
lost() { sql "SELECT count(*) FROM (VALUES $(cat $T/values)) v(id) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.job_id = v.id)"; }
none_lost() { test "$(lost)" = 0; }
WAIT=60 wait_for none_lost
check "every event recorded ($(lost) missing)" test "$(lost)" = 0
check "every job ran once" test "$(sql "SELECT count(*) FROM weft_queue.jobs WHERE queue = 'events' AND (state <> 3 OR attempts <> 1)")" = 0
succeeded() { curl -s $1/metrics | awk '/^weft_queue_jobs_total{queue="events",result="succeeded"} / {print $2}'; }
S1=$(succeeded $U1); S2=$(succeeded $U2)
check "one success per event across the two ($S1 + $S2)" test $(( ${S1:-0} + ${S2:-0} )) -eq "$N"
ID=$(head -1 $T/ids)
check "either instance tells an event's state" test "$(curl -s $U1/events/$ID)" = "$(curl -s $U2/events/$ID)"
serve_stop a; check "a: SIGTERM exit 0" test $? -eq 0
serve_stop b; check "b: SIGTERM exit 0" test $? -eq 0
finish
