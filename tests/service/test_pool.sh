#!/usr/bin/env bash
# The pool's acquire timeout under weft serve: with every connection held
# by statements waiting on a lock, the requests that cannot get one are
# answered 503 with Retry-After once the pool's wait (2 s) is over, the
# others 504 at the deadline (--timeout 4); after the lock, 200 again.
#   test_pool.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
P=$(free_port); U=http://127.0.0.1:$P
serve_start a $P --threads 1 --pg "$DB_URL" --timeout 4 || exit 1
psql "$DB_URL" -Xqc "BEGIN; LOCK TABLE world IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKER=$!
locked() { test "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'world' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1; }
wait_for locked
python3 - $U >$T/answers <<'PY'
import http.client, sys, threading, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
out, lock = [], threading.Lock()
def ask():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request("GET", "/db"); r = c.getresponse(); r.read()
        line = "%d %s" % (r.status, "retry-after" if r.getheader("Retry-After") else "-")
    except Exception as e:
        line = "error " + type(e).__name__
    with lock: out.append(line)
ts = [threading.Thread(target=ask) for _ in range(300)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY
psql "$URL" -Xqc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait $LOCKER 2>/dev/null
SUMMARY=$(sort $T/answers | uniq -c | tr -s ' \n' ' ')
check "every request answered, none hung ($SUMMARY)" test "$(grep -c '^[0-9]' $T/answers)" = 300
check "the pool's acquire timeout: 503" grep -q '^503 ' $T/answers
check "every 503 says when to retry" bash -c "! grep -q '^503 -' $T/answers"
check "the deadline: 504" grep -q '^504 ' $T/answers
check "nothing but 503 and 504" bash -c "! grep -vqE '^(503|504) ' $T/answers"
db_ok() { test "$(code $U/db)" = 200; }
check "after the lock: 200" wait_for db_ok
serve_stop a; check "SIGTERM after: exit 0" test $? -eq 0
finish
