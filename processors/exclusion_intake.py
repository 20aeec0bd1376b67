"""Exclusion events (``ocpp.exclusions.v1``) on their way into ``outage_exclusions``.

The worker (and a replay) hands each batch of records here; :meth:`ExclusionIntake.drain` gives the rows to
insert and the offsets to commit with the next flush. A record that is not a valid exclusion event (not JSON,
a field wrong, an ``exclusion_id`` that is not its content's) is counted and skipped with a warning naming
its partition and offset: its bytes stay on the topic (kept forever), nothing else is lost, and the worker goes on.
Rows are idempotent (the table is keyed by ``exclusion_id``, versioned by ``recorded_at``), so a batch written
twice (a crash before the commit, a rebalance) changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from processors.topic_batch import KafkaRecord, TopicBatch
from schemas.errors import InvalidExclusionEvent
from schemas.exclusions import decode_event

log = logging.getLogger(__name__)


class ExclusionIntake:
    def __init__(self) -> None:
        self._batch = TopicBatch("exclusions")

    def take(self, partition: int, records: Iterable[KafkaRecord]) -> None:
        batch = self._batch
        for record in records:
            batch.take(partition, record.offset)
            try:
                batch.rows.append(decode_event(record.value).row())
            except InvalidExclusionEvent as exc:
                batch.invalid += 1
                log.warning("exclusions partition %d offset %d skipped (it stays on the topic): %s", partition,
                            record.offset, exc)

    def drain(self) -> TopicBatch:
        batch, self._batch = self._batch, TopicBatch("exclusions")
        return batch
