"""What ``ocpp-pipeline kafka start --secure`` (and ``dev``) does once the secured local broker answers:
the identities of :mod:`infra.kafka_acls` become SCRAM users with exactly their ACLs, the pipeline's topics
are created by the administrator (the services may not create them: as on Kubernetes, topics are declared),
and the command says where each identity's credentials are."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from infra.acl_admin import Provisioned, provision
from infra.kafka_acls import Identity, identities
from infra.local_credentials import ADMIN, LocalCredentials
from infra.settings import KafkaSettings, LocalKafkaSettings
from infra.topic_admin import TopicState, ensure_topics


@dataclass(frozen=True)
class SecuredBus:
    """A secured local broker made ready: its identities applied and its topics created."""

    local: LocalKafkaSettings
    credentials: LocalCredentials
    table: tuple[Identity, ...]
    provisioned: Provisioned
    topics: list[TopicState]

    def settings_of(self, name: str, **extra: object) -> KafkaSettings:
        """Identity ``name`` over SASL_SSL (SCRAM-SHA-512) on the client port."""
        return self.credentials.sasl_settings(name, self.local.bootstrap_servers, **extra)

    def describe(self) -> str:
        folder = self.credentials.folder
        names = ", ".join(f"{entry.name}.env" for entry in self.table)
        return "\n".join([
            f"  secured: SASL_SSL + SCRAM-SHA-512 on {self.local.bootstrap_servers}, mutual TLS on "
            f"{self.local.tls_bootstrap_servers}; no anonymous client; {self.provisioned.describe()}",
            f"  credentials (owner-only) in {folder}/: {names}, {ADMIN}.env (administrator), ca.pem",
            f"  e.g.  set -a; . {self.credentials.env_file(self.table[0].name)}; set +a",
        ])


def admin_settings(local: LocalKafkaSettings, kafka: KafkaSettings) -> KafkaSettings:
    """The administrator of the secured local broker (mutual TLS, a super user), with ``kafka``'s topic
    naming and sizing."""
    return LocalCredentials(local.credentials_dir).mtls_settings(
        ADMIN, local.tls_bootstrap_servers, topic_prefix=kafka.topic_prefix, partitions=kafka.partitions,
        replication_factor=kafka.replication_factor)


def as_local_identity(kafka: KafkaSettings, local: LocalKafkaSettings, name: str) -> KafkaSettings:
    """``kafka`` as the command was given it; but when it names no identity at all (PLAINTEXT, no certificate) and
    points at this machine's broker, which runs secured, the settings of the local identity ``name`` (its
    ``.env`` file): ``make run`` secures its broker, and ``outages exclude``, ``replay`` or ``topics create`` typed in
    another terminal then act as the operator, the worker or the administrator without being told how."""
    from infra.local_kafka import LocalBroker

    anonymous = kafka.security_protocol == "PLAINTEXT"
    if not anonymous or kafka.bootstrap_servers != local.bootstrap_servers:
        return kafka
    broker = LocalBroker(local.model_copy(update={"secure": True}))
    if broker.pid() is None or not broker.configured_secure():
        return kafka
    naming = {"topic_prefix": kafka.topic_prefix, "partitions": kafka.partitions,
              "replication_factor": kafka.replication_factor}
    if name == ADMIN:
        return admin_settings(local, kafka)
    return LocalCredentials(local.credentials_dir).sasl_settings(name, local.bootstrap_servers, **naming)


def make_ready(local: LocalKafkaSettings, kafka: KafkaSettings, app_id: str) -> SecuredBus:
    """Apply the identities (for topics named with ``kafka.topic_prefix`` and a worker of ``app_id``) to the
    running secured broker and create the pipeline's topics."""
    table = identities(kafka.topic_prefix, app_id)
    credentials = LocalCredentials(local.credentials_dir)
    # Passwords deleted since the broker started (a rotation) are made anew here and applied below.
    names = tuple(e.name for e in table)
    credentials.ensure((local.host,), names, local.bootstrap_servers, local.tls_bootstrap_servers)
    admin = admin_settings(local, kafka)
    provisioned = asyncio.run(provision(admin, table, credentials.passwords(names)))
    topics = asyncio.run(ensure_topics(admin))
    return SecuredBus(local, credentials, table, provisioned, topics)
