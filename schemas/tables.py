"""The ClickHouse tables as values.

A table is a name, typed columns, a sort key and a version column: every event table is a
ReplacingMergeTree keyed so that replaying ``ocpp.frames.v1`` rewrites the same rows instead
of adding new ones (DESIGN.md, exactly-once in effect). Daily aggregates are SummingMergeTree
tables fed by materialized views (:class:`View`) from the insert stream of the event tables. DDL for the embedded engine and for a
cluster is rendered from these values by :mod:`schemas.ddl`; :mod:`schemas.migrations` says
when each column arrived (``Column.since``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from schemas.retention import TableClass

# Migration 7 (issue 26) gave columns codecs chosen by measurement (bench/frames_size.py, BENCHMARKS.md); one
# constant, so a renumbering at merge is one edit (schemas.migrations imports it).
CODECS_AND_RETENTION = 7

TS = "DateTime64(3, 'UTC')"
EXCLUSION_AUDIT = 6
"""The migration of the exclusion audit columns and the read-time exclusion view (issue #22); one constant so the
lead can renumber it at merge."""
NULLABLE_TS = f"Nullable({TS})"
LC = "LowCardinality(String)"
FLAGS = "Array(LowCardinality(String))"
ID_TOKEN_TYPE_SINCE = 8  # the migration that adds sessions.id_token_type (its number, in one place)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str = ""
    since: int = 1  # the migration version that added the column
    codec: str = ""  # CODEC(...) arguments; "" = the server's default (LZ4)
    codec_since: int = 0  # the migration that gave the column its codec (its ``since`` if it came with one)

    def codec_at(self, version: int) -> str:
        """The codec the column had once migration ``version`` was applied ("" = the default)."""
        return self.codec if self.codec and version >= max(self.codec_since, self.since) else ""


@dataclass(frozen=True)
class Table:
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


def coded(codec: str, columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """``columns``, each with ``codec`` from migration 7 on unless it names its own (a column added later gets it
    when it arrives)."""
    return tuple(c if c.codec else replace(c, codec=codec, codec_since=CODECS_AND_RETENTION) for c in columns)


# Codecs (migration 7), measured on a simulated fleet (bench/frames_size.py, BENCHMARKS.md): ZSTD(1) on every column
# of the event tables is 15-30 % smaller than LZ4 and costs about as little to write; the alternatives it tried
# (Delta, DoubleDelta, T64, Gorilla, higher ZSTD levels) won a few percent on some columns at best.
SESSIONS = Table(
    name="sessions",
    comment="One row per charging session (an OCPP transaction); newest version wins.",
    columns=coded("ZSTD(1)", (
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
        Column("revision", "UInt32", "0 for the first emission; n for the n-th re-emission (amended)", since=2),
        Column("session_id", "String", "charge point + transaction id + opening frame: tells reused transaction ids apart",
               since=3),
        Column("previous_energy_wh", "Nullable(Float64)", "energy_wh of the revision this one replaces", since=3),
        Column("previous_duration_s", "Nullable(Float64)", "duration_s of the revision this one replaces", since=3),
        Column("ocpp_version", LC, "ocpp1.6 | ocpp2.0.1 (the protocol of the frame that opened it); '' before migration 4",
               since=4),
        Column("charging_s", "Nullable(Float64)", "time the connector was Charging during the session", since=5),
        Column("suspended_ev_s", "Nullable(Float64)", "time in SuspendedEV (the car paused or was full)", since=5),
        Column("suspended_evse_s", "Nullable(Float64)", "time in SuspendedEVSE (the charger withheld power)", since=5),
        Column("blocked_after_stop_s", "Nullable(Float64)",
               "from the stop until the connector was Available again; NULL until known (a later revision)", since=5),
        Column("id_token_type", LC, "how the driver identified: 2.0.1 idToken.type; 1.6 NoAuthorization for an empty "
                                    "idTag, else ''", since=ID_TOKEN_TYPE_SINCE),
    )),
    # session_id joined the key in migration 3: rows written before it have session_id ''.
    order_by=("charge_point_id", "transaction_id", "session_id"),
    partition_by="toYYYYMM(received_at)",
    version_column="version",
)

FAULT_EVENTS = Table(
    name="fault_events",
    comment="A fault beginning or clearing on a connector (0 = whole charge point).",
    columns=coded("ZSTD(1)", (
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
        Column("ocpp_version", LC, "ocpp1.6 | ocpp2.0.1; '' before migration 4", since=4),
    )),
    order_by=("charge_point_id", "connector_id", "received_at", "event_id", "event"),
    partition_by="toYYYYMM(received_at)",
)

CONNECTOR_STATUS = Table(
    name="connector_status",
    comment="The status timeline: one row per StatusNotification.",
    columns=coded("ZSTD(1)", (
        Column("event_id", "String"),
        Column("charge_point_id", LC),
        Column("connector_id", "UInt32"),
        Column("status", LC),
        Column("previous_status", LC),
        Column("error_code", LC),
        Column("info", "String"),
        Column("vendor_id", "String"),
        Column("vendor_error_code", "String"),
        Column("occurred_at", TS, "charger clock", codec="T64, ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("received_at", TS, "gateway clock", codec="T64, ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("flags", FLAGS),
    )),
    order_by=("charge_point_id", "connector_id", "received_at", "event_id"),
    partition_by="toYYYYMM(received_at)",
    table_class=TableClass.STATUS,
)

# Frames codecs (migration 7), measured on 559k frames of a simulated fleet (BENCHMARKS.md, Frames table size): 23.97 ->
# 10.9 bytes per frame. raw (nearly all the bytes): ZSTD(1) 9.6 B/row against LZ4's 18.5; ZSTD(6) and (9) save
# another 0.3-1.4 B but cost 1.4x-1.8x its insert CPU in the embedded engine (the worker's own CPU). Times: Delta
# (sorted by charger, then time); seq: DoubleDelta (steps of 1 per connection); the rest ZSTD.
FRAMES = Table(
    name="frames",
    comment="Every frame in both directions, exactly as received or sent.",
    columns=(
        Column("charge_point_id", LC, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("received_at", TS, "gateway clock", codec="Delta(8), ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("direction", LC, "in = charger to backend, out = backend to charger", codec="ZSTD(1)",
               codec_since=CODECS_AND_RETENTION),
        Column("message_type", "Nullable(UInt8)", "2 CALL, 3 CALLRESULT, 4 CALLERROR; NULL if unparseable",
               codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("action", LC, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("message_id", "String", codec="ZSTD(3)", codec_since=CODECS_AND_RETENTION),
        Column("raw", "String", "the frame exactly as on the wire", codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("ocpp_version", LC, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("gateway_id", LC, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("connection_id", "String", codec="ZSTD(3)", codec_since=CODECS_AND_RETENTION),
        Column("seq", "UInt64", codec="DoubleDelta, ZSTD(1)", codec_since=CODECS_AND_RETENTION),
        Column("error", "String", "why the gateway could not parse or validate it", codec="ZSTD(1)",
               codec_since=CODECS_AND_RETENTION),
        Column("flags", FLAGS, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
    ),
    order_by=("charge_point_id", "received_at", "connection_id", "seq"),
    partition_by="toYYYYMM(received_at)",
    table_class=TableClass.RAW,
)

CHARGER_DAILY = Table(
    name="charger_daily",
    comment="Per charger and day: sessions, energy, charging time, faults, fault time. Query with sum() GROUP BY.",
    columns=(
        Column("day", "Date", "session start (gateway day if the charger clock is off); fault clear or begin", since=2),
        Column("charge_point_id", LC, since=2),
        Column("sessions", "UInt64", since=2),
        Column("energy_wh", "Float64", "sessions whose energy is unknown add 0", since=2),
        Column("charging_s", "Float64", since=2),
        Column("faults", "UInt64", "faults that began", since=2),
        Column("fault_s", "Float64", "duration of faults that cleared", since=2),
    ),
    order_by=("charge_point_id", "day"),
    partition_by="toYYYYMM(day)",
    summing=True,
    ttl_time="day",
)


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
        "SELECT toDate(if(started_at IS NULL OR has(flags, 'clock_skew'), received_at, started_at)) AS day, "
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
        "SELECT toDate(if(started_at IS NULL OR has(flags, 'clock_skew'), received_at, started_at)) AS day, "
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
        "toFloat64(0) AS charging_s, toUInt64(event = 'began') AS faults, "
        "if(event = 'cleared', ifNull(duration_s, 0), 0) AS fault_s FROM {source}"
    ),
)

PORT_OUTAGES = Table(
    name="port_outages",
    comment="A port (connector >= 1) out of service: its charger offline, it or the station Faulted or Unavailable. "
            "Newest version wins: an open outage (ended_at NULL) is re-emitted when it ends.",
    columns=coded("ZSTD(1)", (
        Column("charge_point_id", LC, since=5),
        Column("connector_id", "UInt32", "the port (>= 1)", since=5),
        Column("outage_id", "String", "charge point + port + start: stable across replays", since=5),
        Column("started_at", TS, "gateway clock of the frame or connection event that began it", since=5),
        Column("ended_at", NULLABLE_TS, "NULL while open", since=5),
        Column("duration_s", "Nullable(Float64)", "NULL while open", since=5),
        Column("cause", LC, "offline | faulted | unavailable | station_faulted | station_unavailable (the first cause)",
               since=5),
        Column("error_code", LC, "the fault's errorCode (OCPP 1.6) or Component/Variable (2.0.1); '' if none", since=5),
        Column("vendor_error_code", "String", since=5),
        Column("excluded_reason", LC, "'' since migration 6: read port_outages_with_exclusions (derived at read time)",
               since=5),
        Column("version", "UInt64", since=5),
    )),
    order_by=("charge_point_id", "connector_id", "outage_id"),
    partition_by="toYYYYMM(started_at)",
    version_column="version",
    # An outage counts from its end (from its start while it is open).
    ttl_time="ifNull(ended_at, started_at)",
)

OUTAGE_EXCLUSIONS = Table(
    name="outage_exclusions",
    comment="Operator exclusions (ocpp-pipeline outages exclude -> ocpp.exclusions.v1 -> the worker): outage minutes "
            "inside one do not count against uptime.",
    columns=(
        Column("exclusion_id", "String", "content hash: recording the same exclusion twice is one row", since=5),
        Column("charge_point_id", LC, since=5),
        Column("connector_id", "UInt32", "the port; 0 = every port of the charger", since=5),
        Column("from_at", TS, since=5),
        Column("to_at", TS, since=5),
        Column("reason", LC, "utility_interruption | vehicle_caused | scheduled_maintenance | vandalism | "
                             "natural_disaster | outside_operating_hours", since=5),
        Column("note", "String", since=5),
        Column("recorded_at", TS, since=5),
        Column("recorded_by", "String", "who recorded it (outages exclude --by, else the OS user)", since=EXCLUSION_AUDIT),
        Column("reference", "String", "the operator's reference (ticket, evidence)", since=EXCLUSION_AUDIT),
        Column("forced", "Bool", "recorded with --force: the bounds checks were skipped", since=EXCLUSION_AUDIT),
    ),
    order_by=("charge_point_id", "exclusion_id"),
    partition_by=None,
    version_column="recorded_at",
    ttl_time="to_at",
)

CHARGE_ATTEMPTS = Table(
    name="charge_attempts",
    comment="A driver's attempt to charge: a transaction, an Authorize not followed by a start, or a plug-in "
            "(Preparing) back to Available without one. Newest version wins (a transaction's attempt follows its "
            "session's revisions).",
    columns=coded("ZSTD(1)", (
        Column("charge_point_id", LC, since=5),
        Column("connector_id", "UInt32", "0 when unknown (an Authorize names no connector)", since=5),
        Column("attempt_id", "String", "the session id for a transaction; else charge point + first frame", since=5),
        Column("started_at", TS, "gateway clock: the earliest of its Authorize, its plug-in (Preparing), its start",
               since=5),
        Column("kind", LC, "start_transaction | authorize_without_start | plugin_without_start", since=5),
        Column("transaction_id", "String", "'' if none", since=5),
        Column("id_tag", "String", since=5),
        Column("delivered", "Bool", "the session delivered energy > 0 or reported Charging", since=5),
        Column("ended_ok", "Bool", "delivered, stopped Local / Remote / EVDisconnected, not into Faulted", since=5),
        Column("failure", LC, "short code; '' when ended_ok", since=5),
        Column("start_delay_s", "Nullable(Float64)", "first Charging - started_at", since=5),
        Column("version", "UInt64", since=5),
        Column("ocpp_version", LC, since=5),
    )),
    order_by=("charge_point_id", "attempt_id"),
    partition_by="toYYYYMM(started_at)",
    version_column="version",
    ttl_time="started_at",
)

ALL_TABLES: tuple[Table, ...] = (SESSIONS, FAULT_EVENTS, CONNECTOR_STATUS, FRAMES, PORT_OUTAGES, CHARGE_ATTEMPTS)
"""The tables the worker writes from the frames topic (a replay rebuilds exactly these)."""
OPERATOR_TABLES: tuple[Table, ...] = (OUTAGE_EXCLUSIONS,)
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
    "arrayFirst(w -> (w.4 = 0 OR w.4 = o.connector_id) AND w.2 < ifNull(o.ended_at, toDateTime64('2299-12-31', 3, 'UTC')) "
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
