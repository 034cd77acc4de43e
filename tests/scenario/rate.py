#!/usr/bin/python3
"""Short HTTP connections, back to back, for a while; how many per second.

usage: rate.py HOST PORT SECONDS [CONCURRENCY] [MAX]
Prints one line: the successful connections in each whole second, space
separated. Stops after SECONDS, or once MAX connections were started.
"""
import asyncio
import sys
import time


async def worker(host, port, until, counts, start, limit, started):
    while time.monotonic() < until and started[0] < limit:
        started[0] += 1
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await reader.read()
            writer.close()
            if data.startswith(b"HTTP/1.1 200 "):
                sec = int(time.monotonic() - start)
                if sec < len(counts):
                    counts[sec] += 1
        except (ConnectionError, OSError):
            await asyncio.sleep(0.01)


async def main(host, port, seconds, conc, limit):
    start = time.monotonic()
    counts = [0] * seconds
    started = [0]
    await asyncio.gather(*(worker(host, port, start + seconds, counts, start, limit, started)
                           for _ in range(conc)))
    print(" ".join(str(c) for c in counts))


if __name__ == "__main__":
    a = sys.argv
    asyncio.run(main(a[1], int(a[2]), int(a[3]), int(a[4]) if len(a) > 4 else 8,
                     int(a[5]) if len(a) > 5 else 10**9))
