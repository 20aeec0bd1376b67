"""Monitoring, validated offline: the Prometheus Operator resources both overlays render (monitors, rules), the
alerts checked and unit-tested by Prometheus's own ``promtool`` (built from the Go module proxy), every metric an
alert reads exported by the code or the named exporter, every alert's runbook section present in RUNBOOK.md, and
every Grafana dashboard type-checked against Grafana's published dashboard schema (``@grafana/schema``, the
TypeScript types Grafana generates from its CUE kinds, checked by the TypeScript compiler).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.test_k8s import K8S, OVERLAYS, by_kind, rendered

ROOT = Path(__file__).resolve().parent.parent
MONITORING = K8S / "components" / "monitoring"
PROMTOOL_VERSION = "v0.316.0"  # Prometheus 3.x's Go module (go-partial.tsv: the version the proxy serves)
RUNBOOK = ROOT / "RUNBOOK.md"
DASHBOARDS = (ROOT / "infra" / "grafana" / "ocpp-reliability.json", K8S / "base" / "grafana" / "ocpp-pipeline.json",
              MONITORING / "ocpp-operations.json")
CRD_SCHEMAS = {"PodMonitor": "podmonitor.json", "ServiceMonitor": "servicemonitor.json",
               "PrometheusRule": "prometheusrule.json"}


def promtool() -> str:
    """Prometheus's promtool: ``.local/bin/promtool``, built once from the Go module proxy (``make
    .local/bin/promtool``, service discovery left out: the rule commands need none of it)."""
    binary = ROOT / ".local" / "bin" / "promtool"
    if not binary.exists():
        go = shutil.which("go")
        assert go, "building promtool needs Go (the Go module proxy serves it)"
        subprocess.run([go, "install", "-tags", "remove_all_sd",
                        f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}"], check=True, timeout=3000,
                       env={**os.environ, "GOBIN": str(binary.parent), "GOTOOLCHAIN": "local"})
    return str(binary)


@cache
def rule_groups(overlay: str = "prod") -> list[dict[str, Any]]:
    (rule,) = by_kind(rendered(overlay), "PrometheusRule")
    return rule["spec"]["groups"]


def alerts(overlay: str = "prod") -> list[dict[str, Any]]:
    return [r for g in rule_groups(overlay) for r in g["rules"] if "alert" in r]


def write_rules(directory: Path, *, annotations: bool) -> Path:
    groups = json.loads(json.dumps(rule_groups()))
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path = directory / ("rules.yaml" if annotations else "rules-bare.yaml")
    path.write_text(yaml.safe_dump({"groups": groups}))
    return path


# --- the manifests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_hold_the_monitors_the_rules_and_the_dashboard(overlay: str) -> None:
    docs = rendered(overlay)
    monitors = {d["metadata"]["name"] for d in by_kind(docs, "PodMonitor")}
    assert monitors == {"ocpp-gateway", "ocpp-worker", "ocpp-kafka", "ocpp-clickhouse"}
    assert len(by_kind(docs, "PrometheusRule")) == 1
    (dashboard,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "ocpp-grafana-operations"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["ocpp-operations.json"]) == json.loads(DASHBOARDS[2].read_text())
    (kafka,) = by_kind(docs, "Kafka")
    assert "kafkaExporter" in kafka["spec"], "OcppFramesBacklogUnread reads Strimzi's kafka-exporter"
    (chi,) = by_kind(docs, "ClickHouseInstallation")
    assert chi["spec"]["configuration"]["settings"]["prometheus/port"] == 9363


def strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it with field validation Strict: an unknown field is an error
    (structural schemas leave ``additionalProperties`` out; the server prunes or refuses unknown fields)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    schema = json.loads((K8S / "schemas" / "prometheus-operator" / CRD_SCHEMAS[kind]).read_text())
    return strict(schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_resources_validate_against_the_operators_crd_schemas(overlay: str) -> None:
    docs = [d for d in rendered(overlay) if d["apiVersion"] == "monitoring.coreos.com/v1"]
    assert {d["kind"] for d in docs} == {"PodMonitor", "PrometheusRule"}
    for doc in docs:
        errors = list(jsonschema.Draft7Validator(crd_schema(doc["kind"])).iter_errors(doc))
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_operator_schemas_have_teeth() -> None:
    """A misspelt field, a wrong type, a missing required field: each refused."""
    monitor = next(d for d in rendered("prod") if d["kind"] == "PodMonitor")
    for broken in ({**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": []}},  # podMetricsEndpoints
                   {**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [{"port": 9001}]}},
                   {**monitor, "spec": {**monitor["spec"], "selector": "app=x"}}):
        assert list(jsonschema.Draft7Validator(crd_schema("PodMonitor")).iter_errors(broken))
    rule = next(d for d in rendered("prod") if d["kind"] == "PrometheusRule")
    broken_rule = json.loads(json.dumps(rule))
    del broken_rule["spec"]["groups"][0]["rules"][0]["expr"]
    assert list(jsonschema.Draft7Validator(crd_schema("PrometheusRule")).iter_errors(broken_rule))


def _container_ports(doc: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """(pod labels, named container ports) of a workload or an operator resource's pods."""
    if doc["kind"] in ("Deployment", "StatefulSet"):
        pod = doc["spec"]["template"]
        return pod["metadata"]["labels"], {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    if doc["kind"] == "ClickHouseInstallation":
        containers = doc["spec"]["templates"]["podTemplates"][0]["spec"]["containers"]
        return {"clickhouse.altinity.com/chi": doc["metadata"]["name"]}, {
            p["name"] for c in containers for p in c.get("ports", [])}
    if doc["kind"] == "Kafka":
        # Strimzi names the metrics port of brokers (metricsConfig) and of kafka-exporter tcp-prometheus.
        ports = {"tcp-prometheus"} if doc["spec"]["kafka"].get("metricsConfig") else set()
        return {"strimzi.io/cluster": doc["metadata"]["name"], "strimzi.io/kind": "Kafka"}, ports
    return {}, set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_monitor_scrapes_a_named_port_of_the_pods_it_selects(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [_container_ports(d) for d in docs]
    for monitor in by_kind(docs, "PodMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        selected = [ports for labels, ports in pods if labels and wanted.items() <= labels.items()]
        assert selected, f"PodMonitor {monitor['metadata']['name']} selects no pods"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            missing = [ports for ports in selected if endpoint["port"] not in ports]
            assert not missing, f"PodMonitor {monitor['metadata']['name']}: no port {endpoint['port']!r}"


# --- the alerts ------------------------------------------------------------------------------------------------


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    result = subprocess.run([promtool(), "check", "rules", str(write_rules(tmp_path, annotations=True))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_groups())} rules found" in result.stdout


@pytest.mark.parametrize("tests, annotations", [("alerts.test.yaml", False), ("annotations.test.yaml", True)])
def test_promtool_unit_tests_pass(tmp_path: Path, tests: str, annotations: bool) -> None:
    rules = write_rules(tmp_path, annotations=annotations)
    text = (ROOT / "tests" / "monitoring" / tests).read_text().replace("rule_files: [RULES]", f"rule_files: [{rules}]")
    (tmp_path / tests).write_text(text)
    result = subprocess.run([promtool(), "test", "rules", str(tmp_path / tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_it_fires_on_and_a_case_it_stays_quiet_on() -> None:
    """Quiet: an evaluation expecting no alert, or input series (another namespace or pod) that no expected alert
    carries."""
    cases = yaml.safe_load((ROOT / "tests" / "monitoring" / "alerts.test.yaml").read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        series = [promql_parser.parse(s["series"]) for s in case["input_series"]]
        places = {(m.name, m.value) for s in series for m in s.matchers.matchers if m.name in ("namespace", "pod")}
        for check in case["alert_rule_test"]:
            expected = check.get("exp_alerts") or []
            if expected:
                fires.add(check["alertname"])
            carried = {(k, v) for e in expected for k, v in e["exp_labels"].items() if k in ("namespace", "pod")}
            if not expected or places - carried:
                quiet.add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def runbook_anchors() -> set[str]:
    """GitHub's anchors of RUNBOOK.md's headings (lower case, punctuation dropped, spaces to hyphens)."""
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_names_a_runbook_section_that_exists() -> None:
    anchors = runbook_anchors()
    for alert in alerts():
        url = alert["annotations"]["runbook_url"]
        assert url.startswith("https://") and "RUNBOOK.md#" in url, alert["alert"]
        assert url.split("#", 1)[1] in anchors, f"{alert['alert']}: no section {url.split('#', 1)[1]} in RUNBOOK.md"
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]
    section = RUNBOOK.read_text()
    for alert in alerts():  # each section says what it means, what to check, what to do
        body = section.split(f"### {alert['alert']}\n", 1)[1].split("\n### ", 1)[0]
        assert all(word in body for word in ("**Means**", "**Check**", "**Do**")), alert["alert"]


# --- every metric an alert reads is exported ---------------------------------------------------------------------


def our_metric_names() -> set[str]:
    """Sample names the gateway and the worker expose (counters' ``_total``, histograms' ``_bucket``, ...)."""
    from gateway.metrics import GatewayMetrics
    from processors.metrics import WorkerMetrics

    names: set[str] = set()
    for metrics in (GatewayMetrics(), WorkerMetrics()):
        for family in text_string_to_metric_families(metrics.exposition().decode()):
            names |= {family.name, f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_sum",
                      f"{family.name}_count"} if family.type in ("counter", "histogram") else {family.name}
    return names


def jmx_names() -> set[str]:
    """What the brokers' JMX exporter rules (kafka-metrics-config.yml) make of the MBeans the alerts need (the MBean
    names are Kafka's: kafka.server ReplicaManager, kafka.controller KafkaController)."""
    config = yaml.safe_load((K8S / "base" / "kafka-metrics-config.yml").read_text())
    mbeans = ["kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions><>Value",
              "kafka.controller<type=KafkaController, name=OfflinePartitionsCount><>Value",
              "kafka.controller<type=KafkaController, name=ActiveControllerCount><>Value"]
    names = set()
    for mbean in mbeans:
        for rule in config["rules"]:
            match = re.fullmatch(rule["pattern"], mbean)
            if match:
                name = match.expand(rule["name"].replace("$", "\\"))
                names.add(name.lower() if config.get("lowercaseOutputName") else name)
                break
    return names


# Strimzi's kafka-exporter (danielqsj/kafka_exporter) and kube-state-metrics: names from their documentation.
KAFKA_EXPORTER = {"kafka_consumergroup_lag", "kafka_consumergroup_current_offset", "kafka_topic_partition_current_offset",
                  "kafka_topic_partition_under_replicated_partition", "kafka_brokers"}
KUBE_STATE_METRICS = {"kube_pod_container_status_restarts_total", "kube_pod_container_status_last_terminated_exitcode"}
PROMETHEUS = {"up"}  # written by Prometheus for every target


# The server's asynchronous metrics per disk (DiskAvailable_<disk>, DiskTotal_<disk>; the data disk is "default"):
# the embedded engine runs no asynchronous-metrics thread, so these come from ClickHouse's documentation.
CLICKHOUSE_ASYNC = {"ClickHouseAsyncMetrics_DiskAvailable_default", "ClickHouseAsyncMetrics_DiskTotal_default"}


def clickhouse_names(client: Any) -> set[str]:
    """What ClickHouse's Prometheus endpoint exports as ProfileEvents and Metrics, by the engine's own lists (the
    real engine, embedded: every event, zero or not)."""
    events = client.query("SELECT event FROM system.events SETTINGS system_events_show_zero_values = 1").result_rows
    metrics = client.query("SELECT metric FROM system.metrics").result_rows
    return {f"ClickHouseProfileEvents_{e}" for (e,) in events} | {f"ClickHouseMetrics_{m}" for (m,) in metrics}


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_every_metric_an_alert_reads_is_exported(chdb_client) -> None:
    engine = clickhouse_names(chdb_client)
    assert {"ClickHouseProfileEvents_FailedInsertQuery", "ClickHouseMetrics_ReadonlyReplica"} <= engine
    exported = (our_metric_names() | jmx_names() | KAFKA_EXPORTER | KUBE_STATE_METRICS | PROMETHEUS | engine
                | CLICKHOUSE_ASYNC)
    used = {name: alert["alert"] for alert in alerts() for name in metric_names(alert["expr"])}
    unknown = {name: alert for name, alert in used.items() if name not in exported}
    assert not unknown, f"metrics no part exports: {unknown}"
    ours = {n for n in used if n.startswith("ocpp_")}
    assert len(ours) >= 12 and any(n.startswith("ClickHouse") for n in used) and any(n.startswith("kafka_") for n in used)


def test_alerts_on_our_metrics_select_the_jobs_the_monitors_give() -> None:
    """ocpp_gateway_* under job ocpp-gateway, ocpp_worker_* under job ocpp-worker: the PodMonitors' jobLabel."""
    monitors = {m["metadata"]["name"]: m["spec"] for m in by_kind(rendered("prod"), "PodMonitor")}
    for name in ("ocpp-gateway", "ocpp-worker"):
        assert monitors[name]["jobLabel"] == "app.kubernetes.io/name"
        assert monitors[name]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name
    for alert in alerts():
        def visit(node: Any) -> None:
            if isinstance(node, promql_parser.VectorSelector) and node.name.startswith(("ocpp_gateway_", "ocpp_worker_")):
                job = {m.name: m.value for m in node.matchers.matchers}.get("job")
                assert job == "ocpp-" + node.name.split("_")[1], (alert["alert"], node.name)

        promql_parser.walk(promql_parser.parse(alert["expr"]), visit)


# --- Grafana ---------------------------------------------------------------------------------------------------

SCHEMA_CHECK = ROOT / ".local" / "grafana-schema"
WIRE = """// JSON carries an enum's value, not the enum: every enum in Grafana's types becomes the union of its values.
type Wire<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Wire<U>> : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;
// A panel's options are merged with its plugin's defaults when Grafana loads it: any may be left out, none may be
// misspelt or of the wrong type.
type Loose<T> = T extends ReadonlyArray<infer U> ? Array<Loose<U>> : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;
import type { Dashboard, Panel, RowPanel } from "@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen";
"""


def grafana_schema() -> Path:
    """``@grafana/schema`` and ``typescript`` as pinned by infra/grafana/schema-check (``make
    .local/grafana-schema/node_modules/.installed``, npm ci from the lock file)."""
    installed = SCHEMA_CHECK / "node_modules" / ".installed"
    if not installed.exists():
        npm = shutil.which("npm")
        assert npm, "the dashboard schema check needs Node.js and npm (the npm registry serves @grafana/schema)"
        SCHEMA_CHECK.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(ROOT / "infra" / "grafana" / "schema-check" / name, SCHEMA_CHECK / name)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=SCHEMA_CHECK, check=True,
                       timeout=900)
        installed.touch()
    return SCHEMA_CHECK


@cache
def panel_schemas() -> dict[str, tuple[str, bool]]:
    """Panel type -> (module of its options' types, whether it has a custom field config), from the package."""
    package = grafana_schema() / "node_modules" / "@grafana" / "schema"
    out = {}
    for key, value in json.loads((package / "package.json").read_text())["exports"].items():
        match = re.fullmatch(r"\./dist/esm/raw/composable/([a-z0-9]+)/panelcfg/x/\w+_types\.gen", key)
        if match:
            out[match.group(1)] = ("@grafana/schema" + key[1:],
                                   "export interface FieldConfig" in (package / value["types"]).read_text())
    return out


def typescript_of(dashboard: dict[str, Any]) -> str:
    """The dashboard as TypeScript that compiles only if it satisfies Grafana's types: the dashboard, each panel,
    each panel's options and custom field config against its plugin's own types."""
    imports, body = [WIRE], []
    panels = [p for top in dashboard.get("panels", []) for p in [top, *(top.get("panels", []) if top["type"] == "row" else [])]]
    for i, panel in enumerate(panels):
        if panel["type"] == "row":
            body.append(f"export const panel{i} = {json.dumps(panel)} satisfies Wire<RowPanel>;")
            continue
        body.append(f"export const panel{i} = {json.dumps(panel)} satisfies Wire<Panel>;")
        module, has_custom = panel_schemas()[panel["type"].replace("-", "")]
        imports.append(f'import type * as P{i} from "{module}";')
        body.append(f"export const options{i} = {json.dumps(panel.get('options', {}))} satisfies Loose<Wire<P{i}.Options>>;")
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            assert has_custom, f"panel type {panel['type']} has no custom field config"
            body.append(f"export const custom{i} = {json.dumps(custom)} satisfies Loose<Wire<P{i}.FieldConfig>>;")
    top = {k: v for k, v in dashboard.items() if k != "panels"}
    body.append(f"export const dashboard = {json.dumps(top)} satisfies Wire<Dashboard>;")
    return "\n".join(imports + body) + "\n"


def type_errors(dashboards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """TypeScript's errors per dashboard name (one compiler run for all)."""
    root = grafana_schema()
    out = root / "check"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for name, dashboard in dashboards.items():
        (out / f"{name}.ts").write_text(typescript_of(dashboard))
    result = subprocess.run(["node", str(root / "node_modules" / "typescript" / "bin" / "tsc"), "--noEmit", "--strict",
                             "--skipLibCheck", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler",
                             *(str(out / f"{name}.ts") for name in dashboards)], capture_output=True, text=True, cwd=root)
    errors: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"check/([\w.-]+)\.ts\(", line)
        if match:
            errors[match.group(1)] = errors.get(match.group(1), "") + line + "\n"
    assert result.returncode == 0 or errors, result.stdout + result.stderr
    return errors


def test_every_dashboard_satisfies_grafanas_dashboard_schema_and_the_schema_has_teeth() -> None:
    good = {path.stem: json.loads(path.read_text()) for path in DASHBOARDS}
    operations = good["ocpp-operations"]
    panel = next(p for p in operations["panels"] if p["type"] == "timeseries")
    broken = {
        "misspelt-field": {**operations, "panels": [{**panel, "gridpos": panel["gridPos"]}]},
        "wrong-type": {**operations, "schemaVersion": "39"},
        "unknown-enum-value": {**operations, "panels": [{**panel, "fieldConfig": {**panel["fieldConfig"], "defaults": {
            **panel["fieldConfig"]["defaults"], "custom": {**panel["fieldConfig"]["defaults"]["custom"], "drawStyle": "lines"}}}}]},
        "misspelt-option": {**operations, "panels": [{**panel, "options": {**panel["options"], "legnd": {}}}]},
    }
    errors = type_errors(good | broken)
    assert not {name: e for name, e in errors.items() if name in good}, errors
    assert set(broken) <= set(errors), f"the schema let these through: {set(broken) - set(errors)}"


def test_the_operations_dashboard_shows_every_alerts_signal() -> None:
    """Each alert's metrics are on some panel of the operations dashboard; each panel's queries parse."""
    dashboard = json.loads(DASHBOARDS[2].read_text())
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$namespace", "ocpp")
            shown |= metric_names(expr)
    for alert in alerts():
        needed = metric_names(alert["expr"]) - {"up"}
        assert needed <= shown, (alert["alert"], needed - shown)
