#!/usr/bin/python3
"""Clients and upstream servers for the agent's relay under wine.

usage: wine_relay.py table AGENT_PORT  print the RA_TEST_REDIRECT table for the agent
       wine_relay.py run AGENT_PORT    the clients (the agent already runs)
       wine_relay.py idle AGENT_PORT   one idle session (idle_timeout_s = 1)

redirect-agent-test.exe (tests/windows/redirect_test.c) takes the original
destination of each connection from its client's source port: the ranges
below. This script is both sides: it binds its client sockets to a port of
the right range, and it runs the upstream servers the agent connects to.
Prints "ok - ..." / "not ok - ..." lines; test_windows.sh counts them and
then checks the rows the agent wrote.
"""
import hashlib
import os
import random
import socket
import socketserver
import sys
import threading
import time

ECHO, HALFCLOSE, REFUSED, SILENT = 25101, 25102, 25103, 25104
RANGES = {  # client source ports -> original destination
    "echo": (41000, 41999, "127.0.0.1:%d" % ECHO),
    "halfclose": (42000, 42099, "127.0.0.1:%d" % HALFCLOSE),
    "refused": (42100, 42199, "127.0.0.1:%d" % REFUSED),
    "silent": (42200, 42299, "127.0.0.1:%d" % SILENT),
    "echo6": (42300, 42399, "[::1]:%d" % ECHO),
    "loop": (42400, 42499, None),  # the agent's own listener: filled in by run
}
DIRECT = (45000, 45999)  # in no range: a direct connection to the listener
failures = 0


def check(what, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else " " + str(detail)),
          flush=True)
    failures += 0 if cond else 1


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while True:
                data = self.request.recv(65536)
                if not data:
                    break
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # the agent resets an idle session's upstream: expected


class HalfClose(socketserver.BaseRequestHandler):
    """Reads to the client's FIN, then answers with the count and SHA-256 of it."""
    def handle(self):
        h, n = hashlib.sha256(), 0
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        self.request.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


def serve(cls, addr, handler):
    s = cls(addr, handler)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


next_port = {}


def connect(kind, agent_port, family=socket.AF_INET):
    """A client socket bound to a free port of kind's range, connected to the agent."""
    lo, hi = DIRECT if kind == "direct" else RANGES[kind][:2]
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    if kind not in next_port:
        next_port[kind] = random.randint(lo, hi)
    for _ in range(hi - lo + 1):
        port = next_port[kind]
        next_port[kind] = lo if port >= hi else port + 1
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.connect((host, agent_port))
            s.settimeout(10)
            return s
        except OSError:
            s.close()
    raise RuntimeError("no free client port in %s" % kind)


def recv_all(s, n):
    buf = b""
    while len(buf) < n:
        data = s.recv(min(65536, n - len(buf)))
        if not data:
            break
        buf += data
    return buf


def closed_within(s, seconds):
    """Seconds until the agent closed s (EOF or reset), or None if it did not."""
    start = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - start


def idle(agent_port):
    """The agent runs with idle_timeout_s = 1: nothing moves after one exchange."""
    serve(Server, ("127.0.0.1", ECHO), Echo)
    s = connect("echo", agent_port)
    s.sendall(b"x")
    check("idle session: one exchange", recv_all(s, 1) == b"x")
    t = closed_within(s, 8)
    check("idle session: closed after idle_timeout_s (1 s)", t is not None and 0.8 < t < 4, t)
    s.close()
    time.sleep(0.5)  # its row reaches the writer
    sys.exit(1 if failures else 0)


def run(agent_port):
    serve(Server, ("127.0.0.1", ECHO), Echo)
    serve(Server6, ("::1", ECHO), Echo)
    serve(Server, ("127.0.0.1", HALFCLOSE), HalfClose)
    # Silent: a listener whose accept queue is full drops further SYNs, so
    # the agent's connect times out (connect_timeout_ms).
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", SILENT))
    silent.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", SILENT))
        fillers.append(f)
    time.sleep(0.2)

    # Bytes both ways, intact.
    data = os.urandom(300 * 1024)
    s = connect("echo", agent_port)
    threading.Thread(target=s.sendall, args=(data,), daemon=True).start()
    back = recv_all(s, len(data))
    check("300 KiB up and back through the relay, intact",
          hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), len(back))
    s.close()

    s = connect("echo6", agent_port, socket.AF_INET6)
    s.sendall(b"over IPv6\n")
    check("a client on the IPv6 listener (::1), upstream over IPv6",
          recv_all(s, 10) == b"over IPv6\n")
    s.close()

    # Half-close: the client's FIN reaches the upstream, whose answer still comes back.
    data = os.urandom(100 * 1024)
    s = connect("halfclose", agent_port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
    check("half-close: the upstream saw the client's FIN after 100 KiB, and its answer arrived",
          recv_all(s, len(want) + 1) == want)
    s.close()

    # A refused upstream: the client is closed at once.
    s = connect("refused", agent_port)
    t = closed_within(s, 5)
    check("refused upstream: the client is closed within 2 s", t is not None and t < 2, t)
    s.close()

    # A silent upstream: closed after connect_timeout_ms (1500).
    s = connect("silent", agent_port)
    t = closed_within(s, 8)
    check("silent upstream: the client is closed after the connect timeout (1.5 s)",
          t is not None and 1.2 < t < 5, t)
    s.close()

    # 200 connections open at once, each with its own bytes.
    socks = [connect("echo", agent_port) for _ in range(200)]
    payloads = [os.urandom(1024) for _ in socks]
    for s, p in zip(socks, payloads):
        s.sendall(p)
    good = sum(1 for s, p in zip(socks, payloads) if recv_all(s, len(p)) == p)
    check("200 connections at once, each echoed its own 1 KiB", good == 200, good)
    for s in socks:
        s.close()

    # Straight to the listener, and a loop back to it: refused.
    s = connect("direct", agent_port)
    t = closed_within(s, 5)
    check("a direct connection to the listener is closed", t is not None, t)
    s.close()
    s = connect("loop", agent_port)
    t = closed_within(s, 5)
    check("a connection whose original destination is the listener is closed", t is not None, t)
    s.close()
    time.sleep(0.5)  # the last rows reach the writer
    for f in fillers:
        f.close()
    silent.close()
    sys.exit(1 if failures else 0)


if sys.argv[1] == "table":
    agent_port = int(sys.argv[2])
    RANGES["loop"] = (42400, 42499, "127.0.0.1:%d" % agent_port)
    print(",".join("%d-%d=%s" % r for r in RANGES.values()))
elif sys.argv[1] == "idle":
    idle(int(sys.argv[2]))
else:
    run(int(sys.argv[2]))
