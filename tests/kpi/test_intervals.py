"""Interval arithmetic of the uptime report: unions, intersections, and the NEVI figures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi.intervals import Span, intersection, total_ms, union, uptime_figures

M = 60_000  # a minute


@pytest.mark.parametrize("spans, expected", [
    ([], []),
    ([Span(0, 0), Span(5, 3)], []),  # empty spans vanish
    ([Span(0, 10), Span(5, 15)], [Span(0, 15)]),  # overlapping
    ([Span(0, 10), Span(10, 20)], [Span(0, 20)]),  # touching
    ([Span(20, 30), Span(0, 10)], [Span(0, 10), Span(20, 30)]),  # unsorted, disjoint
    ([Span(0, 100), Span(10, 20)], [Span(0, 100)]),  # nested
])
def test_union(spans: list[Span], expected: list[Span]) -> None:
    assert union(spans) == expected


@pytest.mark.parametrize("period, outages, exclusions, expected", [
    # (period, outages, exclusions) -> (period, outage, excluded) minutes, uptime %
    (Span(0, 100 * M), [], [], (100, 0, 0, 100.0)),
    (Span(0, 100 * M), [Span(10 * M, 20 * M)], [], (100, 10, 0, 90.0)),
    # two causes over the same minutes: counted once
    (Span(0, 100 * M), [Span(10 * M, 20 * M), Span(15 * M, 25 * M)], [], (100, 15, 0, 85.0)),
    # outage straddling the period: only the inside counts
    (Span(0, 100 * M), [Span(-50 * M, 10 * M), Span(95 * M, 200 * M)], [], (100, 15, 0, 85.0)),
    # excluded only where the outage and the exclusion overlap
    (Span(0, 100 * M), [Span(10 * M, 30 * M)], [Span(20 * M, 60 * M)], (100, 20, 10, 90.0)),
    # an exclusion with no outage excludes nothing
    (Span(0, 100 * M), [], [Span(0, 100 * M)], (100, 0, 0, 100.0)),
    # fully excluded outage: uptime unharmed
    (Span(0, 100 * M), [Span(10 * M, 30 * M)], [Span(0, 50 * M), Span(5 * M, 40 * M)], (100, 20, 20, 100.0)),
    (Span(0, 0), [Span(0, 10)], [], (0, 0, 0, None)),
])
def test_uptime_figures(period: Span, outages: list[Span], exclusions: list[Span], expected: tuple) -> None:
    f = uptime_figures(period, outages, exclusions)
    assert (f.period_ms / M, f.outage_ms / M, f.excluded_ms / M, f.uptime_pct) == expected


spans = st.builds(lambda a, n: Span(a, a + n), st.integers(-1000, 1000), st.integers(-10, 500))


@given(st.lists(spans, max_size=12))
def test_union_is_sorted_disjoint_and_covers_the_same_points(items: list[Span]) -> None:
    merged = union(items)
    assert all(a.end_ms < b.start_ms for a, b in zip(merged, merged[1:]))
    covered = {t for s in items for t in range(s.start_ms, s.end_ms)}
    assert {t for s in merged for t in range(s.start_ms, s.end_ms)} == covered
    assert total_ms(items) == len(covered)  # a point (a minute) never counted twice


@given(st.lists(spans, max_size=8), st.lists(spans, max_size=8))
def test_intersection_is_what_both_cover(a: list[Span], b: list[Span]) -> None:
    both = intersection(union(a), union(b))
    in_a = {t for s in a for t in range(s.start_ms, s.end_ms)}
    in_b = {t for s in b for t in range(s.start_ms, s.end_ms)}
    assert {t for s in both for t in range(s.start_ms, s.end_ms)} == in_a & in_b


@given(spans, st.lists(spans, max_size=10), st.lists(spans, max_size=10))
def test_excluded_within_outage_within_period_and_uptime_a_percentage(period: Span, outages: list[Span],
                                                                      exclusions: list[Span]) -> None:
    f = uptime_figures(period, outages, exclusions)
    assert 0 <= f.excluded_ms <= f.outage_ms <= f.period_ms
    if f.uptime_pct is not None:
        assert 0 <= f.uptime_pct <= 100
        more = uptime_figures(period, outages, [*exclusions, period])  # excluding everything: full uptime
        assert more.uptime_pct == pytest.approx(100.0)
