"""Publishes frame envelopes to ``ocpp.frames.v1`` in order, and says when Kafka has them.

One ordered queue feeds one idempotent producer (acks=all), so frames keep the order the gateway
saw them in, per charger and overall. :meth:`FramePublisher.submit` returns a future that resolves
when Kafka acknowledged the frame; the connection loop awaits it for transaction messages only
(DESIGN.md, durability rule), so Heartbeats and StatusNotifications are answered even while Kafka
is away.

Nothing is dropped: a send that fails (broker gone, metadata missing, a batch that timed out) is
retried with backoff until Kafka takes it, and the queue holds what waits meanwhile. When the
queue is full, ``submit`` waits: chargers are slowed down rather than frames forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from aiokafka import AIOKafkaProducer

from gateway.metrics import GatewayMetrics
from infra.settings import KafkaSettings
from schemas.envelope import FrameEnvelope

log = logging.getLogger(__name__)

_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)


class FramePublisher:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        metrics: GatewayMetrics,
        *,
        max_pending: int = 100_000,
        linger_ms: int = 2,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._metrics = metrics
        self._linger_ms = linger_ms
        self._request_timeout_ms = request_timeout_ms
        self._queue: asyncio.Queue[tuple[FrameEnvelope, asyncio.Future[None]]] = asyncio.Queue(max_pending)
        self._retry: deque[tuple[FrameEnvelope, asyncio.Future[None]]] = deque()
        self._producer: AIOKafkaProducer | None = None
        self._producer_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[None]] = set()
        self._requeues: set[asyncio.Future[None]] = set()
        self.kafka_up = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="frame-publisher")

    async def submit(self, envelope: FrameEnvelope) -> asyncio.Future[None]:
        """Queue ``envelope``; the returned future resolves once Kafka acknowledged it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((envelope, done))
        self._metrics.pending.inc()
        return done

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._retry) + len(self._in_flight) + len(self._requeues)

    async def _new_producer(self) -> AIOKafkaProducer:
        backoff = 0
        while True:
            producer = AIOKafkaProducer(
                **self._kafka.client_options(),
                acks="all",
                enable_idempotence=True,
                linger_ms=self._linger_ms,
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
        failures = 0
        while True:
            item = self._retry.popleft() if self._retry else await self._queue.get()
            envelope, done = item
            try:
                delivery = await self._producer.send(
                    self._topic, value=envelope.model_dump_json().encode(), key=envelope.key()
                )
            except Exception as exc:
                # The send never entered the producer: retry this same frame first, keeping order.
                self._retry.appendleft(item)
                self._metrics.publish_failures.inc()
                self._set_up(False)
                log.warning("kafka send failed (%s); retrying", exc)
                await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
                failures += 1
                if failures % 10 == 0:  # a producer wedged by an expired idempotent batch: start afresh
                    await self._restart_producer()
                continue
            failures = 0
            self._in_flight.add(delivery)
            delivery.add_done_callback(lambda fut, item=item: self._delivered(fut, item))

    def _delivered(self, delivery: asyncio.Future, item: tuple[FrameEnvelope, asyncio.Future[None]]) -> None:
        self._in_flight.discard(delivery)
        envelope, done = item
        if delivery.cancelled() or delivery.exception() is not None:
            # Timed out in the producer (e.g. the broker was down longer than the request timeout):
            # send it again. It may land after newer frames of the same charger; `seq` tells.
            self._metrics.publish_failures.inc()
            self._set_up(False)
            self._requeues.add(asyncio.ensure_future(self._requeue(item)))
            return
        self._set_up(True)
        self._metrics.pending.dec()
        if not done.done():
            done.set_result(None)

    async def _requeue(self, item: tuple[FrameEnvelope, asyncio.Future[None]]) -> None:
        try:
            await self._queue.put(item)
        finally:
            self._requeues.discard(asyncio.current_task())  # type: ignore[arg-type]

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
