"""The Faust worker: ``ocpp.frames.v1`` -> :class:`~processors.pipeline.FrameProcessor` -> ClickHouse,
``ocpp.sessions.v1``, ``ocpp.faults.v1``; correlator states in a changelog-backed table. This module only composes:

- Faust keeps what it does well: the consumer group (assignment, rebalances), the changelog-backed table and its
  recovery, flow control, timers and the web server. What the worker takes from its internals (its own fetch loop,
  commits, committed offsets, seeks, the stop hook) is :mod:`processors.faust_adapter`, and nowhere else.
- :mod:`processors.batch_path`: frames are fetched in batches, not as Faust events, and handed to the processor per
  partition; operator exclusions (``ocpp.exclusions.v1``) are read in the same polls.
- :mod:`processors.committer`: a flush (by size, or by time from the timer) writes rows, then topic records, then
  states, and only then commits the offsets after its last frame, so a committed offset always has its results
  stored. A crash repeats frames since the last commit; states remember the last offset applied, so nothing is
  applied twice, and rows are idempotent. An insert that retrying cannot fix stops the worker with exit code 65.
- Rebalances: when partitions are revoked, everything processed so far is flushed and committed before the
  revocation completes (the new owner starts exactly where this one stopped). A stop (SIGTERM) is handed over the
  same way, before the consumer leaves the group (Faust sends no revocation then). Several workers share the
  partitions; the table (``use_partitioner``: the producer's murmur2 partitioner, as the gateway's) is partitioned
  like the frames topic, so a charger's state moves with its partition.
- :mod:`processors.meter_key_reader`: every worker reads the meter keys (``ocpp.meter_keys.v1``) whole before it takes
  its first frame, then follows them, into the key registry signed readings are verified with
  (:class:`~processors.meter_key_intake.MeterKeyHolder`) and into ``meter_keys``.
- :mod:`processors.stall_watch`: a worker with frames to read that takes none is nudged, then exits 70.
- :mod:`processors.web`: ``/metrics`` on Faust's web server (``OCPP_WORKER_WEB_PORT``; Faust's own table and router
  pages are off: they would show correlator states), and ``/sql`` on a listener of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import faust
from faust.types.auth import CredentialsT
from faust.worker import Worker as FaustWorker

from infra import clickhouse
from infra.logs import logging_config
from infra.settings import ClickHouseSettings, KafkaSettings, SqlSettings
from infra.topic_admin import wait_for_topics
from processors.batch_path import BatchPath
from processors.clickhouse_sink import ClickHouseSink
from processors.committer import INSERT_REFUSED_EXIT_CODE, Committer
from processors.exclusion_intake import ExclusionIntake
from processors.faust_adapter import TP, FaustConsumer, ShellApp, StateTable
from processors.intake import Intake
from processors.meter_key_intake import MeterKeyHolder
from processors.meter_key_reader import MeterKeyReader
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.settings import WorkerSettings
from processors.stall import StallWatch
from processors.stall_watch import STALLED_EXIT_CODE, StallWatchdog
from processors.web import SqlListener, add_metrics_page
from schemas.topics import EXCLUSIONS, FAULTS, FRAMES, SESSIONS

__all__ = ["INSERT_REFUSED_EXIT_CODE", "STALLED_EXIT_CODE", "Worker", "run_worker"]


def _broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust's credentials for ``kafka``'s identity: a SASL user (over TLS with SASL_SSL), a client
    certificate (SSL: mutual TLS), or none (PLAINTEXT)."""
    context = kafka.ssl_context()
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _faust_app(settings: WorkerSettings, kafka: KafkaSettings, datadir: Path, frames_partitions: int) -> ShellApp:
    return ShellApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=_broker_credentials(kafka),
        store="memory://",
        datadir=str(datadir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        # Faust's own pages would show correlator states (/table) and the cluster's workers (/router).
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        topic_replication_factor=kafka.replication_factor,
        topic_partitions=frames_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A worker that dies (SIGKILL, node loss) hands its partitions over after this, not 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
        # One poll is at most one flush worth of frames (the batch handed to the processor).
        broker_max_poll_records=settings.flush_rows,
        autodiscover=False,
        Table=StateTable,  # its changelog writes can be awaited before offsets are committed
    )


class Worker:
    """Builds the Faust app and wires the batch path, the committer, the stall watch and the web views to it."""

    def __init__(
        self,
        settings: WorkerSettings,
        kafka: KafkaSettings,
        ch: ClickHouseSettings,
        *,
        frames_partitions: int,
        sql: SqlSettings | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics = WorkerMetrics()
        self.client = clickhouse.connect(ch)
        clickhouse.migrate(self.client, ch.database, clickhouse.dialect_for(ch), retention=ch.retention())
        self.database = ch.database
        datadir = ch.home / "faust" / settings.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        sink = ClickHouseSink(self.client, ch.database, on_failure=lambda exc: metrics.sink_failures.inc())
        self.app = app = _faust_app(settings, kafka, datadir, frames_partitions)
        frames = app.topic(kafka.topic(FRAMES.name), partitions=frames_partitions, key_serializer="raw",
                           value_serializer="raw")
        exclusions = app.topic(kafka.topic(EXCLUSIONS.name), key_serializer="raw", value_serializer="raw")
        # Keys as raw bytes (the charge point id), exactly as on the frames topic: the partitioner then puts a
        # charger's state in the same partition as its frames. Values are JSON snapshots (bytes): StateTable.
        changelog = app.topic(
            f"{settings.app_id}-correlator-state-changelog", key_serializer="raw", value_serializer="raw",
            partitions=frames_partitions, compacting=True, deleting=False, internal=True,
            # As Faust's own changelogs (tables/base.py): nothing acks a changelog record, and with acks on
            # its stream health check logged "Stream has not started processing" for every partition.
            acks=False,
        )
        table = app.Table("correlator-state", default=None, partitions=frames_partitions, use_partitioner=True,
                          changelog_topic=changelog)
        if not isinstance(table, StateTable):  # what App.Table makes (the app's Table setting)
            raise TypeError(f"a StateTable was expected, not {table!r}")
        self.table = table
        frames_topic, exclusions_topic = frames.get_topic_name(), exclusions.get_topic_name()

        self.consumer = consumer = FaustConsumer(app)
        # The key registry signed readings are verified with, kept current by the reader (every worker reads the
        # whole meter keys topic, before its first frame).
        self.meter_keys = MeterKeyHolder()
        self.meter_key_reader = MeterKeyReader(kafka, self.meter_keys, sink, metrics, salt=settings.app_id)
        self.processor = FrameProcessor(settings.correlator_config(), self._load_state, meter_keys=self.meter_keys)
        intake, exclusion_intake = Intake(), ExclusionIntake()
        self.committer = Committer(
            processor=self.processor, intake=intake, exclusions=exclusion_intake, sink=sink,
            sessions=app.topic(kafka.topic(SESSIONS.name), key_serializer="raw", value_serializer="raw"),
            faults=app.topic(kafka.topic(FAULTS.name), key_serializer="raw", value_serializer="raw"),
            states=self.table, consumer=consumer, frames_topic=frames_topic, exclusions_topic=exclusions_topic,
            app_id=settings.app_id, metrics=metrics)
        stall = StallWatch(settings.stall_s, time.monotonic())
        self.batch_path = BatchPath(
            consumer=consumer, processor=self.processor, intake=intake, exclusions=exclusion_intake, stall=stall,
            metrics=metrics, persisted_states=self._persisted_states, flush=self._flush_full_batch,
            frames_topic=frames_topic, exclusions_topic=exclusions_topic, flush_rows=settings.flush_rows,
            idle_advance_s=settings.idle_advance_s)
        self.watchdog = StallWatchdog(stall, consumer, intake, frames_topic)

        # The frames topic is subscribed (so Faust assigns its partitions and co-partitions the table with it) but
        # read by the batch path, not by an agent; so are the exclusions.
        app.topics.add(frames)
        app.topics.add(exclusions)
        consumer.replace_fetch_loop(self._fetch)
        consumer.on_revoked(self._on_revoked)
        consumer.on_assigned(self._on_assigned)
        app.set_before_stop(self._before_stop)
        app.timer(settings.flush_interval_s)(self._on_timer)
        add_metrics_page(app, metrics)
        app.add_companion(SqlListener(sql or SqlSettings(), ch, metrics))

    async def _fetch(self, stopped: Callable[[], bool]) -> None:
        """The fetch loop: the meter keys first (a signed reading judged before its key is read would be
        ``key_unknown``), then the batch path."""
        if not self.meter_key_reader.replayed.is_set():
            await self.meter_key_reader.replay()
            self.meter_key_reader.start_following()
        await self.batch_path.run(stopped)

    def _load_state(self, charge_point_id: str) -> bytes | None:
        state: bytes | None = self.table.get(charge_point_id.encode())
        return state

    def _persisted_states(self) -> Iterator[tuple[str, bytes]]:
        return ((key.decode(), value) for key, value in self.table.items() if value)

    async def _flush_full_batch(self) -> None:
        await self.committer.flush(wait=False)

    async def _on_revoked(self, revoked: set[TP]) -> None:
        """Before partitions go: everything processed is written and committed, so the next owner starts exactly
        where this worker stopped (and this worker writes nothing of them later)."""
        await self.committer.flush(wait=True)

    async def _on_assigned(self, assigned: set[TP]) -> None:
        lost = self.batch_path.assigned(assigned)
        self.committer.forget(lost)

    async def _before_stop(self) -> None:
        """On SIGTERM (a rolling deploy, a scale-in), while the partitions are still this worker's: no frame is
        taken any more, and everything processed is written and committed."""
        self.batch_path.stop_taking()
        await self.committer.hand_over()
        await self.meter_key_reader.stop()

    async def _on_timer(self) -> None:
        self.batch_path.advance_idle_clocks(time.monotonic())
        oldest = self.batch_path.oldest_clock_ms()
        if oldest is not None:
            self.metrics.watermark_age.set(max(0.0, time.time() - oldest / 1000))
        await self.committer.flush()
        self.metrics.lag.set(self.batch_path.lag())
        await self.watchdog.check(stopping=self.batch_path.stopping)


def run_worker(settings: WorkerSettings, kafka: KafkaSettings, ch: ClickHouseSettings, loglevel: str = "info",
               log_format: str = "text", sql: SqlSettings | None = None) -> None:
    """``ocpp-pipeline worker``: wait for the topics, then run the Faust worker until SIGTERM / SIGINT."""
    # Kafka may start after the worker (every pod at once): wait, saying so, instead of dying.
    ready = asyncio.run(wait_for_topics(kafka))
    worker = Worker(settings, ready.settings, ch, frames_partitions=ready.partitions(kafka.topic(FRAMES.name)), sql=sql)
    FaustWorker(worker.app, loglevel=loglevel, quiet=True,
                logging_config=logging_config(loglevel, log_format)).execute_from_commandline()
