"""Every value storable at the row boundary (schemas/storable.py): coercers per column type, rows
flagged when changed, and a property test that any row becomes insertable into the real tables (chDB)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.clickhouse_sink import COLUMNS
from schemas.flags import Flag
from schemas.storable import (
    TS_MAX,
    TS_MIN,
    VALUE_NOT_STORABLE,
    UnsupportedColumnType,
    column_coercer,
    row_coercer,
    storable_record,
    storable_row,
)
from schemas.tables import AGGREGATE_TABLES, ALL_TABLES, CONNECTOR_STATUS, FRAMES, SESSIONS, Column, Table

UTC = timezone.utc


def test_the_flag_is_the_processors_flag() -> None:
    assert VALUE_NOT_STORABLE == Flag.VALUE_NOT_STORABLE


@pytest.mark.parametrize(("type_name", "value", "expected"), [
    ("UInt32", 4294967296, 4294967295),
    ("UInt32", -1, 0),
    ("Nullable(UInt32)", 4294967296, None),
    ("Nullable(UInt32)", -5, None),
    ("UInt8", 300, 255),
    ("Nullable(UInt8)", 300, None),
    ("UInt64", 2**64, 2**64 - 1),
    ("Int64", -(2**70), -(2**63)),
    ("UInt32", None, 0),
    ("UInt32", 7.9, 7),
    ("UInt32", float("nan"), 0),
    ("UInt32", "12", 12),
    ("UInt32", "x", 0),
    ("Nullable(Float64)", float("inf"), None),
    ("Nullable(Float64)", float("nan"), None),
    ("Float64", float("-inf"), 0.0),
    ("Nullable(Float64)", 10**400, None),
    ("Float64", None, 0.0),
    ("String", "a\ud800b", "a\ufffdb"),
    ("LowCardinality(String)", "\udfff", "\ufffd"),
    ("Nullable(String)", "\ud83d", "\ufffd"),
    ("String", None, ""),
    ("String", 12, "12"),
    ("Array(LowCardinality(String))", ["ok", "\ud800"], ["ok", "\ufffd"]),
    ("Array(LowCardinality(String))", None, []),
    ("Array(LowCardinality(String))", "solo", ["solo"]),
    ("DateTime64(3, 'UTC')", datetime(9999, 12, 31, tzinfo=UTC), TS_MAX),
    ("DateTime64(3, 'UTC')", datetime(1, 1, 1, tzinfo=UTC), TS_MIN),
    ("Nullable(DateTime64(3, 'UTC'))", datetime(10, 1, 1, tzinfo=UTC), None),
    ("Nullable(DateTime64(3, 'UTC'))", datetime(2300, 1, 1), None),
    ("DateTime64(3, 'UTC')", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), TS_MIN),
    ("DateTime64(3, 'UTC')", datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), TS_MAX),
    ("DateTime64(3, 'UTC')", None, datetime(1970, 1, 1, tzinfo=UTC)),
    ("Date", date(1969, 12, 31), date(1970, 1, 1)),
    ("Date", date(2200, 1, 1), date(2149, 6, 6)),
    ("Date", datetime(2024, 5, 1, 12, tzinfo=UTC), date(2024, 5, 1)),
])
def test_a_value_out_of_its_columns_range_is_made_storable(type_name: str, value: object, expected: object) -> None:
    assert column_coercer(type_name)(value) == expected


@pytest.mark.parametrize(("type_name", "value"), [
    ("UInt32", 4294967295), ("Nullable(UInt32)", None), ("UInt64", 0), ("Float64", -1.5), ("Nullable(Float64)", 1e300),
    ("Float64", 10**20), ("String", "Grüße ✓ 😀"), ("LowCardinality(String)", Flag.TOMBSTONE), ("Nullable(String)", None),
    ("Array(LowCardinality(String))", ["a", Flag.CLOCK_SKEW]), ("DateTime64(3, 'UTC')", TS_MAX),
    ("DateTime64(3, 'UTC')", TS_MIN), ("Nullable(DateTime64(3, 'UTC'))", datetime(2024, 1, 1, tzinfo=UTC)),
    ("Date", date(2024, 1, 1)),
])
def test_a_storable_value_is_returned_itself(type_name: str, value: object) -> None:
    assert column_coercer(type_name)(value) is value


def test_an_unknown_column_type_is_refused_when_the_coercer_is_built() -> None:
    with pytest.raises(UnsupportedColumnType):
        column_coercer("Decimal(10, 2)")


def test_a_storable_row_is_the_same_object_and_a_fixed_one_a_flagged_copy() -> None:
    from tests.test_contracts import SAMPLES

    for table in ALL_TABLES:
        row = SAMPLES[table.name].row()
        assert storable_row(table, row) is row, table.name
    status = SAMPLES[CONNECTOR_STATUS.name]
    row = status.model_copy(update={"connector_id": 4294967296, "info": "\ud800"}).row()
    fixed = storable_row(CONNECTOR_STATUS, row)
    names = CONNECTOR_STATUS.column_names
    assert fixed is not row and row[names.index("connector_id")] == 4294967296  # the original is left alone
    assert fixed[names.index("connector_id")] == 4294967295 and fixed[names.index("info")] == "\ufffd"
    assert fixed[names.index("flags")] == [*status.flags, Flag.VALUE_NOT_STORABLE]
    assert storable_row(CONNECTOR_STATUS, fixed) is fixed  # idempotent: a fixed row needs nothing more


def test_a_record_becomes_publishable() -> None:
    from tests.test_contracts import SAMPLES

    session = SAMPLES[SESSIONS.name].model_copy(update={"id_tag": "\ud800", "energy_wh": math.inf, "meter_stop_wh": 1e30,
                                                        "started_at": datetime(9999, 12, 31, tzinfo=UTC)})
    with pytest.raises(ValueError):
        session.model_dump_json()  # what the worker once tried to publish
    record, row = storable_record(SESSIONS, session)
    assert record.row() == row
    published = json.loads(record.model_dump_json())
    assert published["energy_wh"] is None and published["meter_stop_wh"] == 1e30 and published["id_tag"] == "\ufffd"
    assert record.id_tag == "\ufffd" and record.started_at is None and Flag.VALUE_NOT_STORABLE in record.flags
    same = SAMPLES[SESSIONS.name]
    assert storable_record(SESSIONS, same)[0] is same


# --- any row becomes insertable into the real tables --------------------------------------------------------

_offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)))
_text = st.text(alphabet=st.one_of(
    st.characters(exclude_categories=()),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),  # lone surrogates, often
), max_size=12)
_datetimes = st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), _offsets))
_ints = st.one_of(st.integers(-(2**65), 2**65), st.integers(), st.sampled_from([2**32, 2**64, -1, 2**63]))
_floats = st.one_of(st.floats(), st.integers(-(10**400), 10**400))
_anything = st.one_of(st.none(), _ints, _floats, _text, _datetimes, st.dates(), st.booleans())


def _natural(type_name: str) -> st.SearchStrategy[object]:
    inner = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    if type_name.startswith("Array("):
        return st.one_of(st.lists(st.one_of(_text, _ints), max_size=4), st.none())
    if "Int" in inner:
        return _ints
    if inner.startswith("Float"):
        return _floats
    if inner.startswith("DateTime"):
        return _datetimes
    if inner == "Date":
        return st.one_of(st.dates(), _datetimes)
    return _text


def _rows(table: Table) -> st.SearchStrategy[list[list[object]]]:
    row = st.tuples(*(st.one_of(_natural(c.type), _anything) for c in table.columns)).map(list)
    return st.lists(row, min_size=1, max_size=3)


@pytest.mark.parametrize("table", ALL_TABLES + AGGREGATE_TABLES, ids=lambda t: t.name)
def test_any_row_becomes_insertable_into_the_real_table(chdb_client, database: str, table: Table) -> None:
    columns = COLUMNS.get(table.name, list(table.column_names))
    inserted = 0

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(_rows(table))
    def check(rows: list[list[object]]) -> None:
        nonlocal inserted
        storable = [storable_row(table, row) for row in rows]
        for row in storable:
            assert storable_row(table, row) is row  # nothing left to fix
        # The real driver and engine: raises if any value cannot be stored.
        chdb_client.insert(table.name, storable, column_names=columns, database=database,
                           settings={"insert_deduplication_token": f"example-{inserted}"})  # examples repeat
        inserted += len(storable)

    check()
    assert inserted > 0
    # What landed reads back (ReplacingMergeTree and SummingMergeTree fold rows with one key: no count).
    assert chdb_client.query(f"SELECT * FROM `{database}`.`{table.name}`").result_rows


def test_storable_frames_rows_keep_every_value_that_was_fine(chdb_client, database: str) -> None:
    """A fixed row changes only the values that needed it: the rest land as they were."""
    row = ["CP-\ud800", datetime(2025, 1, 1, tzinfo=UTC), "in", 2, "StatusNotification", "m1", '[2,"m1"]',
           "ocpp1.6", "gw", "conn", 2**64, "", []]
    fixed = storable_row(FRAMES, row)
    chdb_client.insert("frames", [fixed], column_names=COLUMNS["frames"], database=database)
    (back,) = chdb_client.query(f"SELECT charge_point_id, message_id, seq, flags FROM `{database}`.frames").result_rows
    assert back == ("CP-\ufffd", "m1", 2**64 - 1, [Flag.VALUE_NOT_STORABLE])


def test_the_coercers_are_built_once_per_table() -> None:
    assert row_coercer(SESSIONS) is row_coercer(SESSIONS)


_COLUMN_TYPES = sorted({c.type for t in ALL_TABLES + AGGREGATE_TABLES for c in t.columns})


@pytest.mark.parametrize("type_name", _COLUMN_TYPES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_fast_path_accepts_only_what_the_coercer_keeps(type_name: str, data: st.DataObject) -> None:
    """Rows are checked by one generated expression per table first; it must never wave through a
    value its column's coercer would change."""
    fine = row_coercer(Table("one", (Column("c", type_name),), order_by=()))._fine
    fine_ones = {"UInt32": st.integers(0, 2**32 - 1), "UInt64": st.integers(0, 2**64 - 1), "UInt8": st.integers(0, 255),
                 "Float64": st.floats(allow_nan=False, allow_infinity=False)}
    inner = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    value = data.draw(st.one_of(_natural(type_name), _anything, fine_ones.get(inner, st.nothing()),
                                st.datetimes(TS_MIN.replace(tzinfo=None), TS_MAX.replace(tzinfo=None), timezones=st.just(UTC))))
    try:
        accepted = fine([value])
    except (ValueError, TypeError, OverflowError):
        accepted = False
    if accepted:
        assert column_coercer(type_name)(value) is value
