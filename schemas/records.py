"""Rows of the ClickHouse tables; sessions and fault events are also the JSON records on
``ocpp.sessions.v1`` and ``ocpp.faults.v1``.

Field order is column order. ``tests/test_contracts.py`` checks every model against the
table the migrations create, column for column.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Record


class EnergySource(StrEnum):
    """Where ``energy_wh`` came from (DESIGN.md, Processors / Energy)."""

    METER_STOP = "meter_stop"
    TRANSACTION_DATA = "transaction_data"
    METER_VALUES = "meter_values"
    NONE = "none"


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
    difference. ``flags`` names every data-quality decision (:class:`processors.flags.Flag`).
    """

    charge_point_id: str
    connector_id: int | None
    transaction_id: str
    id_tag: str
    started_at: datetime | None
    stopped_at: datetime | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: float | None
    energy_source: EnergySource
    stop_reason: str
    stop_status: str
    stop_error_code: str
    stop_status_at: datetime | None
    duration_s: float | None
    peak_power_w: float | None
    soc_start_pct: float | None
    soc_end_pct: float | None
    sample_count: int
    closed_by: str
    flags: list[str] = Field(default_factory=list)
    received_at: datetime
    version: int
    revision: int = 0
    session_id: str = ""
    previous_energy_wh: float | None = None
    previous_duration_s: float | None = None
    ocpp_version: str = "ocpp1.6"
    charging_s: float | None = None
    suspended_ev_s: float | None = None
    suspended_evse_s: float | None = None
    blocked_after_stop_s: float | None = None
    id_token_type: str = ""


class FaultEvent(Record):
    """A fault beginning or clearing on a connector; self-contained, for alerting.

    ``connector_id`` 0 is the whole charge point. ``duration_s`` and ``began_at`` are set on
    the ``cleared`` event, which carries the ``error_code`` (and vendor code, info) of the fault
    it ends; its ``status`` is the one that ended it.
    """

    event_id: str
    charge_point_id: str
    connector_id: int
    event: FaultEventKind
    occurred_at: datetime
    received_at: datetime
    status: str
    error_code: str
    info: str
    vendor_id: str
    vendor_error_code: str
    transaction_id: str | None
    began_at: datetime | None
    duration_s: float | None
    flags: list[str] = Field(default_factory=list)
    ocpp_version: str = "ocpp1.6"


class StatusChange(Record):
    """One StatusNotification: the connector status timeline."""

    event_id: str
    charge_point_id: str
    connector_id: int
    status: str
    previous_status: str
    error_code: str
    info: str
    vendor_id: str
    vendor_error_code: str
    occurred_at: datetime
    received_at: datetime
    flags: list[str] = Field(default_factory=list)


class FrameRow(Record):
    """The raw frame log for audit and replay (one row per envelope)."""

    charge_point_id: str
    received_at: datetime
    direction: str
    message_type: int | None
    action: str
    message_id: str
    raw: str
    ocpp_version: str
    gateway_id: str
    connection_id: str
    seq: int
    error: str
    flags: list[str] = Field(default_factory=list)


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

    charge_point_id: str
    connector_id: int
    outage_id: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    cause: OutageCause
    error_code: str
    vendor_error_code: str
    excluded_reason: str
    version: int


class OutageExclusion(Record):
    """An operator's exclusion: outage minutes of the port (``connector_id`` 0: every port) inside
    ``[from_at, to_at)`` do not count against uptime. The same JSON is the event on
    ``ocpp.exclusions.v1`` (written by ``ocpp-pipeline outages exclude``) and the row the worker sinks.

    Audit: ``recorded_by`` (``--by``, else the OS user), ``reference`` (the operator's ticket or evidence),
    ``forced`` (recorded with ``--force``: the bounds checks were skipped)."""

    exclusion_id: str
    charge_point_id: str
    connector_id: int
    from_at: datetime
    to_at: datetime
    reason: ExclusionReason
    note: str
    recorded_at: datetime
    recorded_by: str
    reference: str
    forced: bool


class ChargeAttempt(Record):
    """A driver's attempt to charge (KPIS.md, Attempts); a transaction's follows its session's revisions."""

    charge_point_id: str
    connector_id: int
    attempt_id: str
    started_at: datetime
    kind: AttemptKind
    transaction_id: str
    id_tag: str
    delivered: bool
    ended_ok: bool
    failure: str
    start_delay_s: float | None
    version: int
    ocpp_version: str = "ocpp1.6"
