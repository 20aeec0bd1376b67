"""The worker's meter key reader against the suite's real broker and chDB: what is on ocpp.meter_keys.v1 is in the
registry once the replay returns (before any frame), an event published while it follows reaches the holder and
meter_keys, and a poison record is counted and skipped without stopping anything."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from infra import clickhouse
from infra.topic_admin import ensure_topics
from ocpp_pipeline.keys import publish
from processors.clickhouse_sink import ClickHouseSink
from processors.meter_key_intake import MeterKeyHolder
from processors.meter_key_reader import MeterKeyReader
from processors.metrics import WorkerMetrics
from schemas.topics import METER_KEYS
from signed_meter.key_events import record_of
from signed_meter.registry import KeyAction, KeyEvent, RegisteredKey
from tests.signed_meter.conftest import OCMF_DIR

SAMPLES = json.loads((OCMF_DIR / "samples.json").read_text())
KEY_A, KEY_B = SAMPLES[0]["public_key_hex"], next(s["public_key_hex"] for s in SAMPLES if s["curve"] == "secp256k1")


def event(cp: str, key: str, action: KeyAction = KeyAction.ADD):
    return record_of(KeyEvent(action, RegisteredKey(cp, None, key, None, "ops", "T-9")), datetime.now(timezone.utc))


def test_replay_then_follow_with_a_poison_record(kafka_settings, chdb_client, unique: str) -> None:
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    database = f"keys_{unique}"
    clickhouse.migrate(chdb_client, database)

    async def scenario() -> None:
        await ensure_topics(kafka, [METER_KEYS])
        await publish(kafka, [event("CP-A", KEY_A)])
        producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(kafka.topic(METER_KEYS.name), key=b"CP-X", value=b'{"charge_point_id": "CP-X"')
        finally:
            await producer.stop()
        await publish(kafka, [event("CP-B", KEY_B)])

        metrics, holder = WorkerMetrics(), MeterKeyHolder()
        reader = MeterKeyReader(kafka, holder, ClickHouseSink(chdb_client, database), metrics, salt=unique, poll_s=0.2)
        try:
            assert await reader.replay() == 2  # every valid event on the topic, before the worker takes a frame
            assert [k.public_key for k in holder.keys_for("CP-A", 1)] == [KEY_A]
            assert [k.public_key for k in holder.keys_for("CP-B")] == [KEY_B]
            assert metrics.bad_meter_keys._value.get() == 1  # the poison record: counted, skipped
            reader.start_following()
            await publish(kafka, [event("CP-A", KEY_A.upper(), KeyAction.REMOVE), event("CP-C", KEY_B)])
            deadline = time.monotonic() + 60
            while holder.keys_for("CP-C") == () or _rows(chdb_client, database) < 4:
                assert time.monotonic() < deadline, "the followed events did not arrive"
                await asyncio.sleep(0.2)
            assert holder.keys_for("CP-A") == ()  # removed while the worker runs
            assert metrics.registered_meter_keys._value.get() == 2
        finally:
            await reader.stop()

    asyncio.run(scenario())
    rows = chdb_client.query(f"SELECT charge_point_id, action, curve FROM `{database}`.meter_keys FINAL "
                             "ORDER BY at, charge_point_id").result_rows
    assert [tuple(r) for r in rows] == [("CP-A", "add", "secp256r1"), ("CP-B", "add", "secp256k1"),
                                        ("CP-A", "remove", "secp256r1"), ("CP-C", "add", "secp256k1")]


def _rows(client, database: str) -> int:
    return int(client.query(f"SELECT count() FROM `{database}`.meter_keys FINAL").result_rows[0][0])
