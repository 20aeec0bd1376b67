"""``ocpp-pipeline outages exclude``: record an operator exclusion as an event on ``ocpp.exclusions.v1``.

The event (the ``outage_exclusions`` row as JSON, key = charge point id) is acknowledged by every in-sync
replica (acks=all, idempotent producer) before the command says it is recorded. The worker sinks it into
``outage_exclusions``, while it runs, in embedded and server mode alike; a replay rebuilds the table from the
topic. Nothing writes ClickHouse here: which outages an exclusion names is decided at read time
(``port_outages_with_exclusions``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infra.errors import TopicError
from infra.settings import KafkaSettings
from schemas.exclusions import EVERY_PORT
from schemas.records import OutageExclusion
from schemas.topics import EXCLUSIONS


@dataclass(frozen=True)
class Recorded:
    exclusion: OutageExclusion
    topic: str
    partition: int
    offset: int

    def describe(self) -> str:
        e = self.exclusion
        port = "every port" if e.connector_id == EVERY_PORT else f"port {e.connector_id}"
        forced = " (forced: bounds not checked)" if e.forced else ""
        return (f"exclusion {e.exclusion_id} recorded{forced}: {e.charge_point_id} {port}, {e.from_at.isoformat()} to "
                f"{e.to_at.isoformat()}, {e.reason.value}, by {e.recorded_by}"
                + (f", reference {e.reference}" if e.reference else "")
                + f"; event {self.topic}[{self.partition}]@{self.offset}")


async def publish(kafka: KafkaSettings, exclusion: OutageExclusion, timeout_s: float = 30.0) -> Recorded:
    """Send the event and wait until Kafka has it; :class:`~infra.errors.TopicError` when it cannot."""
    topic = kafka.topic(EXCLUSIONS.name)
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True,
                                request_timeout_ms=int(timeout_s * 1000))
    try:
        await producer.start()
        meta = await producer.send_and_wait(topic, key=exclusion.charge_point_id.encode(),
                                            value=exclusion.model_dump_json().encode())
    except KafkaError as exc:
        raise TopicError(f"the exclusion was not recorded: Kafka at {kafka.bootstrap_servers} did not take it on "
                         f"{topic} ({exc.__class__.__name__}: {exc})") from None
    finally:
        await producer.stop()
    return Recorded(exclusion, topic, meta.partition, meta.offset)
