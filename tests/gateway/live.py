"""Helpers for gateway tests on real sockets and the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer

from gateway.server import Gateway
from gateway.settings import GatewaySettings
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.envelope import FrameEnvelope
from schemas.topics import TopicSpec


def gateway_settings(**overrides: object) -> GatewaySettings:
    base: dict[str, object] = {"host": "127.0.0.1", "port": 0, "admin_port": 0, "gateway_id": "gw-test", "shutdown_timeout_s": 5.0}
    return GatewaySettings(**(base | overrides))


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings, kafka: KafkaSettings, topic: str) -> AsyncIterator[Gateway]:
    await ensure_topics(kafka, [TopicSpec(name=topic, partitions=2, retention_ms=3600_000)])
    gateway = Gateway(settings, kafka, frames_topic=topic)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def read_envelopes(
    kafka: KafkaSettings, topic: str, until: Callable[[list[FrameEnvelope]], bool], timeout_s: float = 30,
    *, connection_events: bool = False,
) -> list[FrameEnvelope]:
    """Read ``topic`` from the start until ``until(envelopes)`` holds (or the time runs out). Connection
    events (``connected`` / ``disconnected`` envelopes) are left out unless ``connection_events``."""
    consumer = AIOKafkaConsumer(topic, **kafka.client_options(), auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    envelopes: list[FrameEnvelope] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until(envelopes) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                read = (FrameEnvelope.model_validate_json(r.value) for r in records)
                envelopes.extend(e for e in read if connection_events or e.event is None)
    finally:
        await consumer.stop()
    return envelopes


def by_message(envelopes: list[FrameEnvelope], direction: str) -> dict[str, FrameEnvelope]:
    return {e.message_id: e for e in envelopes if e.direction == direction and e.message_id}


def http_get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of a plain GET (4xx and 5xx included; 0 when nothing answers)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
    except OSError:
        return 0, {}, ""


async def exchange(ws, frame: str) -> list:
    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), 30))
