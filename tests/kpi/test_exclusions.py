"""Exclusions: the one rule (which exclusion names an outage, derived at read time by the view
``port_outages_with_exclusions``), the event ``outages exclude`` records and its checks, and the sink that only
inserts."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi.errors import InvalidExclusion
from kpi.exclusions import Lifetime, check_bounds, exclusion_from_row, fetch_lifetime, new_exclusion
from kpi.source import ClientSource
from schemas.base import datetime_to_ms as to_ms
from schemas.base import ms_to_datetime as from_ms
from schemas.errors import InvalidExclusionEvent
from schemas.exclusions import covers_port, decode_event
from schemas.records import ExclusionReason, OutageExclusion
from schemas.tables import PORT_OUTAGES, PORT_OUTAGES_WITH_EXCLUSIONS
from tests.kpi.helpers import T0, at, insert_exclusions, insert_outages, ms, outage

MAINT, UTIL = ExclusionReason.SCHEDULED_MAINTENANCE, ExclusionReason.UTILITY_INTERRUPTION


def excl(connector: int, start_min: float, end_min: float, reason: ExclusionReason = MAINT, cp: str = "CP-1",
         note: str = "", recorded_at=T0, by: str = "ops@example.com"):
    return new_exclusion(cp, connector, at(start_min), at(end_min), reason, note, recorded_at=recorded_at,
                         recorded_by=by, reference="T-1")


def oracle(connector: int, start: int, end: int | None, exclusions: list[OutageExclusion]) -> OutageExclusion | None:
    """KPIS.md's rule in plain Python: the first exclusion, by from_at then exclusion_id, that covers the port and
    overlaps the outage (an open one overlaps whatever ends after it began)."""
    for e in sorted(exclusions, key=lambda e: (e.from_at, e.exclusion_id)):
        if covers_port(e, connector) and to_ms(e.from_at) < (end if end is not None else 2**62) and start < to_ms(e.to_at):
            return e
    return None


def derived(client, database: str, cp: str | None = None) -> dict[str, tuple[str, str, str]]:
    where = "" if cp is None else f" WHERE charge_point_id = '{cp}'"
    rows = client.query(f"SELECT outage_id, excluded_reason, exclusion_id, excluded_note FROM "
                        f"`{database}`.{PORT_OUTAGES_WITH_EXCLUSIONS.name}{where}").result_rows
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


CASES = [
    (1, 10, 20, [], ""),
    (1, 10, 20, [(1, 15, 30, MAINT)], "scheduled_maintenance"),  # partial overlap
    (1, 10, 20, [(2, 0, 100, MAINT)], ""),  # another port
    (1, 10, 20, [(0, 0, 100, UTIL)], "utility_interruption"),  # connector 0: every port
    (1, 10, 20, [(1, 20, 30, MAINT)], ""),  # touching is not overlapping ([from, to))
    (1, 10, 20, [(1, 0, 10, MAINT)], ""),
    (1, 10, None, [(1, 500, 600, MAINT)], "scheduled_maintenance"),  # open outage: overlaps what ends after its start
    (1, 10, None, [(1, 0, 5, MAINT)], ""),
    (1, 10, 20, [(1, 12, 30, UTIL), (0, 5, 15, MAINT)], "scheduled_maintenance"),  # the earliest window names it
]


def test_the_view_names_each_outage_by_the_rule(chdb_client, database: str) -> None:
    for n, (connector, start, end, windows, expected) in enumerate(CASES):
        cp = f"CP-{n}"
        insert_outages(chdb_client, database, [outage(cp, connector, start, end, outage_id=cp)])
        insert_exclusions(chdb_client, database, [excl(c, a, b, r, cp=cp) for c, a, b, r in windows])
    found = derived(chdb_client, database)
    assert {k: v[0] for k, v in found.items()} == {f"CP-{n}": case[-1] for n, case in enumerate(CASES)}


def test_the_view_reads_the_newest_version_and_names_the_exclusion(chdb_client, database: str) -> None:
    insert_outages(chdb_client, database, [outage("CP-1", 1, 10, None, outage_id="a", version=1),
                                           outage("CP-1", 1, 10, 20, outage_id="a", version=2),
                                           outage("CP-1", 1, 100, 120, outage_id="b", excluded_reason="vandalism")])
    storm = excl(0, 0, 15, UTIL, note="storm")
    insert_exclusions(chdb_client, database, [storm])
    # A row written before migration 6 with a reason in the column: the view derives it anyway (none covers b).
    assert derived(chdb_client, database) == {"a": ("utility_interruption", storm.exclusion_id, "storm"), "b": ("", "", "")}
    ended = chdb_client.query(f"SELECT ended_at IS NOT NULL, version FROM `{database}`.{PORT_OUTAGES_WITH_EXCLUSIONS.name} "
                              "WHERE outage_id = 'a'").result_rows
    assert ended == [(True, 2)]


windows = st.tuples(st.integers(0, 2), st.integers(0, 100), st.integers(1, 50), st.sampled_from(list(ExclusionReason)))
outages = st.tuples(st.integers(1, 2), st.integers(0, 100), st.one_of(st.none(), st.integers(1, 50)))
_examples = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(outages, min_size=1, max_size=4), st.lists(windows, max_size=5), st.integers(0, 3))
def test_the_view_agrees_with_the_rule_for_any_outages_and_exclusions(chdb_client, database, spans, raw, rerecorded) -> None:
    """Whatever the windows, ports and recording order (an exclusion recorded twice: one row), the view's
    exclusion is the rule's."""
    cp = f"P-{next(_examples)}"
    exclusions = [excl(c, s, s + n, r, cp=cp, note=f"n{i % 2}") for i, (c, s, n, r) in enumerate(raw)]
    recorded = exclusions + exclusions[:rerecorded]  # the same exclusion again: same id
    rows = [outage(cp, c, s, None if n is None else s + n, outage_id=f"{cp}-{i}") for i, (c, s, n) in enumerate(spans)]
    insert_outages(chdb_client, database, rows)
    insert_exclusions(chdb_client, database, recorded)
    found = derived(chdb_client, database, cp)
    for row in rows:
        expected = oracle(row.connector_id, to_ms(row.started_at), None if row.ended_at is None else to_ms(row.ended_at),
                          exclusions)
        assert found[row.outage_id] == (("", "", "") if expected is None
                                        else (expected.reason.value, expected.exclusion_id, expected.note))


@given(st.integers(0, 2**41))
def test_milliseconds_round_trip_exactly(value: int) -> None:
    assert to_ms(from_ms(value)) == value


@pytest.mark.parametrize("change, message", [
    ({"to_at": T0}, "empty"),
    ({"to_at": T0 - timedelta(minutes=1)}, "empty"),
    ({"connector_id": -1}, "numbered from 1"),
    ({"reason": "bad_weather"}, "unknown reason"),
    ({"charge_point_id": ""}, "no charge point"),
    ({"recorded_by": "  "}, "no author"),
    ({"reference": "x" * 1001}, "--reference is longer"),
])
def test_invalid_exclusions_are_refused(change: dict, message: str) -> None:
    args = {"charge_point_id": "CP-1", "connector_id": 1, "from_at": T0, "to_at": at(10), "reason": MAINT,
            "note": "", "recorded_at": T0, "recorded_by": "ops"} | change
    with pytest.raises(InvalidExclusion, match=message):
        new_exclusion(**args)


def test_the_id_is_a_hash_of_what_is_excluded_not_of_who_recorded_it() -> None:
    a, b = excl(1, 0, 10, note="x"), excl(1, 0, 10, note="x", recorded_at=at(99), by="someone else")
    assert a.exclusion_id == b.exclusion_id  # recorded twice: one row, the newest recording's author
    assert excl(1, 0, 10, note="y").exclusion_id != a.exclusion_id


def test_an_event_round_trips_and_a_forged_or_broken_one_is_refused() -> None:
    good = excl(1, 0, 10, note="grid")
    assert decode_event(good.model_dump_json().encode()) == good
    forged = good.model_copy(update={"exclusion_id": excl(2, 0, 10).exclusion_id})  # would overwrite another row
    for value, message in [(forged.model_dump_json().encode(), "is not its content's"), (b"not json", "not an exclusion"),
                           (good.model_dump_json().replace("scheduled_maintenance", "bad_weather").encode(), "reason"),
                           (None, "tombstone")]:
        with pytest.raises(InvalidExclusionEvent, match=message):
            decode_event(value)


NOW = ms(10_000)


@pytest.mark.parametrize("lifetime, window, problems", [
    (Lifetime(ms(0), ms(100), True), (10, 20), []),
    (Lifetime(None, None, False), (10, 20), ["never seen charge point 'CP-1'"]),
    (Lifetime(ms(0), ms(100), False), (10, 20), ["never reported port 1"]),
    (Lifetime(ms(50), ms(100), True), (10, 60), ["is before CP-1 was first seen"]),
    (Lifetime(ms(0), ms(100), True), (9_000, 11_000), ["is in the future"]),
    (Lifetime(ms(50), ms(100), False), (10, 11_000), ["never reported port 1", "before CP-1 was first seen",
                                                      "in the future"]),
])
def test_bounds_name_every_problem(lifetime: Lifetime, window: tuple[int, int], problems: list[str]) -> None:
    exclusion = excl(1, *window)
    if not problems:
        check_bounds(exclusion, lifetime, NOW)
        return
    with pytest.raises(InvalidExclusion) as raised:
        check_bounds(exclusion, lifetime, NOW)
    assert all(p in str(raised.value) for p in problems) and "--force" in str(raised.value)


def test_the_lifetime_comes_from_the_frames_and_the_reported_ports(chdb_client, database: str) -> None:
    from tests.kpi.helpers import insert_status

    chdb_client.command(f"INSERT INTO `{database}`.frames (charge_point_id, received_at, raw) VALUES "
                        f"('CP-1', '2026-07-01 00:05:00', 'a'), ('CP-1', '2026-07-01 02:00:00', 'b')")
    insert_status(chdb_client, database, "CP-1", 2, 5)
    source = ClientSource(chdb_client)
    assert fetch_lifetime(source, database, "CP-1", 2) == Lifetime(ms(5), ms(120), True)
    assert fetch_lifetime(source, database, "CP-1", 3).port_seen is False
    assert fetch_lifetime(source, database, "CP-1", 0).port_seen is True  # every port
    assert fetch_lifetime(source, database, "CP-'9", 1) == Lifetime(None, None, False)


def test_a_row_no_command_could_write_is_skipped_not_fatal(chdb_client, database: str, caplog) -> None:
    from kpi.intervals import Span
    from kpi.uptime import fetch_inputs

    from schemas.tables import OUTAGE_EXCLUSIONS

    good = excl(1, 0, 10)
    bad = good.model_copy(update={"exclusion_id": "typed-by-hand"}).row()
    bad[list(OutageExclusion.model_fields).index("reason")] = "bad_weather"

    chdb_client.insert(OUTAGE_EXCLUSIONS.name, [good.row(), bad], column_names=list(OUTAGE_EXCLUSIONS.column_names),
                       database=database)
    inputs = fetch_inputs(ClientSource(chdb_client), database, Span(ms(0), ms(100)))
    assert [e.exclusion_id for e in inputs.exclusions] == [good.exclusion_id]
    assert "typed-by-hand skipped" in caplog.text
    assert exclusion_from_row({"exclusion_id": "x"}) is None


def test_the_sink_only_inserts_and_the_reason_is_derived_when_read(chdb_client, database: str) -> None:
    """The worker writes outage rows as they are (excluded_reason ''); an exclusion recorded before or after
    names them when they are read."""
    from processors.clickhouse_sink import ClickHouseSink

    insert_exclusions(chdb_client, database, [excl(0, 5, 15, UTIL, note="storm")])
    rows = [outage("CP-1", 1, 10, None, outage_id="a").row(), outage("CP-1", 2, 30, 40, outage_id="b").row(),
            outage("CP-2", 1, 10, 20, outage_id="c").row()]
    asyncio.run(ClickHouseSink(chdb_client, database).write({PORT_OUTAGES.name: rows}, token="t"))
    stored = chdb_client.query(f"SELECT DISTINCT excluded_reason FROM `{database}`.port_outages").result_rows
    assert stored == [("",)]
    assert {k: v[0] for k, v in derived(chdb_client, database).items()} == {"a": "utility_interruption", "b": "", "c": ""}
    insert_exclusions(chdb_client, database, [excl(2, 35, 36, MAINT)])  # recorded after the rows: names b now
    assert derived(chdb_client, database)["b"][0] == "scheduled_maintenance"
