"""Can this identity do that? One Kafka request as whoever the ``OCPP_KAFKA_*`` settings say, and its answer.

    python -m infra.kafka_probe produce ocpp.frames.v1      # writes one record (key PROBE, value "probe")
    python -m infra.kafka_probe consume ocpp.frames.v1 [--group G]

Prints ``allowed`` (exit 0) or ``refused: <why>`` (exit 1): an authorization error names the topic or group,
a login that fails (anonymous, a wrong password, no client certificate) is "cannot connect". For the attack
catalogue of SECURITY.md and for operators checking a KafkaUser's ACLs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from infra.kafka_close import settle
from infra.settings import KafkaSettings


async def produce(settings: KafkaSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**settings.client_options(), enable_idempotence=True, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(producer.start(), 30)
        await asyncio.wait_for(producer.send_and_wait(topic, b"probe", key=b"PROBE"), 30)
    finally:
        await producer.stop()
        await settle(settings)


async def consume(settings: KafkaSettings, topic: str, group: str | None, wait_s: float = 3.0) -> int:
    """Fetch from ``topic`` for ``wait_s`` (as a member of ``group``); the records read."""
    consumer = AIOKafkaConsumer(topic, **settings.client_options(), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        batch = await consumer.getmany(timeout_ms=int(wait_s * 1000))
        return sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
        await settle(settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.kafka_probe", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["produce", "consume"])
    parser.add_argument("topic")
    parser.add_argument("--group", help="consumer group (consume)")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the verdict below says it once
    settings = KafkaSettings()
    try:
        if args.action == "produce":
            asyncio.run(produce(settings, args.topic))
        else:
            asyncio.run(consume(settings, args.topic, args.group))
    except KafkaConnectionError:
        print(f"refused: cannot connect to {settings.bootstrap_servers} as {settings.identity}")
        return 1
    except KafkaError as exc:
        print(f"refused: {type(exc).__name__} ({settings.identity})")
        return 1
    print(f"allowed: {args.action} {args.topic} as {settings.identity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
