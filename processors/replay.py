"""``ocpp-pipeline replay``: rebuild every table from ``ocpp.frames.v1`` into a fresh database.

The same :class:`~processors.pipeline.FrameProcessor` as the live worker, fed from the start of
the topic (or from a time) up to the end offsets seen when the replay began, so the same frames
give the same rows. At the end, each partition's clock moves one status window past its last
frame ("settling"), so sessions whose window was still open are emitted as the live worker would
once that time had passed. Operator exclusions are rebuilt too, from the whole of ``ocpp.exclusions.v1``
(the same rows the worker stores), and ``meter_keys`` from the whole of ``ocpp.meter_keys.v1``, read first, as the
worker does, into the key registry signed readings are judged with. A replay writes ClickHouse only: it publishes nothing to the
sessions / faults topics and does not touch the live worker's state.

Like the worker, a replay goes on past every bad record (kept, flagged, counted in the summary); an
insert that retrying cannot fix stops it with :class:`~infra.errors.InsertFailed` (the command exits
non-zero and says why).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra import clickhouse
from infra.errors import ClickHouseError, InsertFailed
from infra.settings import ClickHouseSettings, KafkaSettings
from infra.topic_admin import partitions_of
from processors.clickhouse_sink import ClickHouseSink
from processors.exclusion_intake import ExclusionIntake
from processors.meter_key_intake import MeterKeyHolder, MeterKeyIntake
from processors.pipeline import FrameProcessor
from processors.settings import WorkerSettings
from processors.whole_topic import read_to_end
from schemas.tables import ALL_TABLES, METER_KEYS, OPERATOR_TABLES, OUTAGE_EXCLUSIONS
from schemas.topics import EXCLUSIONS, FRAMES
from schemas.topics import METER_KEYS as METER_KEYS_TOPIC


@dataclass(frozen=True)
class ReplaySummary:
    frames: int
    sessions: int
    fault_events: int
    seconds: float
    bad_records: int = 0  # not envelopes, or tombstones: kept raw, flagged
    processing_failures: int = 0  # frames the correlator raised on: kept, flagged processing_failed, skipped
    exclusions: int = 0  # exclusion events stored
    invalid_exclusions: int = 0  # records on the exclusions topic that are not exclusion events (skipped)
    meter_keys: int = 0  # meter key events stored
    invalid_meter_keys: int = 0  # records on the meter keys topic that are not meter key events (skipped)

    def describe(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0
        text = (f"replayed {self.frames} frames in {self.seconds:.1f} s ({rate:.0f} frames/s): "
                f"{self.sessions} sessions, {self.fault_events} fault events")
        if self.bad_records or self.processing_failures:
            text += (f"; {self.bad_records} records that are not envelopes and {self.processing_failures} processing "
                     "failures, kept in frames and flagged")
        text += f"; {self.exclusions} exclusions"
        if self.invalid_exclusions:
            text += f" ({self.invalid_exclusions} invalid exclusion events skipped)"
        text += f"; {self.meter_keys} meter key events"
        if self.invalid_meter_keys:
            text += f" ({self.invalid_meter_keys} invalid meter key events skipped)"
        return text


async def replay(
    worker: WorkerSettings,
    kafka: KafkaSettings,
    ch: ClickHouseSettings,
    *,
    from_time: datetime | None = None,
    settle: bool = True,
    force: bool = False,
    report: Callable[[int, int], None] | None = None,  # (frames done, frames in all): ocpp_pipeline.output.progress
) -> ReplaySummary:
    started = time.monotonic()
    topic = kafka.topic(FRAMES.name)
    client = clickhouse.connect(ch)
    try:
        clickhouse.migrate(client, ch.database, clickhouse.dialect_for(ch), retention=ch.retention())
        existing = sum(client.query(f"SELECT count() FROM `{ch.database}`.`{t.name}`").result_rows[0][0]
                       for t in ALL_TABLES + OPERATOR_TABLES)
        if existing and not force:
            raise ClickHouseError(
                f"database {ch.database} already holds {existing} rows; replay into a fresh database "
                "(OCPP_CLICKHOUSE_DATABASE=...) or pass --force to write over it (rows are idempotent)"
            )
        sink = ClickHouseSink(client, ch.database)
        states: dict[str, bytes] = {}  # a replay starts from no state and keeps its own
        # The keys first, as the worker reads them before its first frame.
        meter_keys, keys_stored, keys_invalid = await _replay_meter_keys(kafka, sink)
        processor = FrameProcessor(worker.correlator_config(), states.get, meter_keys=meter_keys)
        consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False, group_id=None,
                                    max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            if from_time is not None:
                found = await consumer.offsets_for_times({tp: int(from_time.timestamp() * 1000) for tp in partitions})
                starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in partitions}
            else:
                starts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, starts[tp])
            total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
            remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
            done = sessions = faults = bad = failures = 0
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=worker.flush_rows)
                for tp, records in batch.items():
                    for record in records:
                        if record.offset >= ends[tp]:
                            break
                        processor.process(tp.partition, record.offset, record.key, record.value, record.timestamp)
                        done += 1
                    if records and records[-1].offset >= ends[tp] - 1:
                        remaining.discard(tp)
                if processor.pending_frames >= worker.flush_rows or not remaining:
                    if not remaining and settle:
                        for tp in partitions:
                            mark = processor.watermark(tp.partition)
                            if mark is not None:
                                processor.advance(tp.partition, mark + int(worker.status_window_s * 1000) + 1)
                    out = processor.take()
                    try:
                        await sink.write(out.rows, out.token("replay"))
                    except InsertFailed as exc:
                        raise InsertFailed(f"replay stopped after {done} of {total} frames: {exc}", table=exc.table,
                                           retriable=exc.retriable, cause=exc.cause) from exc
                    states.update(out.states)
                    processor.persisted(out.states)
                    sessions += len(out.sessions)
                    faults += len(out.faults)
                    bad += out.bad_envelopes
                    failures += out.processing_failures
                    if report:
                        report(done, total)
            stored, invalid = await _replay_exclusions(consumer, kafka, sink)
        finally:
            await consumer.stop()
    finally:
        client.close()
    return ReplaySummary(done, sessions, faults, time.monotonic() - started, bad, failures, stored, invalid, keys_stored,
                         keys_invalid)


async def _replay_exclusions(consumer: AIOKafkaConsumer, kafka: KafkaSettings, sink: ClickHouseSink) -> tuple[int, int]:
    """Every exclusion event on the topic (from its start: its retention is forever) into ``outage_exclusions``."""
    topic = kafka.topic(EXCLUSIONS.name)
    intake, counts = ExclusionIntake(), [0, 0]

    async def store() -> None:
        taken = intake.drain()
        if taken.rows:
            await sink.write({OUTAGE_EXCLUSIONS.name: taken.rows}, taken.token("replay"))
        counts[0], counts[1] = counts[0] + len(taken.rows), counts[1] + taken.invalid

    partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    await read_to_end(consumer, partitions, intake.take, after_poll=store)
    return counts[0], counts[1]


async def _replay_meter_keys(kafka: KafkaSettings, sink: ClickHouseSink) -> tuple[MeterKeyHolder, int, int]:
    """Every meter key event on the topic (from its start: kept forever) into a key registry and ``meter_keys``."""
    topic = kafka.topic(METER_KEYS_TOPIC.name)
    holder = MeterKeyHolder()
    intake, counts = MeterKeyIntake(holder), [0, 0]

    async def store() -> None:
        taken = intake.drain()
        if taken.rows:
            await sink.write({METER_KEYS.name: taken.rows}, taken.token("replay"))
        counts[0], counts[1] = counts[0] + len(taken.rows), counts[1] + taken.invalid

    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        await read_to_end(consumer, partitions, intake.take, after_poll=store)
    finally:
        await consumer.stop()
    return holder, counts[0], counts[1]
