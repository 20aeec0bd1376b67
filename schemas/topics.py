"""The Kafka topics as values (name, partitions, retention, cleanup policy).

Partition counts here are the production defaults; a deployment may scale them with
``OCPP_KAFKA_PARTITIONS`` (the local broker uses fewer). Keys are always the charge point id,
so one charger's records stay ordered in one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    min_insync_replicas: int = 2
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def with_partitions(self, partitions: int | None) -> "TopicSpec":
        return self if partitions is None else replace(self, partitions=partitions)

    def topic_config(self, replication_factor: int) -> dict[str, str]:
        """The broker-side topic configuration for a given replication factor.

        ``min.insync.replicas`` never exceeds the replication factor: with acks=all a topic
        asking for more in-sync replicas than it has would refuse every write.
        """
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min(self.min_insync_replicas, replication_factor)),
            **self.config,
        }


FRAMES = TopicSpec(
    name="ocpp.frames.v1",
    partitions=24,
    # The source of truth for replay: kept long enough to rebuild every table after a bad deploy.
    retention_ms=30 * DAY_MS,
    config={"compression.type": "zstd"},
    description="every OCPP frame in both directions, key = charge point id",
)

SESSIONS = TopicSpec(
    name="ocpp.sessions.v1",
    partitions=12,
    retention_ms=14 * DAY_MS,
    config={"compression.type": "zstd"},
    description="one record per closed session (the sessions row as JSON)",
)

FAULTS = TopicSpec(
    name="ocpp.faults.v1",
    partitions=12,
    retention_ms=14 * DAY_MS,
    config={"compression.type": "zstd"},
    description="one record per fault event (the fault_events row as JSON), for alerting",
)

EXCLUSIONS = TopicSpec(
    name="ocpp.exclusions.v1",
    # Rare events (an operator's hand), read from the start by every replay: one partition keeps them in order.
    partitions=1,
    # The audit trail of who excluded what (federal uptime figures depend on it) and the source of
    # outage_exclusions: kept forever.
    retention_ms=-1,
    description="operator exclusions (the outage_exclusions row as JSON), written by `ocpp-pipeline outages "
                "exclude`, sunk by the worker",
)

METER_KEYS = TopicSpec(
    name="ocpp.meter_keys.v1",
    # A few events per meter, read whole by every worker at its start: one partition keeps them in order.
    partitions=1,
    # The registry is these events folded: a key registered years ago still verifies today's sessions. Kept forever.
    retention_ms=-1,
    description="meter public keys registered or removed (the meter_keys row as JSON), written by `ocpp-pipeline "
                "keys`, read whole by every worker (the key registry) and sunk into meter_keys",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (FRAMES, SESSIONS, FAULTS, EXCLUSIONS, METER_KEYS)


def faust_topics(app_id: str, frames_partitions: int = FRAMES.partitions) -> tuple[TopicSpec, ...]:
    """The topics the Faust worker ``app_id`` uses besides the pipeline's own: the correlator
    state changelog (compacted, one partition per frames partition: co-partitioned with it) and
    Faust's assignor leader election topic. Deployments that manage topics declaratively
    (Strimzi ``KafkaTopic``) must declare these too."""
    return (
        TopicSpec(
            name=f"{app_id}-correlator-state-changelog",
            partitions=frames_partitions,
            retention_ms=-1,
            cleanup_policy="compact",
            description="correlator state per charge point (Faust table changelog), co-partitioned with frames",
        ),
        TopicSpec(
            name=f"{app_id}-__assignor-__leader",
            partitions=1,
            retention_ms=DAY_MS,
            description="Faust leader election",
        ),
    )
