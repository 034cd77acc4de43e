#!/usr/bin/python3
"""API benchmark client. Prints "name median_ms p99_ms" lines.

usage: api_client.py STUBS SOCKET pages     time GetInfo (baseline), ListConnections
                                            first page and page 500, and a filtered page
       api_client.py STUBS SOCKET watch N   consume the stream from now on until N events
                                            arrived (or 120 s), then print count and
                                            "sequences contiguous" as 1 or 0
"""
import statistics
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from redirect.v1 import agent_pb2, agent_pb2_grpc, telemetry_pb2, telemetry_pb2_grpc  # noqa

ch = grpc.insecure_channel("unix:" + sys.argv[2], options=[("grpc.max_receive_message_length", 64 << 20)])
agent = agent_pb2_grpc.AgentStub(ch)
tele = telemetry_pb2_grpc.TelemetryStub(ch)


def timed(name, fn, n=200):
    fn()  # warm
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    print("%s %.3f %.3f" % (name, statistics.median(ms), ms[int(len(ms) * 0.99) - 1]))


if sys.argv[3] == "pages":
    timed("getinfo", lambda: agent.GetInfo(agent_pb2.GetInfoRequest()))
    req = telemetry_pb2.ListConnectionsRequest(page_size=100)
    timed("first_page", lambda: tele.ListConnections(req))
    token = ""
    for _ in range(499):
        token = tele.ListConnections(telemetry_pb2.ListConnectionsRequest(
            page_size=100, page_token=token)).next_page_token
    deep = telemetry_pb2.ListConnectionsRequest(page_size=100, page_token=token)
    got = tele.ListConnections(deep).connections
    assert len(got) == 100, len(got)
    timed("page_500", lambda: tele.ListConnections(deep))
    filt = telemetry_pb2.ListConnectionsRequest(page_size=100, dst_port=443, state="closed")
    timed("filtered_page", lambda: tele.ListConnections(filt))
else:
    want, seen, last, contiguous = int(sys.argv[4]), 0, None, 1
    deadline = time.time() + 120
    try:
        for ev in tele.WatchConnections(telemetry_pb2.WatchConnectionsRequest(), timeout=130):
            if last is not None and ev.sequence != last + 1:
                contiguous = 0
            last = ev.sequence
            seen += 1
            if seen >= want or time.time() > deadline:
                break
    except grpc.RpcError as e:  # the agent stopping ends the stream: expected here
        if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise
    print("watch_events %d %d" % (seen, contiguous))
