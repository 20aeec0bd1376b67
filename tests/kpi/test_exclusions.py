"""The exclusion rule (which exclusion names an outage), exclusion checks, and recording one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi.errors import InvalidExclusion
from kpi.exclusions import excluded_reason, fetch_exclusions, from_ms, new_exclusion, ordered, to_ms
from kpi.recorder import record_exclusion
from schemas.records import ExclusionReason, PortOutage
from schemas.tables import PORT_OUTAGES
from tests.kpi.helpers import T0, at, insert_outages, ms, outage

MAINT, UTIL = ExclusionReason.SCHEDULED_MAINTENANCE, ExclusionReason.UTILITY_INTERRUPTION


def excl(connector: int, start_min: float, end_min: float, reason: ExclusionReason = MAINT, cp: str = "CP-1",
         note: str = ""):
    return new_exclusion(cp, connector, at(start_min), at(end_min), reason, note, recorded_at=T0)


@pytest.mark.parametrize("connector, start, end, exclusions, expected", [
    (1, 10, 20, [], ""),
    (1, 10, 20, [excl(1, 15, 30)], "scheduled_maintenance"),  # partial overlap
    (1, 10, 20, [excl(2, 0, 100)], ""),  # another port
    (1, 10, 20, [excl(0, 0, 100, UTIL)], "utility_interruption"),  # connector 0: every port
    (1, 10, 20, [excl(1, 20, 30)], ""),  # touching is not overlapping ([from, to))
    (1, 10, 20, [excl(1, 0, 10)], ""),
    (1, 10, None, [excl(1, 500, 600)], "scheduled_maintenance"),  # open outage: overlaps what ends after its start
    (1, 10, None, [excl(1, 0, 5)], ""),
    # the first exclusion in order (earliest window) names it
    (1, 10, 20, ordered([excl(1, 12, 30, UTIL), excl(0, 5, 15)]), "scheduled_maintenance"),
])
def test_excluded_reason(connector: int, start: float, end: float | None, exclusions, expected: str) -> None:
    assert excluded_reason(connector, ms(start), None if end is None else ms(end), exclusions) == expected


windows = st.tuples(st.integers(0, 2), st.integers(0, 100), st.integers(1, 50))


@given(st.integers(1, 2), st.integers(0, 100), st.integers(1, 50), st.lists(windows, max_size=6))
def test_a_reason_exactly_when_some_exclusion_of_the_port_overlaps(connector, start, length, raw) -> None:
    exclusions = [excl(c, s, s + n) for c, s, n in raw]
    reason = excluded_reason(connector, ms(start), ms(start + length), exclusions)
    overlapping = [c for c, s, n in raw if c in (0, connector) and s < start + length and start < s + n]
    assert (reason != "") == bool(overlapping)


@given(st.integers(0, 2**41))
def test_milliseconds_round_trip_exactly(value: int) -> None:
    assert to_ms(from_ms(value)) == value


@pytest.mark.parametrize("change, message", [
    ({"to_at": T0}, "empty"),
    ({"to_at": T0 - timedelta(minutes=1)}, "empty"),
    ({"connector_id": -1}, "numbered from 1"),
    ({"reason": "bad_weather"}, "unknown reason"),
    ({"charge_point_id": ""}, "no charge point"),
])
def test_invalid_exclusions_are_refused(change: dict, message: str) -> None:
    args = {"charge_point_id": "CP-1", "connector_id": 1, "from_at": T0, "to_at": at(10), "reason": MAINT,
            "note": "", "recorded_at": T0} | change
    with pytest.raises(InvalidExclusion, match=message):
        new_exclusion(**args)


def test_the_id_is_a_content_hash() -> None:
    a, b = excl(1, 0, 10, note="x"), new_exclusion("CP-1", 1, at(0), at(10), MAINT, "x", recorded_at=at(99))
    assert a.exclusion_id == b.exclusion_id  # recorded twice: one row
    assert excl(1, 0, 10, note="y").exclusion_id != a.exclusion_id


def newest(client, database: str) -> dict[str, PortOutage]:
    rows = client.query(f"SELECT {', '.join(PORT_OUTAGES.column_names)} FROM `{database}`.port_outages FINAL").result_rows
    return {r[2]: PortOutage(**dict(zip(PORT_OUTAGES.column_names, r))) for r in rows}


def test_recording_re_emits_the_covered_outages_once(chdb_client, database: str) -> None:
    insert_outages(chdb_client, database, [
        outage("CP-1", 1, 10, 20, outage_id="a"),  # covered
        outage("CP-1", 2, 10, 20, outage_id="b"),  # another port
        outage("CP-1", 1, 100, None, outage_id="c"),  # open, began after the window: untouched
        outage("CP-2", 1, 10, 20, outage_id="d"),  # another charger
        outage("CP-1", 1, 0, 40, outage_id="e", version=7),  # covered, its newest version is 7
    ])
    done = record_exclusion(chdb_client, database, excl(1, 15, 50, note="PM visit"))
    assert done.reemitted == 2 and "2 outage rows re-emitted" in done.describe()
    rows = newest(chdb_client, database)
    assert {k: (v.excluded_reason, v.version) for k, v in rows.items()} == {
        "a": ("scheduled_maintenance", 2), "b": ("", 1), "c": ("", 1), "d": ("", 1), "e": ("scheduled_maintenance", 8)}
    again = record_exclusion(chdb_client, database, excl(1, 15, 50, note="PM visit"))
    assert again.reemitted == 0  # same exclusion, nothing changes
    fetched = fetch_exclusions(chdb_client, database, ["CP-1", "CP-9"])
    assert list(fetched) == ["CP-1"] and len(fetched["CP-1"]) == 1 and fetched["CP-1"][0].note == "PM visit"


def test_an_exclusion_of_every_port_covers_each_port_and_the_earliest_names_it(chdb_client, database: str) -> None:
    insert_outages(chdb_client, database, [outage("CP-1", 1, 10, 20, outage_id="a"),
                                           outage("CP-1", 2, 30, 40, outage_id="b")])
    record_exclusion(chdb_client, database, excl(2, 35, 36, MAINT))
    record_exclusion(chdb_client, database, excl(0, 0, 60, UTIL))  # earlier window: it names both now
    rows = newest(chdb_client, database)
    assert (rows["a"].excluded_reason, rows["b"].excluded_reason) == ("utility_interruption", "utility_interruption")
    assert fetch_exclusions(chdb_client, database, []) == {}


def test_a_row_no_command_could_write_is_skipped_not_fatal(chdb_client, database: str, caplog) -> None:
    from kpi.intervals import Span
    from kpi.source import ClientSource
    from kpi.uptime import fetch_inputs
    from schemas.tables import OUTAGE_EXCLUSIONS

    good = excl(1, 0, 10)
    bad = good.model_dump() | {"exclusion_id": "typed-by-hand", "reason": "bad_weather"}
    chdb_client.insert(OUTAGE_EXCLUSIONS.name, [good.row(), [bad[c] for c in OUTAGE_EXCLUSIONS.column_names]],
                       column_names=list(OUTAGE_EXCLUSIONS.column_names), database=database)
    assert [e.exclusion_id for e in fetch_exclusions(chdb_client, database, ["CP-1"])["CP-1"]] == [good.exclusion_id]
    assert "typed-by-hand skipped" in caplog.text
    inputs = fetch_inputs(ClientSource(chdb_client), database, Span(ms(0), ms(100)))
    assert [e.exclusion_id for e in inputs.exclusions] == [good.exclusion_id]


def test_the_worker_writes_outages_with_the_exclusions_recorded_so_far(chdb_client, database: str) -> None:
    """The sink fills ``excluded_reason`` when it writes an outage row (open or ended), from what
    ``outages exclude`` recorded before; a charger without exclusions keeps ''."""
    import asyncio

    from processors.clickhouse_sink import ClickHouseSink

    record_exclusion(chdb_client, database, excl(0, 5, 15, UTIL, note="storm"))
    rows = [outage("CP-1", 1, 10, None).row(), outage("CP-1", 2, 30, 40).row(), outage("CP-2", 1, 10, 20).row()]
    asyncio.run(ClickHouseSink(chdb_client, database).write({PORT_OUTAGES.name: rows}, token="t"))
    written = chdb_client.query(f"SELECT charge_point_id, connector_id, excluded_reason FROM `{database}`.port_outages "
                                "FINAL ORDER BY ALL").result_rows
    assert written == [("CP-1", 1, "utility_interruption"), ("CP-1", 2, ""), ("CP-2", 1, "")]
