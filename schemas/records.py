"""Rows of the ClickHouse tables, declared once: each model's fields are its table's columns, in order, each with
its column facts (:mod:`schemas.columns`: the type a Python type does not settle, the comment, the migration that
added it, its codec). :mod:`schemas.tables` builds the tables from these models; sessions and fault events are
also the JSON records on ``ocpp.sessions.v1`` and ``ocpp.faults.v1``, exclusions those on ``ocpp.exclusions.v1``,
meter keys those on ``ocpp.meter_keys.v1``.

To add a column: add the field here with ``Col(since=N)`` (and a default, so records written before it still
read), then ``Migration(N, "...", (AddColumns(TABLE),))`` in :mod:`schemas.migrations`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from schemas.base import Record
from schemas.columns import Col, LowCardinality, UInt8, UInt32, UInt64
from schemas.migration_numbers import CODECS_AND_RETENTION, EXCLUSION_AUDIT, ID_TOKEN_TYPE_SINCE, METER_KEYS, SIGNED_SINCE

Flags = list[LowCardinality]
"""A row's data-quality flags (:class:`schemas.flags.Flag`, and the gateway's ``schema...`` flags)."""

class EnergySource(StrEnum):
    """Where ``energy_wh`` came from (DESIGN.md, Processors / Energy)."""

    METER_STOP = "meter_stop"
    TRANSACTION_DATA = "transaction_data"
    METER_VALUES = "meter_values"
    NONE = "none"


class ClosedBy(StrEnum):
    """What closed a session (SESSIONS.md): its stop, or a guess the stop may amend (a later revision)."""

    STOP_TRANSACTION = "stop_transaction"  # its StopTransaction / TransactionEvent Ended
    TIMEOUT = "timeout"  # open past the session age limit
    NEXT_TRANSACTION = "next_transaction"  # a newer start on its connector
    AVAILABLE = "available"  # its connector went Available


class FaultEventKind(StrEnum):
    """Whether a fault event opens or closes a fault on a connector."""

    BEGAN = "began"
    CLEARED = "cleared"


class Session(Record):
    """One charging session (an OCPP transaction), emitted when it closes and again, as a higher
    ``revision`` with a newer ``version``, when something arrives that amends it (its real stop after
    a close on a guess, late samples, a conflicting second stop): SESSIONS.md.

    ``session_id`` tells apart sessions that share a transaction id (chargers reuse ids); all
    revisions of one session keep its ``received_at`` (the first emission's) and carry what the
    revision before said (``previous_energy_wh`` / ``previous_duration_s``) so aggregates add the
    difference. ``flags`` names every data-quality decision (:class:`schemas.flags.Flag`).
    """

    charge_point_id: LowCardinality
    connector_id: Annotated[UInt32 | None, Col("from StartTransaction or MeterValues; NULL if unknown")]
    transaction_id: Annotated[str, Col("String so OCPP 2.0.1 ids fit")]
    id_tag: str
    started_at: Annotated[datetime | None, Col("StartTransaction.timestamp (charger clock)")]
    stopped_at: Annotated[datetime | None, Col("StopTransaction.timestamp (charger clock)")]
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: Annotated[float | None, Col("NULL when it cannot be known")]
    energy_source: Annotated[EnergySource, Col("meter_stop | transaction_data | meter_values | none")]
    stop_reason: Annotated[LowCardinality, Col("StopTransaction.reason, spec default Local")]
    stop_status: Annotated[LowCardinality, Col("status the connector went to from Charging; empty if none seen")]
    stop_error_code: LowCardinality
    stop_status_at: datetime | None
    duration_s: float | None
    peak_power_w: float | None
    soc_start_pct: float | None
    soc_end_pct: float | None
    sample_count: Annotated[UInt32, Col("meter samples seen for the session")]
    closed_by: Annotated[ClosedBy, Col("stop_transaction | timeout | next_transaction | available")]
    flags: Annotated[Flags, Col("one short code per data-quality decision")] = Field(default_factory=list)
    received_at: Annotated[datetime, Col("gateway clock of the frame that closed the session")]
    version: UInt64
    revision: Annotated[UInt32, Col("0 for the first emission; n for the n-th re-emission (amended)", since=2)] = 0
    session_id: Annotated[str, Col("charge point + transaction id + opening frame: tells reused transaction ids apart",
                                   since=3)] = ""
    previous_energy_wh: Annotated[float | None, Col("energy_wh of the revision this one replaces", since=3)] = None
    previous_duration_s: Annotated[float | None, Col("duration_s of the revision this one replaces", since=3)] = None
    ocpp_version: Annotated[LowCardinality, Col("ocpp1.6 | ocpp2.0.1 (the protocol of the frame that opened it); '' "
                                                "before migration 4", since=4)] = "ocpp1.6"
    charging_s: Annotated[float | None, Col("time the connector was Charging during the session", since=5)] = None
    suspended_ev_s: Annotated[float | None, Col("time in SuspendedEV (the car paused or was full)", since=5)] = None
    suspended_evse_s: Annotated[float | None, Col("time in SuspendedEVSE (the charger withheld power)", since=5)] = None
    blocked_after_stop_s: Annotated[float | None, Col(
        "from the stop until the connector was Available again; NULL until known (a later revision)", since=5)] = None
    id_token_type: Annotated[LowCardinality, Col(
        "how the driver identified: 2.0.1 idToken.type; 1.6 NoAuthorization for an empty idTag, else ''",
        since=ID_TOKEN_TYPE_SINCE)] = ""
    # Signed meter values (issue 25; SIGNED_METER_VALUES.md): the signed data as sent, the verdict (a
    # signed_meter.model.SignatureStatus value), the signed energy and where it came from, the deciding key's fingerprint.
    signed_start: Annotated[str, Col("the signed meter value (OCMF / Alfen) of the transaction's Begin, as sent; '' if "
                                     "none", since=SIGNED_SINCE)] = ""
    signed_stop: Annotated[str, Col("the signed meter value of the transaction's End, as sent; '' if none",
                                    since=SIGNED_SINCE)] = ""
    # DEFAULT 'unsigned': rows written before the column was added had no signed values.
    signature_status: Annotated[LowCardinality, Col(
        "verified | verified_with_frame_key | invalid | key_unknown | unsigned | unparsable | unsupported",
        since=SIGNED_SINCE, default="'unsigned'")] = "unsigned"
    signed_energy_wh: Annotated[float | None, Col("End - Begin of the same signed register; NULL if not both",
                                                  since=SIGNED_SINCE)] = None
    signed_energy_register: Annotated[str, Col("the OBIS id signed_energy_wh was taken from", since=SIGNED_SINCE)] = ""
    signed_meter_serial: Annotated[str, Col("the meter serial the signed values name; '' if none or several",
                                            since=SIGNED_SINCE)] = ""
    signature_key: Annotated[str, Col("fingerprint of the public key that decided the verdict; '' if none",
                                      since=SIGNED_SINCE)] = ""


class FaultEvent(Record):
    """A fault beginning or clearing on a connector; self-contained, for alerting.

    ``connector_id`` 0 is the whole charge point. ``duration_s`` and ``began_at`` are set on
    the ``cleared`` event, which carries the ``error_code`` (and vendor code, info) of the fault
    it ends; its ``status`` is the one that ended it.
    """

    event_id: Annotated[str, Col("connection id / frame seq of the StatusNotification")]
    charge_point_id: LowCardinality
    connector_id: UInt32
    event: Annotated[FaultEventKind, Col("began | cleared")]
    occurred_at: Annotated[datetime, Col("charger clock")]
    received_at: Annotated[datetime, Col("gateway clock")]
    status: LowCardinality
    error_code: LowCardinality
    info: str
    vendor_id: str
    vendor_error_code: str
    transaction_id: Annotated[str | None, Col("open transaction on that connector")]
    began_at: Annotated[datetime | None, Col("on cleared: when the fault began")]
    duration_s: Annotated[float | None, Col("on cleared: how long it lasted")]
    flags: Flags = Field(default_factory=list)
    ocpp_version: Annotated[LowCardinality, Col("ocpp1.6 | ocpp2.0.1; '' before migration 4", since=4)] = "ocpp1.6"


class StatusChange(Record):
    """One StatusNotification: the connector status timeline."""

    event_id: str
    charge_point_id: LowCardinality
    connector_id: UInt32
    status: LowCardinality
    previous_status: LowCardinality
    error_code: LowCardinality
    info: str
    vendor_id: str
    vendor_error_code: str
    # T64 before ZSTD: times sorted per connector (bench/frames_size.py, BENCHMARKS.md).
    occurred_at: Annotated[datetime, Col("charger clock", codec="T64, ZSTD(1)", codec_since=CODECS_AND_RETENTION)]
    received_at: Annotated[datetime, Col("gateway clock", codec="T64, ZSTD(1)", codec_since=CODECS_AND_RETENTION)]
    flags: Flags = Field(default_factory=list)


class FrameRow(Record):
    """The raw frame log for audit and replay (one row per envelope).

    Codecs (migration 7; the table's default ZSTD(1) where a column names none), measured on 559k frames of a
    simulated fleet (BENCHMARKS.md, Frames table size): 23.97 -> 10.9 bytes per frame. raw (nearly all the bytes):
    ZSTD(1) 9.6 B/row against LZ4's 18.5; ZSTD(6) and (9) save another 0.3-1.4 B but cost 1.4x-1.8x its insert
    CPU in the embedded engine (the worker's own CPU). Times: Delta (sorted by charger, then time); seq:
    DoubleDelta (steps of 1 per connection).
    """

    charge_point_id: LowCardinality
    received_at: Annotated[datetime, Col("gateway clock", codec="Delta(8), ZSTD(1)", codec_since=CODECS_AND_RETENTION)]
    direction: Annotated[LowCardinality, Col("in = charger to backend, out = backend to charger")]
    message_type: Annotated[UInt8 | None, Col("2 CALL, 3 CALLRESULT, 4 CALLERROR; NULL if unparseable")]
    action: LowCardinality
    message_id: Annotated[str, Col(codec="ZSTD(3)", codec_since=CODECS_AND_RETENTION)]
    raw: Annotated[str, Col("the frame exactly as on the wire")]
    ocpp_version: LowCardinality
    gateway_id: LowCardinality
    connection_id: Annotated[str, Col(codec="ZSTD(3)", codec_since=CODECS_AND_RETENTION)]
    seq: Annotated[UInt64, Col(codec="DoubleDelta, ZSTD(1)", codec_since=CODECS_AND_RETENTION)]
    error: Annotated[str, Col("why the gateway could not parse or validate it")]
    flags: Flags = Field(default_factory=list)


class ChargerDay(Record):
    """Per charger and day: sessions, energy, charging time, faults, fault time (``charger_daily``, written by the
    materialized views of :mod:`schemas.tables`, never by the worker). Rows of one key add up: query with
    ``sum() GROUP BY``."""

    day: Annotated[date, Col("session start (gateway day if the charger clock is off); fault clear or begin")]
    charge_point_id: LowCardinality
    sessions: UInt64
    energy_wh: Annotated[float, Col("sessions whose energy is unknown add 0")]
    charging_s: float
    faults: Annotated[UInt64, Col("faults that began")]
    fault_s: Annotated[float, Col("duration of faults that cleared")]


class OutageCause(StrEnum):
    """Why a port is out of service (KPIS.md, Outages). Station causes come from connector 0."""

    OFFLINE = "offline"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"
    STATION_FAULTED = "station_faulted"
    STATION_UNAVAILABLE = "station_unavailable"


class ExclusionReason(StrEnum):
    """EV-ChART's excluded-outage reasons (23 CFR 680.116(b)); the export writes :data:`EV_CHART_CODES`."""

    UTILITY_INTERRUPTION = "utility_interruption"
    VEHICLE_CAUSED = "vehicle_caused"
    SCHEDULED_MAINTENANCE = "scheduled_maintenance"
    VANDALISM = "vandalism"
    NATURAL_DISASTER = "natural_disaster"
    OUTSIDE_OPERATING_HOURS = "outside_operating_hours"


EV_CHART_CODES: dict[ExclusionReason, int] = {
    ExclusionReason.UTILITY_INTERRUPTION: 1,
    ExclusionReason.VEHICLE_CAUSED: 2,
    ExclusionReason.SCHEDULED_MAINTENANCE: 3,
    ExclusionReason.VANDALISM: 4,
    ExclusionReason.NATURAL_DISASTER: 5,
    ExclusionReason.OUTSIDE_OPERATING_HOURS: 6,
}
"""EV-ChART module 4 ``excluded_outage_reason`` (an integer 1-6): the reasons in the order 23 CFR 680.116(b)
lists them (utility service interruption, vehicle-caused, scheduled maintenance, vandalism, natural
disasters, hours outside the station's hours of operation)."""


class AttemptKind(StrEnum):
    """What a charge attempt was (KPIS.md, Attempts)."""

    START_TRANSACTION = "start_transaction"
    AUTHORIZE_WITHOUT_START = "authorize_without_start"
    PLUGIN_WITHOUT_START = "plugin_without_start"


class PortOutage(Record):
    """A port out of service, one row per outage; re-emitted with a newer ``version`` when it ends
    (``ended_at`` / ``duration_s`` NULL while open). ``excluded_reason`` is written '' since migration 6:
    the reason is derived at read time (``port_outages_with_exclusions``, KPIS.md Exclusions)."""

    charge_point_id: LowCardinality
    connector_id: Annotated[UInt32, Col("the port (>= 1)")]
    outage_id: Annotated[str, Col("charge point + port + start: stable across replays")]
    started_at: Annotated[datetime, Col("gateway clock of the frame or connection event that began it")]
    ended_at: Annotated[datetime | None, Col("NULL while open")]
    duration_s: Annotated[float | None, Col("NULL while open")]
    cause: Annotated[OutageCause, Col(
        "offline | faulted | unavailable | station_faulted | station_unavailable (the first cause)")]
    error_code: Annotated[LowCardinality, Col(
        "the fault's errorCode (OCPP 1.6) or Component/Variable (2.0.1); '' if none")]
    vendor_error_code: str
    excluded_reason: Annotated[LowCardinality, Col(
        "'' since migration 6: read port_outages_with_exclusions (derived at read time)")]
    version: UInt64


class OutageExclusion(Record):
    """An operator's exclusion: outage minutes of the port (``connector_id`` 0: every port) inside
    ``[from_at, to_at)`` do not count against uptime. The same JSON is the event on
    ``ocpp.exclusions.v1`` (written by ``ocpp-pipeline outages exclude``) and the row the worker sinks.

    Audit: ``recorded_by`` (``--by``, else the OS user), ``reference`` (the operator's ticket or evidence),
    ``forced`` (recorded with ``--force``: the bounds checks were skipped)."""

    exclusion_id: Annotated[str, Col("content hash: recording the same exclusion twice is one row")]
    charge_point_id: LowCardinality
    connector_id: Annotated[UInt32, Col("the port; 0 = every port of the charger")]
    from_at: datetime
    to_at: datetime
    reason: Annotated[ExclusionReason, Col("utility_interruption | vehicle_caused | scheduled_maintenance | vandalism | "
                                           "natural_disaster | outside_operating_hours")]
    note: str
    recorded_at: datetime
    recorded_by: Annotated[str, Col("who recorded it (outages exclude --by, else the OS user)", since=EXCLUSION_AUDIT)]
    reference: Annotated[str, Col("the operator's reference (ticket, evidence)", since=EXCLUSION_AUDIT)]
    forced: Annotated[bool, Col("recorded with --force: the bounds checks were skipped", since=EXCLUSION_AUDIT)]


class ChargeAttempt(Record):
    """A driver's attempt to charge (KPIS.md, Attempts); a transaction's follows its session's revisions."""

    charge_point_id: LowCardinality
    connector_id: Annotated[UInt32, Col("0 when unknown (an Authorize names no connector)")]
    attempt_id: Annotated[str, Col("the session id for a transaction; else charge point + first frame")]
    started_at: Annotated[datetime, Col(
        "gateway clock: the earliest of its Authorize, its plug-in (Preparing), its start")]
    kind: Annotated[AttemptKind, Col("start_transaction | authorize_without_start | plugin_without_start")]
    transaction_id: Annotated[str, Col("'' if none")]
    id_tag: str
    delivered: Annotated[bool, Col("the session delivered energy > 0 or reported Charging")]
    ended_ok: Annotated[bool, Col("delivered, stopped Local / Remote / EVDisconnected, not into Faulted")]
    failure: Annotated[LowCardinality, Col("short code; '' when ended_ok")]
    start_delay_s: Annotated[float | None, Col("first Charging - started_at")]
    version: UInt64
    ocpp_version: LowCardinality = "ocpp1.6"


class MeterKeyAction(StrEnum):
    """What an operator did to a meter key (``ocpp-pipeline keys add`` / ``keys import`` / ``keys remove``)."""

    ADD = "add"
    REMOVE = "remove"


class MeterKeyEvent(Record):
    """An operator's change to the meter key registry (issue 25, SIGNED_METER_VALUES.md): the same JSON is the event on
    ``ocpp.meter_keys.v1`` (written by ``ocpp-pipeline keys``) and the row the worker sinks into ``meter_keys``.

    Keys belong to a charge point and, when given, one connector (``connector_id`` NULL: every connector); never to
    a meter serial (serials repeat across meters). ``curve`` and ``fingerprint`` are those of the decoded key, so the
    table can be read without decoding; ``public_key`` is kept as the operator gave it. Folding the events of a charge
    point in ``at`` order gives its registered keys (``signed_meter.registry.registry_of``)."""

    charge_point_id: LowCardinality
    connector_id: Annotated[UInt32 | None, Col("the connector the meter measures; NULL: every connector")]
    public_key: Annotated[str, Col("as the operator gave it (label, transparency data): DER hex/base64 or a SEC1 point")]
    curve: Annotated[LowCardinality, Col("the decoded key's curve (secp256r1, brainpoolP256r1, ...)")]
    fingerprint: Annotated[str, Col("first 16 hex digits of the SHA-256 of the DER key (sessions.signature_key)")]
    meter_serial: Annotated[str, Col("the meter serial on the label; informative, never a lookup key; '' if none")]
    action: Annotated[MeterKeyAction, Col("add | remove")]
    author: Annotated[str, Col("who registered or removed it (keys --author)")]
    reference: Annotated[str, Col("the operator's reference (ticket, delivery note, label photo)")]
    at: Annotated[datetime, Col("when the CLI recorded it (UTC)")]
