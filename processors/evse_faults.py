"""Faults of OCPP 2.0.1 EVSEs and stations, whose statuses carry no error code. Pure; KPIS.md and SESSIONS.md.

A 2.0.1 EVSE (connector 0: the station) is in fault while its status is Faulted (StatusNotification
``connectorStatus``, or a NotifyEvent on ``AvailabilityState``) or while a component problem is active on it
(NotifyEvent ``Problem`` / ``Fault`` / ``Tripped`` / ``Overload``). One fault covers both; it clears when neither
holds any more (a problem that ends while the EVSE still says Faulted leaves the fault open until it says
otherwise). Its code names the problem: ``Component/Variable`` of the problem active on it (a second problem
supersedes the first, as a second 1.6 errorCode does; when one of two ends, the fault goes on under the other's),
else of a station-level problem active when it went Faulted (an emergency stop takes every EVSE down: their faults
are the station's), else unknown (``''``, flag ``error_code_unknown``).

Stations send the NotifyEvent beside the StatusNotification, in either order. A Faulted status with no problem
to name it holds its ``began`` event up to :data:`NAMING_MS` (gateway time) for one: the event then goes out with
the code, or without it when the wait ends (:func:`announce`, driven by the correlator's deadlines, so replay and
live agree). Either way it says when the EVSE went Faulted. A fault that a problem names after its event went out
keeps that code for its ``cleared`` event and its outage.
"""

from __future__ import annotations

from processors.events import codes
from processors.faults import track_fault
from processors.inputs import NO_ERROR, ProblemReported, StatusReported
from processors.state import ConnectorState, OpenFault
from processors.vocabulary import Status
from schemas.base import ms_to_datetime
from schemas.flags import Flag
from schemas.records import FaultEvent, FaultEventKind

NAMING_MS = 5_000
"""How long a Faulted status waits for the NotifyEvent that names its problem before its fault goes out unnamed."""
PROBLEMS_KEPT = 8  # active problems of one EVSE: a station inventing components must not grow its state forever


def naming_deadline(fault: OpenFault) -> int:
    return fault.gw_ms + NAMING_MS


def on_status(charge_point_id: str, state: ConnectorState, report: StatusReported, occurred_ms: int, flags: list[str],
              station_code: str, transaction_id: str | None, ocpp_version: str) -> list[FaultEvent]:
    """A status of an EVSE whose status carries no error code (``state.status`` is still the previous one), with
    the flags of its status row. ``station_code``: the station-level problem active now, '' if none."""
    fault = state.fault
    if report.status is Status.FAULTED:
        if fault is not None:
            return []  # already in fault (a problem came first, or Faulted again)
        code = (state.problems[-1] if state.problems else "") or station_code
        state.fault = OpenFault(code, occurred_ms, report.gw_ms, transaction_id, "", "", Flag.STALE_TIMESTAMP in flags,
                                announced=bool(code), event_id=report.event_id)
        return [began(charge_point_id, report.connector_id, state.fault, ocpp_version)] if code else []
    if fault is None or state.problems:
        return []  # no fault, or a problem still holds it
    return _clear(charge_point_id, state, report, occurred_ms, flags, transaction_id, ocpp_version)


def on_problem(charge_point_id: str, state: ConnectorState, item: ProblemReported, occurred_ms: int,
               transaction_id: str | None, ocpp_version: str) -> list[FaultEvent]:
    """A component problem began (``item.active``) or ended on an EVSE (0: the station)."""
    fault = state.fault
    if item.code in state.problems:
        state.problems.remove(item.code)
    if item.active:
        state.problems.append(item.code)
        del state.problems[:-PROBLEMS_KEPT]
        if fault is not None and fault.error_code == item.code:
            return []  # still the same problem (a Delta repeated, an Alerting resent)
        if fault is not None and not fault.error_code:
            # The Faulted status's fault, named now: its event says the problem (or, already out, its clear will).
            fault.error_code, fault.vendor_error_code, fault.info = item.code, item.vendor_code, item.info
            if fault.announced:
                return []
            fault.announced = True
            return [began(charge_point_id, item.connector_id, fault, ocpp_version)]
        report = StatusReported(item.gw_ms, item.event_id, item.connector_id, Status.FAULTED, Status.FAULTED.value,
                                item.code, item.info, "", item.vendor_code, item.occurred_ms, item.flags)
        state.fault, events = track_fault(charge_point_id, fault, report, occurred_ms, sorted(item.flags), transaction_id,
                                          ocpp_version)
        return events
    if fault is None or fault.error_code != item.code:
        return []  # another component's problem, or one never seen begin
    if state.problems:  # another problem holds the EVSE: the fault goes on under its name
        report = StatusReported(item.gw_ms, item.event_id, item.connector_id, Status.FAULTED, Status.FAULTED.value,
                                state.problems[-1], "", "", "", item.occurred_ms, item.flags)
        state.fault, events = track_fault(charge_point_id, fault, report, occurred_ms, sorted(item.flags), transaction_id,
                                          ocpp_version)
        return events
    if state.status is Status.FAULTED:
        return []  # the EVSE still says Faulted: the fault goes on, named
    report = StatusReported(item.gw_ms, item.event_id, item.connector_id, state.status, state.status_text, NO_ERROR,
                            item.info, "", item.vendor_code, item.occurred_ms, item.flags)
    return _clear(charge_point_id, state, report, occurred_ms, sorted(item.flags), transaction_id, ocpp_version)


def name_by_station(charge_point_id: str, connector_id: int, state: ConnectorState, problem: ProblemReported,
                    ocpp_version: str) -> list[FaultEvent]:
    """A station-level problem began while the EVSE's fault waits for its name: it is the station's (an emergency
    stop takes every EVSE down)."""
    fault = state.fault
    if fault is None or fault.error_code or fault.announced:
        return []
    fault.error_code, fault.vendor_error_code, fault.info = problem.code, problem.vendor_code, problem.info
    fault.announced = True
    return [began(charge_point_id, connector_id, fault, ocpp_version)]


def announce(charge_point_id: str, connector_id: int, state: ConnectorState, ocpp_version: str) -> list[FaultEvent]:
    """The naming wait of the connector's fault is over: its ``began`` event goes out, code unknown."""
    fault = state.fault
    if fault is None or fault.announced:
        return []
    fault.announced = True
    return [began(charge_point_id, connector_id, fault, ocpp_version)]


def began(charge_point_id: str, connector_id: int, fault: OpenFault, ocpp_version: str) -> FaultEvent:
    flags = [Flag.ERROR_CODE_UNKNOWN] if not fault.error_code else []
    if fault.stale:
        flags.append(Flag.STALE_TIMESTAMP)
    return FaultEvent.trusted(
        event_id=fault.event_id, charge_point_id=charge_point_id, connector_id=connector_id, event=FaultEventKind.BEGAN,
        occurred_at=ms_to_datetime(fault.ms), received_at=ms_to_datetime(fault.gw_ms), status=Status.FAULTED.value,
        error_code=fault.error_code, info=fault.info, vendor_id="", vendor_error_code=fault.vendor_error_code,
        transaction_id=fault.tx, began_at=None, duration_s=None, flags=codes(flags),
        ocpp_version=ocpp_version,
    )


def _clear(charge_point_id: str, state: ConnectorState, report: StatusReported, occurred_ms: int, flags: list[str],
           transaction_id: str | None, ocpp_version: str) -> list[FaultEvent]:
    """The fault ends with ``report`` (a status other than Faulted, or the problem's end while the EVSE says
    something else): its ``began`` first, if it was still waiting for its name."""
    fault = state.fault
    assert fault is not None
    events = announce(charge_point_id, report.connector_id, state, ocpp_version)
    state.fault, cleared = track_fault(charge_point_id, fault, report, occurred_ms, flags, transaction_id, ocpp_version)
    return events + cleared
