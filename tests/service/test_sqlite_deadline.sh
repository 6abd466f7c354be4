#!/usr/bin/env bash
# Review of issue 14: every handler under the request's deadline, also on
# the SQLite data (`make run`). Another process holds the database's write
# lock; PUT /users/5 with --timeout 1 must answer 504 at about 1 s. It
# answers after sqlite3_busy_timeout's 5 s: the deadline does not reach a
# query running on the blocking pool (weft_run_blocking waits for it).
#   test_sqlite_deadline.sh WEFT_BINARY PG_URL_FILE
source "$(dirname "$0")/lib.sh"
P=$(free_port); U=http://127.0.0.1:$P; J='Content-Type: application/json'
serve_start a $P --threads 1 --timeout 1 || exit 1
python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(15)' "$T/a.db" "$T/locked" &
PIDS+=($!)
locked() { test -f $T/locked; }
wait_for locked
R=$(curl -s -o /dev/null --max-time 20 -w '%{http_code} %{time_total}' -X PUT -H "$J" \
    -d '{"name":"x","email":"y"}' $U/users/5)
check "PUT under a held write lock: 504 ($R)" test "${R%% *}" = 504
check "... within the deadline and a margin: under 2 s ($R)" \
    python3 -c "import sys; sys.exit(0 if float('${R##* }') < 2 else 1)"
serve_stop a
finish
