"""Reading a topic of operator events whole: from the beginning of each partition to its end as it is now.

The operator topics (exclusions, meter keys) are kept forever and small; a replay and every worker's key registry
read them from their start. :func:`read_to_end` is that loop, for a consumer without a group the caller owns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    take: Callable[[int, list[Any]], None],
    *,
    after_poll: Callable[[], Awaitable[None]] | None = None,
    poll_ms: int = 1000,
    past_end: bool = False,
) -> None:
    """Assign ``partitions``, seek to their beginning and hand ``take(partition, records)`` every record up to the
    end offsets seen now; ``after_poll`` runs after each poll. ``past_end``: records fetched beyond those ends are
    handed too (a reader that goes on following from where this stops must not skip them)."""
    consumer.assign(list(partitions))
    ends = await consumer.end_offsets(list(partitions))
    starts = await consumer.beginning_offsets(list(partitions))
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=poll_ms)
        for tp, records in batch.items():
            take(tp.partition, records if past_end else [r for r in records if r.offset < ends[tp]])
            if records and records[-1].offset >= ends[tp] - 1:
                remaining.discard(tp)
        if after_poll is not None:
            await after_poll()
