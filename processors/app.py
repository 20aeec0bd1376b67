"""The Faust worker: ``ocpp.frames.v1`` -> :class:`~processors.pipeline.FrameProcessor` ->
ClickHouse, ``ocpp.sessions.v1``, ``ocpp.faults.v1``; correlator states in a changelog-backed table.

The agent takes frames without acknowledging them; a flush (by size, or by time from a timer)
writes rows, then topic records, then states, and only then acknowledges the frames, so Faust
commits offsets of frames whose results are stored. Several workers share the partitions; the
table (``use_partitioner``: the producer's murmur2 partitioner, as the gateway's) is partitioned
like the frames topic, so a charger's state moves with its partition on a rebalance.

The worker's web server (``OCPP_WORKER_WEB_PORT``) serves ``/sql`` (read-only queries, so the
``sql`` command can read the embedded ClickHouse while the worker holds it) and ``/metrics``.

No frame stops the worker (:mod:`processors.pipeline`); an insert that retrying cannot fix (the schema or
the code out of step with ClickHouse, credentials refused: :func:`processors.clickhouse_sink.classify`)
does, on purpose: the worker logs why and exits with 65 instead of retrying the same batch forever.
Nothing is lost: the batch's frames were not committed, and the next start reads them again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import faust

from infra import clickhouse
from infra.errors import InsertFailed
from infra.settings import ClickHouseSettings, KafkaSettings
from processors.clickhouse_sink import ClickHouseSink
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.settings import WorkerSettings
from schemas import tables
from schemas.base import Record
from schemas.storable import storable_record
from schemas.topics import FAULTS, FRAMES, SESSIONS

log = logging.getLogger(__name__)

STALLED_EXIT_CODE = 70  # EX_SOFTWARE: restart me
INSERT_REFUSED_EXIT_CODE = 65  # EX_DATAERR: a restart alone would fail the same way


def _broker_credentials(kafka: KafkaSettings) -> Any:
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka.client_options().get("ssl_context"),
        )
    if kafka.security_protocol == "SSL":
        return kafka.client_options()["ssl_context"]
    return None


class Worker:
    """Builds the Faust app and holds what its agent, timer and pages share."""

    def __init__(
        self,
        settings: WorkerSettings,
        kafka: KafkaSettings,
        ch: ClickHouseSettings,
        *,
        frames_partitions: int,
    ) -> None:
        self.settings = settings
        self.metrics = WorkerMetrics()
        self.client = clickhouse.connect(ch)
        clickhouse.migrate(self.client, ch.database, clickhouse.dialect_for(ch))
        self.database = ch.database
        datadir = ch.home / "faust" / settings.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.sink = ClickHouseSink(self.client, ch.database, on_failure=lambda exc: self.metrics.sink_failures.inc())
        self.app = app = faust.App(
            settings.app_id,
            broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
            broker_credentials=_broker_credentials(kafka),
            store="memory://",
            datadir=str(datadir),
            web_host=settings.web_host,
            web_port=settings.web_port,
            web_enabled=True,
            topic_replication_factor=kafka.replication_factor,
            topic_partitions=frames_partitions,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            # A worker that dies (SIGKILL, node loss) hands its partitions over after this, not 60 s.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=3.0,
            stream_wait_empty=False,
            # Frames stay unacknowledged until their flush: the stream must hold more than a flush
            # worth of them, or it stops fetching and every flush waits for the timer.
            stream_buffer_maxsize=max(4 * settings.flush_rows, 4096),
            broker_max_poll_records=settings.flush_rows,
            autodiscover=False,
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.frames = app.topic(kafka.topic(FRAMES.name), partitions=frames_partitions, **raw)
        self.sessions_topic = app.topic(kafka.topic(SESSIONS.name), **raw)
        self.faults_topic = app.topic(kafka.topic(FAULTS.name), **raw)
        # Keys as raw bytes (the charge point id), exactly as on the frames topic: the partitioner then
        # puts a charger's state in the same partition as its frames. Values are JSON snapshots (bytes).
        changelog = app.topic(
            f"{settings.app_id}-correlator-state-changelog", key_serializer="raw", value_serializer="raw",
            partitions=frames_partitions, compacting=True, deleting=False, internal=True,
        )
        self.table = app.Table("correlator-state", default=None, partitions=frames_partitions, use_partitioner=True,
                               changelog_topic=changelog)
        self.table.key_serializer = "raw"
        self.table.value_serializer = "raw"
        self.processor = FrameProcessor(settings.correlator_config(), self._load_state)
        self._pending_events: list[Any] = []
        self._stream: Any = None
        self._lock = asyncio.Lock()
        self._writing: asyncio.Task[None] | None = None
        self._recovered: set[int] = set()
        self._arrivals: dict[int, tuple[float, int]] = {}  # partition -> (monotonic s, watermark)
        self._next_offsets: dict[int, int] = {}
        self._last_event = time.monotonic()
        self._nudged = False
        self._last_flush = time.monotonic()
        app.agent(self.frames, name="correlate")(self._agent)
        app.timer(settings.flush_interval_s)(self._on_timer)
        worker = self

        class SqlView(faust.web.View):
            """Read-only query: ``GET /sql?q=SELECT...`` or ``POST /sql`` with the query as body."""

            async def get(self, request: Any) -> Any:
                return await worker._sql(self, request.query.get("q", ""))

            async def post(self, request: Any) -> Any:
                return await worker._sql(self, await request.text())

        class MetricsView(faust.web.View):
            async def get(self, request: Any) -> Any:
                return self.bytes(worker.metrics.exposition(), content_type="text/plain; version=0.0.4")

        app.page("/sql")(SqlView)
        app.page("/metrics")(MetricsView)

    def _load_state(self, charge_point_id: str) -> bytes | None:
        return self.table.get(charge_point_id.encode())

    async def _agent(self, stream: Any) -> None:
        stream = stream.noack()
        self._stream = stream
        async for event in stream.events():
            message = event.message
            partition = message.partition
            if partition not in self._recovered:
                self.processor.recover(partition, ((k.decode(), v) for k, v in self.table.items() if v))
                self._recovered.add(partition)
            key = message.key if isinstance(message.key, bytes) or message.key is None else str(message.key).encode()
            # Faust gives the record's timestamp in seconds (a float); a tombstone's value is None.
            timestamp_ms = round(message.timestamp * 1000) if message.timestamp is not None else None
            self.processor.process(partition, message.offset, key, event.value, timestamp_ms)
            self._next_offsets[partition] = message.offset + 1
            watermark = self.processor.watermark(partition)
            if watermark is not None:
                self._arrivals[partition] = (time.monotonic(), watermark)
            self._pending_events.append(event)
            self._last_event = time.monotonic()
            self._nudged = False
            self.metrics.frames.inc()
            if self.processor.pending_frames >= self.settings.flush_rows:
                await self.flush(wait=False)

    async def _on_timer(self) -> None:
        # A partition that stopped receiving frames still has a clock: wall time moves it on, so a
        # stopped session's status window closes even when its charger goes quiet.
        # Only a partition with nothing left to read: a lagging one must not let wall time close
        # windows whose frames are still waiting in Kafka.
        now = time.monotonic()
        for partition, (arrived, watermark) in list(self._arrivals.items()):
            idle = now - arrived
            if idle >= self.settings.idle_advance_s and self._caught_up(partition):
                self.processor.advance(partition, watermark + int(idle * 1000))
        if self._arrivals:
            oldest = min(w for _, w in self._arrivals.values())
            self.metrics.watermark_age.set(max(0.0, time.time() - oldest / 1000))
        await self.flush()
        await self._update_lag()
        await self._check_stall()

    async def flush(self, *, wait: bool = True) -> None:
        """Hand what was processed to a writer task; batches are written strictly one after another.

        While one batch is written the agent goes on correlating the next (``wait=False``): the
        two overlap, and at most two batches are in memory. ``wait=True`` returns once everything
        handed over so far is stored."""
        async with self._lock:
            if self._writing is not None and not self._writing.done():
                await self._writing  # one batch in flight at a time keeps order and bounds memory
            if self._writing is not None:
                self._writing.result()  # a failed write must not pass silently
            out = self.processor.take()
            events, self._pending_events = self._pending_events, []
            if out.frame_count or out.states:
                self._writing = asyncio.create_task(self._write(out, events))
            if wait and self._writing is not None:
                await self._writing

    async def _write(self, out: Any, events: list[Any]) -> None:
        """Rows, then topic records, then states, then offsets: a crash anywhere repeats, never loses."""
        started = time.perf_counter()
        try:
            await self.sink.write(out.rows, out.token(self.settings.app_id))
        except InsertFailed as exc:
            if exc.retriable:
                raise
            self._stop_refused(exc)
        deliveries = [
            await self.sessions_topic.send(key=s.charge_point_id.encode(), value=_record_value(tables.SESSIONS, s))
            for s in out.sessions
        ] + [
            await self.faults_topic.send(key=f.charge_point_id.encode(), value=_record_value(tables.FAULT_EVENTS, f))
            for f in out.faults
        ]
        if deliveries:
            await asyncio.gather(*deliveries)
        for charge_point_id, state in out.states.items():
            self.table[charge_point_id.encode()] = state
        # Table writes are buffered by Faust: make Kafka hold them before the offsets may be committed,
        # or a crash could leave committed offsets ahead of the states they produced.
        await self.app.producer.flush()
        self.processor.persisted(out.states)
        for event in events:
            await self._stream.ack(event)
        self.metrics.sessions.inc(len(out.sessions))
        self.metrics.faults.inc(len(out.faults))
        self.metrics.bad_envelopes.inc(out.bad_envelopes)
        self.metrics.processing_failures.inc(out.processing_failures)
        self.metrics.unstorable_rows.inc(out.unstorable_rows)
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    def _stop_refused(self, exc: InsertFailed) -> None:
        """An insert retrying cannot fix: say why and exit non-zero (not a silent retry loop). The
        batch's frames stay uncommitted, so nothing is lost once the cause is fixed."""
        log.critical("stopping the worker: %s. Retrying the same batch cannot succeed; its frames stay on Kafka, "
                     "uncommitted, and are read again at the next start once the cause (the ClickHouse schema, the "
                     "credentials, or a bug in the rows) is fixed. Exiting with %d.", exc, INSERT_REFUSED_EXIT_CODE)
        logging.shutdown()
        os._exit(INSERT_REFUSED_EXIT_CODE)

    async def _check_stall(self) -> None:
        """Crash-only safety net: a consumer that has frames to read but receives none for
        ``stall_s`` (seen rarely after a restart that follows a SIGKILL) is nudged once, and if it
        stays stuck the process exits with 70 so Kubernetes (or ``dev``) restarts it; offsets and
        states make the restart lose nothing."""
        if time.monotonic() - self._last_event < self.settings.stall_s:
            return
        consumer = self.app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic == self.frames.get_topic_name()]
        if not tps:
            return
        ends = await consumer.highwaters(*tps)
        behind = []
        for tp in tps:
            # What the agent has processed, not what the consumer fetched: in the stall seen after a
            # SIGKILL-restart the consumer has fetched everything and the agent receives none of it.
            done = self._next_offsets.get(tp.partition)
            if done is None:
                done = consumer._committed_offset.get(tp) or 0  # Faust's record of the group's commit
            if ends.get(tp, 0) > done:
                behind.append(f"{tp.partition}: {done}/{ends.get(tp, 0)}")
        if not behind:
            self._last_event = time.monotonic()  # idle because there is nothing to read
            return
        if not self._nudged:
            log.warning("no frames for %.0f s while partitions have some (partition: next/end %s): resuming the consumer",
                        self.settings.stall_s, ", ".join(behind))
            consumer.resume_partitions(tps)
            consumer.resume_flow()
            self.app.flow_control.resume()
            self._nudged = True
            self._last_event = time.monotonic()
            return
        log.error("consumer still stalled after a nudge: exiting with 70 to be restarted")
        logging.shutdown()
        os._exit(STALLED_EXIT_CODE)

    def _caught_up(self, partition: int) -> bool:
        # The consumer's highwater, refreshed by every fetch response (the fetcher keeps polling
        # quiet partitions): no broker round trip on each timer tick.
        from faust.types import TP

        highwater = self.app.consumer.highwater(TP(self.frames.get_topic_name(), partition))
        return highwater is not None and self._next_offsets.get(partition, -1) >= highwater

    async def _update_lag(self) -> None:
        """Frames on the assigned partitions not processed yet (highwater - next offset)."""
        consumer = self.app.consumer
        lag = 0
        for tp in consumer.assignment():
            if tp.topic == self.frames.get_topic_name():
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    lag += max(0, highwater - self._next_offsets.get(tp.partition, 0))
        self.metrics.lag.set(lag)

    async def _sql(self, view: Any, query: str) -> Any:
        if not query.strip():
            return view.json({"error": "no query"}, status=400)
        try:
            result = await asyncio.to_thread(self.client.query, query, settings={"readonly": 1})
        except Exception as exc:
            return view.json({"error": str(exc)}, status=400)
        rows = [[_jsonable(v) for v in row] for row in result.result_rows]
        return view.json({"columns": list(result.column_names), "types": [t.name for t in result.column_types], "rows": rows})


def _record_value(table: tables.Table, record: Record) -> bytes:
    """A topic record's JSON. The pipeline hands out storable records already; should one still hold
    something JSON cannot carry (a lone surrogate), its storable version is published instead."""
    try:
        return record.model_dump_json().encode()
    except ValueError:
        return storable_record(table, record)[0].model_dump_json().encode()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))


def run_worker(settings: WorkerSettings, kafka: KafkaSettings, ch: ClickHouseSettings, loglevel: str = "info",
               log_format: str = "text") -> None:
    """``ocpp-pipeline worker``: create topics, then run the Faust worker until SIGTERM / SIGINT."""
    from faust.worker import Worker as FaustWorker

    from infra.topic_admin import wait_for_topics

    # Kafka may start after the worker (every pod at once): wait, saying so, instead of dying.
    ready = asyncio.run(wait_for_topics(kafka))
    worker = Worker(settings, ready.settings, ch, frames_partitions=ready.partitions(kafka.topic(FRAMES.name)))
    from infra.logs import logging_config

    FaustWorker(worker.app, loglevel=loglevel, quiet=True,
                logging_config=logging_config(loglevel, log_format)).execute_from_commandline()
