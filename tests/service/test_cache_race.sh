#!/usr/bin/env bash
# Review of issue 14: the cache-aside must not keep a row a PUT replaced.
# Two instances share PostgreSQL and Redis (the scale-out the issue asks
# for); A reaches PostgreSQL over a slow link (a proxy adding 0.6 s to
# every answer). A GET /users/5 on A misses, its SELECT runs at once on
# the server (old row), its answer is on the way; meanwhile a PUT on B
# commits and deletes the entry; then A's answer arrives and A fills the
# cache with the old row. Every instance then serves the replaced row as a
# hit for up to 60 s.
#   test_cache_race.sh WEFT_BINARY PG_URL_FILE REDIS_URL_FILE
source "$(dirname "$0")/lib.sh"
REDIS=$(cat "${3:?usage: $0 path/to/weft PG_URL_FILE REDIS_URL_FILE}")
J='Content-Type: application/json'
PA=$(free_port); PB=$(free_port); PX=$(free_port)
A=http://127.0.0.1:$PA; B=http://127.0.0.1:$PB
PGPORT=$(echo "$DB_URL" | sed -n 's|.*@[^:]*:\([0-9]*\)/.*|\1|p')
python3 "$(dirname "$0")/delay_proxy.py" $PX $PGPORT 0.6 $T/replies &
PIDS+=($!)
SLOW_URL=$(echo "$DB_URL" | sed "s|:$PGPORT/|:$PX/|")
listening() { (exec 3<>/dev/tcp/127.0.0.1/$PX) 2>/dev/null; }
wait_for listening || { echo "the proxy did not start"; exit 1; }
serve_start b $PB --threads 1 --pg "$DB_URL" --redis "$REDIS" || exit 1
WAIT=60 serve_start a $PA --threads 1 --pg "$SLOW_URL" --redis "$REDIS" --timeout 10 || exit 1
redis-cli -u "$REDIS" DEL weft:serve:user:5 >/dev/null
curl -s -o /dev/null $A/users/6                    # A's connection made
n0=$(wc -l <$T/replies)
curl -s -o $T/a_get $A/users/5 &                   # a miss: the SELECT runs now
GET=$!
answered() { test "$(wc -l <$T/replies)" -gt "$n0"; }
check "A's SELECT answered by the server (not yet seen by A)" wait_for answered
check "PUT on B: 200" test "$(code -X PUT -H "$J" -d '{"name":"New","email":"new@example.com"}' $B/users/5)" = 200
check "... before A saw its answer" kill -0 $GET
wait $GET
check "A answered the row it read before the PUT" grep -q '"User 5"' $T/a_get
curl -s -D $T/h -o $T/b $B/users/5
check "after the PUT, GET on B gives the new row (got $(cat $T/b), $(grep -i x-cache $T/h | tr -d '\r'))" grep -q '"New"' $T/b
check "Redis holds no replaced row ($(redis-cli -u "$REDIS" GET weft:serve:user:5))" \
    bash -c "! redis-cli -u '$REDIS' GET weft:serve:user:5 | grep -q 'User 5'"
serve_stop a; serve_stop b
finish
