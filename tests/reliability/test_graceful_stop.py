"""A worker stopped with SIGTERM (a rolling deploy, a scale-in) while a batch is being written hands its
partitions over clean: everything it wrote is committed before it leaves the group, so the next owner
neither writes those frames again nor sends their sessions to ``ocpp.sessions.v1`` twice.

The write in flight is made deterministic at the ClickHouse client boundary (:mod:`flaky_clickhouse_worker`):
an insert is done and then held until after the signal. Before the worker's stop hook, Faust left the group
first and the held batch's commit was discarded ("revoked partitions"): its frames, already in ClickHouse,
were read and written again by the next owner (``test_rebalance_live`` failed on it now and then)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import FRAMES
from tests.processors.test_rebalance_live import sql
from tests.processors.test_worker_live import produce, worker_env
from tests.reliability.test_clickhouse_outage import FlakyWorker
from tests.reliability.test_worker_group import chargers


async def committed_offsets(kafka: KafkaSettings, group: str, partitions: int) -> dict[int, int]:
    """The group's committed offset of each frames partition (0 where none is committed)."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = kafka.topic(FRAMES.name)
        return {p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)}
    finally:
        await consumer.stop()


def test_a_worker_stopped_mid_write_commits_what_it_wrote_before_it_leaves(
        kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    env = worker_env(kafka_settings, tmp_path / "home", unique, FLAKY_CLICKHOUSE_HOLD=str(hold))
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}.", "partitions": 2})
    asyncio.run(ensure_topics(kafka))
    worker = FlakyWorker(env, tmp_path / "worker.log")
    try:
        produced = asyncio.run(produce(kafka, chargers(40)))
        worker.wait_for("SELECT count() > 0 FROM ocpp.frames", [[True]])
        hold.touch()  # the next insert of frames is done, then held: a batch in flight
        produced += asyncio.run(produce(kafka, chargers(40, prefix="M-")))
        held = hold.with_name("hold.held")
        deadline = time.monotonic() + 60
        while not held.exists():
            assert time.monotonic() < deadline, "no insert was held"
            assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
            time.sleep(0.05)
        worker.proc.send_signal(signal.SIGTERM)
        time.sleep(2)  # the stop begins while the batch is held
        hold.unlink()
        worker.proc.wait(60)
    finally:
        hold.unlink(missing_ok=True)
        worker.stop()
    assert worker.proc.returncode == 0, worker.log_path.read_text()[-3000:]

    written = sql(env, "SELECT count() FROM ocpp.frames FINAL")[0][0]
    committed = asyncio.run(committed_offsets(kafka, env["OCPP_WORKER_APP_ID"], 2))
    # Each partition was read from its start, so its committed offset counts the frames written from it.
    assert sum(committed.values()) == written, (committed, written, worker.log_path.read_text()[-3000:])
    assert 0 < written <= len(produced)
