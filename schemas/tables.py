"""The ClickHouse tables as values.

A table is a name, typed columns, a sort key and a version column: every table is a
ReplacingMergeTree keyed so that replaying ``ocpp.frames.v1`` rewrites the same rows instead
of adding new ones (DESIGN.md, exactly-once in effect). DDL for the embedded engine and for a
cluster is rendered from these values by :mod:`schemas.ddl`; :mod:`schemas.migrations` says
when each column arrived (``Column.since``).
"""

from __future__ import annotations

from dataclasses import dataclass

TS = "DateTime64(3, 'UTC')"
NULLABLE_TS = f"Nullable({TS})"
LC = "LowCardinality(String)"
FLAGS = "Array(LowCardinality(String))"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str = ""
    since: int = 1  # the migration version that added the column


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    partition_by: str | None = None
    version_column: str | None = None  # ReplacingMergeTree(version); newest row wins
    shard_key: str = "cityHash64(charge_point_id)"
    comment: str = ""

    def columns_at(self, version: int) -> tuple[Column, ...]:
        """The columns the table had once migration ``version`` was applied."""
        return tuple(c for c in self.columns if c.since <= version)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


SESSIONS = Table(
    name="sessions",
    comment="One row per OCPP transaction; newest version wins.",
    columns=(
        Column("charge_point_id", LC),
        Column("connector_id", "Nullable(UInt32)", "from StartTransaction or MeterValues; NULL if unknown"),
        Column("transaction_id", "String", "String so OCPP 2.0.1 ids fit"),
        Column("id_tag", "String"),
        Column("started_at", NULLABLE_TS, "StartTransaction.timestamp (charger clock)"),
        Column("stopped_at", NULLABLE_TS, "StopTransaction.timestamp (charger clock)"),
        Column("meter_start_wh", "Nullable(Float64)"),
        Column("meter_stop_wh", "Nullable(Float64)"),
        Column("energy_wh", "Nullable(Float64)", "NULL when it cannot be known"),
        Column("energy_source", LC, "meter_stop | transaction_data | meter_values | none"),
        Column("stop_reason", LC, "StopTransaction.reason, spec default Local"),
        Column("stop_status", LC, "status the connector went to from Charging; empty if none seen"),
        Column("stop_error_code", LC),
        Column("stop_status_at", NULLABLE_TS),
        Column("duration_s", "Nullable(Float64)"),
        Column("peak_power_w", "Nullable(Float64)"),
        Column("soc_start_pct", "Nullable(Float64)"),
        Column("soc_end_pct", "Nullable(Float64)"),
        Column("sample_count", "UInt32", "meter samples seen for the session"),
        Column("closed_by", LC, "stop_transaction | timeout | next_transaction | available"),
        Column("flags", FLAGS, "one short code per data-quality decision"),
        Column("received_at", TS, "gateway clock of the frame that closed the session"),
        Column("version", "UInt64"),
    ),
    order_by=("charge_point_id", "transaction_id"),
    partition_by="toYYYYMM(received_at)",
    version_column="version",
)

FAULT_EVENTS = Table(
    name="fault_events",
    comment="A fault beginning or clearing on a connector (0 = whole charge point).",
    columns=(
        Column("event_id", "String", "connection id / frame seq of the StatusNotification"),
        Column("charge_point_id", LC),
        Column("connector_id", "UInt32"),
        Column("event", LC, "began | cleared"),
        Column("occurred_at", TS, "charger clock"),
        Column("received_at", TS, "gateway clock"),
        Column("status", LC),
        Column("error_code", LC),
        Column("info", "String"),
        Column("vendor_id", "String"),
        Column("vendor_error_code", "String"),
        Column("transaction_id", "Nullable(String)", "open transaction on that connector"),
        Column("began_at", NULLABLE_TS, "on cleared: when the fault began"),
        Column("duration_s", "Nullable(Float64)", "on cleared: how long it lasted"),
        Column("flags", FLAGS),
    ),
    order_by=("charge_point_id", "connector_id", "received_at", "event_id", "event"),
    partition_by="toYYYYMM(received_at)",
)

CONNECTOR_STATUS = Table(
    name="connector_status",
    comment="The status timeline: one row per StatusNotification.",
    columns=(
        Column("event_id", "String"),
        Column("charge_point_id", LC),
        Column("connector_id", "UInt32"),
        Column("status", LC),
        Column("previous_status", LC),
        Column("error_code", LC),
        Column("info", "String"),
        Column("vendor_id", "String"),
        Column("vendor_error_code", "String"),
        Column("occurred_at", TS, "charger clock"),
        Column("received_at", TS, "gateway clock"),
        Column("flags", FLAGS),
    ),
    order_by=("charge_point_id", "connector_id", "received_at", "event_id"),
    partition_by="toYYYYMM(received_at)",
)

FRAMES = Table(
    name="frames",
    comment="Every frame in both directions, exactly as received or sent.",
    columns=(
        Column("charge_point_id", LC),
        Column("received_at", TS, "gateway clock"),
        Column("direction", LC, "in = charger to backend, out = backend to charger"),
        Column("message_type", "Nullable(UInt8)", "2 CALL, 3 CALLRESULT, 4 CALLERROR; NULL if unparseable"),
        Column("action", LC),
        Column("message_id", "String"),
        Column("raw", "String", "the frame exactly as on the wire"),
        Column("ocpp_version", LC),
        Column("gateway_id", LC),
        Column("connection_id", "String"),
        Column("seq", "UInt64"),
        Column("error", "String", "why the gateway could not parse or validate it"),
        Column("flags", FLAGS),
    ),
    order_by=("charge_point_id", "received_at", "connection_id", "seq"),
    partition_by="toYYYYMM(received_at)",
)

ALL_TABLES: tuple[Table, ...] = (SESSIONS, FAULT_EVENTS, CONNECTOR_STATUS, FRAMES)
