#!/usr/bin/env python3
"""A TCP proxy that delays every server->client byte by DELAY seconds (a
slow network to the database): delay_proxy.py LISTEN_PORT TARGET_PORT DELAY
LOG. Order is kept; only latency is added. Each chunk the server sends is
logged (a line in LOG) as it arrives, before the delay: a test knows the
server has answered (its snapshot taken) while the client has not seen it."""
import asyncio, sys

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

async def pipe(r, w, lag):
    try:
        while True:
            b = await r.read(65536)
            if not b:
                break
            if lag:
                with open(sys.argv[4], "a") as f:
                    f.write("%d\n" % len(b))
                await asyncio.sleep(lag)
            w.write(b)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()

async def handle(cr, cw):
    sr, sw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(cr, sw, 0), pipe(sr, cw, delay))

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
