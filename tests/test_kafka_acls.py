"""The ACL table and the secured broker's configuration, without a broker: who may do what (table and
properties for any topic prefix and app id), Kafka's matching rules in :func:`permits`, the client settings'
rules, the local CA and the owner-only credentials folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ssl
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from infra import local_pki
from infra.acl_admin import salted_password
from infra.kafka_acls import (
    ALERTING, EXCLUSIONS_TOPIC, GATEWAY, OPERATOR, WORKER, Binding, Operation, PatternType, Resource, ResourceType,
    bindings, identities, permits,
)
from infra.local_credentials import ADMIN, BROKER, LocalCredentials, env_values
from infra.local_kafka import Node, server_properties
from infra.settings import KafkaSettings, LocalKafkaSettings
from schemas.topics import FAULTS, FRAMES, SESSIONS

R, W, D, C = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.CREATE
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
prefixes = st.from_regex(r"[A-Za-z0-9._-]{0,12}", fullmatch=True)
app_ids = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
NAMES = (GATEWAY, WORKER, OPERATOR, ALERTING)


def may(name: str, operation: Operation, kind: ResourceType, resource: str, prefix: str = "", app_id: str = "app") -> bool:
    return permits(bindings(identities(prefix, app_id)), f"User:{name}", operation, kind, resource)


@pytest.mark.parametrize(("name", "operation", "kind", "resource", "allowed"), [
    (GATEWAY, W, TOPIC, FRAMES.name, True),
    (GATEWAY, D, TOPIC, FRAMES.name, True),  # implied by Write
    (GATEWAY, R, TOPIC, FRAMES.name, False),  # reads no idTag
    (GATEWAY, W, TOPIC, SESSIONS.name, False),
    (GATEWAY, D, TOPIC, SESSIONS.name, False),
    (WORKER, R, TOPIC, FRAMES.name, True),
    (WORKER, W, TOPIC, FRAMES.name, False),  # forges no charger frame
    (WORKER, R, TOPIC, EXCLUSIONS_TOPIC, True),
    (WORKER, W, TOPIC, EXCLUSIONS_TOPIC, False),
    (WORKER, W, TOPIC, SESSIONS.name, True),
    (WORKER, W, TOPIC, FAULTS.name, True),
    (WORKER, C, TOPIC, "app-correlator-state-changelog", True),
    (WORKER, C, TOPIC, "app-__assignor-__leader", True),
    (WORKER, C, TOPIC, "app2-correlator-state-changelog", False),  # another app's prefix
    (WORKER, C, TOPIC, FRAMES.name, False),
    (WORKER, R, GROUP, "app", True),
    (WORKER, R, GROUP, "app-other", False),  # the group is literal
    (OPERATOR, W, TOPIC, EXCLUSIONS_TOPIC, True),
    (OPERATOR, W, TOPIC, FRAMES.name, False),
    (OPERATOR, R, TOPIC, EXCLUSIONS_TOPIC, False),
    (ALERTING, R, TOPIC, FAULTS.name, True),
    (ALERTING, W, TOPIC, FAULTS.name, False),
    (ALERTING, R, TOPIC, SESSIONS.name, False),
    (ALERTING, R, GROUP, "ocpp-alerting-pager", True),
    (ALERTING, R, GROUP, "app", False),
])
def test_each_identity_has_exactly_its_permissions(name: str, operation: Operation, kind: ResourceType, resource: str,
                                                   allowed: bool) -> None:
    assert may(name, operation, kind, resource) is allowed


@given(prefixes, app_ids, st.sampled_from(NAMES), st.text(min_size=1, max_size=20))
def test_for_any_deployment_only_the_gateway_writes_frames_and_nobody_else_touches_them(
        prefix: str, app_id: str, name: str, other: str) -> None:
    frames = prefix + FRAMES.name
    assert may(name, W, TOPIC, frames, prefix, app_id) is (name == GATEWAY)
    assert may(name, R, TOPIC, frames, prefix, app_id) is (name == WORKER)
    # Nobody may create, delete or reconfigure a contract topic, nor do anything cluster-wide.
    for operation in (C, Operation.DELETE, Operation.ALTER, Operation.ALTER_CONFIGS):
        for topic in (FRAMES, SESSIONS, FAULTS):
            assert not may(name, operation, TOPIC, prefix + topic.name, prefix, app_id)
    for operation in Operation:
        assert not may(name, operation, ResourceType.CLUSTER, "kafka-cluster", prefix, app_id)


@given(prefixes, app_ids)
def test_for_any_deployment_the_grants_are_narrow(prefix: str, app_id: str) -> None:
    held = bindings(identities(prefix, app_id))
    assert not any(b.operation is Operation.ALL or b.resource.name in ("", "*") for b in held)
    prefixed = {b.resource for b in held if b.resource.pattern is PatternType.PREFIXED}
    # Only the worker's own internal topics and the alerting readers' groups are prefixes.
    assert prefixed == {Resource(TOPIC, f"{app_id}-", PatternType.PREFIXED),
                        Resource(GROUP, ALERTING, PatternType.PREFIXED)}
    assert may(ALERTING, R, TOPIC, prefix + FAULTS.name, prefix, app_id)
    assert not may(ALERTING, W, TOPIC, prefix + FAULTS.name, prefix, app_id)


@given(st.sampled_from(list(ResourceType)), st.text(max_size=8), st.sampled_from(list(PatternType)), st.text(max_size=12))
def test_resource_patterns_match_as_kafka_does(kind: ResourceType, name: str, pattern: PatternType, asked: str) -> None:
    resource = Resource(kind, name, pattern)
    expected = asked.startswith(name) if pattern is PatternType.PREFIXED else name in (asked, "*")
    assert resource.matches(kind, asked) is expected
    other = next(t for t in ResourceType if t is not kind)
    assert not resource.matches(other, asked)


@pytest.mark.parametrize(("held", "asked", "allowed"), [
    (Operation.READ, Operation.DESCRIBE, True),
    (Operation.WRITE, Operation.DESCRIBE, True),
    (Operation.ALTER_CONFIGS, Operation.DESCRIBE_CONFIGS, True),
    (Operation.DESCRIBE, Operation.READ, False),
    (Operation.CREATE, Operation.DESCRIBE, False),
    (Operation.ALL, Operation.WRITE, True),
])
def test_implied_operations(held: Operation, asked: Operation, allowed: bool) -> None:
    binding = Binding("User:u", Resource(TOPIC, "t"), held)
    assert permits([binding], "User:u", asked, TOPIC, "t") is allowed
    assert not permits([binding], "User:v", asked, TOPIC, "t")
    assert permits([], "User:admin", asked, TOPIC, "t", super_users=["User:admin"])


# --- client settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "error"), [
    ({"security_protocol": "SASL_SSL"}, "needs OCPP_KAFKA_SASL_MECHANISM"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u"}, "needs"),
    ({"sasl_username": "u", "sasl_password": "p"}, "would not send them"),
    ({"ssl_cafile": "/ca.pem"}, "does not use TLS"),
    ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "needs OCPP_KAFKA_SSL_CERTFILE"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"},
     "SCRAM-SHA-512"),
    ({"security_protocol": "TLS"}, "PLAINTEXT"),
])
def test_inconsistent_client_settings_are_refused_with_a_reason(values: dict, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        KafkaSettings(**values)


def test_client_settings_round_trip_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = KafkaSettings(bootstrap_servers="b:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="ocpp-gateway", sasl_password="s3cret", ssl_cafile=tmp_path / "ca.pem")
    for name, value in env_values(settings).items():
        monkeypatch.setenv(name, value)
    assert KafkaSettings() == settings
    assert "s3cret" not in repr(settings) and settings.identity == "user ocpp-gateway"


# --- the local CA and credentials ------------------------------------------------------------------


NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def test_certificates_name_their_holder_and_the_addresses_clients_dial(tmp_path: Path) -> None:
    ca = local_pki.new_ca("test CA", NOW)
    broker = local_pki.issue(ca, BROKER, NOW, hosts=("127.0.0.1", "localhost"), server=True)
    assert local_pki.common_name(broker.certificate) == BROKER
    assert not local_pki.needs_renewal(broker, ca, NOW, ("127.0.0.1",))
    assert local_pki.needs_renewal(broker, ca, NOW, ("10.0.0.5",))  # a new listen address
    assert local_pki.needs_renewal(broker, ca, NOW + local_pki.VALIDITY - dt.timedelta(days=1))
    assert local_pki.needs_renewal(broker, local_pki.new_ca("test CA", NOW), NOW)  # same name, another key
    # Python's own TLS stack accepts the pair and trusts the chain.
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "broker.pem").write_bytes(broker.bundle())
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    context.load_cert_chain(str(tmp_path / "broker.pem"))


def test_the_credentials_folder_is_owner_only_and_keeps_passwords(tmp_path: Path) -> None:
    credentials = LocalCredentials(tmp_path / "credentials")
    credentials.ensure(("127.0.0.1",), NAMES, "127.0.0.1:9092", "127.0.0.1:9192")
    passwords = credentials.passwords(NAMES)
    assert len(set(passwords.values())) == len(NAMES) and all(len(p) >= 40 for p in passwords.values())
    assert stat.S_IMODE(credentials.folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in credentials.folder.iterdir()} == {0o600}
    before = {p.name: p.read_bytes() for p in credentials.folder.iterdir()}
    credentials.ensure(("127.0.0.1",), NAMES, "127.0.0.1:9092", "127.0.0.1:9192")
    assert {p.name: p.read_bytes() for p in credentials.folder.iterdir()} == before  # nothing made twice
    credentials.env_file(ALERTING).unlink()  # rotation: a new password for that identity only
    credentials.ensure(("127.0.0.1",), NAMES, "127.0.0.1:9092", "127.0.0.1:9192")
    after = credentials.passwords(NAMES)
    assert after[ALERTING] != passwords[ALERTING] and {k: v for k, v in after.items() if k != ALERTING} == {
        k: v for k, v in passwords.items() if k != ALERTING}
    gateway = credentials.sasl_settings(GATEWAY, "127.0.0.1:9092")
    assert gateway.ssl_context() is not None
    assert credentials.mtls_settings(ADMIN, "127.0.0.1:9192").ssl_context() is not None


def _hi(password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5802, 2.2: Hi(str, salt, i) = U1 XOR U2 XOR ... Ui, U1 = HMAC(str, salt + INT(1)), Uk = HMAC(str, Uk-1)."""
    u = hmac.new(password, salt + b"\x00\x00\x00\x01", hashlib.sha512).digest()
    result = bytearray(u)
    for _ in range(iterations - 1):
        u = hmac.new(password, u, hashlib.sha512).digest()
        result = bytearray(a ^ b for a, b in zip(result, u))
    return bytes(result)


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=40), st.binary(min_size=1, max_size=32),
       st.integers(1, 50))
def test_scram_salted_password_is_rfc_5802_hi(password: str, salt: bytes, iterations: int) -> None:
    assert salted_password(password, salt, iterations) == _hi(password.encode(), salt, iterations)


def test_a_secured_broker_has_no_plain_text_listener(tmp_path: Path) -> None:
    settings = LocalKafkaSettings(home=tmp_path, secure=True, port=19092, controller_port=19093, tls_port=19192)
    lines = dict(line.split("=", 1) for line in server_properties(settings, Node.single(settings)).splitlines())
    assert "PLAINTEXT" not in lines["listeners"] + lines["listener.security.protocol.map"]
    assert lines["listeners"] == "SASL_SSL://127.0.0.1:19092,SSL://127.0.0.1:19192,CONTROLLER://127.0.0.1:19093"
    assert lines["listener.name.ssl.ssl.client.auth"] == lines["listener.name.controller.ssl.client.auth"] == "required"
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["super.users"] == f"User:{BROKER};User:{ADMIN}"
    plain = LocalKafkaSettings(home=tmp_path, port=19092, controller_port=19093)
    assert "SASL" not in server_properties(plain, Node.single(plain))


def test_a_secured_cluster_gives_each_node_its_own_listeners_and_one_credentials_folder(tmp_path: Path) -> None:
    from infra.local_cluster import cluster_nodes

    settings = LocalKafkaSettings(home=tmp_path, secure=True, brokers=3, port=19092, controller_port=19093, tls_port=19192)
    nodes = cluster_nodes(settings)
    listeners = [dict(line.split("=", 1) for line in server_properties(settings, node).splitlines())["listeners"]
                 for node in nodes]
    assert listeners == [f"SASL_SSL://127.0.0.1:{19092 + 2 * i},SSL://127.0.0.1:{19192 + i},CONTROLLER://127.0.0.1:{19093 + 2 * i}"
                         for i in range(3)]
    assert settings.tls_bootstrap_servers == "127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194"
    assert settings.credentials_dir == settings.cluster_dir / "credentials"
