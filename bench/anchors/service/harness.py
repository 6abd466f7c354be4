#!/usr/bin/python3
"""bench/service.sh's harness: weft serve beside the seed's FastAPI + asyncpg
service in one run, as ../../../../shared/bench/anchors/service/svcbench.py
measures the seed (server pinned to CPU 0 beside PostgreSQL, its answers
checked, a warm-up, then `taskset -c 1 wrk -t1 -c50 -dDs --latency`, server
CPU from /proc/PID/stat utime+stime before and after).

  harness.py run OPTIONS      appends one JSON line per measurement to --out
  harness.py migrate OPTIONS  weft serve --pg started once and stopped: its migrations
  harness.py table JSONL      the markdown table (medians, ratios, goals)

Each run measures, in this order (interleaved across runs, so drift hits
every system alike): weft serve --pg --threads 1 on /users/{id}, /db,
/queries?queries=20, /fortunes, /updates?queries=20; for each uvicorn loop
(asyncio, uvloop; httptools): the seed's app.py on /users/{id}, then
app_te.py on the four TechEmpower tests; weft serve on its embedded SQLite
queue (no --pg, a fresh --db directory on disk per run) on POST /events.
Every server runs in its own session (killed as a group, its pgid listed
in --work/servers for the caller's trap)."""
import argparse, json, os, re, signal, statistics, subprocess, sys, time
import urllib.error, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HZ = os.sysconf("SC_CLK_TCK")
ENDPOINTS = ["/users/{id}", "/db", "/queries?queries=20", "/fortunes", "/updates?queries=20",
             "POST /events"]
TE = ENDPOINTS[1:5]


# ---- measuring ----------------------------------------------------------------

def ticks(pid, tree=False):
    """utime+stime of pid (all its threads); tree: and of its descendants"""
    stat, kids = {}, {}
    for d in os.listdir("/proc") if tree else [str(pid)]:
        if not d.isdigit():
            continue
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        stat[int(d)] = int(f[11]) + int(f[12])
        kids.setdefault(int(f[1]), []).append(int(d))
    tot, todo = stat[pid], list(kids.get(pid, []) if tree else [])
    while todo:
        p = todo.pop()
        tot += stat.get(p, 0)
        todo += kids.get(p, [])
    return tot


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def wrk(port, target, d):
    """target: a path, or ("lua", script); -> (command line, wrk's output)"""
    url = f"http://127.0.0.1:{port}"
    if isinstance(target, tuple):
        extra = ["-s", target[1]]
    else:
        extra, url = [], url + target
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{d}s", "--latency", *extra, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=float(d) + 60)
    return " ".join(cmd), out.stdout


def parse(out):
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    err = re.search(r"Socket errors: (.*)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = int(bad.group(1)) if bad else 0
    return dict(requests=n, rps=rps, ok_rps=rps * (n - bad) / n if n else 0.0,
                p50_ms=ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
                p99_ms=ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
                non2xx=bad, socket_errors=err.group(1) if err else "")


# ---- the servers ----------------------------------------------------------------

class Server:
    port = 18200

    def __init__(self, args, argv, cwd, log, env=None):
        Server.port += 1
        self.port = Server.port
        argv = [a.replace("PORT", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(["taskset", "-c", "0", *argv], cwd=cwd, env=env,
                                     start_new_session=True, stdin=subprocess.DEVNULL,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.log, self.list = log, os.path.join(args.work, "servers")
        self.listed(True)

    def listed(self, on):
        """the pgids of the servers running, one a line, for the caller's trap"""
        try:
            pids = open(self.list).read().split()
        except FileNotFoundError:
            pids = []
        pids = [p for p in pids if p != str(self.proc.pid)] + ([str(self.proc.pid)] if on else [])
        with open(self.list, "w") as f:
            f.write("".join(p + "\n" for p in pids))

    def ready(self, path):
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            try:
                if self.status(path) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit(f"bench: the server did not answer {path} (see {self.log})")

    def get(self, path, body=None):
        """-> (status, body); body: a dict POSTed as JSON"""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if body is not None:
            req.data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def status(self, path):
        return self.get(path)[0]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session, started above
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.listed(False)


def check(cond, what):
    if not cond:
        raise SystemExit(f"bench: wrong answer: {what}")


def check_users(s):
    code, body = s.get("/users/42")
    u = json.loads(body) if code == 200 else {}
    check(code == 200 and u.get("id") == 42 and u.get("email") == "user42@example.com",
          f"/users/42 -> {code} {body[:200]}")
    check(s.status("/users/10001") == 404, "/users/10001 is not 404")


def check_te(s):
    code, body = s.get("/db")
    check(code == 200 and set(json.loads(body)) == {"id", "randomNumber"}, f"/db -> {body[:200]}")
    for p in ("/queries?queries=20", "/updates?queries=20"):
        code, body = s.get(p)
        check(code == 200 and len(json.loads(body)) == 20, f"{p} -> {code} {body[:200]}")
    code, body = s.get("/fortunes")
    check(code == 200 and body.count("<tr>") == 14 and "&lt;script&gt;" in body
          and "Additional fortune added at request time." in body
          and "フレームワークのベンチマーク" in body, f"/fortunes -> {code} {body[:300]}")


def check_events(s):
    code, body = s.get("/events", {"type": "signup", "user_id": 7})
    check(code == 202 and json.loads(body).get("status") == "accepted", f"POST /events -> {body}")
    eid = json.loads(body)["id"]
    for _ in range(100):                  # the workers run it (bounded: 10 s)
        state = json.loads(s.get(f"/events/{eid}")[1]).get("state")
        if state == "done":
            return
        time.sleep(0.1)
    check(False, f"event {eid} still {state} after 10 s")


def queue_counts(s):
    """weft_queue_jobs_total of the events queue by result, from /metrics"""
    text = s.get("/metrics")[1]
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^weft_queue_jobs_total\{queue="events",result="(\w+)"\} (\S+)', text, re.M)}


def measure(args, s, row, endpoint, target, pg_pid=None):
    """pg_pid: the postmaster, whose CPU (its whole tree) is counted apart"""
    events = endpoint == "POST /events"
    wrk(s.port, target, args.warm)        # warm-up: pools grown, statements prepared
    q0 = queue_counts(s) if events else {}
    u0, p0, t0 = ticks(s.proc.pid), ticks(pg_pid, True) if pg_pid else 0, time.time()
    cmd, out = wrk(s.port, target, args.d)
    wall = time.time() - t0
    time.sleep(0.2)
    u1, p1 = ticks(s.proc.pid), ticks(pg_pid, True) if pg_pid else 0
    r = dict(row, endpoint=endpoint, cmd=cmd, **parse(out))
    n = max(r["requests"], 1)
    r.update(cpu_us_req=(u1 - u0) / HZ / n * 1e6, cores=(u1 - u0) / HZ / wall,
             pg_us_req=(p1 - p0) / HZ / n * 1e6 if pg_pid else None)
    if events:                            # what the workers did meanwhile, on the same core
        q1 = queue_counts(s)
        r.update({f"jobs_{k}": q1.get(k, 0) - q0.get(k, 0)
                  for k in ("enqueued", "succeeded", "retried", "dead")})
    print(json.dumps(r), flush=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(r) + "\n")


def target_of(args, endpoint):
    if endpoint == "/users/{id}":
        return ("lua", os.path.join(args.anchor, "rand.lua"))
    if endpoint == "POST /events":
        return ("lua", os.path.join(HERE, "events.lua"))
    return endpoint


def weft_pg(args, name):
    return Server(args, [args.weft, "serve", "--port", "PORT", "--threads", "1", "--pg",
                         args.pg_url, "--db", os.path.join(args.work, "weft-pg.db")],
                  args.work, os.path.join(args.logs, f"weft-pg.{name}.log"))


def migrate(args):
    """weft serve's migrations applied (its start does), before the cluster's VACUUM"""
    s = weft_pg(args, "migrate")
    try:
        s.ready("/users/1")
    finally:
        s.stop()


def one_run(args, run):
    weft_row = dict(system="weft", stack="weft serve --threads 1", run=run)
    if args.pg_url:
        s = weft_pg(args, run)
        try:
            s.ready("/users/1")
            check_users(s)
            check_te(s)
            for e in ENDPOINTS[:5]:
                measure(args, s, weft_row, e, target_of(args, e), args.pg_pid)
        finally:
            s.stop()
    # "loop" or "loop:parser": uvicorn's httptools unless said (h11: the seed's
    # stack before httptools is installed, the 1,832 req/s)
    for spec in [x for x in args.loops.split(",") if x] if args.pg_url else []:
        loop, _, http = spec.partition(":")
        http = http or "httptools"
        row = dict(system="fastapi", stack=f"FastAPI+asyncpg, uvicorn {loop}+{http}",
                   loop=loop, run=run)
        env = dict(os.environ, SVC_DSN=args.anchor_dsn, PYTHONDONTWRITEBYTECODE="1")  # no __pycache__ in the tree
        for app, cwd, eps in (("app", args.anchor, ENDPOINTS[:1]), ("app_te", HERE, TE)):
            s = Server(args, ["/usr/bin/python3", "-m", "uvicorn", f"{app}:app", "--host",
                              "127.0.0.1", "--port", "PORT", "--loop", loop, "--http",
                              http, "--no-access-log", "--log-level", "warning"],
                       cwd, os.path.join(args.logs, f"uvicorn-{app}-{loop}-{http}.{run}.log"), env)
            try:
                s.ready("/users/1")
                if app == "app":
                    check_users(s)
                else:
                    check_te(s)
                for e in eps:
                    measure(args, s, row, e, target_of(args, e), args.pg_pid)
            finally:
                s.stop()
    d = os.path.join(args.work, f"events.{run}")
    os.makedirs(d)
    s = Server(args, [args.weft, "serve", "--port", "PORT", "--threads", "1", "--db",
                      os.path.join(d, "users.db")], d, os.path.join(args.logs, f"weft-events.{run}.log"))
    try:
        s.ready("/healthz")
        check_events(s)
        measure(args, s, dict(weft_row, stack="weft serve --threads 1, sqlite queue"),
                "POST /events", target_of(args, "POST /events"))
    finally:
        s.stop()


# ---- the table --------------------------------------------------------------------

def table(path):
    rows = [json.loads(line) for line in open(path)]
    stacks = list(dict.fromkeys(r["stack"] for r in rows))
    med = {}
    for e in ENDPOINTS:
        for st in stacks:
            rs = [r for r in rows if r["endpoint"] == e and r["stack"] == st]
            if rs:
                m = lambda k: statistics.median(r[k] for r in rs)
                pg = [r["pg_us_req"] for r in rs if r.get("pg_us_req") is not None]
                med[e, st] = dict(rps=m("ok_rps"), p50=m("p50_ms"), p99=m("p99_ms"),
                                  cpu=m("cpu_us_req"), cores=m("cores"),
                                  pg=statistics.median(pg) if pg else None,
                                  bad=sum(r["non2xx"] for r in rs),
                                  runs=", ".join(f"{r['ok_rps']:,.0f}" for r in rs))
    print(f"Medians of {max(r['run'] for r in rows)} runs (wrk -t1 -c50, wrk on CPU 1; the server and "
          "PostgreSQL on CPU 0). req/s counts 2xx answers only (POST /events: accepted "
          "durable events/s). Server CPU: the server process's user+sys per request, "
          "PostgreSQL's own apart.\n")
    print("| endpoint | server | req/s | p50 ms | p99 ms | server CPU µs/req | server cores "
          "| PostgreSQL CPU µs/req | non-2xx | req/s of the runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for (e, st), v in med.items():
        pg = f"{v['pg']:.0f}" if v["pg"] is not None else "-"
        print(f"| {e} | {st} | {v['rps']:,.0f} | {v['p50']:.2f} | {v['p99']:.2f} | {v['cpu']:.1f} "
              f"| {v['cores']:.2f} | {pg} | {v['bad']} | {v['runs']} |")
    fast = [st for st in stacks if st.startswith("FastAPI")]
    weft = "weft serve --threads 1"
    if fast and any((e, weft) in med for e in ENDPOINTS):
        print("\n| endpoint | " + " | ".join(f"weft / {st} (req/s, CPU µs/req)" for st in fast) + " |")
        print("|---|" + "---:|" * len(fast))
        for e in ENDPOINTS[:5]:
            w = med.get((e, weft))
            cells = []
            for st in fast:
                f = med.get((e, st))
                cells.append(f"{w['rps'] / f['rps']:.1f}x, {w['cpu'] / f['cpu']:.3f}x"
                             if w and f and f["rps"] and f["cpu"] else "-")
            print(f"| {e} | " + " | ".join(cells) + " |")
    print("\nGoals (issue 14):")
    w = med.get(("/users/{id}", weft))
    if w:
        for st in fast:
            f = med.get(("/users/{id}", st))
            if f:
                x = w["rps"] / f["rps"]
                print(f"- /users/{{id}} req/s vs {st}: {x:.1f}x (goal >= 10x: "
                      f"{'met' if x >= 10 else 'not met'})")
        print(f"- /users/{{id}} weft server CPU: {w['cpu']:.1f} µs/req (goal <= 20: "
              f"{'met' if w['cpu'] <= 20 else 'not met'})")
    ev = next((v for (e, st), v in med.items() if e == "POST /events"), None)
    if ev:
        print(f"- POST /events, embedded SQLite queue: {ev['rps']:,.0f} accepted durable events/s "
              f"(goal >= 10,000: {'met' if ev['rps'] >= 10000 else 'not met'})")
        rs = [r for r in rows if r["endpoint"] == "POST /events"]
        m = lambda k: statistics.median(r.get(k, 0) for r in rs)
        print(f"  (per run, medians: {m('requests'):,.0f} answered, {m('jobs_enqueued'):,.0f} "
              f"enqueued, {m('jobs_succeeded'):,.0f} processed by the workers meanwhile on the "
              f"same core, {m('jobs_retried'):,.0f} retried, {m('jobs_dead'):,.0f} dead)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["table"]:
        table(sys.argv[2])
        sys.exit(0)
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["run", "migrate"])
    ap.add_argument("--out")
    ap.add_argument("--work", required=True, help="a directory on disk for the databases")
    ap.add_argument("--logs", required=True, help="the servers' logs")
    ap.add_argument("--weft", required=True, help="the weft binary")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--d", default="10", help="seconds per measurement")
    ap.add_argument("--warm", default="2", help="seconds of warm-up before each")
    ap.add_argument("--pg-url", help="weft's database; none: only POST /events")
    ap.add_argument("--pg-pid", type=int, help="the postmaster, for its CPU")
    ap.add_argument("--anchor", help="the seed's app.py and rand.lua")
    ap.add_argument("--anchor-dsn", default="postgresql://postgres@127.0.0.1:55432/postgres")
    ap.add_argument("--loops", default="asyncio,uvloop", help="uvicorn loops; '' for none")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally blocks stop the servers
    if args.cmd == "migrate":
        migrate(args)
    for i in range(args.runs if args.cmd == "run" else 0):
        one_run(args, i + 1)
