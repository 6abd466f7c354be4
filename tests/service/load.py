#!/usr/bin/env python3
"""A load of requests on weft serve, for the service tests.

  load.py events URL... --out FILE [--threads N] [--max N]
      POSTs events (user_id 1..10000) over keep-alive connections, spread
      over the URLs, appending the id of every 202 to FILE as it comes (a
      line each, flushed), until --max accepted or a server goes away.
  load.py get URL... --out FILE [--threads N] [--stop FILE]
      GETs the URLs until the stop file exists, appending "status path" for
      each answer ("error path" when none came in 20 s) to FILE.
"""
import argparse, http.client, json, os, random, sys, threading, urllib.parse

def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=20), u.path or "/"

def events(args, out, lock, n):
    c, _ = conn(args.urls[n % len(args.urls)])
    while True:
        with lock:
            if args.max and args.accepted >= args.max:
                return
        body = json.dumps({"type": "load", "user_id": random.randint(1, 10000), "data": {"n": n}})
        try:
            c.request("POST", "/events", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            return                          # the server went away
        if r.status == 202:
            with lock:
                out.write("%d\n" % json.loads(data)["id"])
                out.flush()
                args.accepted += 1

def gets(args, out, lock, n):
    c, path = None, None
    i = n
    while not os.path.exists(args.stop):
        url = args.urls[i % len(args.urls)]
        i += 1
        try:
            if c is None:
                c, _ = conn(url)
            u = urllib.parse.urlsplit(url)
            path = u.path + ("?" + u.query if u.query else "")
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            line = "%d %s%s\n" % (r.status, path,
                                   " retry-after" if r.getheader("Retry-After") else "")
            if r.getheader("Connection", "").lower() == "close":
                c.close(); c = None
        except (OSError, http.client.HTTPException) as e:
            line = "error %s %s\n" % (path, type(e).__name__)
            c = None
        with lock:
            out.write(line)
            out.flush()

def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["events", "get"])
    p.add_argument("urls", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--max", type=int, default=0)
    p.add_argument("--stop", default="")
    args = p.parse_args()
    args.accepted = 0
    lock = threading.Lock()
    with open(args.out, "a") as out:
        fn = events if args.mode == "events" else gets
        ts = [threading.Thread(target=fn, args=(args, out, lock, n)) for n in range(args.threads)]
        for t in ts: t.start()
        for t in ts: t.join()

main()
