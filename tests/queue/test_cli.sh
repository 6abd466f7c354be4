#!/usr/bin/env bash
# `weft queue` end to end: every subcommand, its JSON, its exit codes (bad
# usage 2, failure 1, --help 0) and the built-in job types run by a
# background worker, on the queue of BACKEND: sqlite (the default: a
# throwaway file), redis or pg (the test servers, wiped first: lib.sh's
# queue_setup), or a queue URL. Nothing sleeps to synchronise: every wait
# polls for what it waits for, with a bound.
#
#   test_cli.sh path/to/weft [BACKEND|URL]
set -uo pipefail
WEFT=$(realpath "${1:?usage: test_cli.sh path/to/weft [BACKEND|URL]}")
T=$(mktemp -d /tmp/weft-queue-cli-XXXXXX)
source "$(dirname "$(realpath "$0")")/lib.sh"
queue_setup "${2:-}"
cd $T                                    # a default URL would land here, not in the tree

# runs the command, keeps stdout in $out and stderr in $err, returns its status
run() { "$@" >$T/stdout 2>$T/stderr; local rc=$?; out=$(cat $T/stdout); err=$(cat $T/stderr); return $rc; }
# the same, with the status in $rc
st() { run "$@"; rc=$?; }
# waits (bounded) for a background process to exit and gives its status
reap() {
    wait_for 15 gone $1 || { echo "# pid $1 did not exit"; kill -9 $1; }
    reaped $1
}
stat_of() { q stats "$1" | sed -nE "s/.*\"$2\":([0-9]+).*/\1/p"; }

# ---- --help, everywhere ----------------------------------------------------
st q --help; check "weft queue --help: 0" test $rc = 0
check "weft queue --help: the commands" grep -q "enqueue QUEUE TYPE" <<<"$out"
check "weft --help names queue" bash -c "'$WEFT' --help 2>&1 | grep -q '  queue '"
for c in enqueue work stats list show retry purge; do
    st q $c --help; check "$c --help: 0" test $rc = 0
    check "$c --help: its usage on stdout" grep -q "^usage: weft queue $c" <<<"$out"
done
st q enqueue q noop --count 3 --help; check "a --help among other arguments: 0" test $rc = 0
check "--help enqueued nothing" queue_untouched

# ---- bad usage: 2, a message on stderr -----------------------------------------
bad() {  # expected words in the message, then the arguments
    local want=$1; shift
    st q "$@"
    check "bad usage ($*): 2" test "$rc" = 2
    check "bad usage ($*): says '$want'" grep -qF -- "$want" <<<"$err"
}
bad "no command" 
bad "unknown command 'bogus'" bogus
bad "missing arguments" enqueue
bad "missing arguments" enqueue q
bad "unexpected argument" enqueue q noop {} extra
bad "not JSON" enqueue q noop '{"a":'
bad "--count: bad value '0'" enqueue q noop --count 0
bad "--count: bad value '5x'" enqueue q noop --count 5x
bad "--count: bad value ' 5'" enqueue q noop --count ' 5'
bad "--count: bad value ''" enqueue q noop --count ''
bad "--delay: bad value '-1'" enqueue q noop --delay -1
bad "--delay: bad value 'abc'" enqueue q noop --delay abc
bad "--delay: bad value '0x10'" enqueue q noop --delay 0x10
bad "--delay: bad value 'inf'" enqueue q noop --delay inf
bad "--priority: bad value '10'" enqueue q noop --priority 10
bad "--priority: bad value '-1'" enqueue q noop --priority -1
bad "--max-attempts: bad value '0'" enqueue q noop --max-attempts 0
bad "--key names one job" enqueue q noop --key k --count 2
bad "--count does not go with -" enqueue q noop - --count 2
bad "unknown option '--bogus'" enqueue q noop --bogus
bad "'--count' needs a value" enqueue q noop --count
bad "empty queue name" enqueue '' noop
bad "missing arguments" work
bad "-c: bad value '0'" work q -c 0
bad "-c: bad value 'many'" work q -c many
bad "--lease: bad value '0'" work q --lease 0
bad "unexpected argument" stats a b
bad "--state: bad value 'bogus'" list --state bogus
bad "--limit: bad value '-1'" list --limit -1
bad "unexpected argument" list extra
bad "missing arguments" show
bad "bad job id 'abc'" show abc
bad "bad job id '0'" show 0
bad "bad job id '1.5'" retry 1.5
bad "--state: bad value 'queued'" purge --state queued
bad "unknown option '--limit'" purge --limit 3
bad "'--url' needs a value" --url
check "bad usage created no queue" queue_untouched

# ---- enqueue and show -------------------------------------------------------------
run q enqueue mail send '{"to":"a@example.com"}'
check "enqueue: exit 0" test $? = 0
check "enqueue: one line" test "$(wc -l <<<"$out")" = 1
check "enqueue: {\"id\":N,\"duplicate\":false}" grep -qE '^\{"id":[0-9]+,"duplicate":false\}$' <<<"$out"
ID=$(num "$out" id)
run q show $ID
check "show: exit 0" test $? = 0
check "show: one line" test "$(wc -l <<<"$out")" = 1
check "show: the fields in order" grep -qE '^\{"id":'$ID',"queue":"mail","type":"send","payload":\{"to":"a@example.com"\},"state":"queued","attempts":0,"max_attempts":[0-9]+,"priority":0,"created_ms":[0-9]+,"run_at_ms":[0-9]+,"finished_ms":0,"result":null,"last_error":null\}$' <<<"$out"
check "show: created now (Unix ms)" test "$(num "$out" created_ms)" -gt $(( ($(date +%s) - 60) * 1000 ))
st q show 999999; check "show of no job: 1" test $rc = 1
check "show of no job: says so" grep -q "no job 999999" <<<"$err"

run q enqueue mail send
check "enqueue without a payload: {}" grep -q '"payload":{}' <<<"$(q show $(num "$out" id))"
run q enqueue mail send '"text"'
check "a string payload" grep -q '"payload":"text",' <<<"$(q show $(num "$out" id))"
run q enqueue mail send '{}' --priority 7 --max-attempts 3
J=$(q show $(num "$out" id))
check "--priority 7" test "$(num "$J" priority)" = 7
check "--max-attempts 3" test "$(num "$J" max_attempts)" = 3

# --count: N lines, an object payload numbered 0..N-1, other payloads as given
run q enqueue batch noop '{"k":"v"}' --count 300
check "--count 300: exit 0" test $? = 0
check "--count 300: 300 lines" test "$(wc -l <<<"$out")" = 300
check "--count 300: 300 distinct ids" test "$(grep -oE '"id":[0-9]+' <<<"$out" | sort -u | wc -l)" = 300
FIRST=$(num "$(head -1 <<<"$out")" id); LAST=$(num "$(tail -1 <<<"$out")" id)
check "--count: n 0 first" grep -q '"payload":{"k":"v","n":0}' <<<"$(q show $FIRST)"
check "--count: n 299 last" grep -q '"payload":{"k":"v","n":299}' <<<"$(q show $LAST)"
run q enqueue batch noop '[1,2]' --count 2
check "--count with an array: unchanged" grep -q '"payload":\[1,2\]' <<<"$(q show $(num "$(tail -1 <<<"$out")" id))"
check "stats batch: 302 queued" test "$(stat_of batch queued)" = 302

# - : one payload per line of stdin, blank lines skipped
run q enqueue lines noop - < <(printf '{"i":1}\n\n{"i":2}\r\n  \n3\n')
check "stdin: exit 0" test $? = 0
check "stdin: 3 jobs" test "$(wc -l <<<"$out")" = 3
check "stdin: the second line's payload" grep -q '"payload":{"i":2}' <<<"$(q show $(num "$(sed -n 2p <<<"$out")" id))"
seq 1000 | sed 's/.*/{"i":&}/' > $T/many
run q enqueue lines noop - < $T/many
check "stdin: 1000 lines in batches" test "$(wc -l <<<"$out")" = 1000
check "stats lines: 1003 queued" test "$(stat_of lines queued)" = 1003
run q enqueue lines noop - < <(printf '{"i":1}\n{"i":\n')
check "stdin with a line not JSON: 1" test $? = 1
check "stdin with a line not JSON: names line 2" grep -q "line 2" <<<"$err"
check "stdin with a line not JSON: nothing of its batch enqueued" test "$(stat_of lines queued)" = 1003

# --key: the second enqueue is a duplicate of the first
run q enqueue mail send '{"once":1}' --key order-17
check "--key: new" grep -qE '^\{"id":[0-9]+,"duplicate":false\}$' <<<"$out"
KID=$(num "$out" id)
run q enqueue mail send '{"once":2}' --key order-17
check "--key again: exit 0" test $? = 0
check "--key again: {\"id\":<same>,\"duplicate\":true}" test "$out" = "{\"id\":$KID,\"duplicate\":true}"
check "--key again: the first payload kept" grep -q '"payload":{"once":1}' <<<"$(q show $KID)"

# --delay: scheduled, run_at in the future
run q enqueue later noop --delay 3600
J=$(q show $(num "$out" id))
check "--delay 3600: scheduled" test "$(str "$J" state)" = scheduled
check "--delay 3600: run_at an hour on" test "$(num "$J" run_at_ms)" -gt $(( $(num "$J" created_ms) + 3590000 ))
st q enqueue later noop --delay 0.25; check "--delay 0.25: accepted" test $rc = 0
check "stats later: 1 scheduled" test "$(stat_of later scheduled)" -ge 1

# stats: the shape, per queue and for all
run q stats mail
check "stats: exit 0" test $? = 0
check "stats: the shape" grep -qE '^\{"queued":[0-9]+,"scheduled":[0-9]+,"running":[0-9]+,"done":[0-9]+,"dead":[0-9]+,"lag_s":[0-9.eE+-]+\}$' <<<"$out"
check "stats mail: 5 queued" test "$(num "$out" queued)" = 5
check "stats of all queues: the sum" test "$(num "$(q stats)" queued)" -ge $((5 + 302 + 1003))
check "stats of an unknown queue: zeros" test "$(q stats nosuch)" = '{"queued":0,"scheduled":0,"running":0,"done":0,"dead":0,"lag_s":0.0}'

# list: JSON lines as show prints them
run q list --queue mail
check "list --queue mail: 5 lines" test "$(wc -l <<<"$out")" = 5
check "list: the first is show's line" test "$(head -1 <<<"$out")" = "$(q show $ID)"
check "list --limit 2" test "$(q list --limit 2 | wc -l)" = 2
check "list --limit 0: nothing" test -z "$(q list --limit 0)"
check "list: all of them, over pages" test "$(q list | wc -l)" -ge 1310
L=$(q list --state scheduled)
check "list --state scheduled: the hour's job" grep -q '"type":"noop","payload":{},"state":"scheduled"' <<<"$L"
check "list --state scheduled: only scheduled ones" test "$(grep -c '"state":"scheduled"' <<<"$L")" = "$(wc -l <<<"$L")"

# ---- work: the built-in types -----------------------------------------------------
W=w
run q enqueue $W noop;                                   NOOP=$(num "$out" id)
run q enqueue $W sleep '{"ms":50}';                      SLEEP=$(num "$out" id)
run q enqueue $W append "{\"path\":\"$T/out\"}";         APPEND=$(num "$out" id)
run q enqueue $W fail '{"times":1}' --max-attempts 3;    FAIL=$(num "$out" id)
run q enqueue $W fail '{"times":9}' --max-attempts 2;    FAILS=$(num "$out" id)
run q enqueue $W bogus '{}';                             BOGUS=$(num "$out" id)
run q enqueue $W sleep '{"ms":"soon"}';                  BADMS=$(num "$out" id)
run q enqueue $W noop --key w-once;                      KEYED=$(num "$out" id)
"$WEFT" queue work $W -c 4 2>$T/work.err &
WPID=$!; started $WPID
settled() { local s; s=$(q stats $W); [ "$(num "$s" done) $(num "$s" dead)" = "5 3" ]; }
check "work: 5 done, 3 dead (the retry after a ~1 s backoff)" wait_for 15 settled
kill -TERM $WPID; reap $WPID; rc=$?
check "work: SIGTERM exits 0" test $rc = 0
check "work: no failure on stderr" bash -c "! grep -q 'weft queue work:' $T/work.err"
J=$(q show $NOOP);   check "noop: done, attempt 1" test "$(str "$J" state) $(num "$J" attempts)" = "done 1"
check "noop: finished_ms set" test "$(num "$J" finished_ms)" -gt 0
J=$(q show $SLEEP);  check "sleep: done" test "$(str "$J" state)" = done
check "append: the line \"ID 1\"" test "$(cat $T/out)" = "$APPEND 1"
J=$(q show $APPEND); check "append: done" test "$(str "$J" state)" = done
J=$(q show $FAIL);   check "fail {times:1}: done on attempt 2" test "$(str "$J" state) $(num "$J" attempts)" = "done 2"
J=$(q show $FAILS);  check "fail {times:9}, 2 attempts: dead" test "$(str "$J" state) $(num "$J" attempts)" = "dead 2"
check "fail: last_error is the handler's" grep -q '"last_error":"fail: attempt 2' <<<"$J"
J=$(q show $BOGUS);  check "unknown type: dead" test "$(str "$J" state)" = dead
check "unknown type: last_error names it" grep -q '"last_error":"[^"]*bogus' <<<"$J"
J=$(q show $BADMS);  check "sleep with a bad ms: dead at once" test "$(str "$J" state) $(num "$J" attempts)" = "dead 1"
check "sleep with a bad ms: says why" grep -q '"last_error":"sleep needs' <<<"$J"
check "list --state dead --queue w: 3" test "$(q list --state dead --queue $W | wc -l)" = 3

# a job enqueued without its own max-attempts takes the worker's
run q enqueue w1 fail '{"times":9}';                    WMAX=$(num "$out" id)
"$WEFT" queue work w1 --max-attempts 1 2>>$T/work.err &
WPID=$!; started $WPID
w1_dead() { [ "$(stat_of w1 dead)" = 1 ]; }
check "work --max-attempts 1: a job without its own is dead after one run" wait_for 15 w1_dead
kill -TERM $WPID; reap $WPID
J=$(q show $WMAX);  check "work --max-attempts 1: dead 1, max_attempts 1" test "$(str "$J" state) $(num "$J" attempts) $(num "$J" max_attempts)" = "dead 1 1"
q purge --queue w1 >/dev/null

# retry: a dead job back to queued; not a live one, not a missing one
run q retry $BOGUS
check "retry: exit 0" test $? = 0
check "retry: {\"id\":N,\"state\":\"queued\"}" test "$out" = "{\"id\":$BOGUS,\"state\":\"queued\"}"
J=$(q show $BOGUS);  check "retried: queued with fresh attempts" test "$(str "$J" state) $(num "$J" attempts)" = "queued 0"
st q retry $NOOP; check "retry of a done job: 1" test $rc = 1
check "retry of a done job: says so" grep -q "is not dead" <<<"$err"
st q retry 999999; check "retry of no job: 1" test $rc = 1

# graceful stop: a running job finishes, then exit 0
run q enqueue $W sleep '{"ms":1500}'; LONGJ=$(num "$out" id)
"$WEFT" queue work $W -c 4 2>>$T/work.err &
WPID=$!; started $WPID
long_running() { [ "$(str "$(q show $LONGJ)" state) $(str "$(q show $BOGUS)" state)" = "running dead" ]; }
check "a long job is running (and the retried one dead again)" wait_for 15 long_running
kill -INT $WPID; reap $WPID; rc=$?
check "work: SIGINT exits 0" test $rc = 0
check "the running job finished within the grace" test "$(str "$(q show $LONGJ)" state)" = done

# purge: counts, by state and queue
run q purge --queue $W --state dead
check "purge --state dead: exit 0" test $? = 0
check "purge --state dead: {\"purged\":3}" test "$out" = '{"purged":3}'
check "purge: dead gone" test "$(stat_of $W dead)" = 0
run q purge --queue $W
check "purge --queue w: {\"purged\":6} (the done)" test "$out" = '{"purged":6}'
run q enqueue $W noop --key w-once
check "a purged job's key is forgotten: a new job" test "$(num "$out" id)" != "$KEYED"
check "a purged job's key is forgotten: not a duplicate" grep -qE '^\{"id":[0-9]+,"duplicate":false\}$' <<<"$out"
check "purge --queue w: none done left" test "$(stat_of $W done)" = 0
check "purge left the other queues" test "$(stat_of mail queued)" = 5
st q show $NOOP; check "purged job: show fails" test $rc = 1
check "purge again: 0" test "$(q purge)" = '{"purged":0}'

# ---- URLs: --url wins over $WEFT_QUEUE_URL; failures exit 1 ----------------------
check "--url: another file" test "$(q --url sqlite:$T/other.db stats)" = '{"queued":0,"scheduled":0,"running":0,"done":0,"dead":0,"lag_s":0.0}'
check "--url: the file is made" test -e $T/other.db
st q stats --url sqlite:$T/other.db; check "--url after the command" test $rc = 0
st q --url sqlite:$T/none/q.db stats; check "no such directory: 1" test $rc = 1
check "no such directory: says why" grep -q "cannot open sqlite:$T/none/q.db" <<<"$err"
st q --url bogus://x stats; check "a bad URL: 2" test $rc = 2
echo "not a database, not at all: the file's header is wrong from the very first page" > $T/junk.db
st q --url sqlite:$T/junk.db stats; check "not a database: 1" test $rc = 1
case $BACKEND in                         # a server that is not there (port 1)
    redis) NOBODY=redis://weft:sekrit@127.0.0.1:1 ;;
    pg) NOBODY=postgresql://weft:sekrit@127.0.0.1:1/weft ;;
    *) NOBODY= ;;
esac
if [ -n "$NOBODY" ]; then
    st q --url $NOBODY stats; check "no server at $NOBODY: 1" test $rc = 1
    check "no server: says so" grep -q "127.0.0.1:1" <<<"$err"
    hidden() { ! grep -q sekrit <<<"$err"; }
    check "no server: the password is not shown" hidden
fi
(unset WEFT_QUEUE_URL; cd $T && "$WEFT" queue stats >/dev/null)
check "no URL at all: ./weft-queue.db" test -e $T/weft-queue.db

finish
