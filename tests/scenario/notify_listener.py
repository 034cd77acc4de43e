#!/usr/bin/python3
"""Stand in for systemd's notify socket: print each datagram's lines until
STOPPING=1 arrives (or 30 s pass). usage: notify_listener.py SOCKET_PATH"""
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
print("listening", flush=True)
try:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.splitlines():
            print(line, flush=True)
        if "STOPPING=1" in msg:
            break
except socket.timeout:
    pass
