"""A real Faust worker against the real broker: topic -> agent -> table -> topic."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import TopicSpec

ROOT = Path(__file__).resolve().parent.parent


def test_faust_agent_updates_a_table_and_produces(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    source = TopicSpec(name=f"test.faust.in.{unique}", partitions=2, retention_ms=3600_000)
    sink = TopicSpec(name=f"test.faust.out.{unique}", partitions=2, retention_ms=3600_000)
    asyncio.run(ensure_topics(kafka_settings, [source, sink]))
    env = {
        **os.environ,
        "RT_APP_ID": f"rt-{unique}",
        "RT_BOOTSTRAP": kafka_settings.bootstrap_servers,
        "RT_DATADIR": str(tmp_path / "faust"),
        "RT_SOURCE": source.name,
        "RT_SINK": sink.name,
    }
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.faust_roundtrip_app", "worker", "-l", "warn"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        totals = asyncio.run(asyncio.wait_for(_feed_and_collect(kafka_settings, source.name, sink.name, unique), 120))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
    assert totals == {"CP-A": 1 + 3 + 5, "CP-B": 2 + 4 + 6}, (tmp_path / "worker.log").read_text()[-3000:]


async def _feed_and_collect(settings: KafkaSettings, source: str, sink: str, unique: str) -> dict[str, int]:
    producer = AIOKafkaProducer(**settings.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for seq, (key, wh) in enumerate([("CP-A", 1), ("CP-B", 2), ("CP-A", 3), ("CP-B", 4), ("CP-A", 5), ("CP-B", 6)]):
            await producer.send_and_wait(source, key=key.encode(), value=json.dumps({"wh": wh, "seq": seq}).encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(sink, **settings.client_options(), group_id=f"check-{unique}", auto_offset_reset="earliest")
    await consumer.start()
    latest: dict[str, int] = {}
    seen = 0
    try:
        while seen < 6:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    value = json.loads(record.value)
                    latest[value["charge_point_id"]] = value["total_wh"]
                    seen += 1
    finally:
        await consumer.stop()
    return latest
