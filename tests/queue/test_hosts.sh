#!/usr/bin/env bash
# Many hosts, simulated: 4 worker processes (as if on 4 hosts) and 2
# producer processes share one queue. For DURATION seconds, every 100-600
# ms a worker picked at random is killed with kill -9 and a new one starts
# in its place, while the producers keep enqueuing `append` jobs (and done
# jobs are purged every 2 s). Then the producers stop, the 4 workers drain
# the queue and stop on SIGTERM, and lib.sh's check_runs checks every job:
# done, none lost, none dead, no attempt run twice, a job run again only
# after a killed worker's run, and duplicates within what the kills could
# cut short.
#
#   test_hosts.sh path/to/weft [DURATION] [BACKEND|URL]
#
# DURATION: seconds of kills, 20 by default (the long variant: 180).
# BACKEND: sqlite (the default: the processes share one file), redis or pg
# (the test servers, lib.sh's queue_setup), or a queue URL. The random
# pauses between kills are the test's input, not a synchronisation; every
# wait polls, with a bound.
set -uo pipefail
WEFT=$(realpath "${1:?usage: test_hosts.sh path/to/weft [DURATION] [BACKEND|URL]}")
DURATION=${2:-20}
WORKERS=4
PRODUCERS=2
CONC=16
LEASE=2                                  # s: a killed worker's jobs run again after it
PER_ROUND=200                            # jobs per producer enqueue
T=$(mktemp -d /tmp/weft-queue-hosts-XXXXXX)
source "$(dirname "$(realpath "$0")")/lib.sh"
queue_setup "${3:-}"

# the schema exists before the processes race to make it
q stats >/dev/null || { echo "cannot create the queue"; exit 1; }

for n in $(seq 0 $((PRODUCERS - 1))); do producer_start $n q; done
for slot in $(seq 0 $((WORKERS - 1))); do worker_start $slot q -c $CONC --lease $LEASE; done

# done jobs are purged every 2 s on the way, as an operator would: the
# server's memory and the file stay small in the long variant (their runs
# are checked all the same, and purged + done must make the enqueued)
purge_done() {
    local out
    out=$(q purge --state done --queue q) || { echo "purge: $?" >>$T/purge.failed; return; }
    PURGED=$((PURGED + $(num "$out" purged)))
}
end=$((SECONDS + DURATION))
next_purge=$((SECONDS + 2))
while [ $SECONDS -lt $end ]; do
    sleep_random_ms 100 600
    slot=$((RANDOM % WORKERS))
    worker_kill $slot
    worker_start $slot q -c $CONC --lease $LEASE
    if [ $SECONDS -ge $next_purge ]; then purge_done; next_purge=$((SECONDS + 2)); fi
done
producers_stop || exit 1

check "the $WORKERS workers drain the queue" drain q
for slot in $(seq 0 $((WORKERS - 1))); do
    check "worker $slot stops on SIGTERM and exits 0" worker_stop $slot
done
check "every purge on the way succeeded" test ! -e $T/purge.failed
echo "# $NEXT_W worker processes, $(ls $T/w/*/out 2>/dev/null | wc -l) of them ran jobs"
check_runs q $CONC
finish
