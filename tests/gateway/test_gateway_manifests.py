"""Where the gateway's admin endpoints live in every deployment form: the chargers reach port 9000 (``ocpp``)
only; probes, Prometheus and the image's health check use 9001 (``admin``), plain HTTP."""

from __future__ import annotations

import re

import pytest
import yaml

from gateway.settings import GatewaySettings
from tests.test_k8s import OVERLAYS, ROOT, by_kind, rendered

PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


def gateway_container(overlay: str) -> tuple[dict, dict]:
    (deployment,) = [d for d in by_kind(rendered(overlay), "Deployment") if d["metadata"]["name"] == "ocpp-gateway"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def test_defaults_are_the_agreed_ports() -> None:
    fields = GatewaySettings.model_fields  # the class's defaults (the suite's environment moves the admin port)
    assert (fields["port"].default, fields["admin_port"].default, fields["admin_host"].default) == (9000, 9001, "127.0.0.1")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_scrapes_use_the_admin_port(overlay: str) -> None:
    deployment, container = gateway_container(overlay)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"ocpp": 9000, "admin": 9001}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["OCPP_GATEWAY_ADMIN_HOST"] == "0.0.0.0" and int(env["OCPP_GATEWAY_ADMIN_PORT"]) == ports["admin"]
    for probe in PROBES:
        get = container[probe]["httpGet"]
        assert get["port"] == "admin" and get.get("scheme", "HTTP") == "HTTP", (probe, get)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["admin"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_chargers_service_exposes_only_ocpp(overlay: str) -> None:
    (service,) = [s for s in by_kind(rendered(overlay), "Service") if s["metadata"]["name"] == "ocpp-gateway"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["ocpp"]  # one port (the API refuses repeated names)
    assert all(p["port"] != 9001 for s in by_kind(rendered(overlay), "Service") for p in s["spec"]["ports"]
               if s["spec"].get("selector", {}).get("app.kubernetes.io/name") == "ocpp-gateway")


def test_the_image_and_compose() -> None:
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    gateway_stage = dockerfile.split("FROM runtime AS gateway", 1)[1].split("FROM ", 1)[0]
    assert re.search(r"^EXPOSE 9000 9001$", gateway_stage, re.MULTILINE)
    assert "OCPP_GATEWAY_ADMIN_HOST=0.0.0.0" in gateway_stage and "OCPP_GATEWAY_ADMIN_PORT=9001" in gateway_stage
    assert "http://127.0.0.1:9001/healthz" in gateway_stage and ":9000/healthz" not in gateway_stage
    compose = yaml.safe_load((ROOT / "infra" / "compose" / "compose.yaml").read_text())
    published = compose["services"]["gateway"]["ports"]
    assert "9000:9000" in published and "127.0.0.1:9001:9001" in published  # admin: this host only
