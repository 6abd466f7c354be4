#!/usr/bin/env bash
# Review of issue 14: a PUT whose UPDATE committed but whose answer came
# back past the request's deadline (a slow link: a proxy adding 0.6 s to
# PostgreSQL's answers; the row locked by another transaction until 1.6 s
# into the PUT's 2 s) answers 504, yet the database has the change, and
# the cached answer is never deleted (the DEL is only sent on success):
# GET serves the replaced row as a hit for up to 60 s.
#   test_cache_timeout.sh WEFT_BINARY PG_URL_FILE REDIS_URL_FILE
source "$(dirname "$0")/lib.sh"
REDIS=$(cat "${3:?usage: $0 path/to/weft PG_URL_FILE REDIS_URL_FILE}")
J='Content-Type: application/json'
PA=$(free_port); PX=$(free_port); A=http://127.0.0.1:$PA
PGPORT=$(echo "$DB_URL" | sed -n 's|.*@[^:]*:\([0-9]*\)/.*|\1|p')
python3 "$(dirname "$0")/delay_proxy.py" $PX $PGPORT 0.6 $T/replies &
PIDS+=($!)
listening() { (exec 3<>/dev/tcp/127.0.0.1/$PX) 2>/dev/null; }
wait_for listening || { echo "the proxy did not start"; exit 1; }
SLOW_URL=$(echo "$DB_URL" | sed "s|:$PGPORT/|:$PX/|")
WAIT=60 serve_start a $PA --threads 1 --pg "$SLOW_URL" --redis "$REDIS" --timeout 2 || exit 1
redis-cli -u "$REDIS" DEL weft:serve:user:5 >/dev/null
cached() { curl -s -o /dev/null $A/users/5; test "$(redis-cli -u "$REDIS" EXISTS weft:serve:user:5)" = 1; }
check "GET /users/5 cached (once A's pool has its connection)" wait_for cached
psql "$DB_URL" -Xq -c 'BEGIN' -c 'SELECT 1 FROM users WHERE id = 5 FOR UPDATE' \
    -c "\\! touch $T/locked" -c 'SELECT pg_sleep(1.6)' -c 'COMMIT' >/dev/null &
LOCKER=$!
locked() { test -f $T/locked; }
wait_for locked
R=$(code -X PUT -H "$J" -d '{"name":"New","email":"new@example.com"}' $A/users/5)
wait $LOCKER
echo "# PUT answered $R"
check "the change is in the database" test "$(sql 'SELECT name FROM users WHERE id = 5')" = New
check "the cached answer was deleted ($(redis-cli -u "$REDIS" GET weft:serve:user:5))" \
    test "$(redis-cli -u "$REDIS" EXISTS weft:serve:user:5)" = 0
check "GET gives what the database holds ($(curl -s $A/users/5))" bash -c "curl -s $A/users/5 | grep -q New"
serve_stop a
finish
