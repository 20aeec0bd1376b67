"""Has the worker group drained a topic? Lag read from Kafka itself, so a bench can tell a worker that is
still catching up from frames that were lost.

Lag is the group's committed offsets against the topic's end offsets, per partition, as an operator's
``kafka-consumer-groups --describe`` shows it. The worker commits an offset only once the frames before it
are stored (rows, topic records, states: :mod:`processors.app`), so a lag of 0 means every frame on the
topic has been written to ClickHouse. "Drained" is a lag of 0 that *stays* 0 for a while: a worker
between two flushes, or a rebalance, can show 0 for a moment.

:class:`DrainWatch` is the pure decision (samples in, drained or not out); :func:`wait_drained` polls Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra.settings import KafkaSettings


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's position on a topic: committed offset and end offset per partition."""

    committed: Mapping[int, int]  # partition -> next offset to read; absent = nothing committed yet
    ends: Mapping[int, int]  # partition -> offset after the last record

    @property
    def total(self) -> int:
        """Records on the topic not yet committed (a partition without a commit counts from 0)."""
        return sum(max(0, end - self.committed.get(p, 0)) for p, end in self.ends.items())

    def behind(self) -> dict[int, int]:
        """Partitions with records left, and how many."""
        return {p: end - self.committed.get(p, 0) for p, end in sorted(self.ends.items()) if end > self.committed.get(p, 0)}


@dataclass
class DrainWatch:
    """Decides when a group has drained: its lag is 0 and has stayed 0 for ``steady_s``."""

    steady_s: float
    zero_since: float | None = field(default=None)

    def observe(self, at_s: float, lag: int) -> bool:
        """Take one sample (time in seconds, lag); True once the lag has been 0 for ``steady_s``."""
        if lag != 0:
            self.zero_since = None
            return False
        if self.zero_since is None:
            self.zero_since = at_s
        return at_s - self.zero_since >= self.steady_s


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    seconds: float  # from the call to the first sample of the steady zero (or to the cap)
    last: GroupLag


def _partitions(topic: str, partitions: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(partitions)]


async def read_lag(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> GroupLag:
    """The group's committed offsets and the topic's ``partitions`` end offsets, now."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = {tp.partition: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                     if tp.topic == topic and meta.offset >= 0}
        ends = await consumer.end_offsets(_partitions(topic, partitions))
    finally:
        await consumer.stop()
        await admin.close()
    return GroupLag(committed, {tp.partition: end for tp, end in ends.items()})


async def topic_records(kafka: KafkaSettings, topic: str, partitions: int) -> int:
    """Records on the topic (end minus beginning offsets; the gateway's producer is idempotent, not
    transactional, so no offset holds a control record)."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = _partitions(topic, partitions)
        begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return sum(ends[tp] - begins[tp] for tp in tps)


async def wait_drained(kafka: KafkaSettings, group: str, topic: str, partitions: int, *, cap_s: float, steady_s: float = 30,
                       every_s: float = 10, say: Callable[[str], None] = print) -> DrainResult:
    """Poll the group's lag until it has been 0 for ``steady_s`` or ``cap_s`` passed, saying each sample."""
    started = time.monotonic()
    watch = DrainWatch(steady_s)
    while True:
        lag = await read_lag(kafka, group, topic, partitions)
        now = time.monotonic() - started
        behind = lag.behind()
        say(f"  drain {now:6.0f} s: lag {lag.total:,} frames"
            + (f" (partition: left {', '.join(f'{p}: {n:,}' for p, n in behind.items())})" if behind else ""))
        if watch.observe(now, lag.total):
            return DrainResult(True, watch.zero_since or 0.0, lag)
        if now >= cap_s:
            return DrainResult(False, now, lag)
        await asyncio.sleep(every_s)
