"""Create the pipeline's topics idempotently (by ``ocpp-pipeline topics create``, the gateway and
the worker at start). An existing topic is left as it is: adding partitions later would move
charge points between partitions and break their order, so a mismatch is reported, not fixed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from infra.errors import TopicError
from infra.settings import KafkaSettings
from schemas.topics import ALL_TOPICS, TopicSpec

_NO_ERROR = 0
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicState:
    name: str
    created: bool
    partitions: int
    wanted_partitions: int

    def describe(self) -> str:
        what = "created" if self.created else "exists"
        note = "" if self.partitions == self.wanted_partitions else f" (definition says {self.wanted_partitions})"
        return f"{self.name}: {what}, {self.partitions} partitions{note}"


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] = ALL_TOPICS) -> list[TopicState]:
    """Create every topic in ``specs`` that does not exist yet; report all of them."""
    specs = [replace(spec.with_partitions(settings.partitions), name=settings.topic(spec.name)) for spec in specs]
    admin = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=30000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=spec.topic_config(settings.replication_factor),
                )
                for spec in specs
            ]
        )
        created: set[str] = set()
        for topic, code, *rest in response.topic_errors:
            if code == _NO_ERROR:
                created.add(topic)
            elif code != _TOPIC_ALREADY_EXISTS:
                message = rest[0] if rest else ""
                raise TopicError(f"creating topic {topic} failed: {for_code(code).__name__} {message or ''}".rstrip())
        described = await admin.describe_topics([spec.name for spec in specs])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    return [
        TopicState(spec.name, spec.name in created, partitions.get(spec.name, 0), spec.partitions)
        for spec in specs
    ]


async def partitions_of(settings: KafkaSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic``; :class:`TopicError` if it does not exist."""
    admin = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=30000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code") or not described.get("partitions"):
        raise TopicError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described["partitions"])
