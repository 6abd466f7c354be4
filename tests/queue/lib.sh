# Shared by the queue's shell tests (test_cli.sh, test_crash.sh,
# test_hosts.sh), sourced after they set WEFT (the weft binary) and T (their
# temp directory). Nothing here sleeps to synchronise: every wait polls for
# what it waits for, with a bound.
#
#   queue_setup [BACKEND|URL]   the queue under test: sqlite (a file in $T),
#                               redis or pg (the test servers: the URL from
#                               $WEFT_TEST_<SVC>_URL, else $WEFT_TEST_<SVC>_DIR/url,
#                               as tests/services.h reads them), or a URL;
#                               empty: $WEFT_TEST_QUEUE_BACKEND, else sqlite.
#                               Sets BACKEND and WEFT_QUEUE_URL, and wipes the
#                               queue's state on a server (FLUSHDB; DROP SCHEMA
#                               weft_queue), so the test starts from nothing.

fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }
finish() { echo "$fails failed"; [ $fails -eq 0 ]; }
# wait_for SECONDS COMMAND...: runs the command every 0.05 s until it succeeds
wait_for() {
    local n=$(($1 * 20)); shift
    for _ in $(seq $n); do "$@" && return 0; sleep 0.05; done; return 1
}
q() { "$WEFT" queue "$@"; }
# a number or a string field of one line of compact JSON
num() { sed -nE "s/.*\"$2\":(-?[0-9][0-9.eE+-]*).*/\1/p" <<<"$1"; }
str() { sed -nE "s/.*\"$2\":\"([^\"]*)\".*/\1/p" <<<"$1"; }
gone() { ! kill -0 $1 2>/dev/null; }
# sleeps a random LO..HI ms: the kills' timing is a test's input, not a synchronisation
sleep_random_ms() { local ms=$(($1 + RANDOM % ($2 - $1 + 1))); sleep $((ms / 1000)).$(printf %03d $((ms % 1000))); }

# ---- processes: what is started is killed on exit, and only that ----------------
# A pid is tracked from its start until it is reaped, so the exit trap never
# signals a pid the system may have given to another process since.
declare -A LIVE=()
started() { LIVE[$1]=1; }
reaped() { wait $1 2>/dev/null; local rc=$?; unset "LIVE[$1]"; return $rc; }
cleanup() {
    for p in "${!LIVE[@]}"; do kill -9 $(pgrep -P $p) $p 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

# ---- the backend -------------------------------------------------------------------
server_url() {  # redis|pg: the test server's URL
    local svc=${1^^} u d
    u=WEFT_TEST_${svc}_URL; d=WEFT_TEST_${svc}_DIR
    if [ -n "${!u:-}" ]; then echo "${!u}"; return; fi
    cat "${!d:-services/$1}/url" 2>/dev/null || { echo "no $1 server: scripts/services start $1 DIR and set WEFT_TEST_${svc}_DIR" >&2; return 1; }
}
queue_setup() {
    local arg=${1:-${WEFT_TEST_QUEUE_BACKEND:-sqlite}}
    case $arg in
        sqlite) BACKEND=sqlite; WEFT_QUEUE_URL=sqlite:$T/q.db ;;
        redis|pg) BACKEND=$arg; WEFT_QUEUE_URL=$(server_url $arg) || exit 1 ;;
        sqlite:*) BACKEND=sqlite; WEFT_QUEUE_URL=$arg ;;
        redis://*|rediss://*) BACKEND=redis; WEFT_QUEUE_URL=$arg ;;
        postgres://*|postgresql://*) BACKEND=pg; WEFT_QUEUE_URL=$arg ;;
        *) echo "queue_setup: '$arg' is not sqlite, redis, pg or a queue URL" >&2; exit 2 ;;
    esac
    export WEFT_QUEUE_URL
    echo "# backend $BACKEND: $WEFT_QUEUE_URL"
    queue_wipe || { echo "cannot wipe the queue at $WEFT_QUEUE_URL"; exit 1; }
}
psql_q() { PGOPTIONS='-c client_min_messages=warning' psql "$WEFT_QUEUE_URL" -qtAX "$@"; }
queue_wipe() {
    case $BACKEND in
        sqlite) rm -f "${WEFT_QUEUE_URL#sqlite:}" "${WEFT_QUEUE_URL#sqlite:}"-wal "${WEFT_QUEUE_URL#sqlite:}"-shm ;;
        redis) redis-cli -u "$WEFT_QUEUE_URL" FLUSHDB >/dev/null ;;
        pg) psql_q -c 'DROP SCHEMA IF EXISTS weft_queue CASCADE' ;;
    esac
}
# true while nothing of the queue exists: no file, no "weft:" key, no schema weft_queue
queue_untouched() {
    case $BACKEND in
        sqlite) test ! -e "${WEFT_QUEUE_URL#sqlite:}" ;;
        redis) [ -z "$(redis-cli -u "$WEFT_QUEUE_URL" --scan --pattern 'weft:*' | head -1)" ] ;;
        pg) [ "$(psql_q -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'weft_queue'")" = 0 ] ;;
    esac
}

# ---- crash tests: workers in slots, killed and restarted ---------------------------
# Each worker process (an incarnation) runs in a directory of its own,
# $T/w/N, where the `append` jobs' relative path "out" lands: a run is
# known by the worker that made it, and a killed worker's directory holds
# the file "killed". Producers append to $T/ids.*.
#   worker_start SLOT QUEUE [ARGS...]   starts one in the slot (WPID[SLOT])
#   worker_kill SLOT                    kill -9, reaped; KILLS counts them
#   worker_stop SLOT                    SIGTERM; true if it exited 0 (bounded)
declare -a WPID=() WDIR=()
NEXT_W=0
KILLS=0
PURGED=0                                 # done jobs a test purged on the way
worker_start() {
    local slot=$1 queue=$2; shift 2
    local dir=$T/w/$NEXT_W; NEXT_W=$((NEXT_W + 1))
    mkdir -p $dir
    (cd $dir && exec "$WEFT" queue work $queue "$@" 2>>$T/worker.err) &
    WPID[$slot]=$!; WDIR[$slot]=$dir; started $!
}
worker_kill() {
    kill -9 ${WPID[$1]}
    reaped ${WPID[$1]}
    touch ${WDIR[$1]}/killed
    KILLS=$((KILLS + 1))
}
worker_stop() {
    local p=${WPID[$1]}
    kill -TERM $p
    wait_for 15 gone $p || { echo "# worker $p did not stop on SIGTERM"; return 1; }
    reaped $p
}
# drain QUEUE: waits until no job of QUEUE is queued, scheduled or
# running; fails once 60 s pass without one fewer (a backlog of any size
# drains, a stuck queue does not hold the test for ever)
drain() {
    local s left best= since=$SECONDS
    while :; do
        s=$(q stats $1) || return 1
        left=$(($(num "$s" queued) + $(num "$s" scheduled) + $(num "$s" running)))
        [ $left = 0 ] && return 0
        if [ -z "$best" ] || [ $left -lt $best ]; then best=$left; since=$SECONDS; fi
        [ $((SECONDS - since)) -ge 60 ] && { echo "# $left jobs left, none out in 60 s: $s"; return 1; }
        sleep 0.2
    done
}

# check_runs QUEUE CONC: what the runs of the `append` jobs say, once the
# queue is drained. Every id a producer printed (durable) ran (none lost)
# and no other id did; every job is done, none dead; no attempt ran twice
# (a claim is durable before its run); only a killed worker's run was
# followed by another run of its job (a duplicate is a job running at a
# kill, or one whose ack the kill cut off); and duplicates are bounded by
# what the kills could cut short: the jobs running (CONC) plus the
# outcomes not yet written (256, src/queue/worker.c) at each kill.
check_runs() {
    local queue=$1 conc=$2 d
    export LC_ALL=C                      # comm's and sort's order
    cat $T/ids.* | sed -nE 's/^\{"id":([0-9]+),"duplicate":false\}$/\1/p' | sort >$T/enqueued
    for d in $T/w/*/; do                 # "ID ATTEMPT KILLED" per run
        [ -e $d/out ] && sed "s/\$/ $([ -e $d/killed ] && echo 1 || echo 0)/" $d/out
    done >$T/runs
    cut -d' ' -f1 $T/runs | sort >$T/ids_run
    sort -u $T/ids_run >$T/ran
    local S enq lost runs dups bound maxatt early
    S=$(q stats $queue)
    enq=$(wc -l <$T/enqueued)
    lost=$(comm -23 $T/enqueued $T/ran | wc -l)
    runs=$(wc -l <$T/runs)
    dups=$((runs - $(wc -l <$T/ran)))
    bound=$((KILLS * (conc + 256)))
    maxatt=$(cut -d' ' -f2 $T/runs | sort -n | tail -1)
    # runs of a job before its last attempt made by a worker that was not killed
    early=$(awk '{ if ($2 > max[$1]) max[$1] = $2; run[NR] = $0 }
                 END { for (i = 1; i <= NR; i++) { split(run[i], f, " ");
                       if (f[2] < max[f[1]] && f[3] == 0) print run[i] } }' $T/runs)
    echo "# stats: $S"
    echo "# $KILLS kills; $enq enqueued; $runs runs of $(wc -l <$T/ran) jobs: $lost lost, $dups duplicate runs (at most $bound allowed), highest attempt ${maxatt:-none}"
    check "no producer failed" test ! -e $T/producer.failed
    check "jobs were enqueued" test $enq -gt 0
    check "ids enqueued: each once" test "$(uniq -d $T/enqueued | wc -l)" = 0
    check "none lost: every enqueued id ran" test $lost = 0
    check "no phantom: every id run was enqueued" test "$(comm -13 $T/enqueued $T/ran | wc -l)" = 0
    check "every job done (done + $PURGED purged == enqueued)" test $(($(num "$S" done) + PURGED)) = $enq
    check "none dead" test "$(num "$S" dead)" = 0
    check "no attempt ran twice (a claim is durable before its run)" test "$(cut -d' ' -f1,2 $T/runs | sort | uniq -d | wc -l)" = 0
    check "a job ran again only after a killed worker's run" test -z "$early"
    check "duplicates within what $KILLS kills could cut short ($dups <= $bound)" test $dups -le $bound
    if [ $fails -ne 0 ]; then
        echo "# the producers' stderr (last lines):"; tail -20 $T/producer.err 2>/dev/null
        echo "# the workers' stderr (last lines):"; tail -20 $T/worker.err 2>/dev/null
        echo "# ids lost (first 20):"; comm -23 $T/enqueued $T/ran | head -20
        echo "# runs followed by another though their worker was not killed (first 20):"
        head -20 <<<"$early"
    fi
}
# producer_start N QUEUE: rounds of PER_ROUND `append` jobs until $T/stop
# exists; a round's ids are printed once durable into $T/ids.N; a failed
# round is a failure of the test ($T/producer.failed)
producer_start() {
    (
        while [ ! -e $T/stop ]; do
            q enqueue $2 append '{"path":"out"}' --count $PER_ROUND --max-attempts 20 \
                >>$T/ids.$1 2>>$T/producer.err || echo "round failed: $?" >>$T/producer.failed
        done
    ) &
    PPID_[$1]=$!; started $!
}
declare -a PPID_=()
# touches $T/stop and waits (bounded) for every producer to end its round
producers_stop() {
    local p
    touch $T/stop
    for p in "${PPID_[@]}"; do
        wait_for 60 gone $p || { echo "# a producer did not stop"; return 1; }
        reaped $p
    done
}
