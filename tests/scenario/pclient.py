#!/usr/bin/python3
"""Open N HTTP connections at once and print how many got status 200.

usage: pclient.py HOST PORT N PATH
curl's --parallel caps at 300 transfers, so the scenario tests use this.
"""
import asyncio
import sys


async def one(host, port, path, gate, opened):
    reader, writer = await asyncio.open_connection(host, port)
    opened.append(1)
    await gate.wait()  # every connection is open before any request goes out
    writer.write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % (path, host)).encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data.startswith(b"HTTP/1.1 200 ")


async def main(host, port, n, path):
    gate = asyncio.Event()
    opened = []
    tasks = [asyncio.create_task(one(host, port, path, gate, opened)) for _ in range(n)]
    # Release the requests once all are connected (or some failed, or 10 s passed).
    for _ in range(200):
        if len(opened) == n or any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    gate.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    print(sum(1 for d in done if d is True))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
