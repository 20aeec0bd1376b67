"""Publishes frame envelopes to ``ocpp.frames.v1`` in order, and says when Kafka has them.

One ordered buffer feeds one idempotent producer (acks=all), so frames keep the order the gateway
saw them in, per charger and overall. :meth:`FramePublisher.submit` returns a future that resolves
when Kafka acknowledged the frame; the connection loop awaits it for transaction messages only
(DESIGN.md, durability rule), so Heartbeats and StatusNotifications are answered even while Kafka
is away.

Nothing is dropped: a send that fails (broker gone, metadata missing, a batch that timed out) is
retried with backoff until Kafka takes it, and the queue holds what waits meanwhile. When
``max_pending`` frames wait, ``submit`` waits: chargers are slowed down rather than frames forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from gateway.envelope_record import EnvelopeRecord, encode_envelope
from gateway.metrics import GatewayMetrics
from infra.settings import KafkaSettings
from schemas.envelope import FrameEnvelope

log = logging.getLogger(__name__)

_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
Envelope = EnvelopeRecord | FrameEnvelope
_Item = tuple[Envelope, "asyncio.Future[None]"]
# Partition of each key, for the current partition count: murmur2 in pure Python costs ~3 us a frame.
# Bounded by the fleet a process serves; emptied when the count changes or past this size.
_PARTITION_CACHE_MAX = 200_000


class _Unsent(Exception):
    """Frames that did not enter the producer; ``__cause__`` says why."""

    def __init__(self, items: list[_Item]) -> None:
        super().__init__(f"{len(items)} frames not sent")
        self.items = items


class FramePublisher:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        metrics: GatewayMetrics,
        *,
        max_pending: int = 100_000,
        linger_ms: int = 0,
        max_batch_bytes: int = 512 * 1024,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._metrics = metrics
        self._linger_ms = linger_ms
        self._max_batch_bytes = max_batch_bytes
        self._request_timeout_ms = request_timeout_ms
        self._max_pending = max_pending
        # New frames collect here between two rounds of the sender; an Event wakes it. Cheaper per
        # frame than an asyncio.Queue, and a round takes everything at once.
        self._buffer: list[_Item] = []
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._retry: deque[_Item] = deque()
        self._producer: AIOKafkaProducer | None = None
        self._producer_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0  # frames inside the producer, not yet acknowledged
        self._partitions: list[int] | None = None
        self._partitioner = DefaultPartitioner()
        self._partition_of: dict[bytes, int] = {}
        self.kafka_up = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="frame-publisher")

    async def submit(self, envelope: Envelope) -> asyncio.Future[None]:
        """Queue ``envelope`` (the handler's :class:`EnvelopeRecord`, or a ``FrameEnvelope``); the
        returned future resolves once Kafka acknowledged it."""
        while self.pending >= self._max_pending:  # Kafka is behind: slow chargers down, lose nothing
            self._space.clear()
            await self._space.wait()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((envelope, done))
        self._wake.set()
        return done

    @property
    def pending(self) -> int:
        return len(self._buffer) + len(self._retry) + self._in_flight

    async def _new_producer(self) -> AIOKafkaProducer:
        backoff = 0
        while True:
            producer = AIOKafkaProducer(
                **self._kafka.client_options(),
                acks="all",
                enable_idempotence=True,
                linger_ms=self._linger_ms,
                max_batch_size=self._max_batch_bytes,
                request_timeout_ms=self._request_timeout_ms,
                retry_backoff_ms=200,
                client_id=f"ocpp-gateway-{self._kafka.bootstrap_servers}",
            )
            try:
                await producer.start()
                return producer
            except asyncio.CancelledError:  # stopped while connecting: close what was opened
                await producer.stop()
                raise
            except Exception as exc:  # broker away at start: keep serving chargers, try again
                await producer.stop()
                self._set_up(False)
                log.warning("kafka producer cannot start (%s); retrying", exc)
                await asyncio.sleep(_BACKOFF_S[min(backoff, len(_BACKOFF_S) - 1)])
                backoff += 1

    def _set_up(self, up: bool) -> None:
        self.kafka_up = up
        self._metrics.kafka_up.set(1 if up else 0)

    async def _run(self) -> None:
        self._producer = await self._new_producer()
        self._producer_ready.set()
        # The producer reached the cluster: ready before the first frame (a pod nobody routes chargers
        # to would otherwise never become ready).
        self._set_up(True)
        failures = 0
        while True:
            if not self._retry and not self._buffer:
                self._wake.clear()
                await self._wake.wait()
            # Everything waiting goes in one round: one Kafka batch per partition instead of one
            # send per frame (aiokafka's per-message send costs ~20 us; its batch API ~9 us).
            # Retries first: they are older than anything in the buffer.
            items = list(self._retry) + self._buffer
            self._retry.clear()
            self._buffer = []
            self._metrics.pending.set(self.pending + len(items))
            try:
                await self._send(items)
            except _Unsent as unsent:
                exc = unsent.__cause__
                # These never entered the producer: retry them first, in order.
                self._retry.extendleft(reversed(unsent.items))
                self._metrics.publish_failures.inc()
                self._set_up(False)
                self._partitions = None
                log.warning("kafka send failed (%s); retrying", exc)
                await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
                failures += 1
                if failures % 10 == 0:  # a producer wedged by an expired idempotent batch: start afresh
                    await self._restart_producer()
                continue
            failures = 0

    async def _send(self, items: list[_Item]) -> None:
        """Hand ``items`` to the producer, one batch per partition; raises :class:`_Unsent` with the
        items that did not enter it (those before it did, and will be acknowledged)."""
        producer = self._producer
        assert producer is not None
        try:
            if self._partitions is None:
                partitions = sorted(await producer.partitions_for(self._topic))
                if partitions != self._partitions:
                    self._partition_of.clear()
                self._partitions = partitions
        except Exception as exc:
            raise _Unsent(items) from exc
        partitions = self._partitions
        partition_of = self._partition_of
        if len(partition_of) > _PARTITION_CACHE_MAX:
            partition_of.clear()
        chunks: dict[int, list[tuple[bytes, _Item]]] = {}
        for item in items:
            key = item[0].key()
            partition = partition_of.get(key)
            if partition is None:
                # The producer's own default partitioner (murmur2, as Kafka's Java client): the same
                # charger lands in the same partition whichever producer wrote it.
                partition = partition_of[key] = self._partitioner(key, partitions, partitions)
            chunk = chunks.get(partition)
            if chunk is None:
                chunk = chunks[partition] = []
            chunk.append((key, item))
        batches: list[tuple[int, object, list[_Item]]] = []
        for partition, chunk in chunks.items():
            batch = producer.create_batch()
            members: list[_Item] = []
            for key, item in chunk:
                value = encode_envelope(item[0])
                if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                    batches.append((partition, batch, members))
                    batch, members = producer.create_batch(), []
                    batch.append(key=key, value=value, timestamp=None)
                members.append(item)
            batches.append((partition, batch, members))
        for n, (partition, batch, members) in enumerate(batches):
            try:
                delivery = await producer.send_batch(batch, self._topic, partition=partition)
            except Exception as exc:
                raise _Unsent([item for _, _, rest in batches[n:] for item in rest]) from exc
            self._in_flight += len(members)
            delivery.add_done_callback(lambda fut, members=members: self._delivered(fut, members))

    def _delivered(self, delivery: asyncio.Future[object], members: list[_Item]) -> None:
        self._in_flight -= len(members)
        if delivery.cancelled() or delivery.exception() is not None:
            # Timed out in the producer (e.g. the broker was down longer than the request timeout):
            # send them again. They may land after newer frames of the same charger; `seq` tells.
            self._metrics.publish_failures.inc()
            self._set_up(False)
            self._retry.extend(members)
            self._wake.set()
            return
        self._set_up(True)
        for _, done in members:
            if not done.done():
                done.set_result(None)
        self._space.set()

    async def _restart_producer(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            try:
                await asyncio.wait_for(old.stop(), 5)
            except Exception:
                pass
        self._producer = await self._new_producer()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued frame is acknowledged; False if ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.pending == 0

    async def stop(self, timeout_s: float = 10.0) -> bool:
        flushed = await self.flush(timeout_s)
        # Cancelling a producer midway through its start leaves its connections open: let it finish.
        try:
            await asyncio.wait_for(self._producer_ready.wait(), timeout_s if flushed else 0.1)
        except TimeoutError:
            pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._producer is not None:
            await self._producer.stop()
        if not flushed:
            log.error("stopped with %d frames not acknowledged by Kafka", self.pending)
        return flushed
