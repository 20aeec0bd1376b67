"""The batch path: the worker's fetch loop, which takes frames from Kafka in batches instead of as Faust events.

Faust's fetcher hands every record to a stream as an event (a message object, a callback, a queue, an
acknowledgement: ~75 us of CPU each, more than our whole processing). Its drain loop is replaced by
:meth:`BatchPath.run` (:meth:`processors.faust_adapter.FaustConsumer.replace_fetch_loop`): each poll of the consumer
(the assigned, unpaused partitions, up to ``OCPP_WORKER_FLUSH_ROWS`` records) goes to the processor as one batch per
partition. Operator exclusions (``ocpp.exclusions.v1``) are taken in the same poll and stored with the next flush.
Records of other topics (the table's changelog during recovery, standbys) still take Faust's own per-message path.

Which fetched frames are taken, and where a partition must be sought back to, is :mod:`processors.intake`'s rule:
records fetched while the group rebalances are not taken, and their partition is sought back to them (Faust's own
seek to the committed offsets can come before the rebalance ends, and it does not move a partition that has no
committed offset: relying on it once stalled a restarted worker with frames on Kafka). A partition that came back
(or came new) is read only after Faust recovered its part of the table and the processor indexed its states'
deadlines (:meth:`BatchPath._recover`).

Each partition also has a clock (its newest frame's gateway time); :meth:`BatchPath.advance_idle_clocks` moves the
clock of a quiet, caught-up partition on with wall time, so a stopped session's status window closes even when its
charger goes silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

from processors.exclusion_intake import ExclusionIntake
from processors.faust_adapter import TP, KafkaRecord, Poll
from processors.intake import Ignore, Intake, Seek
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.stall import StallWatch

log = logging.getLogger(__name__)


class FetchingConsumer(Protocol):
    """What the batch path asks of the consumer (:class:`processors.faust_adapter.FaustConsumer`)."""

    @property
    def flow_active(self) -> bool: ...

    @property
    def rebalancing(self) -> bool: ...

    @property
    def generation(self) -> int: ...

    async def poll(self, timeout_s: float) -> Poll: ...

    async def deliver(self, tp: TP, records: Iterable[KafkaRecord], generation: int) -> None: ...

    def committed_offset(self, tp: TP) -> int | None: ...

    def highwater(self, tp: TP) -> int | None: ...

    def assignment(self) -> set[TP]: ...

    async def seek(self, tp: TP, offset: int) -> bool: ...

    async def seek_to_committed(self) -> bool: ...

    def note_stream_activity(self, tp: TP, now: float) -> None: ...


StatesReader = Callable[[], Iterable[tuple[str, bytes]]]
"""Every persisted correlator state (charge point id, snapshot) this worker's table holds now."""


class BatchPath:
    """The fetch loop and what it keeps per frames partition: owned, recovered, its clock's last move."""

    def __init__(
        self,
        *,
        consumer: FetchingConsumer,
        processor: FrameProcessor,
        intake: Intake,
        exclusions: ExclusionIntake,
        stall: StallWatch,
        metrics: WorkerMetrics,
        persisted_states: StatesReader,
        flush: Callable[[], Awaitable[None]],
        frames_topic: str,
        exclusions_topic: str,
        flush_rows: int,
        idle_advance_s: float,
    ) -> None:
        self._consumer, self._processor, self._intake, self._exclusions = consumer, processor, intake, exclusions
        self._stall, self._metrics, self._persisted_states, self._flush = stall, metrics, persisted_states, flush
        self._frames_topic, self._exclusions_topic = frames_topic, exclusions_topic
        self._flush_rows, self._idle_advance_s = flush_rows, idle_advance_s
        self._owned: set[int] = set()  # frames partitions assigned to this worker
        self._recovered: set[int] = set()  # ... whose states' deadlines the processor has indexed
        self._arrivals: dict[int, tuple[float, int]] = {}  # partition -> (monotonic s, watermark) of its last batch
        self._stopping = False  # set on SIGTERM: no frame is taken any more
        self.recovery_seconds = 0.0

    # --- the fetch loop --------------------------------------------------------------------------

    async def run(self, stopped: Callable[[], bool]) -> None:
        """Poll until ``stopped()``; hand each partition's frames to the processor as one batch."""
        consumer, stall = self._consumer, self._stall
        frames_topic, exclusions_topic = self._frames_topic, self._exclusions_topic
        while not stopped():
            poll = self._intake.poll_started()
            records = await consumer.poll(1.0)
            if not records:
                continue
            generation = consumer.generation
            frames: dict[TP, Sequence[KafkaRecord]] = {}
            for tp, batch in records.items():
                if tp.topic == frames_topic:
                    frames[tp] = batch
                    continue
                if tp.topic == exclusions_topic:
                    # Always taken, even while the group rebalances: a record written twice changes nothing, and
                    # one dropped here might never be read again (a partition without a committed offset).
                    self._exclusions.take(tp.partition, batch)
                    continue
                if not consumer.flow_active:
                    continue  # as Faust's own poll
                await consumer.deliver(tp, batch, generation)  # the table's changelog: Faust's own path
                if batch:
                    stall.changelog_read(time.monotonic(), recovering=consumer.rebalancing)
            if frames:
                await self._take_frames(frames, poll)
            if not consumer.flow_active:
                # As Faust's own poll: a rebalance stopped the flow; back to the committed offsets. The assignment
                # may have changed meanwhile (a partition gone: nothing to restore there).
                await consumer.seek_to_committed()

    async def _take_frames(self, frames: Mapping[TP, Sequence[KafkaRecord]], poll: int) -> None:
        """Hand each partition's records to the processor, or seek back to them (:mod:`processors.intake`).

        Records are ready to be taken when the flow runs and no rebalance is under way (Faust resumes a frames
        partition only once its part of the table is recovered). Records that are not ready are never just
        dropped: the partition is sought back to them, because Faust's own seek to the committed offsets may
        already have happened (it comes before the rebalance ends) or may not move the position at all (a
        partition without a committed offset)."""
        if self._stopping:
            return  # the worker leaves: whoever is assigned these partitions next starts from the committed offsets
        consumer, intake, processor = self._consumer, self._intake, self._processor
        now, count = time.monotonic(), 0
        for tp, records in frames.items():
            partition = tp.partition
            # Asked for each partition: a seek before it awaited, and a rebalance may have begun since.
            ready = consumer.flow_active and not consumer.rebalancing
            if ready and partition in self._owned and partition not in self._recovered:
                self._recover({p.partition for p in frames if p.partition in self._owned} - self._recovered)
            decision = intake.decide(partition, records[0].offset, records[-1].offset, owned=partition in self._owned,
                                     ready=ready, committed=consumer.committed_offset(tp), poll=poll)
            if isinstance(decision, Seek):
                if ready:
                    log.info("partition %d: records from %d while %d comes next; seeking back", partition,
                             records[0].offset, decision.offset)
                else:
                    log.info("partition %d: %d records fetched during a rebalance; seeking back to %d", partition,
                             len(records), decision.offset)
                await consumer.seek(tp, decision.offset)
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
            # What Faust's per-event stream records for its health check: this batch path is the frames' stream.
            consumer.note_stream_activity(tp, now)
            watermark = processor.watermark(partition)
            if watermark is not None:
                self._arrivals[partition] = (now, watermark)
        if count:
            self._stall.progressed(now)
            self._metrics.frames.inc(count)
        if processor.pending_frames >= self._flush_rows:
            await self._flush()

    def _recover(self, partitions: set[int]) -> None:
        """Index the deadlines of the persisted states of partitions new to this worker: Faust has recovered the
        table (it resumes a partition only then), so its states are all there."""
        started = time.perf_counter()
        read = self._processor.recover(partitions, self._persisted_states())
        self._recovered |= partitions
        self.recovery_seconds = time.perf_counter() - started
        self._metrics.recovery_seconds.set(self.recovery_seconds)
        log.info("partitions %s: deadlines of %d states indexed in %.2f s", sorted(partitions), read,
                 self.recovery_seconds)
        self._stall.progressed(time.monotonic())

    # --- the hooks around it ---------------------------------------------------------------------

    def assigned(self, assigned: Iterable[TP]) -> set[int]:
        """A new assignment (Faust starts recovering its part of the table now). Returns the frames partitions
        lost: the processor forgets their clocks and deadlines, the intake their offsets."""
        self._stall.progressed(time.monotonic())  # the recovery of this assignment starts now
        owned = {tp.partition for tp in assigned if tp.topic == self._frames_topic}
        lost = self._owned - owned
        if lost:
            self._processor.forget(lost)
            for partition in lost:
                self._recovered.discard(partition)
                self._arrivals.pop(partition, None)
            self._intake.forget(lost)
        self._owned = owned
        return lost

    def stop_taking(self) -> None:
        """A stop began: no frame is taken from now on (what comes is the next owner's)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def advance_idle_clocks(self, now: float) -> None:
        """Move on the clock of every partition idle for ``OCPP_WORKER_IDLE_ADVANCE_S`` with wall time.

        Only a partition with nothing left to read: a lagging one must not let wall time close windows whose frames
        are still waiting in Kafka. Not while the group rebalances: a partition being revoked is the next owner's to
        move on, and what this worker decided of it after its last flush would not reach that owner's states."""
        if self._consumer.rebalancing:
            return
        for partition, (arrived, watermark) in list(self._arrivals.items()):
            idle = now - arrived
            if idle >= self._idle_advance_s and self._caught_up(partition):
                self._processor.advance(partition, watermark + int(idle * 1000))

    def oldest_clock_ms(self) -> int | None:
        """The oldest partition clock (gateway ms), None before any frame."""
        return min((w for _, w in self._arrivals.values()), default=None)

    def lag(self) -> int:
        """Frames on the assigned partitions not processed yet (highwater - next offset)."""
        consumer, lag = self._consumer, 0
        for tp in consumer.assignment():
            if tp.topic == self._frames_topic:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    lag += max(0, highwater - (self._intake.next_offset(tp.partition, consumer.committed_offset(tp)) or 0))
        return lag

    def _caught_up(self, partition: int) -> bool:
        # The consumer's highwater, refreshed by every fetch response (the fetcher keeps polling quiet partitions):
        # no broker round trip on each timer tick.
        highwater = self._consumer.highwater(TP(self._frames_topic, partition))
        done = self._intake.next_offset(partition)
        return highwater is not None and done is not None and done >= highwater
