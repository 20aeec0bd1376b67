"""The Faust worker: ``ocpp.frames.v1`` -> :class:`~processors.pipeline.FrameProcessor` ->
ClickHouse, ``ocpp.sessions.v1``, ``ocpp.faults.v1``; correlator states in a changelog-backed table.

Frames are taken in batches, not as Faust events. Faust keeps doing what it does well: the consumer
group (assignment, rebalances), the changelog-backed table and its recovery, flow control, timers and
the web server. Its fetcher, though, hands every record to a stream as an event (a message object, a
callback, a queue, an acknowledgement: ~75 us of CPU each, more than our whole processing); here the
fetcher's drain loop is replaced (:meth:`Worker._drain`): each poll of the consumer (``getmany`` on the
assigned, unpaused partitions, up to ``OCPP_WORKER_FLUSH_ROWS`` records) goes to the processor as one
batch per partition. Records of other topics (the table's changelog during recovery) still take Faust's
own per-message path.

A flush (by size, or by time from a timer) writes rows, then topic records, then states (one table
write per charger per flush), and only then commits the offsets after the last frame of the flush, so
a committed offset always has its results stored. A crash repeats frames since the last commit; states
remember the last offset applied, so nothing is applied twice, and rows are idempotent.

Rebalances: when partitions are revoked, everything processed so far is flushed and committed before
the revocation completes (the new owner starts exactly where this one stopped, from states and offsets
it has written). Records fetched while the group rebalances are not taken, and their partition is sought
back to them (:mod:`processors.intake`): Faust's own seek to the committed offsets can come before the
rebalance ends, and it does not move a partition that has no committed offset, so relying on it once
stalled a restarted worker with frames on Kafka. A stop (SIGTERM) is handed over the same way, before the
consumer leaves the group (:meth:`Worker._before_stop`): Faust sends no revocation then.
A partition that came back (or came new) is read only after Faust recovered its part of the table and
the processor indexed its states' deadlines (:meth:`Worker._recover`): the worker is ready before it
reads frames. Several workers share the partitions; the table (``use_partitioner``: the producer's
murmur2 partitioner, as the gateway's) is partitioned like the frames topic, so a charger's state moves
with its partition.

The worker's web views are :mod:`processors.web`: ``/metrics`` on Faust's web server (``OCPP_WORKER_WEB_PORT``;
Faust's own table and router pages are off: they would show correlator states), and ``/sql`` (read-only queries, so
``sql`` can read the embedded ClickHouse while the worker holds it) on a listener of its own.

Operator exclusions (``ocpp.exclusions.v1``) are read in the same poll as the frames and stored with the next flush
(:mod:`processors.exclusion_intake`); their offsets are committed with the frames'.

No frame stops the worker (:mod:`processors.pipeline`); an insert that retrying cannot fix (the schema or
the code out of step with ClickHouse, credentials refused: :func:`processors.clickhouse_sink.classify`)
does, on purpose: the worker logs why and exits with 65 instead of retrying the same batch forever.
Nothing is lost: the batch's frames were not committed, and the next start reads them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError

from infra import clickhouse
from infra.errors import InsertFailed
from infra.settings import ClickHouseSettings, KafkaSettings, SqlSettings
from processors.clickhouse_sink import ClickHouseSink
from processors.exclusion_intake import ExclusionBatch, ExclusionIntake
from processors.intake import Ignore, Intake, Seek
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.settings import WorkerSettings
from processors.stall import StallAction, StallWatch
from processors.web import SqlListener, add_metrics_page
from schemas import tables
from schemas.base import Record
from schemas.storable import storable_record
from schemas.topics import EXCLUSIONS, FAULTS, FRAMES, SESSIONS

log = logging.getLogger(__name__)

STALLED_EXIT_CODE = 70  # EX_SOFTWARE: restart me
INSERT_REFUSED_EXIT_CODE = 65  # EX_DATAERR: a restart alone would fail the same way
# The stop's last flush waits this long for ClickHouse and Kafka; what it could not write stays uncommitted and
# is read again by the next owner. Below the worker pod's terminationGracePeriodSeconds (90, infra/k8s/base/worker.yaml).
STOP_FLUSH_S = 60.0


def _broker_credentials(kafka: KafkaSettings) -> Any:
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


class _App(faust.App):
    """Faust's app, with a hook that runs when the worker stops, before the consumer lets its partitions go
    (Faust's own signals come after: ``on_before_shutdown`` once the consumer stopped, and its revocation
    signal is not sent at all on a stop)."""

    before_stop: Callable[[], Awaitable[None]] | None = None
    sql: SqlListener | None = None  # started with the app, stopped after the hand-over

    async def on_start(self) -> None:
        await super().on_start()
        if self.sql is not None:
            await self.sql.start()

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        if self.sql is not None:
            await self.sql.stop()
        await super().on_stop()


class Worker:
    """Builds the Faust app and holds what its agent, timer and pages share."""

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
        self.metrics = WorkerMetrics()
        self.client = clickhouse.connect(ch)
        clickhouse.migrate(self.client, ch.database, clickhouse.dialect_for(ch), retention=ch.retention())
        self.database = ch.database
        datadir = ch.home / "faust" / settings.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.sink = ClickHouseSink(self.client, ch.database, on_failure=lambda exc: self.metrics.sink_failures.inc())
        self.app = app = _App(
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
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.frames = app.topic(kafka.topic(FRAMES.name), partitions=frames_partitions, **raw)
        self.sessions_topic = app.topic(kafka.topic(SESSIONS.name), **raw)
        self.faults_topic = app.topic(kafka.topic(FAULTS.name), **raw)
        # Read by _drain beside the frames (subscribed, no agent), stored with the next flush.
        self.exclusions_topic = app.topic(kafka.topic(EXCLUSIONS.name), **raw)
        self.exclusions = ExclusionIntake()
        # Keys as raw bytes (the charge point id), exactly as on the frames topic: the partitioner then
        # puts a charger's state in the same partition as its frames. Values are JSON snapshots (bytes).
        changelog = app.topic(
            f"{settings.app_id}-correlator-state-changelog", key_serializer="raw", value_serializer="raw",
            partitions=frames_partitions, compacting=True, deleting=False, internal=True,
            # As Faust's own changelogs (tables/base.py): nothing acks a changelog record, and with acks on
            # its stream health check logged "Stream has not started processing" for every partition.
            acks=False,
        )
        self.table = app.Table("correlator-state", default=None, partitions=frames_partitions, use_partitioner=True,
                               changelog_topic=changelog)
        self.table.key_serializer = "raw"
        self.table.value_serializer = "raw"
        self.processor = FrameProcessor(settings.correlator_config(), self._load_state)
        self._lock = asyncio.Lock()
        self._writing: asyncio.Task[None] | None = None
        self._owned: set[int] = set()  # frames partitions assigned to this worker
        self._recovered: set[int] = set()  # ... whose states' deadlines the processor has indexed
        self._arrivals: dict[int, tuple[float, int]] = {}  # partition -> (monotonic s, watermark)
        self.intake = Intake()  # per partition: the offset that comes next, and where to seek
        self._taken: dict[int, int] = {}  # partition -> offset after the last frame handed to a flush
        self._stopping = False  # set on SIGTERM: no frame is taken any more
        self._handed_over = False  # ... and, once the last flush is done, nothing is written any more
        self.stall = StallWatch(settings.stall_s, time.monotonic())
        self.recovery_seconds = 0.0
        # The frames topic is subscribed (so Faust assigns its partitions and co-partitions the table
        # with it) but read by _drain, not by an agent.
        app.topics.add(self.frames)
        app.topics.add(self.exclusions_topic)
        app.consumer._drain_messages = self._drain
        app.on_partitions_revoked.connect(self._on_revoked)
        app.before_stop = self._before_stop
        app.on_partitions_assigned.connect(self._on_assigned)
        app.timer(settings.flush_interval_s)(self._on_timer)
        add_metrics_page(app, self.metrics)
        app.sql = SqlListener(sql or SqlSettings(), ch, self.metrics)

    def _load_state(self, charge_point_id: str) -> bytes | None:
        return self.table.get(charge_point_id.encode())

    # --- the batch path ------------------------------------------------------------------------

    async def _drain(self, fetcher: Any) -> None:
        """Replaces Faust's ``Consumer._drain_messages`` (run by its fetcher service): polls the consumer
        and hands each partition's records of the frames topic to the processor as one batch."""
        app, consumer = self.app, self.app.consumer
        frames_topic = self.frames.get_topic_name()
        exclusions_topic = self.exclusions_topic.get_topic_name()
        callback, to_message, read_offset = consumer.callback, consumer._to_message, consumer._read_offset
        stopped = lambda: consumer._stopped.is_set() or fetcher._stopped.is_set()  # noqa: E731
        while not stopped():
            poll = self.intake.poll_started()
            records, _active = await consumer._wait_next_records(1.0)
            if not records or consumer.should_stop:
                continue
            generation = app.consumer_generation_id
            frames = {}
            for tp, batch in records.items():
                if tp.topic == frames_topic:
                    frames[tp] = batch
                    continue
                if tp.topic == exclusions_topic:
                    # Always taken, even while the group rebalances: a record written twice changes nothing, and
                    # one dropped here might never be read again (a partition without a committed offset).
                    self.exclusions.take(tp.partition, batch)
                    continue
                if not consumer.flow_active:
                    continue  # as Faust's own getmany (below)
                # The table's changelog (recovery, standbys): Faust's own per-message path.
                for record in batch:
                    if app.consumer_generation_id != generation:
                        break
                    message = to_message(tp, record)
                    await callback(message)
                    read_offset[tp] = message.offset
                if batch:
                    self.stall.changelog_read(time.monotonic(), recovering=app.rebalancing)
            if frames:
                await self._take_frames(frames, poll)
            if not consumer.flow_active:
                # As Faust's own getmany: a rebalance stopped the flow; back to the committed offsets. The
                # assignment may have changed meanwhile (a partition gone: nothing to restore there).
                try:
                    await consumer.perform_seek()
                except KafkaError as exc:
                    log.info("no seek to the committed offsets (%s): a rebalance is under way", exc)

    async def _take_frames(self, frames: dict[Any, list[Any]], poll: int) -> None:
        """Hand each partition's records to the processor, or seek back to them (:mod:`processors.intake`).

        Records are ready to be taken when the flow runs and no rebalance is under way (Faust resumes a
        frames partition only once its part of the table is recovered). Records that are not ready are
        never just dropped: the partition is sought back to them, because Faust's own seek to the
        committed offsets may already have happened (it comes before the rebalance ends) or may not
        move the position at all (a partition without a committed offset)."""
        app, consumer, intake = self.app, self.app.consumer, self.intake
        if self._stopping:
            return  # the worker leaves: whoever is assigned these partitions next starts from the committed offsets
        processor, now = self.processor, time.monotonic()
        count = 0
        for tp, records in frames.items():
            partition = tp.partition
            # Asked for each partition: a seek before it awaited, and a rebalance may have begun since.
            ready = consumer.flow_active and not app.rebalancing
            if ready and partition in self._owned and partition not in self._recovered:
                self._recover({p.partition for p in frames if p.partition in self._owned} - self._recovered)
            committed = consumer._committed_offset.get(tp)  # set by Faust's seek to the committed offsets
            decision = intake.decide(partition, records[0].offset, records[-1].offset, owned=partition in self._owned,
                                     ready=ready, committed=committed, poll=poll)
            if isinstance(decision, Seek):
                if ready:
                    log.info("partition %d: records from %d while %d comes next; seeking back", partition,
                             records[0].offset, decision.offset)
                else:
                    log.info("partition %d: %d records fetched during a rebalance; seeking back to %d", partition,
                              len(records), decision.offset)
                await self._seek(tp, decision.offset)
                continue
            if isinstance(decision, Ignore):
                continue
            if decision.skipped is not None:
                log.warning("partition %d: offsets %d..%d are not on the log; going on from %d", partition,
                            decision.skipped[0], decision.skipped[1] - 1, decision.skipped[1])
            if records[0].offset < decision.from_offset:
                records = [r for r in records if r.offset >= decision.from_offset]
            intake.taken(partition, processor.process_batch(partition, records))
            count += len(records)
            if app.monitor is not None:
                # What Faust's per-event stream records for its health check: this batch path is the frames'
                # stream. Without it Faust logs "Stream has not started processing" for every partition.
                app.monitor.stream_inbound_time[tp] = now
            watermark = processor.watermark(partition)
            if watermark is not None:
                self._arrivals[partition] = (now, watermark)
        if count:
            self.stall.progressed(now)
            self.metrics.frames.inc(count)
        if processor.pending_frames >= self.settings.flush_rows:
            await self.flush(wait=False)

    async def _seek(self, tp: Any, offset: int) -> None:
        """Seek a frames partition, through the consumer's own thread (aiokafka is not thread-safe). A
        partition no longer assigned cannot be sought: a rebalance took it, and whoever is assigned it
        next starts from its committed offset."""
        try:
            await self.app.consumer.seek_wait({tp: offset})
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.info("partition %d: not sought back to %d (%s): a rebalance is under way", tp.partition, offset, exc)

    def _recover(self, partitions: set[int]) -> None:
        """Index the deadlines of the persisted states of partitions new to this worker: Faust has
        recovered the table (it resumes a partition only then), so its states are all there."""
        started = time.perf_counter()
        read = self.processor.recover(partitions, ((k.decode(), v) for k, v in self.table.items() if v))
        self._recovered |= partitions
        self.recovery_seconds = time.perf_counter() - started
        self.metrics.recovery_seconds.set(self.recovery_seconds)
        log.info("partitions %s: deadlines of %d states indexed in %.2f s", sorted(partitions), read, self.recovery_seconds)
        self.stall.progressed(time.monotonic())

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        """Before partitions go: everything processed is written and committed, so the next owner
        starts exactly where this worker stopped (and this worker writes nothing of them later)."""
        await self.flush(wait=True)

    async def _before_stop(self) -> None:
        """On SIGTERM (a rolling deploy, a scale-in), while the partitions are still this worker's: everything
        processed is written and committed, and then nothing more. The next owner starts exactly where this
        worker stopped; a write still in flight when the consumer left used to be read and written again there."""
        self._stopping = True
        try:
            await asyncio.wait_for(self.flush(wait=True), STOP_FLUSH_S)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the stop must go on (Faust stops the consumer next)
            log.warning("stopping: the last flush failed (%r); its frames stay uncommitted and the next owner "
                        "reads them again", exc)
        finally:
            self._handed_over = True

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self.stall.progressed(time.monotonic())  # the recovery of this assignment starts now
        owned = {tp.partition for tp in assigned if tp.topic == self.frames.get_topic_name()}
        lost = self._owned - owned
        if lost:
            self.processor.forget(lost)
            for partition in lost:
                self._recovered.discard(partition)
                self._arrivals.pop(partition, None)
                self._taken.pop(partition, None)
            self.intake.forget(lost)
        self._owned = owned

    async def _on_timer(self) -> None:
        # A partition that stopped receiving frames still has a clock: wall time moves it on, so a
        # stopped session's status window closes even when its charger goes quiet.
        # Only a partition with nothing left to read: a lagging one must not let wall time close
        # windows whose frames are still waiting in Kafka.
        # Not while the group rebalances: a partition being revoked is the next owner's to move on, and what
        # this worker decided of it after its last flush would not reach that owner's states.
        now = time.monotonic()
        for partition, (arrived, watermark) in [] if self.app.rebalancing else list(self._arrivals.items()):
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

        While one batch is written the drain loop goes on correlating the next (``wait=False``): the
        two overlap, and at most two batches are in memory. ``wait=True`` returns once everything
        handed over so far is stored and committed."""
        async with self._lock:
            if self._handed_over:
                return  # stopped: a write now could not be committed (the timer may fire once more)
            if self._writing is not None and not self._writing.done():
                await self._writing  # one batch in flight at a time keeps order and bounds memory
            if self._writing is not None:
                self._writing.result()  # a failed write must not pass silently
            out = self.processor.take()
            commits = {p: n for p, n in self.intake.positions().items() if self._taken.get(p) != n}
            self._taken.update(commits)
            exclusions = self.exclusions.drain()
            if out.frame_count or out.states or commits or exclusions:
                self._writing = asyncio.create_task(self._write(out, commits, exclusions))
            if wait and self._writing is not None:
                await self._writing

    async def _write(self, out: Any, commits: dict[int, int], exclusions: ExclusionBatch | None = None) -> None:
        """Rows, then topic records, then states, then offsets: a crash anywhere repeats, never loses."""
        started = time.perf_counter()
        exclusions = exclusions or ExclusionBatch()
        try:
            await self.sink.write(out.rows, out.token(self.settings.app_id))
            if exclusions.rows:
                await self.sink.write({tables.OUTAGE_EXCLUSIONS.name: exclusions.rows},
                                      exclusions.token(self.settings.app_id))
        except InsertFailed as exc:
            if exc.retriable:
                raise
            self._stop_refused(exc)
        send_sessions, send_faults = self.sessions_topic.send, self.faults_topic.send
        deliveries = [
            await send_sessions(key=s.charge_point_id.encode(), value=_record_value(tables.SESSIONS, s))
            for s in out.sessions
        ] + [
            await send_faults(key=f.charge_point_id.encode(), value=_record_value(tables.FAULT_EVENTS, f))
            for f in out.faults
        ]
        if deliveries:
            await asyncio.gather(*deliveries)
        table = self.table
        for charge_point_id, state in out.states.items():
            table[charge_point_id.encode()] = state
        # Table writes are buffered by Faust: make Kafka hold them before the offsets may be committed,
        # or a crash could leave committed offsets ahead of the states they produced.
        await self.app.producer.flush()
        self.processor.persisted(out.states)
        if commits or exclusions:
            from faust.types import TP

            topic = self.frames.get_topic_name()
            offsets = {TP(topic, p): n for p, n in commits.items()}
            offsets |= {TP(self.exclusions_topic.get_topic_name(), p): n for p, n in exclusions.commits.items()}
            # Faust's own commit: offsets of partitions still assigned (a revoked one is the next owner's). An
            # exclusion not committed is read and written again, which changes nothing.
            committed = await self.app.consumer._commit_offsets(offsets)
            if not committed:
                # Refused without an error (the group is rebalancing: "already rebalanced"): the next flush, the
                # one before the partitions go among them, commits them again. Marked committed, they never
                # were, and the next owner read again frames this worker had written.
                for partition, offset in commits.items():
                    if self._taken.get(partition) == offset:
                        del self._taken[partition]
        self.metrics.exclusions.inc(len(exclusions.rows))
        self.metrics.bad_exclusions.inc(exclusions.invalid)
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
        """Crash-only safety net: a consumer that has frames to read but hands none to the processor
        for ``stall_s`` is nudged once (each partition behind is sought to the offset that comes next,
        which is always safe), and if it stays stuck the process exits with 70 so Kubernetes (or ``dev``)
        restarts it; offsets and states make the restart lose nothing. It does not resume partitions:
        Faust pauses them while it recovers the table, and frames read then would miss their states.
        What counts as progress: :mod:`processors.stall`."""
        if self._stopping or not self.stall.due(time.monotonic()):
            return  # a stopping worker takes no frames on purpose
        consumer = self.app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic == self.frames.get_topic_name()]
        if not tps:
            return
        ends = await consumer.highwaters(*tps)
        behind = {}
        for tp in tps:
            # What the processor has taken, not what the consumer fetched.
            done = self.intake.next_offset(tp.partition, consumer._committed_offset.get(tp)) or 0
            if ends.get(tp, 0) > done:
                behind[tp] = done
        if not behind:
            self.stall.quiet(time.monotonic())
            return
        described = ", ".join(f"{tp.partition}: {done}/{ends.get(tp, 0)}" for tp, done in behind.items())
        if self.stall.stuck(time.monotonic()) is StallAction.NUDGE:
            log.warning("no frames for %.0f s while partitions have some (partition: next/end %s): seeking them to the "
                        "next offsets", self.settings.stall_s, described)
            if not self.app.rebalancing:
                for tp, done in behind.items():
                    await self._seek(tp, done)
            return
        log.error("consumer still stalled after a nudge (partition: next/end %s; rebalancing: %s): exiting with 70 to be "
                  "restarted", described, self.app.rebalancing)
        logging.shutdown()
        os._exit(STALLED_EXIT_CODE)

    def _caught_up(self, partition: int) -> bool:
        # The consumer's highwater, refreshed by every fetch response (the fetcher keeps polling
        # quiet partitions): no broker round trip on each timer tick.
        from faust.types import TP

        highwater = self.app.consumer.highwater(TP(self.frames.get_topic_name(), partition))
        done = self.intake.next_offset(partition)
        return highwater is not None and done is not None and done >= highwater

    async def _update_lag(self) -> None:
        """Frames on the assigned partitions not processed yet (highwater - next offset)."""
        consumer = self.app.consumer
        lag = 0
        for tp in consumer.assignment():
            if tp.topic == self.frames.get_topic_name():
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    lag += max(0, highwater - (self.intake.next_offset(tp.partition, consumer._committed_offset.get(tp)) or 0))
        self.metrics.lag.set(lag)


def _record_value(table: tables.Table, record: Record) -> bytes:
    """A topic record's JSON. The pipeline hands out storable records already; should one still hold
    something JSON cannot carry (a lone surrogate), its storable version is published instead."""
    try:
        return record.model_dump_json().encode()
    except ValueError:
        return storable_record(table, record)[0].model_dump_json().encode()


def run_worker(settings: WorkerSettings, kafka: KafkaSettings, ch: ClickHouseSettings, loglevel: str = "info",
               log_format: str = "text", sql: SqlSettings | None = None) -> None:
    """``ocpp-pipeline worker``: create topics, then run the Faust worker until SIGTERM / SIGINT."""
    from faust.worker import Worker as FaustWorker

    from infra.topic_admin import wait_for_topics

    # Kafka may start after the worker (every pod at once): wait, saying so, instead of dying.
    ready = asyncio.run(wait_for_topics(kafka))
    worker = Worker(settings, ready.settings, ch, frames_partitions=ready.partitions(kafka.topic(FRAMES.name)), sql=sql)
    from infra.logs import logging_config

    FaustWorker(worker.app, loglevel=loglevel, quiet=True,
                logging_config=logging_config(loglevel, log_format)).execute_from_commandline()
