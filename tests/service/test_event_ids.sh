#!/usr/bin/env bash
# Review of issue 14: events are recorded in PostgreSQL keyed by the job's
# id alone (events.job_id PRIMARY KEY ... ON CONFLICT DO NOTHING), but a
# job id is only unique within one queue. Two instances sharing
# PostgreSQL, each with its default queue (sqlite: beside its own --db, as
# API-data.md says for --pg without --queue), both number their jobs from
# 1: the second instance's event 1 is "done" yet never recorded, silently
# (the same happens to one instance whose --queue changes).
#   test_event_ids.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
PA=$(free_port); PB=$(free_port); J='Content-Type: application/json'
serve_start a $PA --threads 1 --pg "$DB_URL" || exit 1
serve_start b $PB --threads 1 --pg "$DB_URL" || exit 1
post() { curl -s -H "$J" -d "{\"type\":\"$2\",\"user_id\":$3}" http://127.0.0.1:$1/events | sed -n 's/.*"id":\([0-9]*\)}$/\1/p'; }
IA=$(post $PA on-a 3); IB=$(post $PB on-b 4)
echo "# job ids: a $IA, b $IB"
done_() { curl -s http://127.0.0.1:$1/events/$2 | grep -q '"state":"done"'; }
check "a's event done" wait_for done_ $PA "$IA"
check "b's event done" wait_for done_ $PB "$IB"
check "both accepted events recorded ($(sql "SELECT string_agg(job_id || ':' || type, ' ') FROM events"))" \
    test "$(sql "SELECT count(*) FROM events WHERE type IN ('on-a', 'on-b')")" = 2
serve_stop a; serve_stop b
finish
