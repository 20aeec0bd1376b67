"""Trust in the manifests, checked offline (issue 22: Kafka identities, ClickHouse users, the cluster).

- Kafka: no listener without TLS and authentication, ``authorization: simple``; the KafkaUsers are the ACL
  table of :mod:`infra.kafka_acls` (the one the local secured broker applies); each component logs in as its
  own user with the password Strimzi made for it and trusts the cluster CA.
- No password in git: no Secret with data, no DSN with a password, in any overlay.
- ClickHouse: every user's password from a Secret, no open network, the ingest user confined to the ocpp
  database, the analyst profile read-only and bounded (its grants parsed and its limits enforced by the real
  engine: chDB), securityContext on ClickHouse and Keeper as on the services (validated as a Pod).
- NetworkPolicies: every pair of endpoints and every port evaluated (:mod:`tests.network_policy`, with the
  policy Strimzi makes from the listeners' peers), equal to the flows the design lists, nothing more.
"""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest

from infra import clickhouse, k8s_users
from infra.k8s_topics import APP_ID
from infra.kafka_acls import Binding, Operation, PatternType, Resource, ResourceType, bindings, identities
from tests.network_policy import Endpoint, allowed
from tests.test_k8s import K8S, OVERLAYS, by_kind, rendered

STRIMZI_OPS = {op.strimzi: op for op in Operation}
STRIMZI_TYPES = {t.strimzi: t for t in ResourceType}
STRIMZI_PATTERNS = {p.strimzi: p for p in PatternType}


def workload_containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
            for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")}


# --- Kafka ---------------------------------------------------------------------------------------


def test_kafka_users_are_generated_from_the_acl_table() -> None:
    assert (K8S / "base" / "kafka-users.yaml").read_text() == k8s_users.render()
    held = set()
    for user in by_kind(rendered("prod"), "KafkaUser"):
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        for acl in user["spec"]["authorization"]["acls"]:
            r = acl["resource"]
            resource = Resource(STRIMZI_TYPES[r["type"]], r.get("name", "kafka-cluster"),
                                STRIMZI_PATTERNS[r.get("patternType", "literal")])
            held |= {Binding(f"User:{user['metadata']['name']}", resource, STRIMZI_OPS[op]) for op in acl["operations"]}
    assert held == bindings(identities("", APP_ID))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_takes_no_anonymous_client_and_authorizes_every_request(overlay: str) -> None:
    (kafka,) = by_kind(rendered(overlay), "Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert listeners and all(l["tls"] and l["authentication"]["type"] in ("scram-sha-512", "tls") for l in listeners)
    assert all(l.get("networkPolicyPeers") for l in listeners)  # Strimzi's policy admits only them
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert "superUsers" not in kafka["spec"]["kafka"]["authorization"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_component_is_its_own_kafka_user(overlay: str) -> None:
    docs = rendered(overlay)
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ocpp-config"))["data"]
    assert (config["OCPP_KAFKA_SECURITY_PROTOCOL"], config["OCPP_KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    users = {u["metadata"]["name"] for u in by_kind(docs, "KafkaUser")}
    (kafka,) = by_kind(docs, "Kafka")
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    for workload, user in (("ocpp-gateway", "ocpp-gateway"), ("ocpp-worker", "ocpp-worker")):
        pod = workloads[workload]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["OCPP_KAFKA_SASL_USERNAME"]["value"] == user and user in users
        assert env["OCPP_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": user, "key": "password"}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        (volume,) = [v for v in pod["volumes"] if v["name"] == mounts["/etc/ocpp/kafka-ca"]]
        assert volume["secret"]["secretName"] == f"{kafka['metadata']['name']}-cluster-ca-cert"
        assert config["OCPP_KAFKA_SSL_CAFILE"].startswith("/etc/ocpp/kafka-ca/")


# --- no password in git ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_password_is_in_git(overlay: str) -> None:
    docs = rendered(overlay)
    assert not by_kind(docs, "Secret"), "Secrets are created outside git (README)"
    text = json.dumps(docs)
    assert not re.search(r"(https?|clickhouse)://[^/\s\"@]+:[^/\s\"@]+@", text), "a DSN with a password"
    for container in workload_containers(docs).values():
        for entry in container.get("env", []):
            if re.search(r"PASSWORD|DSN|TOKEN", entry["name"]):
                assert "valueFrom" in entry, entry


# --- ClickHouse ---------------------------------------------------------------------------------------


def users_of(overlay: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(users, profiles) of the ClickHouseInstallation, from the operator's ``name/path/to/key`` form."""
    (chi,) = by_kind(rendered(overlay), "ClickHouseInstallation")
    nested: dict[str, dict[str, dict[str, Any]]] = {"users": {}, "profiles": {}}
    for section in nested:
        for key, value in chi["spec"]["configuration"].get(section, {}).items():
            name, _, rest = key.partition("/")
            nested[section].setdefault(name, {})[rest] = value
    return nested["users"], nested["profiles"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_clickhouse_users_have_secret_passwords_private_networks_and_narrow_grants(overlay: str) -> None:
    users, profiles = users_of(overlay)
    assert set(users) == {"ocpp_ingest", "analyst"}
    for name, user in users.items():
        assert user["k8s_secret_password"].startswith("ocpp-clickhouse/"), name
        networks = user["networks/ip"]
        assert networks and not {"::/0", "0.0.0.0/0", "::", "0.0.0.0"} & set(networks), name
        assert all(grant.rstrip().endswith(("ON ocpp.*", "CLUSTER ON *.*")) for grant in user["grants/query"]), name
    assert users["analyst"]["grants/query"] == ["GRANT SELECT ON ocpp.*"]
    assert users["analyst"]["profile"] == "analyst" and profiles["analyst"]["readonly"] == 2
    ingest = " ".join(users["ocpp_ingest"]["grants/query"])
    for forbidden in ("DROP TABLE", "TRUNCATE", "ALTER DELETE", "ALTER UPDATE", "ALL", "FILE", "URL", "REMOTE", "*.* WITH"):
        assert forbidden not in ingest.replace("CLUSTER ON *.*", ""), forbidden


def test_the_analyst_profile_bounds_time_memory_and_results_and_cannot_be_loosened() -> None:
    _, profiles = users_of("prod")
    analyst = profiles["analyst"]
    for setting in ("max_execution_time", "max_memory_usage", "max_result_rows", "max_result_bytes"):
        assert analyst[setting] > 0 and analyst[f"constraints/{setting}/max"] == analyst[setting], setting
    assert analyst["result_overflow_mode"] == "throw" and "constraints/result_overflow_mode/readonly" in analyst


def test_clickhouse_itself_accepts_the_grants_and_enforces_the_analyst_limits(chdb_settings, chdb_client, database: str) -> None:
    users, profiles = users_of("prod")
    for grant in users["ocpp_ingest"]["grants/query"] + users["analyst"]["grants/query"]:
        statement = f"{grant} TO someone"
        assert chdb_client.query("SELECT formatQuery(%(q)s)", parameters={"q": statement}).result_rows[0][0]
    analyst = {k: v for k, v in profiles["analyst"].items() if "/" not in k}
    known = {r[0] for r in chdb_client.query("SELECT name FROM system.settings").result_rows}
    assert set(analyst) <= known, set(analyst) - known
    limits = {k: v for k, v in analyst.items() if k != "max_concurrent_queries_for_user"}
    # Clients of their own: a refused query can leave an embedded session unusable (issue 22, finding 2).
    refusals = [("READONLY", lambda c: c.command(f"CREATE TABLE `{database}`.x (a UInt8) ENGINE = Memory", settings=limits)),
                ("TOO_MANY_ROWS|Limit for result exceeded",
                 lambda c: c.query(f"SELECT number FROM numbers({analyst['max_result_rows'] + 1})", settings=limits))]
    for error, attempt in refusals:
        reader = clickhouse.connect(chdb_settings)
        try:
            with pytest.raises(Exception, match=error):
                attempt(reader)
        finally:
            reader.close()
    chdb_client.command(f"CREATE TABLE `{database}`.y (a UInt8) ENGINE = Memory")  # the suite's client still writes


@pytest.mark.parametrize("kind", ["ClickHouseInstallation", "ClickHouseKeeperInstallation"])
def test_clickhouse_and_keeper_pods_are_locked_down_as_the_services_are(kind: str) -> None:
    (doc,) = by_kind(rendered("prod"), kind)
    for template in doc["spec"]["templates"]["podTemplates"]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": template["name"]}, "spec": template["spec"]}
        kubernetes_validate.validate(pod, "1.34.0", strict=True)
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}


# --- NetworkPolicies -------------------------------------------------------------------------------------

PROBE_PORTS = (443, 2181, 6066, 6067, 6443, 8123, 8443, 9000, 9001, 9009, 9090, 9091, 9092, 9093, 9363, 9404, 9444)
KAFKA = {"strimzi.io/cluster": "ocpp", "strimzi.io/kind": "Kafka"}


def endpoints(overlay: str) -> dict[str, Endpoint]:
    """Every pod of the namespace (the workloads as rendered; the operators' pods with the labels they give
    them), and what is around it."""
    docs = rendered(overlay)
    ns = f"ocpp{'-dev' if overlay == 'dev' else ''}"
    found = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            template = doc["spec"]["template"]
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
                     if "name" in p}
            found[doc["metadata"]["name"]] = Endpoint(doc["metadata"]["name"], ns, template["metadata"]["labels"], ports)
    for kind, name in (("ClickHouseInstallation", "clickhouse"), ("ClickHouseKeeperInstallation", "keeper")):
        (doc,) = by_kind(docs, kind)
        found[name] = Endpoint(name, ns, doc["spec"]["templates"]["podTemplates"][0]["metadata"]["labels"])
    found["kafka"] = Endpoint("kafka", ns, {**KAFKA, "strimzi.io/name": "ocpp-kafka", "strimzi.io/pool-name": "dual-role"})
    found["entity-operator"] = Endpoint("entity-operator", ns, {**KAFKA, "strimzi.io/name": "ocpp-entity-operator"})
    found["kafka-client"] = Endpoint("kafka-client", ns, {"ocpp-pipeline/kafka-client": "true", "app": "alerting"})
    found["debug"] = Endpoint("debug", ns, {"run": "debug"})
    found["prometheus"] = Endpoint("prometheus", "monitoring", {"app": "prometheus"})
    found["notebook"] = Endpoint("notebook", "analysts", {"app": "notebook"})
    found["elsewhere"] = Endpoint("elsewhere", "default", {"app": "anything"})
    found["chop"] = Endpoint("chop", "kube-system", {"app": "clickhouse-operator"})
    found["strimzi"] = Endpoint("strimzi", "strimzi", {"strimzi.io/kind": "cluster-operator"})
    found["kube-dns"] = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
    found["internet"] = Endpoint("internet", None)
    found["apiserver"] = Endpoint("apiserver", None)
    return found


def strimzi_policy(kafka: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The NetworkPolicy Strimzi's Cluster Operator makes for the Kafka pods: its own ports from the Kafka
    pods, the entity operator and itself; each listener from its ``networkPolicyPeers``; metrics from anyone."""
    own = [{"podSelector": {"matchLabels": KAFKA}}, {"namespaceSelector": {}, "podSelector": {"matchLabels": {"strimzi.io/kind": "cluster-operator"}}}]
    rules = [{"from": own, "ports": [{"port": 9090}, {"port": 9091}]}]
    rules += [{"from": l.get("networkPolicyPeers"), "ports": [{"port": l["port"]}]} for l in kafka["spec"]["kafka"]["listeners"]]
    if "metricsConfig" in kafka["spec"]["kafka"]:
        rules.append({"ports": [{"port": 9404}]})
    return {"metadata": {"namespace": namespace, "name": "strimzi"}, "spec": {
        "podSelector": {"matchLabels": {"strimzi.io/cluster": "ocpp", "strimzi.io/name": "ocpp-kafka"}},
        "policyTypes": ["Ingress"], "ingress": rules}}


def listed(src: str, dst: str, port: int, e: dict[str, Endpoint]) -> bool:
    """The flows of the design (ports.md, issue 22), and what the operators need."""
    ours = {n for n, p in e.items() if p.namespace == e["ocpp-gateway"].namespace}
    if dst not in ours and src not in ours:
        return True  # neither end is ours: nothing to say
    rules = [
        dst == "ocpp-gateway" and port == 9000 and src not in ours,  # chargers, from anywhere
        src == "prometheus" and (dst, port) in {("ocpp-gateway", 9001), ("ocpp-worker", 6066), ("clickhouse", 9363)},
        dst == "kafka" and port == 9404 and src not in ours,  # Strimzi opens its JMX metrics to anyone
        src in ("kafka", "entity-operator") and dst == "kafka" and port == 9404,
        src in ("ocpp-gateway", "ocpp-worker", "kafka-client") and dst == "kafka" and port in (9092, 9093),
        src in ("ocpp-worker", "ocpp-db-migrate", "notebook") and dst == "clickhouse" and port in (8123, 8443),
        src == "notebook" and dst == "ocpp-worker" and port == 6067,
        src == dst == "clickhouse", src == dst == "keeper",
        src == "clickhouse" and dst == "keeper" and port == 2181,
        src == "chop" and dst == "clickhouse" and port == 8123,
        src in ("kafka", "entity-operator", "strimzi") and dst == "kafka" and port in (9090, 9091),
        src == "entity-operator" and port in (443, 6443) and dst not in ours,  # the API server
    ]
    return any(rules)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_exactly_the_listed_flows(overlay: str) -> None:
    docs = rendered(overlay)
    e = endpoints(overlay)
    policies = by_kind(docs, "NetworkPolicy") + [strimzi_policy(by_kind(docs, "Kafka")[0], e["kafka"].namespace)]
    wrong = []
    for src in e:
        for dst in e:
            for port in PROBE_PORTS:
                if src == dst and not e[src].is_pod:
                    continue
                expected = listed(src, dst, port, e) or (src == "ocpp-simulator" and dst == "ocpp-gateway" and port == 9000)
                if allowed(policies, e[src], e[dst], port) != expected:
                    wrong.append(f"{src} -> {dst}:{port} {'denied' if expected else 'allowed'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_of_ours_reaches_dns_and_only_dns_over_udp(overlay: str) -> None:
    docs = rendered(overlay)
    e = endpoints(overlay)
    policies = by_kind(docs, "NetworkPolicy")
    for name, pod in e.items():
        if pod.namespace == e["ocpp-gateway"].namespace:
            assert allowed(policies, pod, e["kube-dns"], 53, "UDP") and allowed(policies, pod, e["kube-dns"], 53)
            assert not allowed(policies, pod, e["internet"], 53, "UDP"), name
