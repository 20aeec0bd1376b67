"""Half-open time intervals in milliseconds (the gateway clock), and the uptime arithmetic over them.

Every figure of the uptime report is a length of a union, so a minute covered by two outages (or two
exclusions) counts once, excluded time never exceeds outage time, and outage time never exceeds the
period (KPIS.md, Uptime). Pure functions: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MS_PER_MINUTE = 60_000


@dataclass(frozen=True, order=True)
class Span:
    """``[start_ms, end_ms)``; empty when ``end_ms <= start_ms``."""

    start_ms: int
    end_ms: int

    @property
    def length_ms(self) -> int:
        return max(0, self.end_ms - self.start_ms)

    @property
    def empty(self) -> bool:
        return self.end_ms <= self.start_ms

    def overlaps(self, other: Span) -> bool:
        return self.start_ms < other.end_ms and other.start_ms < self.end_ms

    def clip(self, window: Span) -> Span:
        return Span(max(self.start_ms, window.start_ms), min(self.end_ms, window.end_ms))


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, non-adjacent spans covering exactly what ``spans`` cover."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if not s.empty):
        if merged and span.start_ms <= merged[-1].end_ms:
            if span.end_ms > merged[-1].end_ms:
                merged[-1] = Span(merged[-1].start_ms, span.end_ms)
        else:
            merged.append(span)
    return merged


def intersection(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """What both cover; ``a`` and ``b`` must be outputs of :func:`union` (sorted and disjoint)."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start_ms, b[j].start_ms), min(a[i].end_ms, b[j].end_ms)
        if start < end:
            out.append(Span(start, end))
        if a[i].end_ms < b[j].end_ms:
            i += 1
        else:
            j += 1
    return out


def total_ms(spans: Iterable[Span]) -> int:
    """Length of the union of ``spans``."""
    return sum(s.length_ms for s in union(spans))


@dataclass(frozen=True)
class UptimeFigures:
    """One port over one period, in milliseconds; ``excluded_ms <= outage_ms <= period_ms``."""

    period_ms: int
    outage_ms: int
    excluded_ms: int

    @property
    def uptime_pct(self) -> float | None:
        """(period - (outage - excluded)) / period x 100 (23 CFR 680.112(b)); None for an empty period."""
        if self.period_ms <= 0:
            return None
        return (self.period_ms - (self.outage_ms - self.excluded_ms)) / self.period_ms * 100


def uptime_figures(period: Span, outages: Iterable[Span], exclusions: Iterable[Span]) -> UptimeFigures:
    """Outage time is the union of ``outages`` inside ``period``; excluded time is the part of it that
    also lies in the union of ``exclusions``. An open outage is passed with an end at or past the period's."""
    if period.empty:
        return UptimeFigures(0, 0, 0)
    down = union(o.clip(period) for o in outages)
    excluded = intersection(down, union(e.clip(period) for e in exclusions))
    return UptimeFigures(period.length_ms, sum(s.length_ms for s in down), sum(s.length_ms for s in excluded))
