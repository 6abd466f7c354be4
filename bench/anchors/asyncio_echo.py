"""TCP echo anchor for weft's bench/net_echo: asyncio streams, same protocol
and output.

    asyncio_echo.py server PORT
    asyncio_echo.py client HOST PORT CONNS MSG_BYTES SECONDS
"""
import asyncio
import sys
import time


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def server(port):
    srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with srv:
        await srv.serve_forever()


async def client(host, port, conns, msg, seconds):
    end = time.monotonic() + seconds
    payload = bytes(msg)

    async def one():
        reader, writer = await asyncio.open_connection(host, port)
        n = 0
        while time.monotonic() < end:
            writer.write(payload)
            await writer.drain()
            await reader.readexactly(msg)
            n += 1
        writer.close()
        return n

    t0 = time.monotonic()
    trips = sum(await asyncio.gather(*(one() for _ in range(conns))))
    dt = time.monotonic() - t0
    print(f"round_trips_per_sec {trips / dt:.0f}")
    print(f"mb_per_sec {trips * msg / dt / 1e6:.1f}")


if __name__ == "__main__":
    a = sys.argv
    if len(a) == 3 and a[1] == "server":
        asyncio.run(server(int(a[2])))
    elif len(a) == 7 and a[1] == "client":
        asyncio.run(client(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6])))
    else:
        sys.exit("usage: asyncio_echo.py server PORT | client HOST PORT CONNS MSG SECONDS")
