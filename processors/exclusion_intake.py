"""Exclusion events (``ocpp.exclusions.v1``) on their way into ``outage_exclusions``.

The worker (and a replay) hands each batch of records here; :meth:`ExclusionIntake.drain` gives the rows to
insert and the offsets to commit with the next flush. A record that is not a valid exclusion event (not JSON,
a field wrong, an ``exclusion_id`` that is not its content's) is counted and skipped with a warning naming
its partition and offset: its bytes stay on the topic (kept forever), nothing else is lost, and the worker goes on.
Rows are idempotent (the table is keyed by ``exclusion_id``, versioned by ``recorded_at``), so a batch written
twice (a crash before the commit, a rebalance) changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.errors import InvalidExclusionEvent
from schemas.exclusions import decode_event

log = logging.getLogger(__name__)


class KafkaRecord(Protocol):
    offset: int
    value: bytes | None


@dataclass
class ExclusionBatch:
    rows: list[list[Any]] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last) offset taken
    invalid: int = 0

    @property
    def commits(self) -> dict[int, int]:
        """Partition -> the offset to commit (the next to read)."""
        return {p: last + 1 for p, (_, last) in self.offsets.items()}

    def token(self, salt: str) -> str:
        """Insert-deduplication token: the same records give the same token (a retried insert lands once)."""
        spans = ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self.offsets.items()))
        return hashlib.sha256(f"{salt}|exclusions|{spans}".encode()).hexdigest()[:32]

    def __bool__(self) -> bool:
        return bool(self.offsets)


class ExclusionIntake:
    def __init__(self) -> None:
        self._batch = ExclusionBatch()

    def take(self, partition: int, records: Iterable[KafkaRecord]) -> None:
        batch = self._batch
        for record in records:
            first, _ = batch.offsets.get(partition, (record.offset, record.offset))
            batch.offsets[partition] = (min(first, record.offset), record.offset)
            try:
                batch.rows.append(decode_event(record.value).row())
            except InvalidExclusionEvent as exc:
                batch.invalid += 1
                log.warning("exclusions partition %d offset %d skipped (it stays on the topic): %s", partition,
                            record.offset, exc)

    def drain(self) -> ExclusionBatch:
        batch, self._batch = self._batch, ExclusionBatch()
        return batch
