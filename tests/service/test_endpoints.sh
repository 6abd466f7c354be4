#!/usr/bin/env bash
# weft serve on PostgreSQL, every endpoint end to end: the migrations, the
# users, the TechEmpower rules (counts clamped, updates persisted, fortunes
# escaped and sorted), events on a postgres:// queue (done, dead with the
# reason), bad input on each endpoint, a slow query stopped at the deadline
# (504), flags over the environment, a restart applying nothing twice.
#   test_endpoints.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
P=$(free_port); U=http://127.0.0.1:$P; J='Content-Type: application/json'

# --pg wins over WEFT_PG_URL, which points at nothing
WEFT_PG_URL=postgresql://nobody@127.0.0.1:1/none serve_start a $P --threads 2 --pg "$DB_URL" \
    --queue "$DB_URL" --attempts 2 --timeout 1 || exit 1
check "migrations applied at start" grep -q "3 migrations applied" $T/a.out
check "users 1..10,000" test "$(sql 'SELECT count(*), min(id), max(id) FROM users')" = "10000|1|10000"
check "World: 10,000 rows, randomNumber 1..10000" test "$(sql 'SELECT count(*), min(id), max(id), min(randomnumber) >= 1 AND max(randomnumber) <= 10000 FROM world')" = "10000|1|10000|t"
check "Fortune: 12 rows" test "$(sql 'SELECT count(*) FROM fortune')" = 12

# ---- /users/{id}
check "user from PostgreSQL" test "$(curl -s $U/users/42)" = '{"id":42,"name":"User 42","email":"user42@example.com"}'
check "user 10000" test "$(curl -s $U/users/10000)" = '{"id":10000,"name":"User 10000","email":"user10000@example.com"}'
check "absent user: 404 with a reason" test "$(curl -s -w ' %{http_code}' $U/users/10001)" = '{"error":"no such user","id":10001} 404'
check "user id not a number: 400 with a reason" test "$(curl -s -w ' %{http_code}' $U/users/abc)" = '{"error":"id must be a positive integer"} 400'
check "user id 0: 400" test "$(code $U/users/0)" = 400

# ---- TechEmpower /db and /queries
curl -s -D $T/h $U/db >$T/db
check "/db: application/json" grep -qi '^Content-Type: application/json' $T/h
check "/db: one row as the table has it" python3 - $T/db "$DB_URL" <<'PY'
import json, subprocess, sys
w = json.load(open(sys.argv[1]))
assert sorted(w) == ["id", "randomNumber"] and 1 <= w["id"] <= 10000, w
db = subprocess.check_output(["psql", sys.argv[2], "-XAtqc", "SELECT randomnumber FROM world WHERE id = %d" % w["id"]])
assert int(db) == w["randomNumber"], (w, db)
PY
# queries=N: an array of N rows, N clamped to 1..500, junk or missing is 1
rows() { curl -s "$U/$1" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert isinstance(a, list)
for w in a: assert sorted(w) == ["id", "randomNumber"] and 1 <= w["id"] <= 10000 and 1 <= w["randomNumber"] <= 10000
print(len(a))'; }
for q in "queries=20:20" "queries=1:1" "queries=500:500" "queries=501:500" "queries=99999999999999999999:500" \
         "queries=0:1" "queries=00007:7" "queries=000:1" "queries=-5:1" "queries=abc:1" "queries=5x:1" "queries=:1" ":1" "other=7:1"; do
    check "/queries?${q%:*} is ${q##*:} rows" test "$(rows "queries?${q%:*}")" = "${q##*:}"
done

# ---- /updates: the new numbers are what the table holds after
check "/updates?queries=20 persisted" python3 - "$U" "$DB_URL" <<'PY'
import json, subprocess, sys, urllib.request
for n, want in ((20, 20), (0, 1), (600, 500), ("x", 1)):
    a = json.load(urllib.request.urlopen("%s/updates?queries=%s" % (sys.argv[1], n)))
    assert len(a) == want, (n, len(a))
    got = {}
    for w in a:
        assert sorted(w) == ["id", "randomNumber"] and 1 <= w["randomNumber"] <= 10000
        got.setdefault(w["id"], set()).add(w["randomNumber"])
    assert all(len(v) == 1 for v in got.values()), got   # one id, one number
    ids = ",".join(str(i) for i in got)
    out = subprocess.check_output(["psql", sys.argv[2], "-XAtqc",
                                   "SELECT id, randomnumber FROM world WHERE id IN (%s)" % ids], text=True)
    db = {int(l.split("|")[0]): int(l.split("|")[1]) for l in out.split()}
    assert all(db[i] in v for i, v in got.items()), (got, db)
PY

# ---- /fortunes: escaped, sorted, with the row added at request time
curl -s -D $T/h $U/fortunes >$T/f
check "/fortunes: text/html; charset=utf-8" grep -qi '^Content-Type: text/html; charset=utf-8' $T/h
check "/fortunes: as TechEmpower specifies" python3 - $T/f <<'PY'
import html, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
assert page.startswith("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>")
assert page.endswith("</table></body></html>")
rows = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", page)
assert len(rows) == 13, len(rows)
msgs = [html.unescape(m) for _, m in rows]
assert msgs == sorted(msgs, key=lambda s: s.encode()), msgs
assert ("0", "Additional fortune added at request time.") in rows
assert '<script>alert("This should not be displayed in a browser alert box.");</script>' in msgs
assert "<script>" not in page and "&lt;script&gt;alert(&quot;This should" in page
assert "aren&#39;t" in page or "aren&#x27;t" in page
assert ("12", "フレームワークのベンチマーク") in rows
PY

# ---- events on the postgres:// queue
R=$(curl -s -w ' %{http_code}' -H "$J" -d '{"type":"signup","user_id":42,"data":{"plan":"pro"}}' $U/events)
ID=$(echo "$R" | sed -n 's/^{"status":"accepted","id":\([0-9]*\)} 202$/\1/p')
check "event accepted: 202 {status, id} ($R)" test -n "$ID"
check "event done" wait_for bash -c "curl -s $U/events/$ID | grep -qx '{\"id\":$ID,\"state\":\"done\",\"attempts\":1}'"
check "event recorded" test "$(sql "SELECT type, user_id, data FROM events WHERE job_id = $ID")" = 'signup|42|{"plan": "pro"}'
check "the job in the queue's table" test "$(sql "SELECT count(*) FROM weft_queue.jobs WHERE id = $ID")" = 1
BAD=$(curl -s -H "$J" -d '{"type":"late","user_id":20000}' $U/events | sed -n 's/.*"id":\([0-9]*\)}$/\1/p')
check "event for an absent user: dead with the reason after --attempts 2" wait_for bash -c "curl -s $U/events/$BAD | grep -qx '{\"id\":$BAD,\"state\":\"dead\",\"attempts\":2,\"error\":\"no such user 20000\"}'"
check "... and not recorded" test "$(sql "SELECT count(*) FROM events WHERE job_id = $BAD")" = 0
check "... logged" grep -q "event $BAD 'late' (attempt 2 of 2) failed: no such user 20000, dead" $T/a.out
check "event: not JSON 400" test "$(curl -s -w ' %{http_code}' -H "$J" -d '{' $U/events)" = '{"error":"body is not a JSON object"} 400'
check "event: an array 400" test "$(code -H "$J" -d '[1]' $U/events)" = 400
check "event: empty body 400" test "$(code -H "$J" -X POST $U/events)" = 400
check "event: user_id a string 400" test "$(curl -s -w ' %{http_code}' -H "$J" -d '{"type":"a","user_id":"1"}' $U/events)" = '{"error":"user_id must be a positive integer"} 400'
check "event: data not an object 400" test "$(curl -s -w ' %{http_code}' -H "$J" -d '{"type":"a","user_id":1,"data":[]}' $U/events)" = '{"error":"data must be an object"} 400'
check "event: text/plain 415" test "$(curl -s -w ' %{http_code}' -H 'Content-Type: text/plain' -d '{}' $U/events)" = '{"error":"Content-Type must be application/json"} 415'
check "event: application/jsonx 415" test "$(code -H 'Content-Type: application/jsonx' -d '{}' $U/events)" = 415
check "event: 100 KiB 413" test "$(head -c 102400 /dev/zero | tr '\0' ' ' | code -H "$J" --data-binary @- $U/events)" = 413
check "event id not a number: 400" test "$(code $U/events/x1)" = 400
check "no such event: 404 with a reason" test "$(curl -s -w ' %{http_code}' $U/events/987654321)" = '{"error":"no such event","id":987654321} 404'
check "GET only on /events: 405" test "$(code -X DELETE $U/events/1)" = 405

# ---- /metrics: requests, pools, queue, loops
curl -s $U/metrics >$T/m
check "metrics: the pg pool" grep -q '^weft_pool_size{pool="pg"} [1-9]' $T/m
check "metrics: the queue" grep -q '^weft_queue_jobs_total{queue="events",result="dead"} 1' $T/m
check "metrics: requests by route" grep -q '^weft_http_requests_total{route="/fortunes",status="200"} 1' $T/m

# ---- the deadline reaches PostgreSQL: a statement waiting on a lock is
# 504 at --timeout 1, and stopped on the server (not left waiting)
psql "$DB_URL" -Xqc "BEGIN; LOCK TABLE world IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKER=$!
waiting() { test "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM world%'")" = "$1"; }
locked() { test "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'world' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1; }
wait_for locked
check "slow query: 504 with a reason" test "$(curl -s -w ' %{http_code}' $U/db)" = '{"error":"deadline exceeded"} 504'
check "slow /updates: 504" test "$(code "$U/updates?queries=5")" = 504
check "slow queries are stopped on the server" wait_for waiting 0
psql "$URL" -Xqc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait $LOCKER 2>/dev/null
db_ok() { test "$(code $U/db)" = 200; }
check "after the lock: 200" wait_for db_ok

# ---- SIGTERM: HTTP drained first, then the running job finishes (its
# INSERT waits on a lock the test holds), then the pools close: exit 0
psql "$DB_URL" -Xqc "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKER=$!
elocked() { test "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'events' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1; }
wait_for elocked
SLOW=$(curl -s -H "$J" -d '{"type":"slow","user_id":7}' $U/events | sed -n 's/.*"id":\([0-9]*\)}$/\1/p')
running() { test "$(sql "SELECT state FROM weft_queue.jobs WHERE id = ${SLOW:-0}")" = 2; }
check "a job running (waiting on the lock)" wait_for running
kill -TERM "$(cat $T/a.pid)"
refused() { ! curl -s --max-time 2 -o /dev/null $U/healthz; }
check "SIGTERM: HTTP stops first" wait_for refused
check "... while the job still runs" running
psql "$URL" -Xqc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait $LOCKER 2>/dev/null
# (waited for, not signalled again: a second SIGTERM once the server has
# given the signals back, while it exits, would end it as any program)
serve_wait a; rc=$?; check "SIGTERM: exit 0 once the job finished ($rc)" test $rc -eq 0
check "the job running at SIGTERM finished: done in one attempt" test "$(sql "SELECT state, attempts FROM weft_queue.jobs WHERE id = ${SLOW:-0}")" = "3|1"
check "... its event recorded" test "$(sql "SELECT count(*) FROM events WHERE job_id = ${SLOW:-0}")" = 1

# ---- again, from the environment: nothing applied twice, the data kept
WEFT_PG_URL=$DB_URL WEFT_QUEUE_URL=$DB_URL serve_start b $P --threads 1 || exit 1
check "restart: no migration applied" bash -c "! grep -q 'migrations* applied' $T/b.out"
check "restart: the users as they were" test "$(sql 'SELECT count(*) FROM users')" = 10000
check "restart: WEFT_PG_URL used" test "$(code $U/db)" = 200
check "restart: the event's state kept" test "$(curl -s $U/events/$ID)" = "{\"id\":$ID,\"state\":\"done\",\"attempts\":1}"
serve_stop b
"$WEFT" serve --pg postgresql://nobody@127.0.0.1:1/none --port $P --db $T/c.db >$T/c.out 2>&1
check "a PostgreSQL that cannot be reached: exit 1, said" test $? -eq 1 -a -n "$(grep 'migrations failed' $T/c.out)"
"$WEFT" serve --workers 0 >/dev/null 2>&1; check "--workers 0: exit 2" test $? -eq 2
"$WEFT" serve --timeout x >/dev/null 2>&1; check "--timeout x: exit 2" test $? -eq 2
finish
