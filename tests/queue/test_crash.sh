#!/usr/bin/env bash
# The crash test: kill -9 of a worker mid-batch, CYCLES times, while a
# producer process keeps enqueuing `append` jobs; then one last worker
# drains the queue. Every id enqueue printed (durable) must have run (none
# lost), every job must be done (none dead), no run may repeat an attempt
# (a claim is durable before its job runs), only a killed worker's run may
# be followed by another run of its job, and duplicate runs are bounded by
# what the kills could have cut short: the jobs running (-c) plus the
# outcomes not yet written (256) at each kill (lib.sh's check_runs).
#
#   test_crash.sh path/to/weft [CYCLES] [BACKEND|URL]
#
# CYCLES: 20 by default, 100 in the long variant. BACKEND: sqlite (the
# default), redis or pg (the test servers, lib.sh's queue_setup), or a
# queue URL. The random 50-300 ms a worker lives before its kill -9 is the
# test's input, not a synchronisation; every wait polls, with a bound.
set -uo pipefail
WEFT=$(realpath "${1:?usage: test_crash.sh path/to/weft [CYCLES] [BACKEND|URL]}")
CYCLES=${2:-20}
CONC=32
PER_ROUND=200                            # jobs per producer enqueue
T=$(mktemp -d /tmp/weft-queue-crash-XXXXXX)
source "$(dirname "$(realpath "$0")")/lib.sh"
queue_setup "${3:-}"

# the schema exists before the producer and the first worker race to make it
q stats >/dev/null || { echo "cannot create the queue"; exit 1; }

producer_start 0 q
# the workers start once jobs are there
wait_for 10 test -s $T/ids.0 || { echo "the producer enqueued nothing:"; cat $T/producer.err; exit 1; }

for cycle in $(seq $CYCLES); do
    worker_start 0 q -c $CONC --lease 1
    sleep_random_ms 50 300
    worker_kill 0
done
producers_stop || exit 1

# the last worker drains the queue (the killed workers' leases expire in 1 s)
worker_start 0 q -c $CONC --lease 1
check "the last worker drains the queue" drain q
check "the last worker stops on SIGTERM and exits 0" worker_stop 0
check_runs q $CONC
finish
