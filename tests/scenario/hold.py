#!/usr/bin/python3
"""Hold many idle TCP connections, for the RSS-per-connection benchmark.

hold.py server PORT         accept and hold every connection until its peer closes
hold.py client HOST PORT N  open N connections (500 at a time), print "ready K" with
                            how many are open, then hold them until stdin closes
"""
import asyncio
import resource
import socket
import sys

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port):
    async def hold(reader, writer):
        try:
            await reader.read()
        finally:
            writer.close()

    # asyncio would set IPV6_V6ONLY on "::": bind dual-stack ourselves.
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    server = await asyncio.start_server(hold, sock=sock, backlog=4096)
    async with server:
        await server.serve_forever()


async def client(host, port, n):
    conns = []
    for start in range(0, n, 500):
        batch = await asyncio.gather(
            *[asyncio.open_connection(host, port) for _ in range(min(500, n - start))],
            return_exceptions=True)
        conns += [c for c in batch if not isinstance(c, Exception)]
        errors = [c for c in batch if isinstance(c, Exception)]
        if errors:
            print("hold.py: %d connections failed, e.g. %r" % (len(errors), errors[0]),
                  file=sys.stderr)
    print("ready %d" % len(conns), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
