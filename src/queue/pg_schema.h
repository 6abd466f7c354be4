/*
 * The PostgreSQL backend's schema: everything in schema weft_queue, applied
 * by the embedded migrations (weft_queue.migrations), never edited once
 * released: a change is a new version.
 *
 * Times are Unix ms by the server's clock (weft_queue.now_ms()), so that
 * workers on hosts whose clocks differ agree on leases and due times.
 * Rows are as in the SQLite backend: state 0 waiting (queued, or scheduled
 * while run_at is ahead), 2 running (leased until lease_until to the
 * holder of token), 3 done, 4 dead; a running row whose lease passed reads
 * as queued. Every change of state is one function call: one round trip,
 * one transaction.
 */
#ifndef WEFT_QUEUE_PG_SCHEMA_H
#define WEFT_QUEUE_PG_SCHEMA_H

#define PGQ_V1                                                                                    \
    "CREATE FUNCTION weft_queue.now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS\n"               \
    "$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;\n"                     \
    "CREATE TABLE weft_queue.jobs(\n"                                                             \
    "  id bigserial PRIMARY KEY,\n"                                                               \
    "  queue text NOT NULL, type text NOT NULL, payload text NOT NULL,\n"                         \
    "  state smallint NOT NULL DEFAULT 0, priority smallint NOT NULL DEFAULT 0,\n"                \
    "  run_at bigint NOT NULL,\n"                                                                 \
    "  attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL,\n"                     \
    "  lease_until bigint, token bigint,\n"                                                       \
    "  created bigint NOT NULL, finished bigint,\n"                                               \
    "  ikey text, result text, last_error text);\n"                                               \
    /* a seek per priority, however many jobs wait for later */                                  \
    "CREATE INDEX jobs_due ON weft_queue.jobs(queue, priority, run_at, id) WHERE state = 0;\n"    \
    "CREATE INDEX jobs_leased ON weft_queue.jobs(queue, lease_until) WHERE state = 2;\n"          \
    "CREATE UNIQUE INDEX jobs_key ON weft_queue.jobs(queue, ikey) WHERE ikey IS NOT NULL;\n"      \
    "CREATE SEQUENCE weft_queue.tokens;\n"                                                        \
    /* jobs: [{queue, type, payload, priority, delay, run_at, max_attempts, key}];              \
     * a known key is looked up first (an insert that conflicts would use up                     \
     * an id); one notification per queue wakes idle workers */                                  \
    "CREATE FUNCTION weft_queue.enqueue(jobs jsonb, OUT out_id bigint, OUT out_dup boolean)\n"    \
    "RETURNS SETOF record LANGUAGE plpgsql AS $$\n"                                               \
    "DECLARE\n"                                                                                   \
    "  j record; t bigint := weft_queue.now_ms(); queues text[] := '{}';\n"                       \
    "  ids bigint[]; dups boolean[]; jid bigint; jdup boolean;\n"                                   \
    "BEGIN\n"                                                                                     \
    /* keys in (queue, key) order: two hosts enqueueing the same keys take                       \
     * their index entries in one order, never a deadlock */                                     \
    "  FOR j IN SELECT x.*, e.ord FROM jsonb_array_elements(jobs) WITH ORDINALITY AS e(v, ord),\n" \
    "      jsonb_to_record(e.v) AS x(queue text, type text, payload text, priority integer,\n"   \
    "      delay bigint, run_at bigint, max_attempts integer, key text)\n"                       \
    "      ORDER BY x.key IS NULL, x.queue, x.key, e.ord LOOP\n"                                 \
    "    jid := NULL;\n"                                                                          \
    "    IF j.key IS NOT NULL THEN\n"                                                            \
    "      SELECT x.id INTO jid FROM weft_queue.jobs x WHERE x.queue = j.queue AND x.ikey = j.key;\n" \
    "    END IF;\n"                                                                              \
    "    jdup := jid IS NOT NULL;\n"                                                               \
    "    IF jid IS NULL THEN\n"                                                                   \
    "      INSERT INTO weft_queue.jobs AS x(queue, type, payload, priority, run_at,\n"           \
    "          max_attempts, created, ikey)\n"                                                   \
    "        VALUES (j.queue, j.type, j.payload, j.priority, greatest(t + j.delay, j.run_at),\n" \
    "          j.max_attempts, t, j.key)\n"                                                      \
    "        ON CONFLICT (queue, ikey) WHERE ikey IS NOT NULL DO NOTHING\n"                      \
    "        RETURNING x.id INTO jid;\n"                                                          \
    "      IF jid IS NULL THEN\n" /* another enqueue of the key committed meanwhile */            \
    "        SELECT x.id INTO jid FROM weft_queue.jobs x WHERE x.queue = j.queue AND x.ikey = j.key;\n" \
    "        jdup := true;\n"                                                                     \
    "      ELSIF NOT j.queue = ANY(queues) THEN\n"                                               \
    "        queues := queues || j.queue;\n"                                                     \
    "      END IF;\n"                                                                            \
    "    END IF;\n"                                                                              \
    "    ids[j.ord::integer] := jid;\n"                                                                    \
    "    dups[j.ord::integer] := jdup;\n"                                                                  \
    "  END LOOP;\n"                                                                              \
    "  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP\n"                                   \
    "    out_id := ids[i];\n"                                                                    \
    "    out_dup := dups[i];\n"                                                                  \
    "    RETURN NEXT;\n"                                                                         \
    "  END LOOP;\n"                                                                              \
    "  PERFORM pg_notify('weft_queue', q) FROM unnest(queues) AS q;\n"                           \
    "END $$;\n"                                                                                  \
    /* outcomes: [{id, token, kind (0 done, 1 retry, 2 dead, 3 release),                         \
     * delay (a retry's), text}]; then leases that expired are taken back                          \
     * (due again, or dead with their attempts spent), then up to lim due                          \
     * jobs leased for lease_ms, priority 9 to 0; a last row (id 0) says                           \
     * when a job may next be due when fewer than lim were found */                               \
    "CREATE FUNCTION weft_queue.claim(q text, outcomes jsonb, lim bigint, lease_ms bigint,\n"     \
    "    def_max bigint)\n"                                                                       \
    "RETURNS TABLE(out_id bigint, out_token bigint, out_type text, out_payload text,\n"           \
    "    out_attempt integer, out_max integer, out_due bigint, out_priority smallint,\n"         \
    "    out_now bigint)\n"                                                                      \
    "LANGUAGE plpgsql AS $$\n"                                                                    \
    "DECLARE\n"                                                                                   \
    "  t bigint := weft_queue.now_ms(); got bigint := 0; n bigint; pr integer; nxt bigint;\n"      \
    "BEGIN\n"                                                                                     \
    "  IF outcomes IS NOT NULL THEN\n"                                                            \
    "    UPDATE weft_queue.jobs j SET\n"                                                          \
    "      state = CASE o.kind WHEN 0 THEN 3 WHEN 2 THEN 4 ELSE 0 END,\n"                         \
    "      finished = CASE WHEN o.kind IN (0, 2) THEN t ELSE j.finished END,\n"                   \
    "      result = CASE WHEN o.kind = 0 THEN o.text ELSE j.result END,\n"                        \
    "      last_error = CASE WHEN o.kind IN (1, 2) THEN o.text ELSE j.last_error END,\n"          \
    "      run_at = CASE WHEN o.kind = 1 THEN t + o.delay ELSE j.run_at END,\n"                   \
    "      attempts = CASE WHEN o.kind = 3 THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,\n" \
    "      lease_until = NULL, token = NULL\n"                                                    \
    "    FROM jsonb_to_recordset(outcomes) AS o(id bigint, token bigint, kind integer,\n"         \
    "      delay bigint, text text)\n"                                                            \
    "    WHERE j.id = o.id AND j.token = o.token AND j.state = 2;\n"                              \
    "  END IF;\n"                                                                                 \
    "  IF lim <= 0 THEN RETURN; END IF;\n"                                                        \
    "  UPDATE weft_queue.jobs j SET\n"                                                            \
    "    state = CASE WHEN j.attempts < j.max_attempts THEN 0 ELSE 4 END,\n"                      \
    "    finished = CASE WHEN j.attempts < j.max_attempts THEN NULL ELSE t END,\n"                \
    "    last_error = CASE WHEN j.attempts < j.max_attempts THEN j.last_error ELSE\n"             \
    "      format('lease expired on attempt %s of %s: the worker died or stopped'\n"              \
    "             ' heartbeating', j.attempts, j.max_attempts) END,\n"                            \
    "    lease_until = NULL, token = NULL\n"                                                      \
    "  WHERE j.id IN (SELECT x.id FROM weft_queue.jobs x WHERE x.queue = q AND x.state = 2\n"     \
    "                 AND x.lease_until <= t LIMIT 256 FOR UPDATE SKIP LOCKED);\n"                \
    "  FOR pr IN REVERSE 9..0 LOOP\n"                                                              \
    "    EXIT WHEN got >= lim;\n"                                                                 \
    "    RETURN QUERY WITH c AS (SELECT x.id FROM weft_queue.jobs x WHERE x.queue = q\n"          \
    "        AND x.state = 0 AND x.priority = pr AND x.run_at <= t ORDER BY x.run_at, x.id\n"      \
    "        LIMIT lim - got FOR UPDATE SKIP LOCKED),\n"                                          \
    "      u AS (UPDATE weft_queue.jobs j SET state = 2, attempts = j.attempts + 1,\n"            \
    "        lease_until = t + lease_ms, token = nextval('weft_queue.tokens'),\n"                 \
    "        max_attempts = CASE WHEN j.max_attempts > 0 THEN j.max_attempts ELSE def_max END\n"  \
    "      FROM c WHERE j.id = c.id\n"                                                            \
    "      RETURNING j.id, j.token, j.type, j.payload, j.attempts, j.max_attempts, j.run_at,\n"   \
    "        j.priority)\n"                                                                       \
    "      SELECT u.*, t FROM u ORDER BY u.run_at, u.id;\n"                                       \
    "    GET DIAGNOSTICS n = ROW_COUNT;\n"                                                        \
    "    got := got + n;\n"                                                                       \
    "  END LOOP;\n"                                                                               \
    "  IF got < lim THEN\n"                                                                       \
    "    SELECT least((SELECT min(s.run_at) FROM generate_series(0, 9) AS g(p),\n"                \
    "                   LATERAL (SELECT x.run_at FROM weft_queue.jobs x WHERE x.queue = q\n"      \
    "                     AND x.state = 0 AND x.priority = g.p ORDER BY x.run_at LIMIT 1) s),\n"  \
    "                  (SELECT min(x.lease_until) FROM weft_queue.jobs x WHERE x.queue = q\n"     \
    "                     AND x.state = 2)) INTO nxt;\n"                                          \
    "    RETURN QUERY SELECT 0::bigint, 0::bigint, NULL::text, NULL::text, 0, 0,\n"               \
    "      coalesce(nxt, 9223372036854775807), 0::smallint, t;\n"                                 \
    "  END IF;\n"                                                                                 \
    "END $$;\n"                                                                                   \
    /* dead -> queued: 1; 0 when not dead, -1 when there is no such job */                       \
    "CREATE FUNCTION weft_queue.revive(job bigint) RETURNS integer LANGUAGE plpgsql AS $$\n"      \
    "DECLARE qn text;\n"                                                                          \
    "BEGIN\n"                                                                                     \
    "  UPDATE weft_queue.jobs SET state = 0, attempts = 0, run_at = weft_queue.now_ms(),\n"       \
    "      finished = NULL WHERE id = job AND state = 4 RETURNING queue INTO qn;\n"               \
    "  IF qn IS NOT NULL THEN\n"                                                                  \
    "    PERFORM pg_notify('weft_queue', qn);\n"                                                  \
    "    RETURN 1;\n"                                                                             \
    "  END IF;\n"                                                                                 \
    "  RETURN CASE WHEN EXISTS (SELECT 1 FROM weft_queue.jobs WHERE id = job) THEN 0 ELSE -1 END;\n" \
    "END $$;\n"

#endif
