#!/usr/bin/python3
"""Half-close peer: reads until the client's FIN, then answers with the byte
count and SHA-256 of what it read, then closes. Serves one connection at a time."""
import hashlib
import socket
import sys

srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.bind(("::", int(sys.argv[1])))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    h, n = hashlib.sha256(), 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        h.update(data)
        n += len(data)
    conn.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
    conn.close()
