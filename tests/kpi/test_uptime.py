"""The uptime report: per port, pure rows from inputs, and the same from a migrated database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi.intervals import Span
from kpi.source import ClientSource
from kpi.uptime import OutageSpan, Port, UptimeInputs, UptimeRow, uptime_report, uptime_rows
from tests.kpi.helpers import insert_exclusions, insert_outages, insert_status, ms, outage
from tests.kpi.test_exclusions import excl

DAY = Span(ms(0), ms(1440))  # one day
LATER = ms(10_000)


def row(cp: str, connector: int, period: float, down: float, excluded: float, pct: float) -> UptimeRow:
    return UptimeRow(cp, connector, period, down, excluded, pct)


@pytest.mark.parametrize("inputs, now, expected", [
    # a port with no outage: 100 %
    (UptimeInputs([Port("A", 1, ms(-10))], [], []), LATER, [row("A", 1, 1440, 0, 0, 100.0)]),
    # first seen inside the period: counts from its first report
    (UptimeInputs([Port("A", 1, ms(720))], [OutageSpan("A", 1, ms(720), ms(792))], []), LATER,
     [row("A", 1, 720, 72, 0, 90.0)]),
    # first seen after the period: no row
    (UptimeInputs([Port("A", 1, ms(2000))], [], []), LATER, []),
    # an open outage runs to the period's end, or to now when now is earlier
    (UptimeInputs([Port("A", 1, 0)], [OutageSpan("A", 1, ms(1296), None)], []), LATER,
     [row("A", 1, 1440, 144, 0, 90.0)]),
    (UptimeInputs([Port("A", 1, 0)], [OutageSpan("A", 1, ms(600), None)], []), ms(720),
     [row("A", 1, 720, 120, 0, 83.333)]),
    # overlapping outage rows of one port: a minute counts once; other ports unaffected
    (UptimeInputs([Port("A", 1, 0), Port("A", 2, 0)],
                  [OutageSpan("A", 1, ms(0), ms(100)), OutageSpan("A", 1, ms(50), ms(144))], []), LATER,
     [row("A", 1, 1440, 144, 0, 90.0), row("A", 2, 1440, 0, 0, 100.0)]),
    # exclusions: of the port, of every port (connector 0), of another port, of another charger
    (UptimeInputs([Port("CP-1", 1, 0), Port("CP-1", 2, 0)],
                  [OutageSpan("CP-1", 1, ms(0), ms(144)), OutageSpan("CP-1", 2, ms(0), ms(144))],
                  [excl(1, 0, 72), excl(0, 100, 200), excl(2, 0, 10, cp="CP-2")]), LATER,
     [row("CP-1", 1, 1440, 144, 116, 98.056), row("CP-1", 2, 1440, 144, 44, 93.056)]),
    # the same port reported by both sources: its earliest report
    (UptimeInputs([Port("A", 1, ms(100)), Port("A", 1, ms(50))], [], []), LATER, [row("A", 1, 1390, 0, 0, 100.0)]),
])
def test_uptime_rows(inputs: UptimeInputs, now: int, expected: list[UptimeRow]) -> None:
    assert uptime_rows(inputs, DAY, now) == expected


@given(st.lists(st.tuples(st.integers(0, 1500), st.one_of(st.none(), st.integers(1, 600))), max_size=8),
       st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1500), st.integers(1, 600)), max_size=4),
       st.integers(-100, 1400))
def test_every_row_is_consistent(outages, exclusions, first_seen) -> None:
    inputs = UptimeInputs([Port("CP-1", 1, ms(first_seen))],
                          [OutageSpan("CP-1", 1, ms(s), None if n is None else ms(s + n)) for s, n in outages],
                          [excl(c, s, s + n) for c, s, n in exclusions])
    for r in uptime_rows(inputs, DAY, LATER):
        assert 0 <= r.excluded_minutes <= r.outage_minutes <= r.period_minutes <= 1440
        assert 0 <= r.uptime_pct <= 100


def test_report_from_the_tables(chdb_client, database: str) -> None:
    insert_status(chdb_client, database, "CP-1", 1, -60)
    insert_status(chdb_client, database, "CP-1", 0, -60)  # connector 0 is the station, not a port
    insert_status(chdb_client, database, "CP-2", 1, 720)  # a status mid-day, but down since before the period
    insert_status(chdb_client, database, "CP-3", 1, 720)  # first seen mid-day
    insert_outages(chdb_client, database, [
        outage("CP-1", 1, 100, 172, outage_id="a"),
        outage("CP-1", 1, 100, None, outage_id="a", version=0),  # an older version: FINAL keeps the newest
        outage("CP-1", 2, 1400, None, outage_id="b"),  # a port only seen in port_outages, still down
        outage("CP-2", 1, -100, 900, outage_id="c"),  # began before the period
    ])
    
    insert_exclusions(chdb_client, database, [excl(1, 136, 1000)])
    rows = uptime_report(ClientSource(chdb_client), database, DAY, LATER)
    assert rows == [row("CP-1", 1, 1440, 72, 36, 97.5), row("CP-1", 2, 40, 40, 0, 0.0),
                    row("CP-2", 1, 1440, 900, 0, 37.5), row("CP-3", 1, 720, 0, 0, 100.0)]
