#!/usr/bin/python3
"""A console written with Python's grpcio, as a vendor would: stubs generated
from proto/ at test time. Calls every method over the agent's unix socket and
checks the answers. Prints one "ok - ..." / "not ok - ..." line per check.

usage: console.py STUBS_DIR SOCKET SERVER_ADDR
"""
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from redirect.v1 import (agent_pb2, agent_pb2_grpc, policy_pb2, policy_pb2_grpc,  # noqa: E402
                         telemetry_pb2, telemetry_pb2_grpc)

SOCKET, SERVER = sys.argv[2], sys.argv[3]
failures = 0


def check(what, cond, detail=""):
    global failures
    if cond:
        print("ok - " + what)
    else:
        failures += 1
        print("not ok - %s %s" % (what, detail))


def code_of(fn, *args, **kw):
    try:
        fn(*args, timeout=5, **kw)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


ch = grpc.insecure_channel("unix:" + SOCKET)
agent = agent_pb2_grpc.AgentStub(ch)
tele = telemetry_pb2_grpc.TelemetryStub(ch)
pol = policy_pb2_grpc.PolicyStub(ch)

info = agent.GetInfo(agent_pb2.GetInfoRequest(), timeout=5)
check("GetInfo: agent id and platform", info.agent_id == "default" and info.platform == "linux",
      str(info))
check("GetInfo: config summary", info.config["proxy.listen_port"] == "15001", str(info.config))
check("GetInfo: the event loops it runs (workers = 2)", info.workers == 2, str(info.workers))
health = agent.GetHealth(agent_pb2.GetHealthRequest(), timeout=5)
check("GetHealth: serving", health.status == agent_pb2.Health.SERVING, str(health))

stats = tele.GetStats(telemetry_pb2.GetStatsRequest(), timeout=5)
check("GetStats: 12 accepted, 10 relayed, 2 failed",
      (stats.accepted, stats.relayed, stats.failed) == (12, 10, 2), str(stats))
check("GetStats: db counters", stats.db_rows_written >= 12 and stats.events_dropped == 0, str(stats))

# Pagination: 12 rows in pages of 5, newest first, each once.
ids, token, pages = [], "", 0
while True:
    r = tele.ListConnections(telemetry_pb2.ListConnectionsRequest(page_size=5, page_token=token),
                             timeout=5)
    ids += [c.id for c in r.connections]
    pages += 1
    token = r.next_page_token
    if not token:
        break
check("ListConnections: 3 pages, all 12 rows newest first", pages == 3 and ids == list(range(12, 0, -1)),
      str(ids))
r = tele.ListConnections(telemetry_pb2.ListConnectionsRequest(dst_cidr=SERVER + "/32", dst_port=80),
                         timeout=5)
check("ListConnections: destination filter", len(r.connections) == 10, str(len(r.connections)))
r = tele.ListConnections(telemetry_pb2.ListConnectionsRequest(state="failed"), timeout=5)
check("ListConnections: state filter (2 failed)", len(r.connections) == 2 and
      all(c.close_reason == "upstream connect failed" for c in r.connections), str(r))
code, why = code_of(tele.ListConnections, telemetry_pb2.ListConnectionsRequest(dst_cidr="10.0.0.1/8"))
check("ListConnections: a bad CIDR is INVALID_ARGUMENT naming the field",
      code == grpc.StatusCode.INVALID_ARGUMENT and why.startswith("dst_cidr:"), "%s %s" % (code, why))
code, why = code_of(tele.ListConnections, telemetry_pb2.ListConnectionsRequest(page_token="forged"))
check("ListConnections: a forged page token is INVALID_ARGUMENT",
      code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in why, "%s %s" % (code, why))

c = tele.GetConnection(telemetry_pb2.GetConnectionRequest(id=1), timeout=5)
check("GetConnection: row 1 in full", c.id == 1 and c.orig_dst_addr == SERVER and c.state == "closed"
      and c.bytes_down > 0 and c.verdict == "allow", str(c))
code, why = code_of(tele.GetConnection, telemetry_pb2.GetConnectionRequest(id=424242))
check("GetConnection: unknown id is NOT_FOUND", code == grpc.StatusCode.NOT_FOUND, "%s %s" % (code, why))

for name, call, req in [("GetPolicy", pol.GetPolicy, policy_pb2.GetPolicyRequest()),
                        ("SetPolicy", pol.SetPolicy, policy_pb2.SetPolicyRequest()),
                        ("ValidatePolicy", pol.ValidatePolicy, policy_pb2.ValidatePolicyRequest()),
                        ("ListPolicyHistory", pol.ListPolicyHistory,
                         policy_pb2.ListPolicyHistoryRequest())]:
    code, why = code_of(call, req)
    want = grpc.StatusCode.INVALID_ARGUMENT if name == "SetPolicy" else grpc.StatusCode.OK
    check("%s answers %s" % (name, want.name), code == want, "%s %s" % (code, why))

# The console's policy round: validate, set (compare-and-set), history.
import json  # noqa: E402
doc = json.dumps({"default_action": "allow", "rules": [
    {"id": "no-telnet", "action": "block", "match": {"dst_ports": [23]}},
    {"id": "lab", "action": "allow", "match": {"dst_cidrs": [SERVER + "/32"], "dst_ports": [80]}}]})
r = pol.ValidatePolicy(policy_pb2.ValidatePolicyRequest(document_json=doc, simulate_last=100),
                       timeout=5)
check("ValidatePolicy: a good document has no problems, and is simulated on the recorded rows",
      list(r.problems) == [] and r.simulated >= 10 and r.changed == 0, str(r))
bad = json.dumps({"rules": [{"id": "x", "action": "allow", "match": {"dst_cidrs": ["300.1.1.1/8"]}}]})
r = pol.ValidatePolicy(policy_pb2.ValidatePolicyRequest(document_json=bad), timeout=5)
check("ValidatePolicy: a bad document's problem has its path",
      len(r.problems) == 1 and r.problems[0].startswith("rules[0].match.dst_cidrs[0]: not a CIDR"),
      str(r))
before = pol.GetPolicy(policy_pb2.GetPolicyRequest(), timeout=5).version
v = pol.SetPolicy(policy_pb2.SetPolicyRequest(document_json=doc, expected_version=before), timeout=5)
check("SetPolicy: the next version, with its sha256 and rule count",
      v.version == before + 1 and len(v.sha256) == 64 and v.rules == 2, str(v))
code, why = code_of(pol.SetPolicy, policy_pb2.SetPolicyRequest(document_json=doc,
                                                               expected_version=before))
check("SetPolicy: a stale expected_version is FAILED_PRECONDITION",
      code == grpc.StatusCode.FAILED_PRECONDITION and "at version %d" % (before + 1) in why,
      "%s %s" % (code, why))
code, why = code_of(pol.SetPolicy, policy_pb2.SetPolicyRequest(document_json=bad,
                                                               expected_version=before + 1))
check("SetPolicy: an invalid document is INVALID_ARGUMENT, the old policy stays",
      code == grpc.StatusCode.INVALID_ARGUMENT and "rules[0].match.dst_cidrs[0]" in why and
      pol.GetPolicy(policy_pb2.GetPolicyRequest(), timeout=5).version == before + 1,
      "%s %s" % (code, why))
h = pol.ListPolicyHistory(policy_pb2.ListPolicyHistoryRequest(), timeout=5)
check("ListPolicyHistory: newest first, with author and document",
      h.versions[0].version == before + 1 and h.versions[0].author == "local socket" and
      json.loads(h.versions[0].document_json)["rules"][0]["id"] == "no-telnet", str(h))
st = tele.GetStats(telemetry_pb2.GetStatsRequest(), timeout=5)
check("GetStats: the policy in force and a hit count per rule",
      st.policy_version == before + 1 and [x.rule_id for x in st.rule_hits] == ["no-telnet", "lab", ""],
      str(st.rule_hits))

raw = ch.unary_unary("/redirect.v1.Telemetry/GetConnection")
code, why = code_of(raw, b"\xff\xff\xff\xff\x0f garbage")
check("a garbage payload is INVALID_ARGUMENT", code == grpc.StatusCode.INVALID_ARGUMENT,
      "%s %s" % (code, why))
code, why = code_of(raw, b"\x08" + b"\x80" * (5 << 20))
check("an oversized message is refused (RESOURCE_EXHAUSTED)",
      code == grpc.StatusCode.RESOURCE_EXHAUSTED, "%s %s" % (code, why))
code, why = code_of(ch.unary_unary("/redirect.v1.Nothing/Here"), b"")
check("an unknown method is UNIMPLEMENTED at once", code == grpc.StatusCode.UNIMPLEMENTED,
      "%s %s" % (code, why))
# The agent still answers after all that.
check("still serving", agent.GetHealth(agent_pb2.GetHealthRequest(), timeout=5).status ==
      agent_pb2.Health.SERVING)
sys.exit(1 if failures else 0)
