"""Each table is declared once, by its record model: the DDL, the columns the worker inserts, the record and the JSON
on a topic all come from it, and the table the migrations create has exactly those columns and types."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.clickhouse_sink import COLUMNS
from schemas import ddl
from schemas.columns import Col, ColumnTypeError, UInt32, clickhouse_type, columns_of
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.errors import ContractError
from schemas.migrations import LATEST_VERSION, RETAINED_TABLES
from schemas.records import (
    AttemptKind,
    ChargeAttempt,
    ChargerDay,
    EnergySource,
    ExclusionReason,
    FaultEvent,
    FaultEventKind,
    FrameRow,
    MeterKeyAction,
    MeterKeyEvent,
    OutageCause,
    OutageExclusion,
    PortOutage,
    Session,
    StatusChange,
)
from schemas.storable import TS_MAX, TS_MIN, row_coercer
from schemas.tables import ALL_TABLES, CHARGE_ATTEMPTS, CONNECTOR_STATUS, FAULT_EVENTS, FRAMES, PORT_OUTAGES, SESSIONS, Table, table
from schemas.topics import ALL_TOPICS, FRAMES as FRAMES_TOPIC

MODEL_OF_TABLE = {SESSIONS.name: Session, FAULT_EVENTS.name: FaultEvent, CONNECTOR_STATUS.name: StatusChange, FRAMES.name: FrameRow,
                  PORT_OUTAGES.name: PortOutage, CHARGE_ATTEMPTS.name: ChargeAttempt, "outage_exclusions": OutageExclusion,
                  "charger_daily": ChargerDay, "meter_keys": MeterKeyEvent}


def test_every_table_is_made_of_its_record() -> None:
    assert {t.name: t.record for t in RETAINED_TABLES} == MODEL_OF_TABLE
    for t in RETAINED_TABLES:
        assert t.record is not None
        assert t.column_names == tuple(t.record.model_fields)


@pytest.mark.parametrize("table", RETAINED_TABLES, ids=lambda t: t.name)
def test_the_migrated_table_has_the_records_columns(chdb_client, database: str, table: Table) -> None:
    """Name, type, comment and codec of every column, as the engine reports them after every migration ran."""
    described = chdb_client.query(
        "SELECT name, type, comment, compression_codec FROM system.columns WHERE database = %(db)s AND table = %(t)s "
        "ORDER BY position", parameters={"db": database, "t": table.name}).result_rows
    assert [tuple(row) for row in described] == [
        (c.name, c.type, c.comment, f"CODEC({c.codec})" if c.codec else "") for c in table.columns]


def test_the_worker_inserts_the_records_columns_in_their_order() -> None:
    for t in ALL_TABLES:
        assert t.record is not None
        assert COLUMNS[t.name] == list(t.record.model_fields)


def test_a_field_added_to_a_record_is_a_column_of_the_ddl_of_the_insert_and_of_the_topic_json() -> None:
    later = LATEST_VERSION + 1

    class TariffSession(Session):
        tariff_id: Annotated[str, Col("the tariff the driver paid", since=later)] = ""
        charger_power_w: Annotated[UInt32 | None, Col(since=later)] = None

    grown = table(TariffSession, name="sessions", order_by=SESSIONS.order_by, codec="ZSTD(1)", codec_since=7,
                  partition_by=SESSIONS.partition_by, version_column="version")
    assert grown.column_names == SESSIONS.column_names + ("tariff_id", "charger_power_w")
    (alter,) = ddl.add_columns(grown, "ocpp", ddl.Embedded(), version=later)
    assert ("ADD COLUMN IF NOT EXISTS `tariff_id` String COMMENT 'the tariff the driver paid' CODEC(ZSTD(1)), "
            "ADD COLUMN IF NOT EXISTS `charger_power_w` Nullable(UInt32) CODEC(ZSTD(1))") in alter
    (created,) = ddl.create_table(grown, "ocpp", ddl.Embedded(), at_version=later)
    assert "`tariff_id` String" in created and "`tariff_id`" not in ddl.create_table(grown, "ocpp", ddl.Embedded(),
                                                                                    at_version=later - 1)[0]
    record = TariffSession.model_validate(SAMPLES[SESSIONS.name].model_dump() | {"tariff_id": "T1"})
    assert list(json.loads(record.model_dump_json())) == list(grown.column_names)
    assert record.row()[-2:] == ["T1", None]


@pytest.mark.parametrize(("annotation", "expected"), [
    (str, "String"), (float, "Float64"), (bool, "Bool"), (datetime, "DateTime64(3, 'UTC')"), (date, "Date"),
    (UInt32, "UInt32"), (UInt32 | None, "Nullable(UInt32)"), (list[str], "Array(String)"), (EnergySource, "LowCardinality(String)"),
    (Annotated[float | None, Col("x")], "Nullable(Float64)"), (tuple[str, ...], "Array(String)"),
])
def test_a_fields_python_type_says_its_column_type(annotation: Any, expected: str) -> None:
    assert clickhouse_type(annotation) == expected


@pytest.mark.parametrize("annotation", [int, int | None, dict[str, str], str | int | None, bytes,
                                        Annotated[int | None, __import__("schemas.columns").columns.Storage("UInt32")]])
def test_a_field_without_a_column_type_is_refused_when_its_table_is_declared(annotation: Any) -> None:
    with pytest.raises(ColumnTypeError):
        clickhouse_type(annotation, where="T.x")


def test_a_table_whose_columns_are_not_its_records_fields_is_refused() -> None:
    with pytest.raises(ContractError, match="not the fields of Session"):
        Table("sessions", SESSIONS.columns[:-1], order_by=SESSIONS.order_by, record=Session)
    with pytest.raises(ContractError, match="sort key"):
        table(Session, name="sessions", order_by=("charge_point_id", "no_such_column"))


# --- any record: its row, its JSON and its columns agree ---------------------------------------------------------


def _value_of(column_type: str) -> st.SearchStrategy[Any]:
    """Values a column of ``column_type`` holds (what the worker writes after schemas.storable)."""
    if column_type.startswith("Nullable("):
        return st.none() | _value_of(column_type[9:-1])
    if column_type.startswith("Array("):
        return st.lists(_value_of(column_type[6:-1]), max_size=3)
    if column_type.startswith("LowCardinality("):
        return _value_of(column_type[15:-1])
    return {
        "String": st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
        "UInt8": st.integers(0, 255), "UInt32": st.integers(0, 2**32 - 1), "UInt64": st.integers(0, 2**64 - 1),
        "Float64": st.floats(allow_nan=False, allow_infinity=False), "Bool": st.booleans(),
        "Date": st.dates(date(1970, 1, 1), date(2149, 6, 6)),
        "DateTime64(3, 'UTC')": st.datetimes(TS_MIN.replace(tzinfo=None), TS_MAX.replace(tzinfo=None),
                                              timezones=st.just(timezone.utc)).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
    }[column_type]


def _records(t: Table) -> st.SearchStrategy[Any]:
    assert t.record is not None
    record = t.record
    fields = {c.name: _value_of(c.type) for c in t.columns}
    enums = {name: st.sampled_from(list(f.annotation)) for name, f in record.model_fields.items()  # type: ignore[arg-type]
             if isinstance(f.annotation, type) and issubclass(f.annotation, str) and f.annotation is not str}
    return st.fixed_dictionaries(fields | enums).map(record.model_validate)


@pytest.mark.parametrize("t", RETAINED_TABLES, ids=lambda t: t.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_records_row_json_and_columns_agree(t: Table, data: st.DataObject) -> None:
    record = data.draw(_records(t))
    row = record.row()
    assert len(row) == len(t.columns)
    assert row_coercer(t)(row) is row  # a value the column holds needs nothing
    text = record.model_dump_json()
    assert list(json.loads(text)) == list(t.column_names)
    assert type(record).model_validate_json(text) == record


UTC = timezone.utc
T0 = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
T1 = datetime(2024, 3, 1, 13, 30, 5, 456000, tzinfo=UTC)

SAMPLES = {
    SESSIONS.name: Session(
        charge_point_id="CP-1", connector_id=2, transaction_id="568161113", id_tag="TAG1",
        started_at=T0, stopped_at=T1, meter_start_wh=1000.0, meter_stop_wh=4329600.0, energy_wh=4328600.0,
        energy_source=EnergySource.METER_STOP, stop_reason="Local", stop_status="Finishing", stop_error_code="NoError",
        stop_status_at=T1, duration_s=5405.333, peak_power_w=22000.0, soc_start_pct=None, soc_end_pct=80.0,
        sample_count=12, closed_by="stop_transaction", flags=["meter_values_after_stop"], received_at=T1, version=3,
    ),
    FAULT_EVENTS.name: FaultEvent(
        event_id="c1/17", charge_point_id="CP-1", connector_id=0, event=FaultEventKind.CLEARED, occurred_at=T1,
        received_at=T1, status="Available", error_code="NoError", info="", vendor_id="ABB", vendor_error_code="E12",
        transaction_id=None, began_at=T0, duration_s=5405.333, flags=[],
    ),
    CONNECTOR_STATUS.name: StatusChange(
        event_id="c1/16", charge_point_id="CP-1", connector_id=1, status="Faulted", previous_status="Charging",
        error_code="GroundFailure", info="RCD tripped", vendor_id="", vendor_error_code="", occurred_at=T0,
        received_at=T0, flags=["non_enum_error_code"],
    ),
    FRAMES.name: FrameRow(
        charge_point_id="CP-1", received_at=T0, direction="in", message_type=None, action="", message_id="",
        raw='[2,"1","Heartbeat",{}', ocpp_version="ocpp1.6", gateway_id="gw-0", connection_id="c1", seq=0,
        error="unterminated JSON", flags=[],
    ),
    PORT_OUTAGES.name: PortOutage(
        charge_point_id="CP-1", connector_id=2, outage_id="0f3c9a1b2d4e5f60", started_at=T0, ended_at=T1,
        duration_s=5405.333, cause=OutageCause.STATION_FAULTED, error_code="GroundFailure", vendor_error_code="E12",
        excluded_reason="utility_interruption", version=7,
    ),
    CHARGE_ATTEMPTS.name: ChargeAttempt(
        charge_point_id="CP-1", connector_id=1, attempt_id="a1b2c3d4e5f60718", started_at=T0,
        kind=AttemptKind.START_TRANSACTION, transaction_id="568161113", id_tag="TAG1", delivered=True, ended_ok=False,
        failure="stop_emergency_stop", start_delay_s=12.5, version=2, ocpp_version="ocpp2.0.1",
    ),
    "outage_exclusions": OutageExclusion(
        exclusion_id="9a8b7c6d5e4f3a2b", charge_point_id="CP-1", connector_id=0, from_at=T0, to_at=T1,
        reason=ExclusionReason.SCHEDULED_MAINTENANCE, note="firmware", recorded_at=T1, recorded_by="ops",
        reference="TICKET-9", forced=False,
    ),
    "meter_keys": MeterKeyEvent(
        charge_point_id="CP-1", connector_id=None, public_key="3059301306072A8648CE3D020106082A8648CE3D030107034200",
        curve="secp256r1", fingerprint="0123456789abcdef", meter_serial="", action=MeterKeyAction.REMOVE, author="ops",
        reference="TICKET-10", at=T1,
    ),
    "charger_daily": ChargerDay(day=date(2024, 3, 1), charge_point_id="CP-1", sessions=3, energy_wh=12000.5,
                                charging_s=5400.0, faults=1, fault_s=90.0),
}


@pytest.mark.parametrize("table", RETAINED_TABLES, ids=lambda t: t.name)
def test_row_round_trip(chdb_client, database: str, table) -> None:
    model = MODEL_OF_TABLE[table.name]
    sample = SAMPLES[table.name]
    chdb_client.insert(table.name, [sample.row()], column_names=list(model.model_fields), database=database)
    result = chdb_client.query(f"SELECT * FROM `{database}`.`{table.name}` FINAL")
    (row,) = result.named_results()
    assert model.model_validate(row) == sample


def test_session_json_is_the_row() -> None:
    record = json.loads(SAMPLES[SESSIONS.name].model_dump_json())
    assert list(record) == list(Session.model_fields)
    assert record["energy_source"] == "meter_stop"
    assert Session.model_validate_json(SAMPLES[SESSIONS.name].model_dump_json()) == SAMPLES[SESSIONS.name]


def test_envelope_round_trip_keeps_the_frame_exactly() -> None:
    raw = '[2, "42", "StopTransaction", {"transactionId": 5, "meterStop": 12.5, "timestamp": "2024-01-01T00:00:00Z"}]'
    env = FrameEnvelope(
        charge_point_id="CP/1", direction=Direction.IN, gateway_ts_ms=1_700_000_000_123, frame=raw,
        ocpp_version="ocpp1.6", gateway_id="gw-0", connection_id="c1", seq=3, message_type=MessageType.CALL,
        action="StopTransaction", message_id="42", flags=("meter_stop_not_integer",),
    )
    decoded = FrameEnvelope.model_validate_json(env.model_dump_json())
    assert decoded == env
    assert decoded.frame == raw
    assert json.loads(env.model_dump_json())["direction"] == "in"
    assert env.key() == b"CP/1"


def test_topic_configs_never_ask_more_insync_replicas_than_replicas() -> None:
    for spec in ALL_TOPICS:
        assert spec.topic_config(1)["min.insync.replicas"] == "1"
        assert spec.topic_config(3)["min.insync.replicas"] == "2"
    assert FRAMES_TOPIC.with_partitions(6).partitions == 6
    assert FRAMES_TOPIC.with_partitions(None) is FRAMES_TOPIC


def test_cluster_ddl_is_replicated_and_distributed() -> None:
    dialect = ddl.Cluster(name="prod")
    for table in ALL_TABLES:
        local, distributed = ddl.create_table(table, "ocpp", dialect, at_version=LATEST_VERSION)
        assert f"`ocpp`.`{table.name}_local` ON CLUSTER 'prod'" in local
        assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'" in local
        assert "non_replicated_deduplication_window" not in local
        assert f"Distributed('prod', 'ocpp', '{table.name}_local', cityHash64(charge_point_id))" in distributed
        # Same columns as the embedded variant: both come from one definition.
        (embedded,) = ddl.create_table(table, "ocpp", ddl.Embedded(), at_version=LATEST_VERSION)
        assert embedded.split("(", 1)[1].split("ENGINE")[0] == local.split("(", 1)[1].split("ENGINE")[0]
