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


def make_ready(local: LocalKafkaSettings, kafka: KafkaSettings, app_id: str) -> SecuredBus:
    """Apply the identities (for topics named with ``kafka.topic_prefix`` and a worker of ``app_id``) to the
    running secured broker and create the pipeline's topics."""
    table = identities(kafka.topic_prefix, app_id)
    credentials = LocalCredentials(local.credentials_dir)
    admin = admin_settings(local, kafka)
    provisioned = asyncio.run(provision(admin, table, credentials.passwords(tuple(e.name for e in table))))
    topics = asyncio.run(ensure_topics(admin))
    return SecuredBus(local, credentials, table, provisioned, topics)
