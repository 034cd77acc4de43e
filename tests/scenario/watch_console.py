#!/usr/bin/python3
"""Watch, disconnect, resume: prints the sequence numbers received, one per line.

usage: watch_console.py STUBS_DIR SOCKET FIRST_BATCH RESUME_SECONDS
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from redirect.v1 import telemetry_pb2, telemetry_pb2_grpc  # noqa: E402

ch = grpc.insecure_channel("unix:" + sys.argv[2])
t = telemetry_pb2_grpc.TelemetryStub(ch)
first, resume_for = int(sys.argv[3]), float(sys.argv[4])

# From now on (a fresh agent: from the first event), until FIRST_BATCH arrived.
seen = []
stream = t.WatchConnections(telemetry_pb2.WatchConnectionsRequest(after_sequence=0), timeout=30)
for ev in stream:
    seen.append(ev.sequence)
    if len(seen) == first:
        break
stream.cancel()  # the console goes away mid-traffic
print("disconnected after", seen[-1], file=sys.stderr)
time.sleep(0.5)

# Resume exactly after the last one received, while traffic goes on.
try:
    for ev in t.WatchConnections(
            telemetry_pb2.WatchConnectionsRequest(after_sequence=seen[-1]), timeout=resume_for):
        seen.append(ev.sequence)
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
        raise
for s in seen:
    print(s)
