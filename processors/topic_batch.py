"""What an intake of an operator's topic (exclusions, meter keys) holds until the next flush writes it: the rows taken,
the offsets they came from, and how many records were not valid events. Both topics are small, read by every replay
and kept forever; their rows are idempotent, so a batch written twice changes nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol


class KafkaRecord(Protocol):
    offset: int
    value: bytes | None


@dataclass
class TopicBatch:
    table: str  # where the rows go; names the insert's deduplication token
    rows: list[list[Any]] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last) offset taken
    invalid: int = 0

    def take(self, partition: int, offset: int) -> None:
        """Note one record of the partition as taken (a row of it or not)."""
        first, _ = self.offsets.get(partition, (offset, offset))
        self.offsets[partition] = (min(first, offset), offset)

    @property
    def commits(self) -> dict[int, int]:
        """Partition -> the offset to commit (the next to read)."""
        return {p: last + 1 for p, (_, last) in self.offsets.items()}

    def token(self, salt: str) -> str:
        """Insert-deduplication token: the same records give the same token (a retried insert lands once)."""
        spans = ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self.offsets.items()))
        return hashlib.sha256(f"{salt}|{self.table}|{spans}".encode()).hexdigest()[:32]

    def __bool__(self) -> bool:
        return bool(self.offsets)
