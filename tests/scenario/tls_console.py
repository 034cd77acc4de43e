#!/usr/bin/python3
"""The console over mutual TLS: what each client certificate may do.

usage: tls_console.py STUBS_DIR CERTS_DIR HOST:PORT
"""
import os
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from redirect.v1 import (agent_pb2, agent_pb2_grpc, policy_pb2, policy_pb2_grpc,  # noqa: E402
                         telemetry_pb2, telemetry_pb2_grpc)

CERTS, TARGET = sys.argv[2], sys.argv[3]
failures = 0


def read(name):
    with open(os.path.join(CERTS, name), "rb") as f:
        return f.read()


def check(what, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else " " + detail))
    failures += 0 if cond else 1


def channel(who):
    if who is None:  # no client certificate at all
        creds = grpc.ssl_channel_credentials(root_certificates=read("ca.pem"))
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=read("ca.pem"),
                                             private_key=read(who + ".key"),
                                             certificate_chain=read(who + ".pem"))
    return grpc.secure_channel(TARGET, creds)


def code_of(fn, req):
    try:
        fn(req, timeout=5)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def calls(who):
    ch = channel(who)
    a, t, p = (agent_pb2_grpc.AgentStub(ch), telemetry_pb2_grpc.TelemetryStub(ch),
               policy_pb2_grpc.PolicyStub(ch))
    return {
        "GetInfo": code_of(a.GetInfo, agent_pb2.GetInfoRequest()),
        "ListConnections": code_of(t.ListConnections, telemetry_pb2.ListConnectionsRequest()),
        "GetPolicy": code_of(p.GetPolicy, policy_pb2.GetPolicyRequest()),
        "SetPolicy": code_of(p.SetPolicy, policy_pb2.SetPolicyRequest(document_json="{}")),
    }


OK, DENIED, UNIMPL, UNAVAIL = (grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED,
                               grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE)

r = calls("reader")
check("reader: Agent and Telemetry", r["GetInfo"][0] == OK and r["ListConnections"][0] == OK, str(r))
check("reader: SetPolicy is PERMISSION_DENIED, saying why",
      r["SetPolicy"][0] == DENIED and "console-reader is a reader" in r["SetPolicy"][1], str(r))
check("reader: GetPolicy is PERMISSION_DENIED", r["GetPolicy"][0] == DENIED, str(r))

r = calls("admin")
check("admin: Agent and Telemetry", r["GetInfo"][0] == OK and r["ListConnections"][0] == OK, str(r))

# Every method over mTLS, as the admin console.
ch = channel("admin")
a, t, p = (agent_pb2_grpc.AgentStub(ch), telemetry_pb2_grpc.TelemetryStub(ch),
           policy_pb2_grpc.PolicyStub(ch))
every = {
    "Agent.GetInfo": code_of(a.GetInfo, agent_pb2.GetInfoRequest()),
    "Agent.GetHealth": code_of(a.GetHealth, agent_pb2.GetHealthRequest()),
    "Telemetry.GetStats": code_of(t.GetStats, telemetry_pb2.GetStatsRequest()),
    "Telemetry.ListConnections": code_of(t.ListConnections, telemetry_pb2.ListConnectionsRequest()),
    "Telemetry.GetConnection": code_of(t.GetConnection, telemetry_pb2.GetConnectionRequest(id=1)),
    "Policy.GetPolicy": code_of(p.GetPolicy, policy_pb2.GetPolicyRequest()),
    "Policy.SetPolicy": code_of(p.SetPolicy, policy_pb2.SetPolicyRequest()),
    "Policy.ValidatePolicy": code_of(p.ValidatePolicy, policy_pb2.ValidatePolicyRequest()),
    "Policy.ListPolicyHistory": code_of(p.ListPolicyHistory, policy_pb2.ListPolicyHistoryRequest()),
}
try:  # a stream from now on: nothing arrives within its deadline
    list(t.WatchConnections(telemetry_pb2.WatchConnectionsRequest(), timeout=1))
    every["Telemetry.WatchConnections"] = (OK, "")
except grpc.RpcError as e:
    every["Telemetry.WatchConnections"] = (e.code(), e.details())
expected = {k: OK for k in every}
expected["Telemetry.GetConnection"] = grpc.StatusCode.NOT_FOUND  # no traffic in this test
expected["Telemetry.WatchConnections"] = grpc.StatusCode.DEADLINE_EXCEEDED
# calls("admin") above set version 1 ("{}"); an empty request is no JSON at all.
expected["Policy.SetPolicy"] = grpc.StatusCode.INVALID_ARGUMENT
for k, (code, why) in every.items():
    check("admin over mTLS: %s answers %s" % (k, expected[k].name), code == expected[k],
          "%s %s" % (code, why))
check("admin: Policy is allowed: GetPolicy, and SetPolicy of {} as version 1",
      r["SetPolicy"][0] == OK and r["GetPolicy"][0] == OK, str(r))
v = p.GetPolicy(policy_pb2.GetPolicyRequest(), timeout=5)
check("the version records the certificate identity as its author",
      v.version == 1 and v.author == "console-admin", str(v))

r = calls("stranger")
check("a valid certificate with no role: PERMISSION_DENIED everywhere",
      all(v[0] == DENIED for v in r.values()) and "stranger has no role" in r["GetInfo"][1], str(r))

r = calls(None)
check("no client certificate: refused (UNAVAILABLE)", all(v[0] == UNAVAIL for v in r.values()), str(r))

r = calls("impostor")
check("a certificate from another CA, even named console-admin: refused (UNAVAILABLE)",
      all(v[0] == UNAVAIL for v in r.values()), str(r))
sys.exit(1 if failures else 0)
