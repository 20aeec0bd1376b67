"""Deployment files, validated offline (no cluster, no Docker engine here).

- every kustomize overlay renders (the real ``kustomize`` binary, built from the Go module proxy);
- every core object validates against the Kubernetes API schema (``kubernetes-validate``, strict:
  unknown fields are errors) for the oldest and newest versions we support;
- Strimzi resources validate against the CRD schemas generated from Strimzi's own API model
  (``infra/k8s/schemas/strimzi``), Altinity ones against our structural schemas (their CRDs are not
  on a reachable registry; see ``infra/k8s/schemas/altinity``);
- what validators cannot know: settings names exist, workers never outnumber partitions, the
  topics equal ``schemas/topics.py``, Secrets and ConfigMaps referenced are defined or documented,
  the dashboard's queries run on the real ClickHouse engine, the Dockerfile passes hadolint and the
  compose file the Compose specification.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra import k8s_topics
from ocpp_pipeline.settings_doc import SETTINGS_CLASSES, _variable
from schemas.topics import FRAMES

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("dev", "prod")
KUSTOMIZE_VERSION = "v5.7.1"
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): "strimzi/kafka.json",
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): "strimzi/kafkanodepool.json",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "strimzi/kafkatopic.json",
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): "strimzi/kafkauser.json",
    ("clickhouse.altinity.com/v1", "ClickHouseInstallation"): "altinity/clickhouseinstallation.json",
    ("clickhouse-keeper.altinity.com/v1", "ClickHouseKeeperInstallation"): "altinity/clickhousekeeperinstallation.json",
    # Generated from the Prometheus Operator's API types (infra/k8s/schemas/prometheus-operator/generate).
    ("monitoring.coreos.com/v1", "PodMonitor"): "prometheus-operator/podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-operator/prometheusrule.json",
}
# Secrets the overlays expect to exist: created by the operator (README, Deploying on Kubernetes). No password
# is in git, not even a development one.
SECRETS_CREATED_OUTSIDE_GIT = {"prod": {"ocpp-clickhouse", "ocpp-charger-credentials", "ocpp-gateway-tls"},
                               "dev": {"ocpp-clickhouse"}}


def kustomize() -> str:
    """The kustomize binary: ``.local/bin/kustomize``, built once from the Go module proxy."""
    binary = ROOT / ".local" / "bin" / "kustomize"
    if not binary.exists():
        go = shutil.which("go")
        assert go, "building kustomize needs Go (the Go module proxy serves it)"
        subprocess.run([go, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"], check=True,
                       env={**os.environ, "GOBIN": str(binary.parent), "GOTOOLCHAIN": "local"}, timeout=900)
    return str(binary)


@cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run([kustomize(), "build", str(K8S / "overlays" / overlay)], capture_output=True, text=True,
                         check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def is_custom(doc: dict[str, Any]) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_every_part(overlay: str) -> None:
    kinds = {d["kind"] for d in rendered(overlay)}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "ClickHouseInstallation", "ClickHouseKeeperInstallation",
            "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "StatefulSet", "Job",
            "ConfigMap", "Namespace", "NetworkPolicy"} <= kinds
    assert all(d["metadata"].get("namespace") == f"ocpp{'-dev' if overlay == 'dev' else ''}"
               for d in rendered(overlay) if d["kind"] != "Namespace")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_against_the_kubernetes_api(overlay: str, version: str) -> None:
    core = [d for d in rendered(overlay) if not is_custom(d)]
    for doc in core:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({version}): {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_crd_schemas(overlay: str) -> None:
    custom = [d for d in rendered(overlay) if is_custom(d)]
    assert len(custom) >= 8
    for doc in custom:
        schema = json.loads((K8S / "schemas" / CRD_SCHEMAS[doc["apiVersion"], doc["kind"]]).read_text())
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_crd_schemas_reject_what_the_operator_would() -> None:
    """The schemas have teeth: a misspelt field or a wrong type is an error, not ignored."""
    kafka = json.loads((K8S / "schemas" / "strimzi" / "kafka.json").read_text())
    (doc,) = by_kind(rendered("prod"), "Kafka")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["kafka"]["listeners"][0]["port"] = "ninety-ninety-two"
    assert list(jsonschema.Draft7Validator(kafka).iter_errors(broken))
    chi = json.loads((K8S / "schemas" / "altinity" / "clickhouseinstallation.json").read_text())
    (doc,) = by_kind(rendered("prod"), "ClickHouseInstallation")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["configuration"]["clusters"][0]["layout"]["shardCount"] = 2  # shardsCount
    assert list(jsonschema.Draft7Validator(chi).iter_errors(broken))


def test_kafka_topics_are_generated_from_the_topic_definitions() -> None:
    assert (K8S / "base" / "kafka-topics.yaml").read_text() == k8s_topics.render()
    names = {d["spec"]["topicName"] for d in by_kind(rendered("prod"), "KafkaTopic")}
    assert names == {"ocpp.frames.v1", "ocpp.sessions.v1", "ocpp.faults.v1", "ocpp.exclusions.v1", "ocpp.meter_keys.v1",
                     "ocpp-processors-correlator-state-changelog", "ocpp-processors-__assignor-__leader"}
    for overlay, rf in (("dev", 1), ("prod", 3)):
        for topic in by_kind(rendered(overlay), "KafkaTopic"):
            assert topic["spec"]["replicas"] == rf
            assert int(topic["spec"]["config"]["min.insync.replicas"]) <= rf


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_never_outnumber_the_frames_partitions(overlay: str) -> None:
    (worker,) = by_kind(rendered(overlay), "StatefulSet")
    frames = next(t for t in by_kind(rendered(overlay), "KafkaTopic") if t["spec"]["topicName"] == FRAMES.name)
    changelog = next(t for t in by_kind(rendered(overlay), "KafkaTopic") if t["spec"]["topicName"].endswith("changelog"))
    assert 1 <= worker["spec"]["replicas"] <= frames["spec"]["partitions"] == changelog["spec"]["partitions"]
    assert worker["spec"]["volumeClaimTemplates"], "a volume per worker pod"


def known_settings() -> set[str]:
    return {_variable(cls, name) for cls in SETTINGS_CLASSES for name in cls.model_fields}


def env_names(docs: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("ocpp-config"):
            names |= set(doc["data"])
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            names |= {e["name"] for e in container.get("env", [])}
    return {n for n in names if n.startswith("OCPP_")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_in_the_manifests_exists(overlay: str) -> None:
    names = env_names(rendered(overlay))
    assert names and names <= known_settings(), names - known_settings()


def made_by_operators(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Secrets the operators make from resources in the render: Strimzi's User Operator one per KafkaUser (its
    password), its Cluster Operator the cluster CA's certificate."""
    return ({("Secret", d["metadata"]["name"]) for d in by_kind(docs, "KafkaUser")}
            | {("Secret", f"{d['metadata']['name']}-cluster-ca-cert") for d in by_kind(docs, "Kafka")})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_referenced_secrets_and_configmaps_are_defined_or_documented(overlay: str) -> None:
    docs = rendered(overlay)
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs} | made_by_operators(docs)
    text = json.dumps(docs)
    for kind, key in (("ConfigMap", "configMapRef"), ("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        for name in re.findall(rf'"{key}": {{[^}}]*?"name": "([^"]+)"', text):
            assert (kind, name) in defined or name in SECRETS_CREATED_OUTSIDE_GIT.get(overlay, set()), (kind, name)
    for name in re.findall(r'"secretName": "([^"]+)"', text):
        optional_or_known = name in SECRETS_CREATED_OUTSIDE_GIT.get(overlay, set()) or ("Secret", name) in defined
        assert optional_or_known or f'"optional": true, "secretName": "{name}"' in text, name
    # The documentation names every Secret production needs.
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for names in SECRETS_CREATED_OUTSIDE_GIT.values() for name in names)


def test_gateway_deployment_keeps_chargers_connected() -> None:
    docs = rendered("prod")
    (gateway,) = by_kind(docs, "Deployment")
    pod = gateway["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    assert pod["terminationGracePeriodSeconds"] > 40  # > OCPP_GATEWAY_SHUTDOWN_TIMEOUT_S + preStop
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ocpp-config"))["data"]
    assert config["OCPP_GATEWAY_SECURITY_PROFILE"] == "2" and float(config["OCPP_GATEWAY_PING_INTERVAL_S"]) < 60
    service = next(d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "ocpp-gateway")
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["externalTrafficPolicy"] == "Local"
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler")
    assert any(m.get("pods", {}).get("metric", {}).get("name") == "ocpp_gateway_open_connections" for m in hpa["spec"]["metrics"])


def test_dashboard_queries_run_on_the_real_engine(chdb_client, database: str) -> None:
    dashboard = json.loads((K8S / "base" / "grafana" / "ocpp-pipeline.json").read_text())
    queries = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    queries.append(dashboard["templating"]["list"][1]["query"])
    assert len(queries) >= 9
    for sql in queries:
        # Grafana's ClickHouse macros and variables, as the plugin expands them.
        sql = re.sub(r"\$__dateFilter\((\w+)\)", r"\1 >= today() - 7 AND \1 <= today()", sql)
        sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now() - INTERVAL 7 DAY AND \1 <= now()", sql)
        sql = sql.replace("${charger:singlequote}", "'SIM-00001', 'CP-1'").replace("ocpp.", f"`{database}`.")
        chdb_client.query(sql)


def test_dockerfile_passes_hadolint_and_has_what_production_needs() -> None:
    dockerfile = ROOT / "infra" / "docker" / "Dockerfile"
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    stages = {name: image for image, name in re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)}
    assert {"build", "runtime", "gateway", "worker", "simulator"} <= set(stages)
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), "base image pinned to a patch release"
    assert "USER 10001:10001" in text and text.count("HEALTHCHECK") == 2
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        if source not in ("pyproject.toml",):
            assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".local" in ignored


def compose_spec() -> dict[str, Any]:
    """The Compose specification's JSON schema, as shipped in the docker-compose 1.29.2 wheel (PyPI)."""
    cached = ROOT / ".local" / "tools" / "compose_spec.json"
    if not cached.exists():
        download = cached.parent / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(download),
                        "docker-compose==1.29.2"], check=True, timeout=300)
        (wheel,) = download.glob("docker_compose-1.29.2-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            cached.write_bytes(archive.read("compose/config/compose_spec.json"))
    return json.loads(cached.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    compose = yaml.safe_load((ROOT / "infra" / "compose" / "compose.yaml").read_text())
    errors = list(jsonschema.Draft7Validator(compose_spec()).iter_errors(compose))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    services = compose["services"]
    assert {"kafka", "clickhouse", "gateway", "worker", "simulator", "migrate"} <= set(services)
    targets = {s["build"]["target"] for s in services.values() if "build" in s}
    assert targets == {"gateway", "worker", "simulator"}
    for name, service in services.items():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        env = service.get("environment", {})
        assert {k for k in env if k.startswith("OCPP_")} <= known_settings(), name


def test_metrics_have_no_per_charger_labels_and_cover_what_operators_watch() -> None:
    """Label values must be bounded sets: a charger id label would grow with the fleet."""
    from gateway.metrics import GatewayMetrics
    from processors.metrics import WorkerMetrics

    names: set[str] = set()
    for metrics in (GatewayMetrics(), WorkerMetrics()):
        for family in metrics.registry.collect():
            names.add(family.name)
            for sample in family.samples:
                assert not {"charge_point_id", "charger", "cp", "charge_point", "connection_id"} & set(sample.labels)
    assert {"ocpp_gateway_open_connections", "ocpp_gateway_frames", "ocpp_gateway_publish_seconds",
            "ocpp_gateway_handshake_refusals", "ocpp_worker_consumer_lag", "ocpp_worker_frames", "ocpp_worker_sessions",
            "ocpp_worker_fault_events", "ocpp_worker_flush_seconds", "ocpp_worker_sink_failures"} <= names


def test_prod_replicates_as_the_fault_tests_proved() -> None:
    """Replication 3 and min.insync.replicas 2 on three nodes (a SIGKILLed partition leader lost no acknowledged
    frame: tests/reliability/test_cluster_faults.py); one node, one gateway and one worker disrupted at a time."""
    docs = rendered("prod")
    (kafka,) = by_kind(docs, "Kafka")
    (pool,) = by_kind(docs, "KafkaNodePool")
    config = kafka["spec"]["kafka"]["config"]
    assert pool["spec"]["replicas"] >= 3
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == (3, 2)
    assert (config["offsets.topic.replication.factor"], config["transaction.state.log.min.isr"]) == (3, 2)
    assert kafka["spec"]["kafka"]["template"]["podDisruptionBudget"]["maxUnavailable"] == 1
    for topic in by_kind(docs, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3 and topic["spec"]["config"]["min.insync.replicas"] == "2", topic
    budgets = {pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: pdb["spec"]
               for pdb in by_kind(docs, "PodDisruptionBudget")}
    assert budgets["ocpp-gateway"] == budgets["ocpp-worker"] | {"selector": budgets["ocpp-gateway"]["selector"]}
    assert budgets["ocpp-worker"]["maxUnavailable"] == 1


def test_worker_rollout_waits_for_the_group_to_settle() -> None:
    """Each worker replaced costs a rebalance (a killed member's partitions move after its 10 s session
    timeout, RELIABILITY.md): the StatefulSet rolls one pod at a time and waits well past it."""
    (worker,) = by_kind(rendered("prod"), "StatefulSet")
    assert worker["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert worker["spec"]["minReadySeconds"] >= 30
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
