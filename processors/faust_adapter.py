"""Everything the worker takes from Faust's internals, behind one small typed surface.

The worker lets Faust run the consumer group, the changelog-backed table and its recovery, timers and the web
server, but it fetches, commits and seeks itself (:mod:`processors.batch_path`, :mod:`processors.committer`,
:mod:`processors.stall_watch`). For that it needs a few names Faust does not publish. They are all here, and only
here: a faust-streaming upgrade that changes one breaks this file and ``tests/processors/test_faust_adapter.py``
(which pins each behaviour below against a real app and the real broker), not the worker.

``pyproject.toml`` allows faust-streaming ``>=0.15.3,<0.16``; 0.15.3 is the only release in that range (PyPI,
2026-12-06), and every row below was read in its source (``faust/transport/consumer.py``,
``faust/transport/drivers/aiokafka.py``, ``faust/app/base.py``, ``faust/tables/recovery.py``) and holds for it:

================================  =================================================================================
the worker needs                  faust-streaming 0.15.3 gives it by
================================  =================================================================================
its own fetch loop                ``Consumer._drain_messages(fetcher)``, which ``Fetcher._fetcher`` runs from the
                                  app's start; an instance attribute of that name replaces it. The loop runs until
                                  ``_stopped`` of the consumer or of the fetcher is set (a stop; the fetcher is
                                  also stopped and restarted around a recovery).
a poll                            ``Consumer._wait_next_records(timeout)``: ``(records by TP, active TPs)``; only
                                  the assigned partitions not paused (Faust pauses a partition until its part of
                                  the table is recovered); it *waits* while the flow is stopped (a rebalance), and
                                  returns an empty map when nothing is active. At most ``broker_max_poll_records``.
Faust's own path for a record     ``Consumer._to_message`` + ``Consumer.callback`` (the conductor: the table's
                                  changelog during recovery, standbys) + ``Consumer._read_offset`` (what Faust's
                                  own loop records after each message).
a commit, told if refused         ``Consumer._commit_offsets(offsets) -> bool``: flushes the producer, commits the
                                  offsets as given (no acks needed, unlike ``Consumer.commit``); False without an
                                  error for partitions no longer assigned (dropped, logged "Discarded commit") and
                                  when the coordinator says the group already rebalanced. It records the offsets in
                                  ``_committed_offset`` even when refused; a revocation drops them again.
the committed offsets             ``Consumer._committed_offset``: set by ``perform_seek`` (Faust's seek to the
                                  committed offsets once a recovery ends: None for a partition without a committed
                                  offset, and for one committed at 0) and by commits; dropped on revocation.
a seek                            ``Consumer.seek_wait`` (aiokafka's seek, in the consumer's thread, then waits for
                                  the position); raises a ``KafkaError`` for a partition not assigned.
                                  ``Consumer.perform_seek``: every assigned partition to its committed offset.
flow state                        ``Consumer.flow_active`` (False from a revocation until a recovery resumes the
                                  flow), ``App.rebalancing`` (True from the revocation until the recovery's end,
                                  after its seek to the committed offsets), ``App.consumer_generation_id``.
a hook before the consumer goes   ``App.on_stop`` runs before ``App._stop_consumer`` (mode stops a service's own
                                  ``on_stop`` before its children), while the assignment is held and commits are
                                  accepted. Faust's ``on_partitions_revoked`` signal is not sent on a stop.
the revocation hook               the ``on_partitions_revoked`` signal, sent while the revoked partitions are still
                                  assigned (aiokafka's eager rebalance: before the rejoin): commits are accepted.
stream health                     ``Monitor.stream_inbound_time[tp]``: what Faust's per-event stream records and its
                                  health check reads (without it: "Stream has not started processing" per partition).
table writes Kafka holds          the futures of the changelog writes (``Collection.send_changelog`` returns one,
                                  resolved when Kafka acknowledged the write), which :class:`StateTable` keeps:
                                  ``Table.on_key_set`` drops them. Not ``Producer.flush()``: read in 0.15.3's
                                  source, it can return with a write still on its way, as the buffer's flush gives
                                  up once no message left it for 0.1 s (``ProducerBuffer.flush_atmost``: a send
                                  waiting for room in aiokafka's buffer), and a message its sender has taken off the
                                  buffer but not yet handed to aiokafka (waiting for metadata) is in neither. Not
                                  seen in this project's runs; an acknowledged future leaves no such window.
================================  =================================================================================
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import faust
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.types import TP, FutureMessage
from faust.types.codecs import CodecArg
from mode import Service, ServiceT

log = logging.getLogger(__name__)

KafkaRecord = ConsumerRecord[bytes, bytes]
"""A fetched record, as aiokafka hands it over (``offset``, ``key``, ``value``, ``timestamp`` in ms)."""

Poll = Mapping[TP, Sequence[KafkaRecord]]
"""One poll's records, by partition, in offset order."""

FetchLoop = Callable[[Callable[[], bool]], Awaitable[None]]
"""The worker's fetch loop: called once per fetcher run with ``stopped()``, returns when it says True."""

PartitionsHook = Callable[[set[TP]], Awaitable[None]]

__all__ = ["FaustConsumer", "FetchLoop", "KafkaRecord", "Poll", "ShellApp", "StateTable", "TP"]


class Companion(Protocol):
    """Something that lives as long as the app: started as it starts (before its consumer), stopped after the
    hand-over."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ShellApp(faust.App):
    """Faust's app with a hook that runs when the worker stops, before the consumer lets its partitions go, and
    companions started and stopped with it (Faust's own signals come too late for a hand-over:
    ``on_before_shutdown`` once the consumer stopped, and no revocation signal at all on a stop)."""

    _before_stop: Callable[[], Awaitable[None]] | None = None
    _companions: tuple[Companion, ...] = ()

    def set_before_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._before_stop = hook

    def add_companion(self, companion: Companion) -> None:
        self._companions += (companion,)

    async def on_start(self) -> None:
        await super().on_start()
        for companion in self._companions:
            await companion.start()

    async def on_stop(self) -> None:
        # Runs before faust.App.on_stop, whose first step stops the consumer (App._stop_consumer).
        if self._before_stop is not None:
            await self._before_stop()
        for companion in reversed(self._companions):
            await companion.stop()
        await super().on_stop()


class StateTable(faust.Table[bytes, bytes]):
    """Faust's table, whose changelog writes can be awaited (:meth:`written`); the app's ``Table`` class
    (``ShellApp(..., Table=StateTable)``). Keys and values are raw bytes, written as they are: keys as on the frames
    topic, so that the producer's partitioner (``use_partitioner``) puts a key's state in its frames' partition."""

    _in_flight: list[FutureMessage] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_serializer = self.value_serializer = "raw"

    def send_changelog(self, partition: int | None, key: Any, value: Any, key_serializer: CodecArg | None = None,
                       value_serializer: CodecArg | None = None) -> FutureMessage:
        future = super().send_changelog(partition, key, value, key_serializer, value_serializer)
        if self._in_flight is None:
            self._in_flight = []
        self._in_flight.append(future)
        return future

    async def written(self) -> None:
        """Return once Kafka acknowledged every write to this table so far; raises what a failed one raised."""
        in_flight, self._in_flight = self._in_flight or [], []
        if in_flight:
            await asyncio.gather(*in_flight)


class FaustConsumer:
    """The worker's view of Faust's consumer and app: the typed surface over the private names in the table above."""

    def __init__(self, app: faust.App) -> None:
        consumer = app.consumer  # created here, once: the hooks below are set on this instance
        if not isinstance(consumer, Consumer):  # every Kafka transport's consumer derives from it
            raise TypeError(f"a Faust consumer derived from faust.transport.consumer.Consumer was expected, not {consumer!r}")
        self._app = app
        self._consumer: Consumer = consumer

    # --- hooks -----------------------------------------------------------------------------------

    def replace_fetch_loop(self, loop: FetchLoop) -> None:
        """Run ``loop`` where Faust's fetcher would run its drain loop (per-message events for its streams)."""
        consumer = self._consumer

        async def drain(fetcher: ServiceT) -> None:
            fetcher_stopped = cast(Service, fetcher)._stopped
            await loop(lambda: consumer._stopped.is_set() or fetcher_stopped.is_set())

        consumer._drain_messages = drain  # type: ignore[method-assign]  # on purpose: the one replaced method

    def on_revoked(self, hook: PartitionsHook) -> None:
        """``hook(revoked)`` runs during a rebalance while the revoked partitions are still this worker's."""

        async def receiver(*args: Any, **_: Any) -> None:  # (sender, revoked, signal=...) as mode's Signal.send calls it
            await hook(set(args[1]))

        self._app.on_partitions_revoked.connect(receiver)

    def on_assigned(self, hook: PartitionsHook) -> None:
        """``hook(assigned)`` runs once Faust started recovering the table for a new assignment (the whole
        assignment: partitions kept, added, and of every subscribed topic)."""

        async def receiver(*args: Any, **_: Any) -> None:  # (sender, assigned, signal=...) as mode's Signal.send calls it
            await hook(set(args[1]))

        self._app.on_partitions_assigned.connect(receiver)

    # --- fetching --------------------------------------------------------------------------------

    async def poll(self, timeout_s: float) -> Poll:
        """The next records of the active partitions (empty when none came within ``timeout_s``, when nothing is
        active, or when the consumer is stopping). Waits as long as the flow is stopped."""
        records, _active = await self._consumer._wait_next_records(timeout_s)
        if not records or self._consumer.should_stop:
            return {}
        return cast(Poll, records)

    async def deliver(self, tp: TP, records: Iterable[KafkaRecord], generation: int) -> None:
        """Faust's own per-message path (the table's changelog, standbys), as its drain loop does it; stops at a
        new generation (a rebalance since the poll: the rest is read again after it)."""
        consumer, app = self._consumer, self._app
        for record in records:
            if app.consumer_generation_id != generation:
                break
            message = consumer._to_message(tp, record)
            await consumer.callback(message)
            consumer._read_offset[tp] = message.offset

    @property
    def flow_active(self) -> bool:
        """False while a rebalance stops the flow (from the revocation until the recovery resumes it)."""
        return self._consumer.flow_active

    @property
    def rebalancing(self) -> bool:
        """True from a revocation until the recovery ended (after its seek to the committed offsets)."""
        return self._app.rebalancing

    @property
    def generation(self) -> int:
        return self._app.consumer_generation_id

    def note_stream_activity(self, tp: TP, now: float) -> None:
        """Tell Faust's stream health check that ``tp``'s records were processed at ``now`` (monotonic s)."""
        if self._app.monitor is not None:
            self._app.monitor.stream_inbound_time[tp] = now

    # --- positions -------------------------------------------------------------------------------

    def assignment(self) -> set[TP]:
        return set(self._consumer.assignment())

    def committed_offset(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` as the consumer last saw it (its seek to the committed offsets,
        or a commit); None when unknown, none, or 0."""
        return self._consumer._committed_offset.get(tp)

    def highwater(self, tp: TP) -> int | None:
        """The partition's end offset as of the last fetch response (no broker round trip); None before one."""
        return cast(int | None, self._consumer.highwater(tp))

    async def highwaters(self, tps: Iterable[TP]) -> dict[TP, int]:
        """End offsets, asked of the broker."""
        return dict(await self._consumer.highwaters(*tps))

    async def seek(self, tp: TP, offset: int) -> bool:
        """Fetch ``tp`` from ``offset`` next. False when it cannot be sought: no longer assigned (whoever is
        assigned it next starts from the committed offset) or no answer in time; both mean a rebalance."""
        try:
            await self._consumer.seek_wait({tp: offset})
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.info("partition %s/%d: not sought to %d (%s): a rebalance is under way", tp.topic, tp.partition,
                     offset, exc)
            return False
        return True

    async def seek_to_committed(self) -> bool:
        """Every assigned partition back to its committed offset, as Faust's own poll does when the flow stopped.
        False when the assignment changed meanwhile (nothing to restore of a partition gone)."""
        try:
            await self._consumer.perform_seek()
        except (KafkaError, AssertionError) as exc:  # aiokafka asserts that something is assigned
            log.info("no seek to the committed offsets (%r): a rebalance is under way", exc)
            return False
        return True

    # --- writing ---------------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit exactly ``offsets`` (the next offset to read, per partition), after a flush of the producer. True
        once the group holds them;
        False when refused without an error: partitions no longer assigned are dropped (the next owner's), and a
        group that rebalanced since refuses them all. Other failures crash the consumer (Faust's own handling)."""
        if not offsets:
            return True
        return await self._consumer._commit_offsets(offsets)
