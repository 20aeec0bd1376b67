"""Create the pipeline's topics idempotently and wait until they can be used.

``ensure_topics`` (``ocpp-pipeline topics create``, ``dev``) creates what is missing and returns only
once every topic shows all its partitions with a leader. ``wait_for_topics`` is what the services call at
start (the worker before Faust starts, the gateway in the background while it already serves chargers):
it retries until Kafka answers and the topics are usable, logging what it waits for, and raises only for
what waiting cannot fix (a policy, a bad name). This is what lets every process start in any order, as on
Kubernetes where every pod starts at once.

Only missing topics are created. On a secured cluster the services may not create the contract topics
(only the administrator may: Strimzi ``KafkaTopic``, ``kafka start --secure``), and Kafka answers a
CreateTopics for an existing topic the caller may not create with an authorisation error, not "exists".
A topic this identity may not see or create is :class:`TopicNotPermitted`: ``topics create`` stops on it,
a service waits for it (its ACLs or the topic may come a moment later, from the operators), saying why.

Why waiting after creation matters: a broker that has just started answers CreateTopics at once but
describes the new topic with 0 partitions (or partitions without a leader) for several seconds; Faust,
handed 0 partitions, dies with "Topic cannot have zero partitions".

An existing topic is left as it is: adding partitions later would move charge points between partitions
and break their order, so a mismatch is reported, not fixed.

Replication: ``OCPP_KAFKA_REPLICATION_FACTOR`` unset means "follow the cluster": min(3, brokers), so a
single local broker gets 1 and a 3-broker cluster 3 (with ``min.insync.replicas`` 2, from the topic
definitions, capped at the replication factor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from infra.errors import TopicError, TopicNotPermitted, TopicRefused
from infra.kafka_close import settle
from infra.settings import KafkaSettings
from schemas.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger("ocpp.topics")

_NO_ERROR = 0
_UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION
_TOPIC_ALREADY_EXISTS = 36
_NOT_PERMITTED = {29, 31}  # TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED
# CreateTopics answers that waiting cannot change. Everything else (no controller yet, fewer brokers
# up than the replication factor, a timeout) passes while a cluster starts: retried.
_REFUSED_CODES = {
    17,  # INVALID_TOPIC_EXCEPTION
    37,  # INVALID_PARTITIONS
    40,  # INVALID_CONFIG
    44,  # POLICY_VIOLATION
}
MAX_DEFAULT_REPLICATION = 3


@dataclass(frozen=True)
class TopicState:
    name: str
    created: bool
    partitions: int
    wanted_partitions: int
    replication_factor: int = 0

    def describe(self) -> str:
        what = "created" if self.created else "exists"
        note = "" if self.partitions == self.wanted_partitions else f" (definition says {self.wanted_partitions})"
        replicas = f", replication {self.replication_factor}" if self.replication_factor > 1 else ""
        return f"{self.name}: {what}, {self.partitions} partitions{replicas}{note}"


@dataclass(frozen=True)
class Readiness:
    """What one topic's metadata says: its partition count, and why it cannot be used yet (None: usable)."""

    partitions: int
    replication_factor: int
    problem: str | None


@dataclass(frozen=True)
class TopicsReady:
    """The outcome of :func:`wait_for_topics`: the topics, and the settings with the replication factor
    resolved from the cluster (the one the worker hands Faust for its own topics)."""

    settings: KafkaSettings
    topics: list[TopicState]

    def partitions(self, name: str) -> int:
        return next(t.partitions for t in self.topics if t.name == name)


# --- pure rules ----------------------------------------------------------------------------------


def replication_for(configured: int | None, brokers: int) -> int:
    """The replication factor of topics the pipeline creates: the configured one, else min(3, brokers)."""
    if configured is not None:
        return configured
    return max(1, min(MAX_DEFAULT_REPLICATION, brokers))


def readiness(described: Sequence[Mapping[str, Any]], names: Iterable[str]) -> dict[str, Readiness]:
    """Per topic name, whether the metadata ``described`` (aiokafka's ``describe_topics`` shape) shows it
    usable: known, with at least one partition, every partition with a leader and no error."""
    by_name = {d.get("topic"): d for d in described}
    result: dict[str, Readiness] = {}
    for name in names:
        topic = by_name.get(name)
        if topic is None or topic.get("error_code", 0) != _NO_ERROR:
            code = topic.get("error_code", 0) if topic is not None else None
            why = for_code(code).__name__ if code else "not in the metadata"
            result[name] = Readiness(0, 0, f"not known yet ({why})")
            continue
        partitions = topic.get("partitions") or []
        replicas = min((len(p.get("replicas") or []) for p in partitions), default=0)
        if not partitions:
            result[name] = Readiness(0, 0, "0 partitions yet")
            continue
        leaderless = [p for p in partitions if p.get("error_code", 0) != _NO_ERROR or p.get("leader", -1) < 0]
        problem = f"{len(leaderless)} of {len(partitions)} partitions without a leader yet" if leaderless else None
        result[name] = Readiness(len(partitions), replicas, problem)
    return result


def waiting_line(bootstrap_servers: str, reason: str, waited_s: float) -> str:
    """The log line a waiting service prints: what it waits for, where, and for how long already."""
    return f"waiting for Kafka topics on {bootstrap_servers} ({waited_s:.0f} s so far): {reason}"


def wait_reason(exc: BaseException) -> str:
    """Why the topics are not usable yet, in one line."""
    if isinstance(exc, TopicError):
        return str(exc)  # names the topics and what they lack
    detail = str(exc)
    return f"Kafka not answering ({type(exc).__name__}{': ' + detail if detail else ''})"


# --- I/O -----------------------------------------------------------------------------------------


def _admin(settings: KafkaSettings, request_timeout_ms: int = 30000) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=request_timeout_ms)


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """Topic metadata without creating anything: aiokafka's ``describe_topics`` sends a metadata
    request that allows auto-creation, which would create a missing topic with the broker's default
    partition count (and a frames topic with the wrong count cannot be fixed later)."""
    response = await admin._send_request(MetadataRequest(names, allow_auto_topic_creation=False))
    return response.to_object()["topics"]


async def cluster_size(admin: AIOKafkaAdminClient) -> int:
    return len((await admin.describe_cluster())["brokers"])


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec] = ALL_TOPICS, *, ready_timeout_s: float = 30.0
) -> list[TopicState]:
    """Create every topic in ``specs`` that does not exist yet; report all of them once usable.

    Raises :class:`TopicRefused` for what waiting cannot fix and :class:`TopicError` (retriable) when a
    topic is still not usable after ``ready_timeout_s``.
    """
    states, _ = await _ensure(settings, specs, ready_timeout_s)
    return states


async def _ensure(
    settings: KafkaSettings, specs: Iterable[TopicSpec], ready_timeout_s: float
) -> tuple[list[TopicState], int]:
    specs = [replace(spec.with_partitions(settings.partitions), name=settings.topic(spec.name)) for spec in specs]
    names = [spec.name for spec in specs]
    admin = _admin(settings)
    await admin.start()
    try:
        replication = replication_for(settings.replication_factor, await cluster_size(admin))
        described = {d.get("topic"): d.get("error_code", 0) for d in await _describe(admin, names)}
        hidden = [name for name in names if described.get(name) in _NOT_PERMITTED]
        if hidden:
            raise TopicNotPermitted(f"{settings.identity} may not see topic {', '.join(hidden)} "
                                    "(TopicAuthorizationFailed): its ACLs are missing")
        missing = [spec for spec in specs if described.get(spec.name, _UNKNOWN_TOPIC) == _UNKNOWN_TOPIC]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=replication,
                        topic_configs=spec.topic_config(replication),
                    )
                    for spec in missing
                ]
            )
            for topic, code, *rest in response.topic_errors:
                message = (rest[0] if rest else "") or ""
                if code == _NO_ERROR:
                    created.add(topic)
                elif code in _NOT_PERMITTED:
                    raise TopicNotPermitted(f"topic {topic} does not exist and {settings.identity} may not create it: "
                                            "an administrator creates the pipeline's topics (ocpp-pipeline topics "
                                            "create as the administrator; KafkaTopic resources on Kubernetes)")
                elif code != _TOPIC_ALREADY_EXISTS:
                    error = TopicRefused if code in _REFUSED_CODES else TopicError
                    raise error(f"creating topic {topic} failed: {for_code(code).__name__} {message}".rstrip())
        deadline = time.monotonic() + ready_timeout_s
        while True:
            ready = readiness(await _describe(admin, names), names)
            problems = {name: r.problem for name, r in ready.items() if r.problem}
            if not problems:
                break
            if time.monotonic() >= deadline:
                raise TopicError("; ".join(f"{name}: {problem}" for name, problem in problems.items()))
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
        await settle(settings)
    states = [
        TopicState(spec.name, spec.name in created, ready[spec.name].partitions, spec.partitions,
                   ready[spec.name].replication_factor)
        for spec in specs
    ]
    return states, replication


async def wait_for_topics(
    settings: KafkaSettings,
    specs: Iterable[TopicSpec] = ALL_TOPICS,
    *,
    retry_s: float = 1.0,
    log_every_s: float = 10.0,
    say: Callable[[str], None] = log.warning,
) -> TopicsReady:
    """Wait until Kafka answers and every topic in ``specs`` exists (creating what is missing) with all
    its partitions led; then return them. Logs what it waits for at once and every ``log_every_s``.

    Never gives up for a broker that is not there yet; raises :class:`TopicRefused` only.
    """
    specs = list(specs)
    started = time.monotonic()
    last_said = -log_every_s
    while True:
        try:
            states, replication = await _ensure(settings, specs, ready_timeout_s=max(retry_s, 5.0))
        except TopicRefused:
            raise
        except (TopicError, KafkaError, OSError, asyncio.TimeoutError) as exc:
            waited = time.monotonic() - started
            if waited - last_said >= log_every_s:
                say(waiting_line(settings.bootstrap_servers, wait_reason(exc), waited))
                last_said = waited
            await asyncio.sleep(retry_s)
            continue
        if time.monotonic() - started > retry_s:
            log.info("Kafka topics ready after %.1f s: %s", time.monotonic() - started,
                     ", ".join(state.describe() for state in states))
        resolved = settings.model_copy(update={"replication_factor": replication})
        return TopicsReady(resolved, states)


async def partitions_of(settings: KafkaSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic``; :class:`TopicError` if it does not exist (never creates it)."""
    admin = _admin(settings)
    await admin.start()
    try:
        (described,) = await _describe(admin, [topic])
    finally:
        await admin.close()
        await settle(settings)
    if described.get("error_code") or not described.get("partitions"):
        raise TopicError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described["partitions"])
