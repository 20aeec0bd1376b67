"""The ClickHouse tables as values.

A table is a record model (:mod:`schemas.records`: its fields are the columns, with their types, comments, history
and codecs), a sort key and a version column: every event table is a ReplacingMergeTree keyed so that replaying
``ocpp.frames.v1`` rewrites the same rows instead of adding new ones (DESIGN.md, exactly-once in effect). Daily
aggregates are SummingMergeTree tables fed by materialized views (:class:`View`) from the insert stream of the
event tables. DDL for the embedded engine and for a cluster is rendered from these values by :mod:`schemas.ddl`;
:mod:`schemas.migrations` says what each migration did.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import Record
from schemas.columns import Column as Column
from schemas.columns import columns_of
from schemas.errors import ContractError
from schemas.exclusions import EVERY_PORT
from schemas.flags import Flag
from schemas.migration_numbers import CODECS_AND_RETENTION as CODECS_AND_RETENTION
from schemas.migration_numbers import EXCLUSION_AUDIT as EXCLUSION_AUDIT
from schemas.migration_numbers import ID_TOKEN_TYPE_SINCE as ID_TOKEN_TYPE_SINCE
from schemas.migration_numbers import METER_KEYS as METER_KEYS_SINCE
from schemas.records import (
    ChargeAttempt,
    ChargerDay,
    FaultEvent,
    FaultEventKind,
    FrameRow,
    MeterKeyEvent,
    OutageExclusion,
    PortOutage,
    Session,
    StatusChange,
)
from schemas.retention import TableClass


@dataclass(frozen=True)
class Table:
    """A ClickHouse table. Build the pipeline's with :func:`table` (its columns are its record's fields); ``columns``
    may be given by hand for a table without a record (a scratch table of a benchmark, a test)."""

    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    partition_by: str | None = None
    version_column: str | None = None  # ReplacingMergeTree(version); newest row wins
    shard_key: str = "cityHash64(charge_point_id)"
    comment: str = ""
    summing: bool = False  # SummingMergeTree: rows with the same key add up (daily aggregates)
    table_class: TableClass = TableClass.COMPLIANCE  # how long rows are kept (schemas.retention)
    ttl_time: str = "received_at"  # the row's time its retention counts from (an SQL expression)
    record: type[Record] | None = None  # the model of a row (and of the topic record): its fields are the columns

    def __post_init__(self) -> None:
        if self.record is not None and self.column_names != tuple(self.record.model_fields):
            raise ContractError(f"table {self.name}: its columns {self.column_names} are not the fields of "
                                f"{self.record.__name__} {tuple(self.record.model_fields)}")
        unknown = set(self.order_by) - set(self.column_names)
        if unknown:
            raise ContractError(f"table {self.name}: the sort key names no column {sorted(unknown)}")

    def columns_at(self, version: int) -> tuple[Column, ...]:
        """The columns the table had once migration ``version`` was applied."""
        return tuple(c for c in self.columns if c.since <= version)

    def order_by_at(self, version: int) -> tuple[str, ...]:
        """The sort key once migration ``version`` was applied: a key column arrives with its column
        (ClickHouse lets ``MODIFY ORDER BY`` append only columns added by the same ALTER)."""
        since = {c.name: c.since for c in self.columns}
        return tuple(name for name in self.order_by if since.get(name, 1) <= version)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def table(record: type[Record], *, name: str, order_by: tuple[str, ...], created: int = 1, codec: str = "",
          codec_since: int = 0, partition_by: str | None = None, version_column: str | None = None,
          comment: str = "", summing: bool = False, table_class: TableClass = TableClass.COMPLIANCE,
          ttl_time: str = "received_at") -> Table:
    """The table of ``record``: one column per field, in field order. ``created``: the migration that created the
    table (a field's ``Col(since=...)`` says when a later column came); ``codec`` (from migration ``codec_since``):
    the codec of every column that names none of its own."""
    return Table(name=name, columns=columns_of(record, since=created, codec=codec, codec_since=codec_since),
                 order_by=order_by, partition_by=partition_by, version_column=version_column, comment=comment,
                 summing=summing, table_class=table_class, ttl_time=ttl_time, record=record)


# Codecs (migration 7), measured on a simulated fleet (bench/frames_size.py, BENCHMARKS.md): ZSTD(1) on every column
# of the event tables is 15-30 % smaller than LZ4 and costs about as little to write; the alternatives it tried
# (Delta, DoubleDelta, T64, Gorilla, higher ZSTD levels) won a few percent on some columns at best.
EVENT_CODEC = "ZSTD(1)"

SESSIONS = table(
    Session,
    name="sessions",
    comment="One row per charging session (an OCPP transaction); newest version wins.",
    codec=EVENT_CODEC,
    codec_since=CODECS_AND_RETENTION,
    # session_id joined the key in migration 3: rows written before it have session_id ''.
    order_by=("charge_point_id", "transaction_id", "session_id"),
    partition_by="toYYYYMM(received_at)",
    version_column="version",
)

FAULT_EVENTS = table(
    FaultEvent,
    name="fault_events",
    comment="A fault beginning or clearing on a connector (0 = whole charge point).",
    codec=EVENT_CODEC,
    codec_since=CODECS_AND_RETENTION,
    order_by=("charge_point_id", "connector_id", "received_at", "event_id", "event"),
    partition_by="toYYYYMM(received_at)",
)

CONNECTOR_STATUS = table(
    StatusChange,
    name="connector_status",
    comment="The status timeline: one row per StatusNotification.",
    codec=EVENT_CODEC,
    codec_since=CODECS_AND_RETENTION,
    order_by=("charge_point_id", "connector_id", "received_at", "event_id"),
    partition_by="toYYYYMM(received_at)",
    table_class=TableClass.STATUS,
)

FRAMES = table(
    FrameRow,
    name="frames",
    comment="Every frame in both directions, exactly as received or sent.",
    codec=EVENT_CODEC,  # where a column names none (FrameRow says why)
    codec_since=CODECS_AND_RETENTION,
    order_by=("charge_point_id", "received_at", "connection_id", "seq"),
    partition_by="toYYYYMM(received_at)",
    table_class=TableClass.RAW,
)

CHARGER_DAILY = table(
    ChargerDay,
    name="charger_daily",
    comment="Per charger and day: sessions, energy, charging time, faults, fault time. Query with sum() GROUP BY.",
    created=2,
    order_by=("charge_point_id", "day"),
    partition_by="toYYYYMM(day)",
    summing=True,
    ttl_time="day",
)


# A session's day is its start's, unless the charger's clock is off (then the gateway's, when it closed).
_SKEWED = f"has(flags, '{Flag.CLOCK_SKEW.value}')"


@dataclass(frozen=True)
class View:
    """A materialized view: every block inserted into ``source`` is transformed by ``select``
    (``{source}`` stands for the source table) and inserted into ``target``. It only sees new
    inserts, so it is fed from append-only facts: first emissions of sessions, fault events."""

    name: str
    source: Table
    target: Table
    select: str


SESSIONS_DAILY_V2 = View(
    name="charger_daily_sessions_mv",
    source=SESSIONS,
    target=CHARGER_DAILY,
    # Migration 2 to 3: revisions were not counted, so an amended energy never reached the aggregates.
    select=(
        f"SELECT toDate(if(started_at IS NULL OR {_SKEWED}, received_at, started_at)) AS day, "
        "charge_point_id, toUInt64(1) AS sessions, ifNull(energy_wh, 0) AS energy_wh, "
        "ifNull(duration_s, 0) AS charging_s, toUInt64(0) AS faults, toFloat64(0) AS fault_s "
        "FROM {source} WHERE revision = 0"
    ),
)

SESSIONS_DAILY = View(
    name="charger_daily_sessions_v3_mv",
    source=SESSIONS,
    target=CHARGER_DAILY,
    # A session counts once (revision 0); a later revision adds the difference to what the one before
    # said (previous_energy_wh / previous_duration_s). All revisions keep the first emission's
    # received_at, so the day never moves.
    select=(
        f"SELECT toDate(if(started_at IS NULL OR {_SKEWED}, received_at, started_at)) AS day, "
        "charge_point_id, toUInt64(revision = 0) AS sessions, "
        "ifNull(energy_wh, 0) - ifNull(previous_energy_wh, 0) AS energy_wh, "
        "ifNull(duration_s, 0) - ifNull(previous_duration_s, 0) AS charging_s, toUInt64(0) AS faults, "
        "toFloat64(0) AS fault_s FROM {source}"
    ),
)

FAULTS_DAILY = View(
    name="charger_daily_faults_mv",
    source=FAULT_EVENTS,
    target=CHARGER_DAILY,
    select=(
        "SELECT toDate(received_at) AS day, charge_point_id, toUInt64(0) AS sessions, toFloat64(0) AS energy_wh, "
        f"toFloat64(0) AS charging_s, toUInt64(event = '{FaultEventKind.BEGAN.value}') AS faults, "
        f"if(event = '{FaultEventKind.CLEARED.value}', ifNull(duration_s, 0), 0) AS fault_s FROM {{source}}"
    ),
)

PORT_OUTAGES = table(
    PortOutage,
    name="port_outages",
    comment="A port (connector >= 1) out of service: its charger offline, it or the station Faulted or Unavailable. "
            "Newest version wins: an open outage (ended_at NULL) is re-emitted when it ends.",
    created=5,
    codec=EVENT_CODEC,
    codec_since=CODECS_AND_RETENTION,
    order_by=("charge_point_id", "connector_id", "outage_id"),
    partition_by="toYYYYMM(started_at)",
    version_column="version",
    # An outage counts from its end (from its start while it is open).
    ttl_time="ifNull(ended_at, started_at)",
)

OUTAGE_EXCLUSIONS = table(
    OutageExclusion,
    name="outage_exclusions",
    comment="Operator exclusions (ocpp-pipeline outages exclude -> ocpp.exclusions.v1 -> the worker): outage minutes "
            "inside one do not count against uptime.",
    created=5,
    order_by=("charge_point_id", "exclusion_id"),
    partition_by=None,
    version_column="recorded_at",
    ttl_time="to_at",
)

CHARGE_ATTEMPTS = table(
    ChargeAttempt,
    name="charge_attempts",
    comment="A driver's attempt to charge: a transaction, an Authorize not followed by a start, or a plug-in "
            "(Preparing) back to Available without one. Newest version wins (a transaction's attempt follows its "
            "session's revisions).",
    created=5,
    codec=EVENT_CODEC,
    codec_since=CODECS_AND_RETENTION,
    order_by=("charge_point_id", "attempt_id"),
    partition_by="toYYYYMM(started_at)",
    version_column="version",
    ttl_time="started_at",
)

ALL_TABLES: tuple[Table, ...] = (SESSIONS, FAULT_EVENTS, CONNECTOR_STATUS, FRAMES, PORT_OUTAGES, CHARGE_ATTEMPTS)
"""The tables the worker writes from the frames topic (a replay rebuilds exactly these)."""
METER_KEYS = table(
    MeterKeyEvent,
    name="meter_keys",
    comment="Meter public keys registered and removed (ocpp-pipeline keys -> ocpp.meter_keys.v1 -> the worker), one row "
            "per event; folded in `at` order they are the key registry `verify` uses.",
    created=METER_KEYS_SINCE,
    # One row per event: the same event written twice (a replay, two workers) is one row after merges.
    order_by=("charge_point_id", "fingerprint", "at", "action"),
    partition_by=None,
    # Never expired, whatever the retention settings: a key verifies its meter's readings for years.
    table_class=TableClass.REGISTRY,
    ttl_time="at",
)

OPERATOR_TABLES: tuple[Table, ...] = (OUTAGE_EXCLUSIONS, METER_KEYS)
"""Tables of operator events (their own topics, written by the CLI, sunk by the worker); a replay rebuilds them from
those topics."""
AGGREGATE_TABLES: tuple[Table, ...] = (CHARGER_DAILY,)
VIEWS: tuple[View, ...] = (SESSIONS_DAILY, FAULTS_DAILY)


@dataclass(frozen=True)
class ReadView:
    """A plain (not materialized) view: a query with a name, evaluated whenever it is read. ``select`` names
    the pipeline's tables as ``{db}.<table>`` (their public names: the Distributed tables on a cluster)."""

    name: str
    select: str
    comment: str = ""


# KPIS.md, Exclusions, the one rule: an outage's exclusion is the first, ordered by from_at then exclusion_id,
# that covers its port (its connector, or 0) and overlaps it (from_at < ended_at, started_at < to_at; an open
# outage overlaps every exclusion that ends after it began). One scan of each table: the outages (newest
# version) joined by charger to that charger's exclusions as one sorted array. GLOBAL: on a cluster the
# exclusions are gathered once on the node that runs the query, not per shard.
_FIRST_EXCLUSION = (
    f"arrayFirst(w -> (w.4 = {EVERY_PORT} OR w.4 = o.connector_id) AND w.2 < ifNull(o.ended_at, toDateTime64('2299-12-31', 3, 'UTC')) "
    "AND o.started_at < w.3, x.windows)"
)
PORT_OUTAGES_WITH_EXCLUSIONS = ReadView(
    name="port_outages_with_exclusions",
    comment="port_outages (newest version of each) with excluded_reason derived at read time from outage_exclusions",
    select=(
        "SELECT charge_point_id, connector_id, outage_id, started_at, ended_at, duration_s, cause, error_code, "
        "vendor_error_code, toLowCardinality(hit.5) AS excluded_reason, hit.1 AS exclusion_id, hit.6 AS excluded_note, "
        "version FROM ("
        f"SELECT o.*, {_FIRST_EXCLUSION} AS hit "
        "FROM (SELECT * FROM {db}.port_outages FINAL) AS o "
        "GLOBAL LEFT JOIN ("
        "SELECT charge_point_id, arraySort(w -> (w.2, w.1), groupArray((exclusion_id, from_at, to_at, connector_id, "
        "toString(reason), note))) AS windows FROM {db}.outage_exclusions FINAL GROUP BY charge_point_id"
        ") AS x ON x.charge_point_id = o.charge_point_id)"
    ),
)
READ_VIEWS: tuple[ReadView, ...] = (PORT_OUTAGES_WITH_EXCLUSIONS,)
