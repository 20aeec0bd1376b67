"""Kafka identities on the real broker, secured as ``kafka start --secure`` secures it (one broker for the module).

- Nobody anonymous gets in: not in plain text, not over TLS without a user, not with a wrong password, not
  without a client certificate, not with a certificate of another CA.
- Each identity can do exactly what the ACL table permits (:func:`infra.kafka_acls.permits`, the model of
  Kafka's authorizer, decides the expected answer; the broker must agree): the gateway writes frames and
  cannot read them, the alerting reader reads faults and cannot write, the worker cannot forge frames...
  over SCRAM and over mutual TLS alike.
- The pipeline runs with its credentials: gateway and worker, each as itself, carry a charger's session
  into ClickHouse.
- Applying the table again changes nothing; deleting an identity's file and starting again rotates its
  password (the old one is refused).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError, GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError,
)

from infra import local_pki
from infra.errors import TopicNotPermitted
from infra.kafka_probe import main as probe
from infra.kafka_probe import produce  # idempotent, acks=all: what the gateway does
from infra.kafka_close import settle
from infra.kafka_acls import (
    ALERTING, EXCLUSIONS_TOPIC, GATEWAY, OPERATOR, WORKER, Operation, ResourceType, bindings, permits,
)
from infra.local_credentials import SUPER_USERS, env_values
from infra.local_kafka import LocalBroker
from infra.secured_broker import SecuredBus, admin_settings, as_local_identity, make_ready
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import FAULTS, FRAMES, SESSIONS, TopicSpec
from ocpp_pipeline.cli import main
from tests.conftest import broker_settings_in, free_port
from tests.processors.test_worker_live import WorkerProcess
from tests.test_dev import charge

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "ocpp-processors"
AUTH_ERRORS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBus]:
    local = broker_settings_in(tmp_path_factory.mktemp("secured"), secure=True)
    broker = LocalBroker(local)
    broker.start()
    try:
        kafka = KafkaSettings(partitions=2)
        yield make_ready(local, kafka, APP_ID)
    finally:
        broker.stop()


def admin(bus: SecuredBus) -> KafkaSettings:
    return admin_settings(bus.local, KafkaSettings())


# --- nobody anonymous ----------------------------------------------------------------------------------


def _foreign_certificate(folder: Path) -> Path:
    now = dt.datetime.now(dt.timezone.utc)
    pair = local_pki.issue(local_pki.new_ca("someone else's CA", now), GATEWAY, now)
    path = folder / "foreign.pem"
    path.write_bytes(pair.bundle())
    return path


@pytest.mark.parametrize("who", ["plain text", "TLS, no user", "wrong password", "mutual TLS, no certificate",
                                 "certificate of another CA"])
def test_anonymous_and_unknown_clients_are_refused(secured: SecuredBus, who: str, tmp_path: Path) -> None:
    ca, sasl, tls = secured.credentials.ca_file, secured.local.bootstrap_servers, secured.local.tls_bootstrap_servers
    settings = {
        "plain text": lambda: KafkaSettings(bootstrap_servers=sasl),
        "TLS, no user": lambda: KafkaSettings(bootstrap_servers=sasl, security_protocol="SSL", ssl_cafile=ca),
        "wrong password": lambda: secured.settings_of(GATEWAY, password="not-" + secured.credentials.password(GATEWAY)),
        "mutual TLS, no certificate": lambda: KafkaSettings(bootstrap_servers=tls, security_protocol="SSL", ssl_cafile=ca),
        "certificate of another CA": lambda: KafkaSettings(bootstrap_servers=tls, security_protocol="SSL", ssl_cafile=ca,
                                                           ssl_certfile=_foreign_certificate(tmp_path)),
    }[who]()
    with pytest.raises(KafkaConnectionError):
        asyncio.run(produce(settings, FRAMES.name))


# --- each identity, exactly its permissions ------------------------------------------------------------


async def _consume(settings: KafkaSettings, topic: str, group: str | None) -> None:
    """Read at least one record of ``topic`` (the fixture put one there), as a member of ``group``."""
    consumer = AIOKafkaConsumer(topic, **settings.client_options(), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any((await consumer.getmany(timeout_ms=500)).values()):
                if group is not None:
                    await consumer.commit()
                return
        raise AssertionError(f"read nothing from {topic} in 30 s")
    finally:
        await consumer.stop()
        await settle(settings)


async def _create(settings: KafkaSettings, topic: str) -> None:
    client = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=10_000)
    await client.start()
    try:
        response = await client.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await client.close()
        await settle(settings)
    ((_, code, *_),) = response.topic_errors
    if code == 29:
        raise TopicAuthorizationFailedError()
    assert code in (0, 36), code


# (identity, action, topic, consumer group): the model decides the expected outcome, the broker must agree.
CASES = [
    (GATEWAY, "produce", FRAMES.name, None),
    (WORKER, "produce", FRAMES.name, None),
    (OPERATOR, "produce", FRAMES.name, None),
    (ALERTING, "produce", FRAMES.name, None),
    (GATEWAY, "consume", FRAMES.name, None),
    (ALERTING, "consume", FRAMES.name, None),
    (WORKER, "consume", FRAMES.name, APP_ID),
    (WORKER, "consume", FRAMES.name, "someone-elses-group"),
    (WORKER, "produce", SESSIONS.name, None),
    (WORKER, "produce", FAULTS.name, None),
    (ALERTING, "produce", FAULTS.name, None),
    (ALERTING, "consume", FAULTS.name, "ocpp-alerting-pager"),
    (ALERTING, "consume", SESSIONS.name, None),
    (OPERATOR, "produce", EXCLUSIONS_TOPIC, None),
    (GATEWAY, "produce", EXCLUSIONS_TOPIC, None),
    (WORKER, "consume", EXCLUSIONS_TOPIC, APP_ID),
    (WORKER, "create", f"{APP_ID}-scratch-changelog", None),
    (WORKER, "create", "ocpp.rogue.v1", None),
    (GATEWAY, "create", "ocpp.rogue.v1", None),
]


def required(action: str, topic: str, group: str | None) -> list[tuple[Operation, ResourceType, str]]:
    """What Kafka checks for ``action`` (produce: Write; consume: Read on the topic and on the group; create)."""
    if action == "produce":
        return [(Operation.WRITE, ResourceType.TOPIC, topic)]
    if action == "create":
        return [(Operation.CREATE, ResourceType.TOPIC, topic)]
    return [(Operation.READ, ResourceType.TOPIC, topic)] + ([(Operation.READ, ResourceType.GROUP, group)] if group else [])


def _outcome(settings: KafkaSettings, action: str, topic: str, group: str | None) -> bool:
    run = {"produce": lambda: produce(settings, topic), "create": lambda: _create(settings, topic),
           "consume": lambda: _consume(settings, topic, group)}[action]
    try:
        asyncio.run(run())
    except AUTH_ERRORS:
        return False
    return True


@pytest.fixture(scope="module")
def seeded(secured: SecuredBus) -> SecuredBus:
    """One record on each topic the cases read, written by the administrator."""
    for topic in (FRAMES.name, FAULTS.name, SESSIONS.name, EXCLUSIONS_TOPIC):
        asyncio.run(produce(admin(secured), topic))
    return secured


@pytest.mark.parametrize(("name", "action", "topic", "group"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_each_identity_may_do_exactly_what_the_table_permits(seeded: SecuredBus, name: str, action: str, topic: str,
                                                             group: str | None) -> None:
    held = bindings(seeded.table)
    expected = all(permits(held, f"User:{name}", op, kind, resource, super_users=SUPER_USERS)
                   for op, kind, resource in required(action, topic, group))
    assert _outcome(seeded.settings_of(name), action, topic, group) is expected


@pytest.mark.parametrize(("name", "allowed"), [(GATEWAY, True), (ALERTING, False), (WORKER, False)])
def test_a_client_certificate_is_the_same_identity_as_its_user(seeded: SecuredBus, name: str, allowed: bool) -> None:
    """Mutual TLS: the certificate's CN is the principal, so the same ACLs hold (only the gateway writes frames)."""
    settings = seeded.credentials.mtls_settings(name, seeded.local.tls_bootstrap_servers)
    assert _outcome(settings, "produce", FRAMES.name, None) is allowed


# --- the pipeline with its credentials -----------------------------------------------------------------


def test_gateway_and_worker_carry_a_session_into_clickhouse_with_their_own_credentials(
        secured: SecuredBus, tmp_path: Path) -> None:
    base = {**{k: v for k, v in os.environ.items() if not k.startswith("OCPP_KAFKA_")},
            "OCPP_HOME": str(tmp_path / "home"), "OCPP_KAFKA_PARTITIONS": "2"}
    gateway_port = free_port()
    gateway_env = {**base, **env_values(secured.settings_of(GATEWAY)), "OCPP_GATEWAY_HOST": "127.0.0.1",
                   "OCPP_GATEWAY_PORT": str(gateway_port)}
    worker_env = {**base, **env_values(secured.settings_of(WORKER)), "OCPP_WORKER_APP_ID": APP_ID, "OCPP_WORKER_SQL_PORT": "0",
                  "OCPP_WORKER_WEB_PORT": str(free_port()), "OCPP_WORKER_STATUS_WINDOW_S": "2",
                  "OCPP_WORKER_FLUSH_INTERVAL_S": "0.3", "OCPP_WORKER_IDLE_ADVANCE_S": "0.5"}
    log = open(tmp_path / "gateway.log", "wb")
    gateway = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway", "--processes", "1"], cwd=ROOT,
                               env=gateway_env, stdout=log, stderr=subprocess.STDOUT)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    try:
        worker.wait_for("SELECT 1", [[1]], timeout_s=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                tx = asyncio.run(asyncio.wait_for(charge(gateway_port), 60))
                break
            except OSError:
                time.sleep(0.3)
        worker.wait_for("SELECT transaction_id, energy_wh FROM ocpp.sessions FINAL WHERE charge_point_id = 'DEV-1'",
                        [[str(tx), 7500.0]])
        assert gateway.poll() is None and worker.proc.poll() is None
    finally:
        gateway.terminate()
        gateway.wait(60)
        log.close()
        worker.stop()
    for name in ("gateway", "worker"):  # neither ever needed more than its ACLs
        assert "Authorization" not in (tmp_path / f"{name}.log").read_text(), name


# --- applying and rotating -----------------------------------------------------------------------------


def test_credentials_are_owner_only_and_applying_again_changes_nothing(secured: SecuredBus) -> None:
    folder = secured.credentials.folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    again = make_ready(secured.local, KafkaSettings(partitions=2), APP_ID)
    assert (again.provisioned.created, again.provisioned.deleted) == (0, 0)
    assert all(not state.created for state in again.topics)


def test_kafka_start_secure_on_the_running_broker_says_where_the_credentials_are(
        secured: SecuredBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    local = secured.local
    for name, value in (("OCPP_HOME", local.home), ("OCPP_LOCAL_KAFKA_PORT", local.port), ("OCPP_KAFKA_PARTITIONS", 2),
                        ("OCPP_LOCAL_KAFKA_CONTROLLER_PORT", local.controller_port),
                        ("OCPP_LOCAL_KAFKA_TLS_PORT", local.tls_port)):
        monkeypatch.setenv(name, str(value))
    assert main(["kafka", "start", "--secure"]) == 0
    said = capsys.readouterr().out
    assert f"credentials (owner-only) in {secured.credentials.folder}/" in said
    assert "no anonymous client" in said and secured.credentials.password(GATEWAY) not in said
    assert main(["kafka", "status"]) == 0  # found, and probed as the administrator
    assert main(["kafka", "start"]) == 2
    assert "already runs secured" in capsys.readouterr().err


def test_deleting_an_identity_file_and_starting_again_rotates_its_password(secured: SecuredBus) -> None:
    old = secured.settings_of(ALERTING)
    secured.credentials.env_file(ALERTING).unlink()
    make_ready(secured.local, KafkaSettings(partitions=2), APP_ID)  # what `kafka start --secure` does on a running broker
    new = secured.settings_of(ALERTING)
    assert new.sasl_password != old.sasl_password
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_consume(old, FAULTS.name, None))
    asyncio.run(_consume(new, FAULTS.name, None))



def test_a_service_creates_no_contract_topic_and_says_which_it_may_not_see(secured: SecuredBus) -> None:
    """Topics are the administrator's: the gateway's check of the frames topic creates nothing, and asked for a
    topic it may not see it says so (a service waits on this; ``topics create`` stops on it)."""
    gateway = secured.settings_of(GATEWAY, partitions=2)
    (frames,) = asyncio.run(ensure_topics(gateway, [FRAMES]))
    assert not frames.created
    with pytest.raises(TopicNotPermitted, match=f"user {GATEWAY} may not see topic {SESSIONS.name}"):
        asyncio.run(ensure_topics(gateway, [FRAMES, SESSIONS]))
    with pytest.raises(TopicNotPermitted, match=f"user {WORKER} may not see topic ocpp.rogue.v2"):
        asyncio.run(ensure_topics(secured.settings_of(WORKER), [TopicSpec("ocpp.rogue.v2", 1, 3600_000)]))


def test_the_probe_of_the_attack_catalogue_says_allowed_or_refused(secured: SecuredBus, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env_values(secured.settings_of(GATEWAY)).items():
        monkeypatch.setenv(name, value)
    assert probe(["produce", FRAMES.name]) == 0
    assert probe(["consume", FRAMES.name]) == 1
    monkeypatch.setenv("OCPP_KAFKA_SASL_PASSWORD", "guess")
    assert probe(["produce", FRAMES.name]) == 1
    said = capsys.readouterr().out.splitlines()
    assert said == [f"allowed: produce {FRAMES.name} as user {GATEWAY}",
                    f"refused: TopicAuthorizationFailedError (user {GATEWAY})",
                    f"refused: cannot connect to {secured.local.bootstrap_servers} as user {GATEWAY}"]


def test_commands_aimed_at_the_secured_local_broker_act_as_the_right_identity(secured: SecuredBus) -> None:
    """`make run` secures its broker: `outages exclude` typed in another terminal (no OCPP_KAFKA_* identity) acts as
    the operator; settings that name an identity, or another broker, are left as they are."""
    local = secured.local
    operator = as_local_identity(KafkaSettings(bootstrap_servers=local.bootstrap_servers), local, OPERATOR)
    assert (operator.security_protocol, operator.sasl_username) == ("SASL_SSL", OPERATOR)
    asyncio.run(produce(operator, EXCLUSIONS_TOPIC))
    elsewhere = KafkaSettings(bootstrap_servers="10.0.0.1:9092")
    assert as_local_identity(elsewhere, local, OPERATOR) is elsewhere
    gateway = secured.settings_of(GATEWAY)
    assert as_local_identity(gateway, local, OPERATOR) is gateway
