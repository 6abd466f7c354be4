#!/usr/bin/env bash
# weft's durable queue (SQLite, synchronous=FULL) beside its anchors
# (../shared/bench/anchors/queue: Celery 5 with the Redis broker and
# acks_late, RQ, raw Redis Streams; Redis with AOF everysec) in one run.
# No-op jobs end to end, producer and worker as separate processes as the
# anchors run them: producer on CPU 0, worker on CPU 1.
#
#   bench/queue.sh [build-dir]     RUNS (3), N weft jobs (100000),
#                                  ANCHOR_N anchor jobs (5000; the anchors'
#                                  own default is 20000, ~17 min)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/queue
RUNS=${RUNS:-3}; N=${N:-100000}; ANCHOR_N=${ANCHOR_N:-5000}
OUT=$BUILD/bench/queue.jsonl; mkdir -p "$BUILD/bench"; : > "$OUT"
W=$(mktemp -d /var/tmp/weft-bench-queue.XXXXXX)   # on disk: fsync is real
trap 'rm -rf "$W"' EXIT

# weft: 64 producer tasks with one durable enqueue per call, and one task
# enqueueing batches of 100; the worker runs 256 jobs at once
for i in $(seq "$RUNS"); do
  for mode in "64 1" "1 100"; do
    rm -f "$W"/q.db*
    set -- $mode
    WORKER_CPUS=1 taskset -c 0 "$BUILD/bench/queue_jobs" "sqlite:$W/q.db" "$N" "$1" "$2" 256 |
      sed "s/^{/{\"system\": \"weft sqlite\", \"run\": $i, /" >> "$OUT"
    tail -1 "$OUT"
  done
done

# the anchors, with Redis AOF (appendfsync everysec): their results.jsonl
if /usr/bin/python3 -c 'import celery, rq' 2>/dev/null && command -v redis-server >/dev/null; then
  (cd "$ANCH" && MODES=aof RUNS=$RUNS N=$ANCHOR_N NFORK=200 bash run.sh >/dev/null 2>&1) ||
    echo "bench: the queue anchors failed (see /tmp/anchor-queue)" >&2
  [ -f /tmp/anchor-queue/results.jsonl ] && grep '"e2e_rate"' /tmp/anchor-queue/results.jsonl >> "$OUT"
else
  echo "bench: python3-celery, python3-rq or redis-server missing: weft alone" >&2
fi

/usr/bin/python3 - "$OUT" <<'PY' | tee "$BUILD/bench/queue.md"
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    name = d["system"] if "tasks" not in d else \
        f'weft sqlite ({d["tasks"]} tasks x {"1 job" if d["batch"] == 1 else str(d["batch"]) + " jobs"} per call)'
    rows.setdefault(name, []).append(d)
med = {k: statistics.median(r["e2e_rate"] for r in v) for k, v in rows.items()}
base = med.get("celery-solo")
print("| system | end-to-end jobs/s (median) | runs | worker CPU µs/job | vs Celery solo |")
print("|---|---:|---|---:|---:|")
for k, v in rows.items():
    w = statistics.median(r["worker_us_job"] for r in v)
    ratio = f"{med[k] / base:.1f}x" if base else "-"
    print(f"| {k} | {med[k]:,.0f} | " + ", ".join(f'{r["e2e_rate"]:,.0f}' for r in v) +
          f" | {w:.1f} | {ratio} |")
PY
