#!/usr/bin/env bash
# weft's durable queue on its three backends beside its anchors
# (../shared/bench/anchors/queue: Celery 5 with the Redis broker and
# acks_late, RQ, raw Redis Streams; Redis with AOF everysec) in one run.
# No-op jobs end to end, producer and worker as separate processes as the
# anchors run them: producer (and the server) on CPU 0, worker on CPU 1.
# Backends: SQLite (synchronous=FULL), PostgreSQL 15 (fsync on,
# synchronous_commit on) and Redis 7 (appendonly, appendfsync everysec),
# the servers from scripts/services. Then the curve: 1, 2 and 4 worker
# processes (as if on 4 hosts) on the server backends.
#
#   bench/queue.sh [build-dir]     RUNS (3), N weft jobs (100000),
#                                  ANCHOR_N anchor jobs (5000; the anchors'
#                                  own default is 20000, ~17 min),
#                                  BACKENDS ("sqlite postgres redis")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ANCH=$ROOT/../shared/bench/anchors/queue
RUNS=${RUNS:-3}; N=${N:-100000}; ANCHOR_N=${ANCHOR_N:-5000}
OUT=$BUILD/bench/queue.jsonl; mkdir -p "$BUILD/bench"; : > "$OUT"
W=$(mktemp -d /var/tmp/weft-bench-queue.XXXXXX)   # on disk: fsync is real
chmod 755 "$W"                                     # PostgreSQL runs as postgres

SVC=$ROOT/scripts/services
BACKENDS=${BACKENDS:-"sqlite postgres redis"}
stop_servers() { "$SVC" stop pg "$W/pg" >/dev/null 2>&1 || true; "$SVC" stop redis "$W/redis" >/dev/null 2>&1 || true; }
trap 'stop_servers; rm -rf "$W"' EXIT

# the backend's URL, its state emptied, the server pinned to CPU 0
url_of() {
  case $1 in
    sqlite) rm -f "$W"/q.db*; echo "sqlite:$W/q.db" ;;
    postgres)
      local u; u=$("$SVC" start pg "$W/pg" | tail -1)
      taskset -a -cp 0 "$(head -1 "$W/pg/data/postmaster.pid")" >/dev/null
      psql -q "$u" -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS weft_queue CASCADE" >&2
      psql -q "$u" -c "CHECKPOINT" >&2 2>/dev/null || true
      echo "$u" ;;
    redis)
      local u; u=$("$SVC" start redis "$W/redis" --aof | tail -1)
      taskset -a -cp 0 "$(cat "$W/redis/redis.pid")" >/dev/null
      redis-cli -u "$u" flushall >/dev/null
      echo "$u" ;;
  esac
}

# weft: 64 producer tasks with one durable enqueue per call, and one task
# enqueueing batches of 100; the worker runs 256 jobs at once
for i in $(seq "$RUNS"); do
  for b in $BACKENDS; do
    for mode in "64 1" "1 100"; do
      set -- $mode
      u=$(url_of "$b")
      WORKER_CPUS=1 taskset -c 0 "$BUILD/bench/queue_jobs" "$u" "$N" "$1" "$2" 256 |
        sed "s/^{/{\"system\": \"weft $b\", \"backend\": \"$b\", \"run\": $i, /" >> "$OUT"
      tail -1 "$OUT"
    done
  done
done
# the curve: more worker processes on one server (CPU 1 shared by them)
for b in $BACKENDS; do
  [ "$b" = sqlite ] && continue
  for w in 1 2 4; do
    u=$(url_of "$b")
    WORKERS=$w WORKER_CPUS=1 taskset -c 0 "$BUILD/bench/queue_jobs" "$u" "$N" 64 1 256 |
      sed "s/^{/{\"system\": \"curve $b\", \"backend\": \"$b\", \"run\": 1, /" >> "$OUT"
    tail -1 "$OUT"
  done
done
stop_servers

# the anchors, with Redis AOF (appendfsync everysec): their results.jsonl
if [ "${ANCHORS:-1}" = 1 ] && /usr/bin/python3 -c 'import celery, rq' 2>/dev/null && command -v redis-server >/dev/null; then
  (cd "$ANCH" && MODES=aof RUNS=$RUNS N=$ANCHOR_N NFORK=200 bash run.sh >/dev/null 2>&1) ||
    echo "bench: the queue anchors failed (see /tmp/anchor-queue)" >&2
  [ -f /tmp/anchor-queue/results.jsonl ] && grep '"e2e_rate"' /tmp/anchor-queue/results.jsonl >> "$OUT"
elif [ "${ANCHORS:-1}" = 1 ]; then
  echo "bench: python3-celery, python3-rq or redis-server missing: weft alone" >&2
fi

/usr/bin/python3 - "$OUT" <<'PY' | tee "$BUILD/bench/queue.md"
import json, statistics, sys
rows, curve = {}, {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["system"].startswith("curve"):
        curve.setdefault(d["backend"], []).append(d)
        continue
    name = d["system"] if "tasks" not in d else \
        f'{d["system"]} ({d["tasks"]} tasks x {"1 job" if d["batch"] == 1 else str(d["batch"]) + " jobs"} per call)'
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
if curve:
    print()
    print("| backend | 1 worker process | 2 | 4 | (jobs/s end to end; worker CPU µs/job) |")
    print("|---|---:|---:|---:|---|")
    for b, v in curve.items():
        v.sort(key=lambda r: r["workers"])
        print(f"| {b} | " + " | ".join(f'{r["e2e_rate"]:,.0f} ({r["worker_us_job"]:.1f})' for r in v) + " | |")
PY
