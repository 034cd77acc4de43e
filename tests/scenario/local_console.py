#!/usr/bin/python3
"""A console on the Windows agent's local endpoint: loopback TCP with mutual
TLS, the CA and the admin certificate the agent made in its data folder.

usage: local_console.py STUBS_DIR DATA_DIR REMOTE_CERTS_DIR REMOTE_HOST:PORT

DATA_DIR holds agent.sock ("127.0.0.1:PORT") and the local-*.pem/.key files;
REMOTE_CERTS_DIR the remote console's CA and certificates (test_windows.sh).
"""
import os
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from redirect.v1 import (agent_pb2, agent_pb2_grpc, policy_pb2, policy_pb2_grpc,  # noqa: E402
                         telemetry_pb2, telemetry_pb2_grpc)

DATA, REMOTE_CERTS, REMOTE = sys.argv[2], sys.argv[3], sys.argv[4]
failures = 0


def read(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def check(what, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else " " + detail))
    failures += 0 if cond else 1


LOCAL = read(DATA, "agent.sock").decode().strip()
check("the endpoint file names a loopback port", LOCAL.startswith("127.0.0.1:"), LOCAL)


def channel(target, ca, cert_key):
    if cert_key is None:
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=cert_key[1],
                                             certificate_chain=cert_key[0])
    return grpc.secure_channel(target, creds)


def code_of(fn, req):
    try:
        fn(req, timeout=5)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


LOCAL_CA = read(DATA, "local-ca.pem")
ADMIN = (read(DATA, "local-admin.pem"), read(DATA, "local-admin.key"))
OK, UNAVAIL = grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE

# Every method, as the local admin.
ch = channel(LOCAL, LOCAL_CA, ADMIN)
a, t, p = (agent_pb2_grpc.AgentStub(ch), telemetry_pb2_grpc.TelemetryStub(ch),
           policy_pb2_grpc.PolicyStub(ch))
before = p.GetPolicy(policy_pb2.GetPolicyRequest(), timeout=5).version
every = {
    "Agent.GetInfo": code_of(a.GetInfo, agent_pb2.GetInfoRequest()),
    "Agent.GetHealth": code_of(a.GetHealth, agent_pb2.GetHealthRequest()),
    "Telemetry.GetStats": code_of(t.GetStats, telemetry_pb2.GetStatsRequest()),
    "Telemetry.ListConnections": code_of(t.ListConnections, telemetry_pb2.ListConnectionsRequest()),
    "Policy.GetPolicy": code_of(p.GetPolicy, policy_pb2.GetPolicyRequest()),
    "Policy.SetPolicy": code_of(p.SetPolicy, policy_pb2.SetPolicyRequest(
        document_json="{}", expected_version=before)),
    "Policy.ValidatePolicy": code_of(p.ValidatePolicy,
                                     policy_pb2.ValidatePolicyRequest(document_json="{}")),
    "Policy.ListPolicyHistory": code_of(p.ListPolicyHistory, policy_pb2.ListPolicyHistoryRequest()),
}
for k, (code, why) in every.items():
    check("local admin: %s answers OK" % k, code == OK, "%s %s" % (code, why))
info = a.GetInfo(agent_pb2.GetInfoRequest(), timeout=5)
check("GetInfo says windows", "windows" in str(info).lower(), str(info))
v = p.GetPolicy(policy_pb2.GetPolicyRequest(), timeout=5)
check("the policy set over the local endpoint names the local admin as its author",
      v.version == before + 1 and v.author == "local admin", str(v))

# Nothing else gets in.
r = code_of(agent_pb2_grpc.AgentStub(channel(LOCAL, LOCAL_CA, None)).GetInfo,
            agent_pb2.GetInfoRequest())
check("local endpoint without a client certificate: refused (UNAVAILABLE)", r[0] == UNAVAIL, str(r))
remote_admin = (read(REMOTE_CERTS, "admin.pem"), read(REMOTE_CERTS, "admin.key"))
r = code_of(agent_pb2_grpc.AgentStub(channel(LOCAL, LOCAL_CA, remote_admin)).GetInfo,
            agent_pb2.GetInfoRequest())
check("local endpoint with the remote console's admin certificate: refused (UNAVAILABLE)",
      r[0] == UNAVAIL, str(r))
r = code_of(agent_pb2_grpc.AgentStub(
    channel(REMOTE, read(REMOTE_CERTS, "ca.pem"), ADMIN)).GetInfo, agent_pb2.GetInfoRequest())
check("the remote listener with the local admin certificate: refused (UNAVAILABLE)",
      r[0] == UNAVAIL, str(r))
r = code_of(agent_pb2_grpc.AgentStub(channel(LOCAL, read(REMOTE_CERTS, "ca.pem"), ADMIN)).GetInfo,
            agent_pb2.GetInfoRequest())
check("a client trusting another CA does not accept the local endpoint (UNAVAILABLE)",
      r[0] == UNAVAIL, str(r))
sys.exit(1 if failures else 0)
