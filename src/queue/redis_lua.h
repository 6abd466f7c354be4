/*
 * The Redis backend's Lua scripts (included by redis.c only). Every state
 * change is one script: atomic on the server and one round trip. Each
 * script is the prelude (helpers) plus its body; redis.c loads them at open
 * (SCRIPT LOAD) and runs them by SHA (EVALSHA, EVAL after a NOSCRIPT).
 *
 * Keys (every one starts with "weft:"; <q> is the queue's name):
 *   weft:seq              INCRBY: job ids, one counter (weft_queue_get takes an id alone)
 *   weft:queues           SET of queue names (stats, list and purge of all queues)
 *   weft:job:<id>         HASH: queue type payload prio state run_at attempts max created
 *                         [key finished result error tok lease]
 *   weft:q:<q>:p<0..9>    STREAM per priority of due jobs (field j = id), consumer group w
 *   weft:q:<q>:f<0..9>    ZSET per priority of due jobs that ran before (released,
 *                         lease expired) by run_at, each id zero-padded to 19
 *                         digits (ties in id order): a claim takes these before
 *                         its stream, as SQLite's run_at order would (they were
 *                         due before what the stream holds now)
 *   weft:q:<q>:delayed    ZSET id by run_at: jobs not yet due
 *   weft:q:<q>:leased     ZSET "id:tok" by lease end: running jobs, each with
 *                         its lease's token (an ack checks many in one ZMSCORE)
 *   weft:q:<q>:done, :dead  ZSET id by id: finished jobs, until purged
 *   weft:q:<q>:all        ZSET id by id: every job of the queue until purged (list)
 *   weft:q:<q>:keys       HASH idempotency key -> id (HSETNX semantics; a hash
 *                         so a key with ':' in it can never name another key)
 *   weft:q:<q>:wake       pub/sub channel: an idle worker's wake-up
 * The suffixes hold no ':', so no queue's keys can be another queue's.
 *
 * State in the hash: 0 waiting (in a stream or front set when due, else
 * in delayed), 2 running (in leased, to the holder of tok until lease),
 * 3 done, 4 dead; a running job whose lease passed reads as queued, a
 * waiting one whose run_at is ahead as scheduled. Times are the server's (TIME), in Unix ms.
 *
 * Why no PEL and no XAUTOCLAIM: a lease here has an absolute end that a
 * heartbeat moves and a token that an ack must carry, and leases of one
 * queue may differ in length (each worker's opts.lease). XAUTOCLAIM knows
 * only idle times and scans the pending list from its cursor on every call
 * (O(running jobs), not O(expired)); a ZSET by lease end gives exactly the
 * expired ones. So a claim reads with NOACK (nothing enters the PEL) and
 * removes what it read in the same script (XTRIM MINID past the last entry
 * read when nothing precedes the first, else XDEL): a stream holds only
 * jobs not yet claimed (XLEN 0 once all are), and the consumer group is
 * the cursor.
 *
 * Scripts never trust what they read: a job hash or a stream entry written
 * by another program is read with pcall and checked, and what is not a
 * job is dropped and reported. Redis does not roll a script back, so a
 * script raises only before its first write: the type of every key it
 * writes is checked first (is), and a job moves between structures by
 * writing its new place before removing its old one (taken: its hash and
 * its lease together), so a script stopped anywhere (out of memory)
 * leaves each job where a later claim finds it. A claim skips a
 * priority whose stream or front set holds another program's data,
 * reported, and parks the jobs bound for it in delayed a second on: at
 * least once holds whatever another program writes under "weft:".
 */
#ifndef WEFT_QUEUE_REDIS_LUA_H
#define WEFT_QUEUE_REDIS_LUA_H

/* Helpers every script starts with. hget: a hash's fields, nil when the
 * key is not a hash (another program's). batch: a command over a long
 * list in slices (unpack has a limit). is: whether key k is of type t
 * or absent (a write to it cannot raise WRONGTYPE). to_stream: a due job
 * into its priority's stream, true when the stream was empty (only then may a
 * worker be idle for it). waiting: a waiting job due at `at` into its
 * stream or delayed, true when an idle worker should look (an empty
 * stream filled, or a new earliest time). record: a job as get and list
 * return it: id, state as the API reads it, attempts, max, prio, created,
 * run_at, finished, queue, type, payload, result, error; nil when it is
 * not a job. */
#define LUA_PRELUDE                                                                            \
    "local function ms()\n"                                                                    \
    "  local t = redis.call('TIME')\n"                                                         \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                     \
    "end\n"                                                                                    \
    "local function d(n) return string.format('%d', n) end\n"                                  \
    "local function K(q, s) return 'weft:q:' .. q .. ':' .. s end\n"                           \
    "local function J(id) return 'weft:job:' .. id end\n"                                      \
    "local function num(v) return tonumber(v) or 0 end\n"                                      \
    "local function prio(v)\n"                                                                 \
    "  local p = tonumber(v)\n"                                                                \
    "  if p and p >= 0 and p <= 9 and p == math.floor(p) then return p end\n"                  \
    "  return 0\n"                                                                             \
    "end\n"                                                                                    \
    "local function hget(k, ...)\n"                                                            \
    "  local r = redis.pcall('HMGET', k, ...)\n"                                               \
    "  if type(r) ~= 'table' or r.err then return nil end\n"                                   \
    "  return r\n"                                                                             \
    "end\n"                                                                                    \
    "local function batch(cmd, key, list)\n"                                                   \
    "  for i = 1, #list, 500 do\n"                                                             \
    "    redis.call(cmd, key, unpack(list, i, math.min(i + 499, #list)))\n"                    \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local types = {}\n"                                                                       \
    "local function is(k, t)\n"                                                                \
    "  local v = types[k]\n"                                                                   \
    "  if v == nil then\n"                                                                     \
    "    local x = redis.call('TYPE', k)['ok']\n"                                              \
    "    v = x == 'none' or x == t\n"                                                          \
    "    types[k] = v\n"                                                                       \
    "  end\n"                                                                                  \
    "  return v\n"                                                                             \
    "end\n"                                                                                    \
    "local function to_stream(q, id, p)\n"                                                     \
    "  local s = K(q, 'p' .. p)\n"                                                             \
    "  local empty = redis.call('XLEN', s) == 0\n"                                             \
    "  redis.call('XADD', s, '*', 'j', id)\n"                                                  \
    "  return empty\n"                                                                         \
    "end\n"                                                                                    \
    "local function waiting(q, id, p, at, T)\n"                                                \
    "  if at <= T then return to_stream(q, id, p) end\n"                                       \
    "  local z = K(q, 'delayed')\n"                                                            \
    "  local head = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"                             \
    "  redis.call('ZADD', z, d(at), id)\n"                                                     \
    "  return head[2] == nil or at < tonumber(head[2])\n"                                      \
    "end\n"                                                                                    \
    "local F = {'state', 'attempts', 'max', 'prio', 'created', 'run_at', 'finished',"          \
    " 'lease', 'queue', 'type', 'payload', 'result', 'error'}\n"                               \
    "local function record(id, T)\n"                                                           \
    "  local f = hget(J(id), unpack(F))\n"                                                     \
    "  if not f then return nil end\n"                                                         \
    "  local st = tonumber(f[1])\n"                                                            \
    "  if st == 0 and num(f[6]) > T then st = 1\n"                                             \
    "  elseif st == 2 and num(f[8]) <= T then st = 0 end\n"                                    \
    "  if st ~= 0 and st ~= 1 and st ~= 2 and st ~= 3 and st ~= 4 then return nil end\n"       \
    "  return {id, st, f[2], f[3], f[4], f[5], f[6], f[7], f[9], f[10], f[11], f[12],"         \
    " f[13]}\n"                                                                                \
    "end\n"                                                                                    \
    "local function queues(q)\n"                                                               \
    "  if q ~= '' then return {q} end\n"                                                       \
    "  return redis.call('SMEMBERS', 'weft:queues')\n"                                         \
    "end\n"

/* ARGV: n, then per job: queue type payload prio delay_ms run_at_ms max key
 * ('' for none) call: the jobs of one call or of several calls gathered
 * (see redis.c), call numbering them. Returns id, dup (0/1) per job; a
 * call one of whose keys holds another program's data writes nothing, its
 * jobs returned as 0, '!' .. that key: each call stays all or nothing and
 * fails alone. (weft:seq or weft:queues of another program's, or a fresh
 * id's hash already there, fail the script before any write.) */
#define LUA_ENQUEUE                                                                            \
    LUA_PRELUDE                                                                                \
    "local n = tonumber(ARGV[1])\n"                                                            \
    "local T = ms()\n"                                                                         \
    "if not is('weft:seq', 'string') or not is('weft:queues', 'set') then\n"                   \
    "  return redis.error_reply('WRONGTYPE weft:seq or weft:queues holds another"              \
    " program\\'s data')\n"                                                                    \
    "end\n"                                                                                    \
    "local function run_at(b)\n"                                                               \
    "  local run = T + num(ARGV[b + 4])\n"                                                     \
    "  if num(ARGV[b + 5]) > run then run = num(ARGV[b + 5]) end\n"                            \
    "  return run\n"                                                                           \
    "end\n"                                                                                    \
    "local failed = {}\n"                                                                      \
    "for i = 0, n - 1 do\n"                                                                    \
    "  local b = 2 + i * 9\n"                                                                  \
    "  local q, c = ARGV[b], ARGV[b + 8]\n"                                                    \
    "  if not failed[c] then\n"                                                                \
    "    local need = {K(q, 'all'), 'zset'}\n"                                                 \
    "    if ARGV[b + 7] ~= '' then need[3] = K(q, 'keys'); need[4] = 'hash' end\n"             \
    "    if run_at(b) <= T then\n"                                                             \
    "      need[#need + 1] = K(q, 'p' .. prio(ARGV[b + 3])); need[#need + 1] = 'stream'\n"     \
    "    else\n"                                                                               \
    "      need[#need + 1] = K(q, 'delayed'); need[#need + 1] = 'zset'\n"                      \
    "    end\n"                                                                                \
    "    for k = 1, #need, 2 do\n"                                                             \
    "      if not failed[c] and not is(need[k], need[k + 1]) then failed[c] = need[k] end\n"   \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local ids, first, fresh = {}, {}, 0\n"                                                    \
    "for i = 0, n - 1 do\n"                                                                    \
    "  local b = 2 + i * 9\n"                                                                  \
    "  local q, key = ARGV[b], ARGV[b + 7]\n"                                                  \
    "  if failed[ARGV[b + 8]] then\n"                                                          \
    "  elseif key ~= '' then\n"                                                                \
    "    local mark = q .. '\\n' .. key\n"                                                     \
    "    if first[mark] then\n"                                                                \
    "      ids[i] = first[mark]\n"                                                             \
    "    else\n"                                                                               \
    "      local id = redis.call('HGET', K(q, 'keys'), key)\n"                                 \
    "      if id and redis.call('EXISTS', J(id)) == 0 then id = false end\n"                   \
    "      if id then ids[i] = id else first[mark] = i; fresh = fresh + 1 end\n"               \
    "    end\n"                                                                                \
    "  else\n"                                                                                 \
    "    fresh = fresh + 1\n"                                                                  \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local nextid = 0\n"                                                                       \
    "if fresh > 0 then\n"                                                                      \
    "  local top = redis.pcall('INCRBY', 'weft:seq', fresh)\n"                                 \
    "  if type(top) ~= 'number' then\n"                                                        \
    "    return redis.error_reply('WRONGTYPE weft:seq holds another program\\'s data')\n"      \
    "  end\n"                                                                                  \
    "  nextid = top - fresh + 1\n"                                                             \
    "  for id = nextid, top do\n"                                                              \
    "    if redis.call('EXISTS', J(d(id))) == 1 then\n"                                        \
    "      return redis.error_reply('weft:job:' .. d(id) .. ' exists: weft:seq was set"        \
    " back')\n"                                                                                \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local out, all, known, wake = {}, {}, {}, {}\n"                                           \
    "for i = 0, n - 1 do\n"                                                                    \
    "  local b = 2 + i * 9\n"                                                                  \
    "  local q, key, id = ARGV[b], ARGV[b + 7], ids[i]\n"                                      \
    "  if failed[ARGV[b + 8]] then\n"                                                          \
    "    out[#out + 1] = 0; out[#out + 1] = '!' .. failed[ARGV[b + 8]]\n"                      \
    "  elseif type(id) == 'number' then\n"                                                     \
    "    out[#out + 1] = ids[id]; out[#out + 1] = 1\n"                                         \
    "  elseif id then\n"                                                                       \
    "    out[#out + 1] = id; out[#out + 1] = 1\n"                                              \
    "  else\n"                                                                                 \
    "    id = d(nextid)\n"                                                                     \
    "    nextid = nextid + 1\n"                                                                \
    "    ids[i] = id\n"                                                                        \
    "    local run = run_at(b)\n"                                                              \
    "    local h = {'HSET', J(id), 'queue', q, 'type', ARGV[b + 1], 'payload', ARGV[b +"       \
    " 2], 'prio', ARGV[b + 3], 'state', '0', 'run_at', d(run), 'attempts', '0', 'max',"        \
    " ARGV[b + 6], 'created', d(T)}\n"                                                         \
    "    if key ~= '' then\n"                                                                  \
    "      h[#h + 1] = 'key'; h[#h + 1] = key\n"                                               \
    "      redis.call('HSET', K(q, 'keys'), key, id)\n"                                        \
    "    end\n"                                                                                \
    "    redis.call(unpack(h))\n"                                                              \
    "    local a = all[q]\n"                                                                   \
    "    if not a then\n"                                                                      \
    "      a = {}; all[q] = a\n"                                                               \
    "      redis.call('SADD', 'weft:queues', q)\n"                                             \
    "    end\n"                                                                                \
    "    a[#a + 1] = id; a[#a + 1] = id\n"                                                     \
    "    local p = prio(ARGV[b + 3])\n"                                                        \
    "    if run <= T then\n"                                                                   \
    "      local s = K(q, 'p' .. p)\n"                                                         \
    "      if known[s] == nil then\n"                                                          \
    "        known[s] = true\n"                                                                \
    "        if redis.call('XLEN', s) == 0 then wake[q] = true end\n"                          \
    "      end\n"                                                                              \
    "      redis.call('XADD', s, '*', 'j', id)\n"                                              \
    "    elseif waiting(q, id, p, run, T) then\n"                                              \
    "      wake[q] = true\n"                                                                   \
    "    end\n"                                                                                \
    "    out[#out + 1] = id; out[#out + 1] = 0\n"                                              \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "for q, a in pairs(all) do batch('ZADD', K(q, 'all'), a) end\n"                            \
    "for q in pairs(wake) do redis.call('PUBLISH', K(q, 'wake'), '') end\n"                    \
    "return out\n"

/* ARGV: queue max lease_ms def_max no, then per outcome: id tok kind
 * (D done, R retry, X dead, L release) delay_ms text ('=' .. text, or ''
 * for none). Writes the outcomes; then (max > 0) moves due delayed jobs
 * into their streams, takes expired leases back, claims up to max jobs
 * (priority 9 first; within one, its front set by run_at, then its stream
 * FIFO). Returns n, next (ms from now until a job may be due, -1: none),
 * ndropped, nbad, then per job: id tok attempt max due_age type payload;
 * then the ids of dropped outcomes (no longer leased with that token) and
 * of what was not a job (stream entry ids prefixed with '-', keys of
 * another program's prefixed with '!'). A job released or whose lease
 * expired goes back to its priority's front set with its run_at: it runs
 * before jobs due after it, as in SQLite (O(jobs touched): a ZADD, and a
 * ZRANGE and ZREM of the jobs taken). */
#define LUA_CLAIM                                                                              \
    LUA_PRELUDE                                                                                \
    "local q = ARGV[1]\n"                                                                      \
    "local max, L, defmax, no = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),"      \
    " tonumber(ARGV[5])\n"                                                                     \
    "local T = ms()\n"                                                                         \
    "local leased, delayed = K(q, 'leased'), K(q, 'delayed')\n"                                \
    "for _, s in ipairs({'leased', 'delayed', 'done', 'dead'}) do\n"                           \
    "  if not is(K(q, s), 'zset') then\n"                                                      \
    "    return redis.error_reply('WRONGTYPE ' .. K(q, s) .. ' holds another program\\'s"      \
    " data')\n"                                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local wake = false\n"                                                                     \
    "local dropped, bad, held, done, dead, noted = {}, {}, {}, {}, {}, {}\n"                   \
    "local function usable(p)\n"                                                               \
    "  local ok = true\n"                                                                      \
    "  for _, k in ipairs({K(q, 'p' .. p), K(q, 'f' .. p)}) do\n"                              \
    "    if not is(k, k == K(q, 'p' .. p) and 'stream' or 'zset') then\n"                      \
    "      ok = false\n"                                                                       \
    "      if not noted[k] then noted[k] = true; bad[#bad + 1] = '!' .. k end\n"               \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "  return ok\n"                                                                            \
    "end\n"                                                                                    \
    "local function pad(id) return string.rep('0', 19 - #id) .. id end\n"                      \
    "local function enter(id, p, at, kept)\n"                                                  \
    "  if at > T then return waiting(q, id, p, at, T) end\n"                                   \
    "  if not usable(p) then\n"                                                                \
    "    redis.call('ZADD', delayed, d(T + 1000), id)\n"                                       \
    "    return nil\n"                                                                         \
    "  end\n"                                                                                  \
    "  local s, f = K(q, 'p' .. p), K(q, 'f' .. p)\n"                                          \
    "  local empty = redis.call('XLEN', s) == 0 and redis.call('ZCARD', f) == 0\n"             \
    "  if kept then redis.call('ZADD', f, d(at), pad(id)) else redis.call('XADD', s, '*',"     \
    " 'j', id) end\n"                                                                          \
    "  return empty\n"                                                                         \
    "end\n"                                                                                    \
    "local function hset(k, ...)\n"                                                            \
    "  local r = redis.pcall('HSET', k, ...)\n"                                                \
    "  if type(r) == 'table' and r.err then bad[#bad + 1] = string.sub(k, 10); return"         \
    " false end\n"                                                                             \
    "  return true\n"                                                                          \
    "end\n"                                                                                    \
    "for c = 0, no - 1, 500 do\n"                                                              \
    "  local m = {}\n"                                                                         \
    "  for i = c, math.min(c + 499, no - 1) do\n"                                              \
    "    local b = 6 + i * 5\n"                                                                \
    "    m[#m + 1] = ARGV[b] .. ':' .. ARGV[b + 1]\n"                                          \
    "  end\n"                                                                                  \
    "  local sc = redis.call('ZMSCORE', leased, unpack(m))\n"                                  \
    "  for k = 1, #m do\n"                                                                     \
    "    local i = c + k - 1\n"                                                                \
    "    local b = 6 + i * 5\n"                                                                \
    "    local id, kind = ARGV[b], ARGV[b + 2]\n"                                              \
    "    local text = string.sub(ARGV[b + 4], 2)\n"                                            \
    "    if not sc[k] then\n"                                                                  \
    "      dropped[#dropped + 1] = id\n"                                                       \
    "    else\n"                                                                               \
    "      held[#held + 1] = m[k]\n"                                                           \
    "      local j = J(id)\n"                                                                  \
    "      if kind == 'D' then\n"                                                              \
    "        local r = {}\n"                                                                   \
    "        if ARGV[b + 4] ~= '' then r = {'result', text} end\n"                             \
    "        if hset(j, 'state', '3', 'finished', d(T), unpack(r)) then\n"                     \
    "          done[#done + 1] = id; done[#done + 1] = id\n"                                   \
    "        end\n"                                                                            \
    "      elseif kind == 'X' then\n"                                                          \
    "        if hset(j, 'state', '4', 'finished', d(T), 'error', text) then\n"                 \
    "          dead[#dead + 1] = id; dead[#dead + 1] = id\n"                                   \
    "        end\n"                                                                            \
    "      else\n"                                                                             \
    "        local f = hget(j, 'prio', 'attempts', 'run_at') or {}\n"                          \
    "        if kind == 'R' then\n"                                                            \
    "          local at = T + math.max(num(ARGV[b + 3]), 0)\n"                                 \
    "          if hset(j, 'state', '0', 'run_at', d(at), 'error', text) and enter(id,"         \
    " prio(f[1]), at) then wake = true end\n"                                                  \
    "        elseif hset(j, 'state', '0', 'attempts', d(math.max(num(f[2]) - 1, 0))) and"      \
    " enter(id, prio(f[1]), math.min(num(f[3]), T), true) then\n"                              \
    "          wake = true\n"                                                                  \
    "        end\n"                                                                            \
    "      end\n"                                                                              \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "batch('ZADD', K(q, 'done'), done)\n"                                                      \
    "batch('ZADD', K(q, 'dead'), dead)\n"                                                      \
    "batch('ZREM', leased, held)\n"                                                            \
    "if wake then redis.call('PUBLISH', K(q, 'wake'), '') end\n"                               \
    "local out, n = {}, 0\n"                                                                   \
    "local function finish(next)\n"                                                            \
    "  local r = {n, next, #dropped, #bad}\n"                                                  \
    "  for _, v in ipairs(out) do r[#r + 1] = v end\n"                                         \
    "  for _, v in ipairs(dropped) do r[#r + 1] = v end\n"                                     \
    "  for _, v in ipairs(bad) do r[#r + 1] = v end\n"                                         \
    "  return r\n"                                                                             \
    "end\n"                                                                                    \
    "if max <= 0 then return finish(-1) end\n"                                                 \
    "local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', d(T), 'LIMIT', 0, 1000)\n"       \
    "local moved = {}\n"                                                                       \
    "for _, id in ipairs(due) do\n"                                                            \
    "  local f = hget(J(id), 'state', 'prio')\n"                                               \
    "  if not f or f[1] ~= '0' then\n"                                                         \
    "    bad[#bad + 1] = id; moved[#moved + 1] = id\n"                                         \
    "  elseif enter(id, prio(f[2]), T) ~= nil then\n"                                          \
    "    moved[#moved + 1] = id\n"                                                             \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "batch('ZREM', delayed, moved)\n"                                                          \
    "local exp = redis.call('ZRANGEBYSCORE', leased, '-inf', d(T), 'LIMIT', 0, 256)\n"         \
    "for _, m in ipairs(exp) do\n"                                                             \
    "  local id, tok = string.match(m, '^(%d+):(%d+)$')\n"                                     \
    "  local f = id and hget(J(id), 'state', 'attempts', 'max', 'prio', 'lease', 'tok',"       \
    " 'run_at')\n"                                                                             \
    "  if f and f[1] == '2' and f[6] == tok and num(f[5]) > T then\n"                          \
    "    redis.call('ZADD', leased, d(num(f[5])), m)\n"                                        \
    "  else\n"                                                                                 \
    "    if f and f[1] == '2' and f[6] == tok then\n"                                          \
    "      local att, mx = num(f[2]), num(f[3])\n"                                             \
    "      if mx <= 0 then mx = defmax end\n"                                                  \
    "      if att < mx then\n"                                                                 \
    "        if hset(J(id), 'state', '0') then enter(id, prio(f[4]), math.min(num(f[7]),"      \
    " T), true) end\n"                                                                         \
    "      elseif hset(J(id), 'state', '4', 'finished', d(T), 'error', 'lease expired on"      \
    " attempt ' .. d(att) .. ' of ' .. d(mx) .. ': the worker died or stopped"                 \
    " heartbeating') then\n"                                                                   \
    "        redis.call('ZADD', K(q, 'dead'), id, id)\n"                                       \
    "      end\n"                                                                              \
    "    elseif not f then\n"                                                                  \
    "      bad[#bad + 1] = id or m\n"                                                          \
    "    end\n"                                                                                \
    "    redis.call('ZREM', leased, m)\n"                                                      \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local function read(s, count)\n"                                                          \
    "  local cmd = {'XREADGROUP', 'GROUP', 'w', 'w', 'COUNT', count, 'NOACK', 'STREAMS',"      \
    " s, '>'}\n"                                                                               \
    "  local r = redis.pcall(unpack(cmd))\n"                                                   \
    "  if type(r) == 'table' and r.err then\n"                                                 \
    "    if not string.find(r.err, 'NOGROUP', 1, true) then return r end\n"                    \
    "    redis.pcall('XGROUP', 'CREATE', s, 'w', '0')\n"                                       \
    "    r = redis.pcall(unpack(cmd))\n"                                                       \
    "    if type(r) == 'table' and r.err then return r end\n"                                  \
    "  end\n"                                                                                  \
    "  if not r or not r[1] then return nil end\n"                                             \
    "  return r[1][2]\n"                                                                       \
    "end\n"                                                                                    \
    "local function take(id)\n"                                                                \
    "  local k = J(id)\n"                                                                      \
    "  local f = hget(k, 'state', 'attempts', 'max', 'tok', 'type', 'payload', 'run_at')\n"    \
    "  if not f or f[1] ~= '0' then bad[#bad + 1] = id; return end\n"                          \
    "  local att, mx, tok = num(f[2]) + 1, num(f[3]), num(f[4]) + 1\n"                         \
    "  if mx <= 0 then mx = defmax end\n"                                                      \
    "  if not hset(k, 'state', '2', 'attempts', d(att), 'max', d(mx), 'tok', d(tok),"          \
    " 'lease', d(T + L)) then return end\n"                                                    \
    "  redis.call('ZADD', leased, d(T + L), id .. ':' .. d(tok))\n"                            \
    "  local o = #out\n"                                                                       \
    "  out[o + 1] = id; out[o + 2] = d(tok); out[o + 3] = att; out[o + 4] = mx\n"              \
    "  out[o + 5] = T - num(f[7]); out[o + 6] = f[5] or ''; out[o + 7] = f[6] or ''\n"         \
    "  n = n + 1\n"                                                                            \
    "end\n"                                                                                    \
    "for p = 9, 0, -1 do\n"                                                                    \
    "  local s, fz = K(q, 'p' .. p), K(q, 'f' .. p)\n"                                         \
    "  if n < max and usable(p) then\n"                                                        \
    "    local kept = redis.call('ZRANGE', fz, 0, max - n - 1)\n"                              \
    "    for _, m in ipairs(kept) do take(string.match(m, '^0*(%d+)$') or m) end\n"            \
    "    batch('ZREM', fz, kept)\n"                                                            \
    "  end\n"                                                                                  \
    "  local left = n < max and usable(p) and redis.call('XLEN', s) or 0\n"                    \
    "  local reset = false\n"                                                                  \
    "  while n < max and left > 0 do\n"                                                        \
    "    local want = max - n\n"                                                               \
    "    local e = read(s, want)\n"                                                            \
    "    if type(e) == 'table' and e.err then\n"                                               \
    "      bad[#bad + 1] = '!' .. s\n"                                                         \
    "      break\n"                                                                            \
    "    end\n"                                                                                \
    "    if not e or #e == 0 then\n"                                                           \
    "      if reset then break end\n"                                                          \
    "      redis.pcall('XGROUP', 'SETID', s, 'w', '0')\n"                                      \
    "      reset = true\n"                                                                     \
    "    else\n"                                                                               \
    "      for _, x in ipairs(e) do\n"                                                         \
    "        local id = nil\n"                                                                 \
    "        local fv = x[2]\n"                                                                \
    "        if type(fv) == 'table' then\n"                                                    \
    "          for i = 1, #fv - 1, 2 do if fv[i] == 'j' then id = fv[i + 1] end end\n"         \
    "        end\n"                                                                            \
    "        if id and string.match(id, '^[1-9]%d*$') and #id < 19 then take(id)\n"            \
    "        else bad[#bad + 1] = '-' .. x[1] end\n"                                           \
    "      end\n"                                                                              \
    "      local head = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)\n"                       \
    "      local ms_, seq = string.match(e[#e][1], '^(%d+)-(%d+)$')\n"                         \
    "      if head[1] and head[1][1] == e[1][1] and ms_ and #seq < 16 then\n"                  \
    "        redis.call('XTRIM', s, 'MINID', ms_ .. '-' .. d(tonumber(seq) + 1))\n"            \
    "      else\n"                                                                             \
    "        local ids = {}\n"                                                                 \
    "        for _, x in ipairs(e) do ids[#ids + 1] = x[1] end\n"                              \
    "        batch('XDEL', s, ids)\n"                                                          \
    "      end\n"                                                                              \
    "      left = left - #e\n"                                                                 \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local nx = -1\n"                                                                          \
    "local a = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')\n"                            \
    "if a[2] then nx = tonumber(a[2]) end\n"                                                   \
    "local b = redis.call('ZRANGE', leased, 0, 0, 'WITHSCORES')\n"                             \
    "if b[2] and (nx < 0 or tonumber(b[2]) < nx) then nx = tonumber(b[2]) end\n"               \
    "if nx >= 0 then nx = math.max(nx - T, 0) end\n"                                           \
    "return finish(nx)\n"

/* ARGV: lease_ms, then id tok pairs. Returns 0 (extended) or 1 (lost) each. */
#define LUA_EXTEND                                                                             \
    LUA_PRELUDE                                                                                \
    "local L = tonumber(ARGV[1])\n"                                                            \
    "local T = ms()\n"                                                                         \
    "local out = {}\n"                                                                         \
    "for i = 2, #ARGV - 1, 2 do\n"                                                             \
    "  local id = ARGV[i]\n"                                                                   \
    "  local k = J(id)\n"                                                                      \
    "  local f = hget(k, 'state', 'tok', 'queue')\n"                                           \
    "  if f and f[1] == '2' and f[2] == ARGV[i + 1] then\n"                                    \
    "    redis.call('HSET', k, 'lease', d(T + L))\n"                                           \
    "    if f[3] then redis.pcall('ZADD', K(f[3], 'leased'), 'XX', d(T + L), id .. ':'"        \
    " .. f[2]) end\n"                                                                          \
    "    out[#out + 1] = 0\n"                                                                  \
    "  else\n"                                                                                 \
    "    out[#out + 1] = 1\n"                                                                  \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "return out\n"

/* ARGV: id. Returns the record, {} (no such job) or -1 (not a job). */
#define LUA_GET                                                                                \
    LUA_PRELUDE                                                                                \
    "if redis.call('EXISTS', J(ARGV[1])) == 0 then return {} end\n"                            \
    "return record(ARGV[1], ms()) or -1\n"

/* ARGV: queue ('' all) state (-1 any) after max scan. Scans up to `scan`
 * ids past `after` (shared among the queues, at least 16 each), merged by
 * id; returns more, cursor (the id to go on after), skipped (not jobs),
 * then the records found. */
#define LUA_LIST                                                                               \
    LUA_PRELUDE                                                                                \
    "local want, after, max, S = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]),"               \
    " tonumber(ARGV[5])\n"                                                                     \
    "local T = ms()\n"                                                                         \
    "local idx = 'all'\n"                                                                      \
    "if want == 3 then idx = 'done' elseif want == 4 then idx = 'dead' end\n"                  \
    "local cand, bound = {}, nil\n"                                                            \
    "local qs = queues(ARGV[1])\n"                                                             \
    "S = math.max(math.floor(S / math.max(#qs, 1)), 16)\n"                                     \
    "for _, q in ipairs(qs) do\n"                                                              \
    "  local ids = redis.call('ZRANGEBYSCORE', K(q, idx), '(' .. after, '+inf', 'LIMIT',"      \
    " 0, S)\n"                                                                                 \
    "  for _, id in ipairs(ids) do cand[#cand + 1] = tonumber(id) end\n"                       \
    "  if #ids == S then\n"                                                                    \
    "    local last = tonumber(ids[#ids])\n"                                                   \
    "    if not bound or last < bound then bound = last end\n"                                 \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "table.sort(cand)\n"                                                                       \
    "local out, n = {0, 0, 0}, 0\n"                                                            \
    "for _, id in ipairs(cand) do\n"                                                           \
    "  if bound and id > bound then break end\n"                                               \
    "  local r = record(d(id), T)\n"                                                           \
    "  if not r then\n"                                                                        \
    "    out[3] = out[3] + 1\n"                                                                \
    "  elseif want < 0 or r[2] == want then\n"                                                 \
    "    for i = 1, 13 do out[#out + 1] = r[i] end\n"                                          \
    "    n = n + 1\n"                                                                          \
    "    if n == max then return out end\n"                                                    \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "if bound then out[1] = 1; out[2] = bound end\n"                                           \
    "return out\n"

/* ARGV: id. 0, -1 (not dead: -EINVAL), -2 (no such job); an error (-EIO)
 * when its priority's stream holds another program's data. */
#define LUA_RETRY                                                                              \
    LUA_PRELUDE                                                                                \
    "local id = ARGV[1]\n"                                                                     \
    "local k = J(id)\n"                                                                        \
    "if redis.call('EXISTS', k) == 0 then return -2 end\n"                                     \
    "local f = hget(k, 'state', 'queue', 'prio')\n"                                            \
    "if not f or f[1] ~= '4' or not f[2] then return -1 end\n"                                 \
    "local s = K(f[2], 'p' .. prio(f[3]))\n"                                                   \
    "if not is(s, 'stream') then return redis.error_reply('WRONGTYPE ' .. s .. ' holds"        \
    " another program\\'s data') end\n"                                                        \
    "local T = ms()\n"                                                                         \
    "redis.call('HSET', k, 'state', '0', 'attempts', '0', 'run_at', d(T))\n"                   \
    "redis.call('HDEL', k, 'finished')\n"                                                      \
    "redis.call('ZREM', K(f[2], 'dead'), id)\n"                                                \
    "if to_stream(f[2], id, prio(f[3])) then redis.call('PUBLISH', K(f[2], 'wake'), '')"       \
    " end\n"                                                                                   \
    "return 0\n"

/* ARGV: queue ('' all) state (-1: done and dead) limit. Removes up to
 * limit jobs and their keys; returns removed, more (0/1). */
#define LUA_PURGE                                                                              \
    LUA_PRELUDE                                                                                \
    "local st, limit = tonumber(ARGV[2]), tonumber(ARGV[3])\n"                                 \
    "local sets = {}\n"                                                                        \
    "if st ~= 4 then sets[#sets + 1] = 'done' end\n"                                           \
    "if st ~= 3 then sets[#sets + 1] = 'dead' end\n"                                           \
    "local removed = 0\n"                                                                      \
    "for _, q in ipairs(queues(ARGV[1])) do\n"                                                 \
    "  for _, s in ipairs(sets) do\n"                                                          \
    "    local z = K(q, s)\n"                                                                  \
    "    local ids = redis.call('ZRANGE', z, 0, limit - removed - 1)\n"                        \
    "    for _, id in ipairs(ids) do\n"                                                        \
    "      local f = hget(J(id), 'key')\n"                                                     \
    "      if f and f[1] and redis.call('HGET', K(q, 'keys'), f[1]) == id then\n"              \
    "        redis.call('HDEL', K(q, 'keys'), f[1])\n"                                         \
    "      end\n"                                                                              \
    "      redis.call('DEL', J(id))\n"                                                         \
    "    end\n"                                                                                \
    "    if #ids > 0 then\n"                                                                   \
    "      batch('ZREM', z, ids)\n"                                                            \
    "      batch('ZREM', K(q, 'all'), ids)\n"                                                  \
    "    end\n"                                                                                \
    "    removed = removed + #ids\n"                                                           \
    "    if removed >= limit then return {removed, 1} end\n"                                   \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "return {removed, 0}\n"

/* ARGV: queue ('' all). Returns queued scheduled running done dead lag_ms. */
#define LUA_STATS                                                                              \
    LUA_PRELUDE                                                                                \
    "local T = ms()\n"                                                                         \
    "local c = {0, 0, 0, 0, 0}\n"                                                              \
    "local oldest = nil\n"                                                                     \
    "local function seen(t) if t and (not oldest or t < oldest) then oldest = t end end\n"     \
    "for _, q in ipairs(queues(ARGV[1])) do\n"                                                 \
    "  for p = 0, 9 do\n"                                                                      \
    "    local s = K(q, 'p' .. p)\n"                                                           \
    "    local n = is(s, 'stream') and redis.call('XLEN', s) or 0\n"                           \
    "    if n > 0 then\n"                                                                      \
    "      c[1] = c[1] + n\n"                                                                  \
    "      local h = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)\n"                          \
    "      local fv = h[1] and h[1][2]\n"                                                      \
    "      if type(fv) == 'table' and fv[1] == 'j' and fv[2] then\n"                           \
    "        local f = hget(J(fv[2]), 'run_at')\n"                                             \
    "        if f then seen(tonumber(f[1])) end\n"                                             \
    "      end\n"                                                                              \
    "    end\n"                                                                                \
    "    local f = K(q, 'f' .. p)\n"                                                           \
    "    n = is(f, 'zset') and redis.call('ZCARD', f) or 0\n"                                  \
    "    if n > 0 then\n"                                                                      \
    "      c[1] = c[1] + n\n"                                                                  \
    "      seen(tonumber(redis.call('ZRANGE', f, 0, 0, 'WITHSCORES')[2]))\n"                   \
    "    end\n"                                                                                \
    "  end\n"                                                                                  \
    "  local z = K(q, 'delayed')\n"                                                            \
    "  local due, all = redis.call('ZCOUNT', z, '-inf', d(T)), redis.call('ZCARD', z)\n"       \
    "  c[1] = c[1] + due; c[2] = c[2] + all - due\n"                                           \
    "  if due > 0 then seen(tonumber(redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')[2])) end\n"   \
    "  z = K(q, 'leased')\n"                                                                   \
    "  due, all = redis.call('ZCOUNT', z, '-inf', d(T)), redis.call('ZCARD', z)\n"             \
    "  c[1] = c[1] + due; c[3] = c[3] + all - due\n"                                           \
    "  if due > 0 then seen(tonumber(redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')[2])) end\n"   \
    "  c[4] = c[4] + redis.call('ZCARD', K(q, 'done'))\n"                                      \
    "  c[5] = c[5] + redis.call('ZCARD', K(q, 'dead'))\n"                                      \
    "end\n"                                                                                    \
    "c[6] = 0\n"                                                                               \
    "if oldest and oldest < T then c[6] = T - oldest end\n"                                    \
    "return c\n"

#endif
