"""The worker's flushes: rows, then topic records, then states, then offsets; a crash anywhere repeats, never loses.

A flush (by size from the batch path, by time from the timer, before partitions are revoked, and once more before
the worker stops) takes what the processor collected and hands it to one writer task; batches are written strictly
one after another, so while one is written the batch path goes on correlating the next (at most two batches in
memory). The writer stores, in this order:

1. the rows, into ClickHouse (one insert per table, with an insert-deduplication token: a retried batch lands
   once), and the operator exclusions read in the same polls;
2. the session and fault records, on ``ocpp.sessions.v1`` / ``ocpp.faults.v1``, acknowledged;
3. the correlator states, one table write per charger, acknowledged on the changelog;
4. only then the offsets after the last frame (and exclusion) of the flush.

So a committed offset always has its results stored. A commit the group refuses without an error (it rebalanced
meanwhile) is not counted as done: the next flush, the one before the partitions go among them, commits those
offsets again (:class:`OffsetLedger`). Marked done, they never were committed, and the next owner read again frames
this worker had written.

An insert that retrying cannot fix (:func:`processors.clickhouse_sink.classify`) stops the worker on purpose, with
:data:`INSERT_REFUSED_EXIT_CODE`: its frames stay uncommitted, and the next start reads them again once the cause
is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn, Protocol

from infra.errors import InsertFailed
from processors.exclusion_intake import ExclusionIntake
from processors.topic_batch import TopicBatch
from processors.faust_adapter import TP
from processors.intake import Intake
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor, Outputs
from schemas import tables
from schemas.base import Record
from schemas.storable import storable_record

log = logging.getLogger(__name__)

INSERT_REFUSED_EXIT_CODE = 65  # EX_DATAERR: a restart alone would fail the same way
# The stop's last flush waits this long for ClickHouse and Kafka; what it could not write stays uncommitted and
# is read again by the next owner. Below the worker pod's terminationGracePeriodSeconds (90, infra/k8s/base/worker.yaml).
STOP_FLUSH_S = 60.0


class RowSink(Protocol):
    """ClickHouse (:class:`processors.clickhouse_sink.ClickHouseSink`): retries what can be retried, raises
    :class:`~infra.errors.InsertFailed` for what cannot."""

    async def write(self, rows_by_table: dict[str, list[list[Any]]], token: str) -> None: ...


class RecordTopic(Protocol):
    """A Kafka topic to publish on: ``send`` queues the record and returns its delivery, to await."""

    async def send(self, *, key: bytes, value: bytes) -> Awaitable[Any]: ...


class StateStore(Protocol):
    """The correlator states' table (:class:`processors.faust_adapter.StateTable`): each write goes to its changelog."""

    def __setitem__(self, key: bytes, value: bytes) -> None: ...

    async def written(self) -> None:
        """Return once Kafka holds every write so far."""


class OffsetCommitter(Protocol):
    """What the flush needs of the consumer (:class:`processors.faust_adapter.FaustConsumer`)."""

    async def commit(self, offsets: Mapping[TP, int]) -> bool: ...


class OffsetLedger:
    """Per frames partition, the offset last handed to a write for commit: a flush commits only the partitions
    whose position moved since. A refused commit is forgotten, so the next flush offers it again; a partition
    that went to another worker is forgotten too (if it comes back, its offsets are offered again)."""

    def __init__(self) -> None:
        self._handed: dict[int, int] = {}

    def due(self, positions: Mapping[int, int]) -> dict[int, int]:
        """The positions (partition -> next offset) to commit now; they count as handed from here on."""
        commits = {p: n for p, n in positions.items() if self._handed.get(p) != n}
        self._handed.update(commits)
        return commits

    def refused(self, commits: Mapping[int, int]) -> None:
        """These commits were refused: offer them again (unless a newer position was handed meanwhile)."""
        for partition, offset in commits.items():
            if self._handed.get(partition) == offset:
                del self._handed[partition]

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._handed.pop(partition, None)


def exit_refused(exc: InsertFailed) -> NoReturn:
    """An insert retrying cannot fix: say why and exit non-zero (not a silent retry loop). The batch's frames stay
    uncommitted, so nothing is lost once the cause is fixed."""
    log.critical("stopping the worker: %s. Retrying the same batch cannot succeed; its frames stay on Kafka, "
                 "uncommitted, and are read again at the next start once the cause (the ClickHouse schema, the "
                 "credentials, or a bug in the rows) is fixed. Exiting with %d.", exc, INSERT_REFUSED_EXIT_CODE)
    logging.shutdown()
    os._exit(INSERT_REFUSED_EXIT_CODE)


class Committer:
    """Writes what the processor collected, in order, and commits after it (the module's docstring)."""

    def __init__(
        self,
        *,
        processor: FrameProcessor,
        intake: Intake,
        exclusions: ExclusionIntake,
        sink: RowSink,
        sessions: RecordTopic,
        faults: RecordTopic,
        states: StateStore,
        consumer: OffsetCommitter,
        frames_topic: str,
        exclusions_topic: str,
        app_id: str,
        metrics: WorkerMetrics,
        refused: Callable[[InsertFailed], NoReturn] = exit_refused,
    ) -> None:
        self._processor, self._intake, self._exclusions = processor, intake, exclusions
        self._sink, self._sessions, self._faults, self._states = sink, sessions, faults, states
        self._consumer = consumer
        self._frames_topic, self._exclusions_topic = frames_topic, exclusions_topic
        self._app_id, self._metrics, self._refused = app_id, metrics, refused
        self._ledger = OffsetLedger()
        self._lock = asyncio.Lock()
        self._writing: asyncio.Task[None] | None = None
        self._handed_over = False  # once the stop's last flush is done, nothing is written any more

    @property
    def handed_over(self) -> bool:
        return self._handed_over

    async def flush(self, *, wait: bool = True) -> None:
        """Hand what was processed to the writer; batches are written strictly one after another.

        ``wait=False``: return once the batch is handed over (the batch path goes on correlating the next while it
        is written). ``wait=True``: return once everything handed over so far is stored and committed. A write that
        failed raises here, at the next flush: it must not pass silently."""
        async with self._lock:
            if self._handed_over:
                return  # stopped: a write now could not be committed (the timer may fire once more)
            if self._writing is not None and not self._writing.done():
                await self._writing  # one batch in flight at a time keeps order and bounds memory
            if self._writing is not None:
                self._writing.result()
            out = self._processor.take()
            commits = self._ledger.due(self._intake.positions())
            exclusions = self._exclusions.drain()
            if out.frame_count or out.states or commits or exclusions:
                self._writing = asyncio.create_task(self._write(out, commits, exclusions))
            if wait and self._writing is not None:
                await self._writing

    async def hand_over(self, timeout_s: float = STOP_FLUSH_S) -> None:
        """The stop's last flush, while the partitions are still this worker's: everything processed is written and
        committed, and then nothing more (the next owner starts exactly where this worker stopped; a write still
        in flight when the consumer left used to be read and written again there). Whatever fails here, the stop
        goes on: what was not committed is read again by the next owner."""
        try:
            await asyncio.wait_for(self.flush(wait=True), timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the stop must go on (Faust stops the consumer next)
            log.warning("stopping: the last flush failed (%r); its frames stay uncommitted and the next owner "
                        "reads them again", exc)
        finally:
            self._handed_over = True

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions gone to another worker: their offsets are the next owner's to commit."""
        self._ledger.forget(partitions)

    async def _write(self, out: Outputs, commits: dict[int, int], exclusions: TopicBatch) -> None:
        started = time.perf_counter()
        try:
            await self._sink.write(out.rows, out.token(self._app_id))
            if exclusions.rows:
                await self._sink.write({tables.OUTAGE_EXCLUSIONS.name: exclusions.rows}, exclusions.token(self._app_id))
        except InsertFailed as exc:
            if exc.retriable:
                raise
            self._refused(exc)
        send_session, send_fault = self._sessions.send, self._faults.send
        deliveries = [
            await send_session(key=s.charge_point_id.encode(), value=record_value(tables.SESSIONS, s))
            for s in out.sessions
        ] + [
            await send_fault(key=f.charge_point_id.encode(), value=record_value(tables.FAULT_EVENTS, f))
            for f in out.faults
        ]
        if deliveries:
            await asyncio.gather(*deliveries)
        states = self._states
        for charge_point_id, state in out.states.items():
            states[charge_point_id.encode()] = state
        # Table writes are buffered by Faust: Kafka must hold them before the offsets may be committed, or a crash
        # could leave committed offsets ahead of the states they produced.
        await states.written()
        self._processor.persisted(out.states)
        if commits or exclusions:
            offsets = {TP(self._frames_topic, p): n for p, n in commits.items()}
            offsets |= {TP(self._exclusions_topic, p): n for p, n in exclusions.commits.items()}
            # Offsets of partitions still assigned (a revoked one is the next owner's). An exclusion not committed
            # is read and written again, which changes nothing.
            if not await self._consumer.commit(offsets):
                self._ledger.refused(commits)
        metrics = self._metrics
        metrics.exclusions.inc(len(exclusions.rows))
        metrics.bad_exclusions.inc(exclusions.invalid)
        metrics.sessions.inc(len(out.sessions))
        metrics.faults.inc(len(out.faults))
        metrics.bad_envelopes.inc(out.bad_envelopes)
        metrics.processing_failures.inc(out.processing_failures)
        metrics.unstorable_rows.inc(out.unstorable_rows)
        for status, count in out.signed_values.items():
            metrics.signed_values.labels(status=status).inc(count)
        metrics.flush_seconds.observe(time.perf_counter() - started)


def record_value(table: tables.Table, record: Record) -> bytes:
    """A topic record's JSON. The pipeline hands out storable records already; should one still hold something JSON
    cannot carry (a lone surrogate), its storable version is published instead."""
    try:
        return record.model_dump_json().encode()
    except ValueError:
        return storable_record(table, record)[0].model_dump_json().encode()
