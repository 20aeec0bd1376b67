"""Every worker's reader of ``ocpp.meter_keys.v1``: the whole topic at the start, before any frame is processed, then
each new event as it comes (:mod:`processors.meter_key_intake` folds them into the key registry).

Not a member of the worker's consumer group: the group would give the topic's one partition to one worker, and every
worker verifies signed readings of its own charge points with the keys of all of them. So the reader assigns itself
the topic's partitions, reads from their beginning (the topic is kept forever; keys are few: a few events per meter),
and commits nothing. The rows of ``meter_keys`` are written from here too, in the background: a ClickHouse that is
down delays the table, never the registry or the frames (the same events written by two workers, or again after a
restart, are one row once merged).

A record that is not a valid event is counted (``ocpp_worker_invalid_meter_keys``) and skipped: it stays on the
topic. Kafka errors while reading are logged and retried; a worker that cannot read the keys at its start waits for
them rather than judging signed readings with none (the stall watch restarts it if it waits too long with frames to
read).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from infra.errors import InfraError, InsertFailed
from infra.settings import KafkaSettings
from infra.topic_admin import partitions_of
from processors.meter_key_intake import MeterKeyHolder, MeterKeyIntake
from processors.topic_batch import TopicBatch
from processors.metrics import WorkerMetrics
from processors.whole_topic import read_to_end
from schemas.tables import METER_KEYS
from schemas.topics import METER_KEYS as METER_KEYS_TOPIC

log = logging.getLogger(__name__)

_RETRY_S = (0.5, 1.0, 2.0, 5.0)


class RowSink(Protocol):
    async def write(self, rows_by_table: dict[str, list[list[Any]]], token: str) -> None: ...


class MeterKeyReader:
    """Reads the meter keys topic whole (:meth:`replay`), then follows it (:meth:`start_following`) until :meth:`stop`."""

    def __init__(self, kafka: KafkaSettings, holder: MeterKeyHolder, sink: RowSink, metrics: WorkerMetrics, *,
                 salt: str, poll_s: float = 1.0) -> None:
        self._kafka, self._sink, self._metrics, self._salt, self._poll_s = kafka, sink, metrics, salt, poll_s
        self.holder = holder
        self._intake = MeterKeyIntake(holder)
        self._topic = kafka.topic(METER_KEYS_TOPIC.name)
        self._consumer: AIOKafkaConsumer | None = None
        self._following: asyncio.Task[None] | None = None
        self._unwritten: list[TopicBatch] = []
        self.replayed = asyncio.Event()

    async def replay(self) -> int:
        """Read the topic from its beginning to its end as it is now, folding every event into the holder; returns the
        events applied. Retries (logging why) until Kafka answers: the frames wait for the keys."""
        attempt = 0
        while True:
            try:
                return await self._replay_once()
            except (KafkaError, InfraError, OSError) as exc:
                delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                log.warning("meter keys: could not read %s (%s: %s); frames wait for the keys, retrying in %.1f s",
                            self._topic, exc.__class__.__name__, exc, delay)
                await self._close()
                await asyncio.sleep(delay)
                attempt += 1

    async def _replay_once(self) -> int:
        started = time.perf_counter()
        partitions = [TopicPartition(self._topic, p) for p in await partitions_of(self._kafka, self._topic)]
        consumer = self._consumer = AIOKafkaConsumer(**self._kafka.client_options(), group_id=None,
                                                     enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        before = self.holder.events
        await read_to_end(consumer, partitions, self._take, poll_ms=int(self._poll_s * 1000), past_end=True)
        applied = self.holder.events - before
        self.replayed.set()
        log.info("meter keys: %d events read from %s in %.2f s; %d keys of %d charge points registered", applied,
                 self._topic, time.perf_counter() - started, self.holder.key_count, self.holder.charge_point_count)
        return applied

    def start_following(self) -> None:
        """Follow the topic from where :meth:`replay` stopped, and write the rows of ``meter_keys``."""
        if self._following is None:
            self._following = asyncio.create_task(self._follow(), name="meter-keys")

    async def _follow(self) -> None:
        attempt = 0
        while True:
            try:
                if self._consumer is None:  # lost after an error: read the whole topic again (idempotent)
                    await self._replay_once()
                batch = await self._consumer.getmany(timeout_ms=int(self._poll_s * 1000))  # type: ignore[union-attr]
                for tp, records in batch.items():
                    self._take(tp.partition, records)
                await self._write()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever it is, the keys already read stay; try again
                delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                log.warning("meter keys: following %s failed (%s: %s); retrying in %.1f s", self._topic,
                            exc.__class__.__name__, exc, delay)
                await self._close()
                await asyncio.sleep(delay)
                attempt += 1

    def _take(self, partition: int, records: Any) -> None:
        self._intake.take(partition, records)
        batch = self._intake.drain()
        if batch:
            self._metrics.meter_keys.inc(len(batch.rows))
            self._metrics.bad_meter_keys.inc(batch.invalid)
            self._metrics.registered_meter_keys.set(self.holder.key_count)
            self._unwritten.append(batch)

    async def _write(self) -> None:
        while self._unwritten:
            batch = self._unwritten[0]
            if batch.rows:
                try:
                    await self._sink.write({METER_KEYS.name: batch.rows}, batch.token(self._salt))
                except InsertFailed as exc:
                    if exc.retriable:
                        raise
                    # Not for retrying (the schema, the rights): the registry holds the keys all the same and the
                    # topic keeps the events; the next start writes them again.
                    log.error("meter keys: %d rows not written to %s: %s", len(batch.rows), METER_KEYS.name, exc)
            self._unwritten.pop(0)

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            try:
                await self._following
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: its failure was logged
                pass
            self._following = None
        await self._close()

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception:  # noqa: BLE001 - a broken consumer is dropped either way
                log.debug("meter keys: consumer stop failed", exc_info=True)
