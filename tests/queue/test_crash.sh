#!/usr/bin/env bash
# The crash test: kill -9 of a worker mid-batch, CYCLES times, while a
# producer process keeps enqueuing `append` jobs; then one last worker
# drains the queue. Every id enqueue printed (durable) must appear in OUT
# (none lost), every job must be done (none dead), no run may repeat an
# attempt (a claim is durable before its job runs), and duplicate runs are
# bounded by what the kills could have cut short: the jobs running (-c)
# plus the acks not yet committed (256) at each kill.
#
#   test_crash.sh path/to/weft [CYCLES]     (default 20; CYCLES=100: the long variant)
#
# The random 50-300 ms a worker lives before its kill -9 is the test's
# input, not a synchronisation; every wait polls, with a bound.
set -uo pipefail
WEFT=$(realpath "${1:?usage: test_crash.sh path/to/weft [CYCLES]}")
CYCLES=${2:-20}
CONC=32
PER_ROUND=200                            # jobs per producer enqueue
T=$(mktemp -d /tmp/weft-queue-crash-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; done; rm -rf $T' EXIT
export WEFT_QUEUE_URL=sqlite:$T/q.db
OUT=$T/out
q() { "$WEFT" queue "$@"; }
num() { sed -nE "s/.*\"$2\":([0-9]+).*/\1/p" <<<"$1"; }
wait_for() {  # seconds, then a command polled every 0.05 s until it succeeds
    local n=$(($1 * 20)); shift
    for _ in $(seq $n); do "$@" && return 0; sleep 0.05; done; return 1
}
gone() { ! kill -0 $1 2>/dev/null; }
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }

# the schema exists before the producer and the first worker race to make it
q stats >/dev/null || { echo "cannot create the queue"; exit 1; }

# The producer: rounds of --count PER_ROUND until told to stop. A round's
# ids are printed once durable; a failed round is a failure of the test.
(
    while [ ! -e $T/stop ]; do
        q enqueue q append "{\"path\":\"$OUT\"}" --count $PER_ROUND --max-attempts 20 \
            >>$T/ids 2>>$T/producer.err || echo "round failed: $?" >>$T/producer.failed
    done
) &
PRODUCER=$!; PIDS+=($PRODUCER)
# the workers start once jobs are there (run directly, not through q: $! must be weft itself)
wait_for 10 test -s $T/ids || { echo "the producer enqueued nothing:"; cat $T/producer.err; exit 1; }

kills=0
for cycle in $(seq $CYCLES); do
    "$WEFT" queue work q -c $CONC --lease 1 2>>$T/worker.err &
    W=$!; PIDS+=($W)
    ms=$((50 + RANDOM % 251))
    sleep $((ms / 1000)).$(printf %03d $((ms % 1000)))
    kill -9 $W
    wait $W 2>/dev/null
    kills=$((kills + 1))
done
touch $T/stop
wait_for 30 gone $PRODUCER || { echo "the producer did not stop"; exit 1; }
wait $PRODUCER
ENQUEUED=$(grep -c '"duplicate":false' $T/ids)
BEFORE=$(sort -u -k1,1 $OUT 2>/dev/null | wc -l)
echo "# $kills kills; $ENQUEUED jobs enqueued, $BEFORE of them run before the last worker"

# the last worker drains the queue (the killed workers' leases expire in 1 s)
"$WEFT" queue work q -c $CONC --lease 1 2>>$T/worker.err &
W=$!; PIDS+=($W)
drained() { local s; s=$(q stats q); [ "$(num "$s" queued)+$(num "$s" scheduled)+$(num "$s" running)" = 0+0+0 ]; }
check "the last worker drains the queue" wait_for 60 drained
kill -TERM $W
check "the last worker stops on SIGTERM" wait_for 15 gone $W
wait $W; rc=$?
check "the last worker exits 0" test $rc = 0

S=$(q stats q)
echo "# stats: $S"
export LC_ALL=C                          # comm's order
sed -nE 's/^\{"id":([0-9]+),"duplicate":false\}$/\1/p' $T/ids | sort >$T/enqueued
cut -d' ' -f1 $OUT | sort >$T/runs
sort -u $T/runs >$T/ran
LOST=$(comm -23 $T/enqueued $T/ran | wc -l)
RUNS=$(wc -l <$T/runs)
DUPS=$((RUNS - $(wc -l <$T/ran)))
BOUND=$((kills * (CONC + 256)))
MAXATT=$(cut -d' ' -f2 $OUT | sort -n | tail -1)
echo "# $RUNS runs of $(wc -l <$T/ran) jobs: $LOST lost, $DUPS duplicate runs (at most $BOUND allowed), highest attempt $MAXATT"

check "the producer never failed" test ! -e $T/producer.failed
check "ids enqueued: each once" test "$(uniq -d $T/enqueued | wc -l)" = 0
check "none lost: every enqueued id ran" test $LOST = 0
check "no phantom: every id run was enqueued" test "$(comm -13 $T/enqueued $T/ran | wc -l)" = 0
check "every job done (done == enqueued)" test "$(num "$S" done)" = $ENQUEUED
check "none dead" test "$(num "$S" dead)" = 0
check "duplicates within what $kills kills could cut short ($DUPS <= $BOUND)" test $DUPS -le $BOUND
check "no attempt ran twice (a claim is durable before its run)" test "$(sort $OUT | uniq -d | wc -l)" = 0
if [ $fails -ne 0 ]; then
    echo "# the producer's stderr (last lines):"; tail -20 $T/producer.err
    echo "# the workers' stderr (last lines):"; tail -20 $T/worker.err
    echo "# ids lost (first 20):"; comm -23 $T/enqueued $T/ran | head -20
fi
echo "$fails failed"
[ $fails -eq 0 ]
