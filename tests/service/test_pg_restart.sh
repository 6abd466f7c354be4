#!/usr/bin/env bash
# PostgreSQL restarted under a load of /db, /queries and /users: during the
# outage the answers are 503 (with Retry-After) or 504, never a 500 and
# never a hang; afterwards the service recovers by itself.
#   test_pg_restart.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
SERVICES=$(realpath "$(dirname "$0")/../../scripts/services")
PGDIR=$(dirname "$(realpath "$2")")
P=$(free_port); U=http://127.0.0.1:$P
serve_start a $P --threads 2 --pg "$DB_URL" --timeout 2 || exit 1
python3 "$(dirname "$0")/load.py" get $U/db "$U/queries?queries=5" $U/users/7 \
    --out $T/log --threads 8 --stop $T/stop &
LOAD=$!
oks() { test -f $T/log && test "$(tail -n +$1 $T/log | grep -c '^200 ')" -ge "$2"; }
WAIT=30 wait_for oks 1 100
check "under load before the restart" oks 1 100
L0=$(wc -l <$T/log)
"$SERVICES" restart pg "$PGDIR" >/dev/null
L1=$(wc -l <$T/log)
# recovery: answers of 200 again, after the restart
WAIT=60 wait_for oks $((L1 + 1)) 100
check "recovered after the restart" oks $((L1 + 1)) 100
touch $T/stop
wait $LOAD
tail -n +$((L0 + 1)) $T/log >$T/during
check "during the outage: only 200, 503 or 504 ($(cut -d' ' -f1 $T/during | sort | uniq -c | tr -s ' \n' ' '))" \
    bash -c "! grep -vqE '^(200|503|504) ' $T/during"
check "some answers were 503 or 504" grep -qE '^(503|504) ' $T/during
check "every 503 says when to retry" bash -c "! grep -E '^503 ' $T/during | grep -vq 'retry-after'"
check "no 500 logged" bash -c "! grep -q 'handler failed' $T/a.out"
serve_stop a; check "SIGTERM after: exit 0" test $? -eq 0
finish
