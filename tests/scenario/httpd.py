#!/usr/bin/python3
"""A small real HTTP/1.1 server for the scenario tests (Debian's /usr/bin/python3).

GET /            -> "hello from <host>\n"
GET /bytes/N     -> N bytes of 'x'
GET /hold/S      -> waits S seconds, then answers "held\n"
POST /echo       -> the request body back
Each response closes the connection. Listens dual-stack on the given port.
"""
import asyncio
import socket
import sys


async def handle(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if method == "POST":
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        if path.startswith("/bytes/"):
            payload = b"x" * int(path[len("/bytes/"):])
        elif path.startswith("/hold/"):
            await asyncio.sleep(float(path[len("/hold/"):]))
            payload = b"held\n"
        elif path == "/echo":
            payload = body
        else:
            payload = ("hello from %s\n" % socket.gethostname()).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(payload))
        writer.write(payload)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    server = await asyncio.start_server(handle, sock=sock, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
