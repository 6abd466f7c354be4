#!/usr/bin/env bash
# /users/{id} cache-aside on Redis: a miss fills the cache (TTL 60 s), a
# hit answers from it (even when the database changed behind the
# service's back), PUT /users/{id} changes the database and deletes the
# entry; Redis away means the database answers. Also on SQLite.
#   test_cache.sh WEFT_BINARY PG_URL_FILE REDIS_URL_FILE
source "$(dirname "$0")/lib.sh"
REDIS=$(cat "${3:?usage: $0 path/to/weft PG_URL_FILE REDIS_URL_FILE}")
P=$(free_port); U=http://127.0.0.1:$P; J='Content-Type: application/json'
rcli() { redis-cli -u "$REDIS" "$@"; }
rcli DEL weft:serve:user:5 weft:serve:user:7 >/dev/null
WEFT_REDIS_URL=redis://127.0.0.1:1 serve_start a $P --threads 2 --pg "$DB_URL" --redis "$REDIS" || exit 1
hit() { curl -s -D $T/h -o $T/b $U/users/$1 && grep -qi '^X-Cache: hit' $T/h; }
miss() { curl -s -D $T/h -o $T/b $U/users/$1 && ! grep -qi '^X-Cache: hit' $T/h; }
check "first read: a miss" miss 5
check "... answered from PostgreSQL" test "$(cat $T/b)" = '{"id":5,"name":"User 5","email":"user5@example.com"}'
check "... and kept for 60 s" bash -c "t=\$(redis-cli -u '$REDIS' TTL weft:serve:user:5); test \$t -ge 1 -a \$t -le 60"
check "second read: a hit" hit 5
check "... the same answer" test "$(cat $T/b)" = '{"id":5,"name":"User 5","email":"user5@example.com"}'
sql "UPDATE users SET name = 'Behind its back' WHERE id = 5"
hit_old() { hit 5 && grep -q 'User 5' $T/b; }
check "a hit does not read the database" hit_old
check "PUT: 200 with the user" test "$(curl -s -X PUT -H "$J" -d '{"name":"Five","email":"five@example.com"}' -w ' %{http_code}' $U/users/5)" = '{"id":5,"name":"Five","email":"five@example.com"} 200'
check "PUT: the database changed" test "$(sql 'SELECT name, email FROM users WHERE id = 5')" = 'Five|five@example.com'
check "PUT: the cached answer deleted" test "$(rcli EXISTS weft:serve:user:5)" = 0
miss_new() { miss $1 && grep -q "$2" $T/b; }
check "the next read: the new answer, a miss" miss_new 5 Five
check "metrics: hits and misses" bash -c "curl -s $U/metrics | grep -q '^weft_example_cache_total{result=\"hit\"} 2' && curl -s $U/metrics | grep -q '^weft_example_cache_total{result=\"miss\"} 2'"
check "metrics: the cache's pool" bash -c "curl -s $U/metrics | grep -q '^weft_pool_size{pool=\"cache\"}'"
check "PUT: no such user 404" test "$(curl -s -X PUT -H "$J" -d '{"name":"x","email":"y"}' -w ' %{http_code}' $U/users/10001)" = '{"error":"no such user","id":10001} 404'
check "PUT: no name 400" test "$(curl -s -X PUT -H "$J" -d '{"email":"y"}' -w ' %{http_code}' $U/users/5)" = '{"error":"name must be a string of 1 to 127 bytes"} 400'
check "PUT: a long email 400" test "$(code -X PUT -H "$J" -d "{\"name\":\"x\",\"email\":\"$(head -c 200 /dev/zero | tr '\0' e)\"}" $U/users/5)" = 400
check "PUT: not JSON 400" test "$(code -X PUT -H "$J" -d 'x' $U/users/5)" = 400
check "PUT: text/plain 415" test "$(code -X PUT -H 'Content-Type: text/plain' -d '{}' $U/users/5)" = 415
check "PUT: bad id 400" test "$(code -X PUT -H "$J" -d '{"name":"x","email":"y"}' $U/users/x)" = 400
serve_stop a; check "SIGTERM: exit 0" test $? -eq 0

# Redis away: the database answers (WEFT_REDIS_URL; nothing listens on port 1)
WEFT_REDIS_URL=redis://127.0.0.1:1 serve_start b $P --threads 1 --pg "$DB_URL" || exit 1
check "Redis away: reads from the database" test "$(curl -s -w ' %{http_code}' $U/users/5)" = '{"id":5,"name":"Five","email":"five@example.com"} 200'
check "Redis away: writes still work" test "$(code -X PUT -H "$J" -d '{"name":"Seven","email":"7@example.com"}' $U/users/7)" = 200
check "Redis away: logged" grep -q 'cache GET failed' $T/b.out
serve_stop b

# on SQLite: the same cache-aside
serve_start c $P --threads 1 --redis "$REDIS" || exit 1
rcli DEL weft:serve:user:7 >/dev/null
curl -s -o /dev/null $U/users/7
check "SQLite: a hit" hit 7
check "SQLite: PUT" test "$(code -X PUT -H "$J" -d '{"name":"Sept","email":"sept@example.com"}' $U/users/7)" = 200
check "SQLite: deleted from the cache, the new answer" miss_new 7 Sept
serve_stop c
finish
