"""Which fetched records of a partition the worker hands to the processor, and where it must seek: the
batch path's offset bookkeeping, without I/O (:class:`~processors.app.Worker` does the seeks).

The rule that keeps a partition from stalling or losing frames: **a fetched record of a partition this
worker owns is either handed to the processor or followed by a seek back to it** (never dropped while
the consumer's position moves past it). Records come in polls; between two polls the worker may be
rebalancing (Faust recovers the table, pauses and resumes partitions, and seeks to the committed offsets
at a moment of its own), so a poll can bring records that cannot be taken yet, or records from before a
seek. Each partition therefore has the offset that comes next (after the last record handed over, or
the committed offset where this worker's ownership started), and every poll's records are compared
with it:

- not owned: another worker's now; nothing to do (its position is the next owner's business);
- owned but not ready (a rebalance under way, the flow stopped): seek back to the first of them (or to
  the next offset, if lower), so they are read again once ready, whether or not Faust's own seek comes
  after (it does not for a partition without a committed offset, nor when the records came after it);
- all before the next offset: read again after a seek, processed already: ignored;
- starting before it: taken from the next offset on;
- starting after it: a gap. Seek back to the next offset once; if a poll begun after that seek still
  starts after it, the offsets in between are not on the log (retention, transaction markers) and the
  records are taken. A seek back is confirmed only by a poll that began after it, so records fetched
  before the seek can never pass for a gap.

Seeking back to an offset at or before the next one is always safe (what is read again is ignored, and
the correlator states skip offsets they have applied), so every seek here goes at most that far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Take:
    """Hand the records at and after ``from_offset`` to the processor. ``skipped`` is the span of offsets
    found missing from the log (``(first missing, first present)``), if taking them skips one."""

    from_offset: int
    skipped: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Seek:
    """Take nothing; seek the partition to ``offset`` and read from there."""

    offset: int


@dataclass(frozen=True, slots=True)
class Ignore:
    """Take nothing and seek nowhere (records processed already, or of a partition no longer owned)."""


Decision = Take | Seek | Ignore


class Intake:
    """The offset that comes next in each partition this worker reads, and its pending gap checks.

    Usage per poll: ``token = intake.poll_started()`` before polling; for each partition's records
    ``intake.decide(...)``; ``intake.taken(partition, next_offset)`` once the processor has them.
    """

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._gap_checks: dict[int, tuple[int, int]] = {}  # partition -> (next offset sought back to, seek number)
        self._seeks = 0

    def poll_started(self) -> int:
        """A token for a poll about to start: how many seeks were issued before it."""
        return self._seeks

    def next_offset(self, partition: int, committed: int | None = None) -> int | None:
        """The offset that comes next in ``partition``: after the last record taken, or ``committed``
        (where this worker's ownership started) if none was taken yet; None if neither is known."""
        return self._next.get(partition, committed)

    def decide(self, partition: int, first: int, last: int, *, owned: bool, ready: bool, committed: int | None,
               poll: int) -> Decision:
        """What to do with a poll's records ``first``..``last`` (offsets, in order) of ``partition``.

        ``committed`` is the group's committed offset as the consumer knows it (None when unknown or
        there is none), ``poll`` the token of the poll that brought the records."""
        if not owned:
            return Ignore()
        expected = self._next.get(partition, committed)
        if not ready:
            self._gap_checks.pop(partition, None)  # a pending check's answer is among what is dropped
            return self._seek(first if expected is None else min(first, expected))
        if expected is None or first == expected:
            return Take(first)
        if last < expected:
            return Ignore()
        if first < expected:
            return Take(expected)
        check = self._gap_checks.get(partition)
        if check is not None and check[0] == expected and poll >= check[1]:
            del self._gap_checks[partition]
            return Take(first, skipped=(expected, first))
        seek = self._seek(expected)
        self._gap_checks[partition] = (expected, self._seeks)
        return seek

    def taken(self, partition: int, next_offset: int) -> None:
        """The processor took the partition's records up to ``next_offset`` (exclusive)."""
        self._next[partition] = next_offset
        self._gap_checks.pop(partition, None)

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions no longer owned: their next offsets are the next owner's (a partition that comes
        back starts again from the committed offset)."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._gap_checks.pop(partition, None)

    def positions(self) -> dict[int, int]:
        """Next offset of every partition that had records taken."""
        return dict(self._next)

    def _seek(self, offset: int) -> Seek:
        self._seeks += 1
        return Seek(offset)
