"""The models of schemas/ and the tables the migrations create agree column for column."""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime, timezone
from enum import Enum

import pytest

from schemas import ddl
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.migrations import LATEST_VERSION
from schemas.records import (
    AttemptKind,
    ChargeAttempt,
    EnergySource,
    FaultEvent,
    FaultEventKind,
    FrameRow,
    OutageCause,
    PortOutage,
    Session,
    StatusChange,
)
from schemas.tables import ALL_TABLES, CHARGE_ATTEMPTS, CONNECTOR_STATUS, FAULT_EVENTS, FRAMES, PORT_OUTAGES, SESSIONS
from schemas.topics import ALL_TOPICS, FRAMES as FRAMES_TOPIC

MODEL_OF_TABLE = {SESSIONS.name: Session, FAULT_EVENTS.name: FaultEvent, CONNECTOR_STATUS.name: StatusChange, FRAMES.name: FrameRow,
                  PORT_OUTAGES.name: PortOutage, CHARGE_ATTEMPTS.name: ChargeAttempt}


def clickhouse_types_for(annotation: object) -> set[str]:
    """Which ClickHouse column types a Python annotation may be stored in."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return {f"Nullable({t})" for t in clickhouse_types_for(inner)}
    if typing.get_origin(annotation) is list:
        return {f"Array({t})" for t in clickhouse_types_for(args[0])}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {"LowCardinality(String)"}
    return {
        str: {"String", "LowCardinality(String)"},
        bool: {"Bool"},
        int: {"UInt8", "UInt32", "UInt64", "Int32", "Int64"},
        float: {"Float64"},
        datetime: {"DateTime64(3, 'UTC')"},
    }[annotation]


def test_every_table_has_a_model() -> None:
    assert {t.name for t in ALL_TABLES} == set(MODEL_OF_TABLE)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_model_matches_the_migrated_table(chdb_client, database: str, table) -> None:
    described = chdb_client.query(f"DESCRIBE TABLE `{database}`.`{table.name}`").result_rows
    columns = [(row[0], row[1]) for row in described]
    model = MODEL_OF_TABLE[table.name]
    assert [name for name, _ in columns] == list(model.model_fields)
    for name, ch_type in columns:
        allowed = clickhouse_types_for(model.model_fields[name].annotation)
        assert ch_type in allowed, f"{table.name}.{name}: table has {ch_type}, model allows {allowed}"


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
}


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
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
