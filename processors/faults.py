"""Faults on a connector from its status reports (DESIGN.md: a fault is a StatusNotification with
status Faulted or errorCode other than NoError; it clears when the connector reports NoError and
leaves Faulted). Pure: a connector's open fault and one report in, the new open fault and the fault
events out.
"""

from __future__ import annotations

from processors.inputs import NO_ERROR, StatusReported
from processors.state import OpenFault
from processors.vocabulary import Status
from schemas.base import ms_to_datetime
from schemas.flags import Flag, error_code_while
from schemas.records import FaultEvent, FaultEventKind


def track_fault(
    charge_point_id: str,
    open_fault: OpenFault | None,
    report: StatusReported,
    occurred_ms: int,
    flags: list[str],
    transaction_id: str | None,
    ocpp_version: str,
) -> tuple[OpenFault | None, list[FaultEvent]]:
    """``occurred_ms`` is the report's time (the gateway's when the charger gave none); ``flags`` those of
    the status row; ``transaction_id`` the transaction open on the connector, if any."""
    faulty = report.status is Status.FAULTED or report.error_code != NO_ERROR
    events: list[FaultEvent] = []
    if open_fault is not None and (not faulty or report.error_code != open_fault.error_code):
        duration_flags: list[str] = list(flags)
        if open_fault.stale:
            # Began with a replayed old timestamp (Alfen after reboot): the charger's clock would make
            # it days long; the gateway saw it open for this long.
            duration_s = max(0, report.gw_ms - open_fault.gw_ms) / 1000
            duration_flags += [Flag.DURATION_FROM_GATEWAY_CLOCK, Flag.BEGAN_STALE]
        elif occurred_ms >= open_fault.ms:
            duration_s = (occurred_ms - open_fault.ms) / 1000
        else:
            duration_s = max(0, report.gw_ms - open_fault.gw_ms) / 1000
            duration_flags.append(Flag.DURATION_FROM_GATEWAY_CLOCK)
        if faulty:
            duration_flags.append(Flag.SUPERSEDED_BY_OTHER_ERROR)
        # The cleared event names the fault it ends (alerting and durations group by it); the status that ended
        # it is in ``status`` and in the status timeline.
        events.append(_event(
            charge_point_id, report, ocpp_version, FaultEventKind.CLEARED, occurred_ms, began_ms=open_fault.ms,
            duration_s=duration_s, flags=duration_flags, transaction_id=open_fault.tx or transaction_id,
            error_code=open_fault.error_code, vendor_error_code=open_fault.vendor_error_code, info=open_fault.info,
        ))
        open_fault = None
    if faulty and open_fault is None:
        fault_flags: list[str] = list(flags)
        if report.status is not Status.FAULTED:
            # e.g. Finishing with an errorCode (an ABB quirk): a fault all the same, said so.
            fault_flags.append(error_code_while(report.status_text))
        open_fault = OpenFault(report.error_code, occurred_ms, report.gw_ms, transaction_id, report.vendor_error_code,
                               report.info, Flag.STALE_TIMESTAMP in flags)
        events.append(_event(
            charge_point_id, report, ocpp_version, FaultEventKind.BEGAN, occurred_ms, began_ms=None, duration_s=None,
            flags=fault_flags, transaction_id=transaction_id, error_code=report.error_code,
            vendor_error_code=report.vendor_error_code, info=report.info,
        ))
    return open_fault, events


def _event(charge_point_id: str, report: StatusReported, ocpp_version: str, kind: FaultEventKind, occurred_ms: int, *,
           began_ms: int | None, duration_s: float | None, flags: list[str], transaction_id: str | None,
           error_code: str, vendor_error_code: str, info: str) -> FaultEvent:
    """A fault event of ``report``'s connector: the fault's codes, the report's status and times."""
    return FaultEvent.trusted(
        event_id=report.event_id, charge_point_id=charge_point_id, connector_id=report.connector_id, event=kind,
        occurred_at=ms_to_datetime(occurred_ms), received_at=ms_to_datetime(report.gw_ms),
        began_at=ms_to_datetime(began_ms) if began_ms is not None else None, duration_s=duration_s,
        status=report.status_text, error_code=error_code, info=info, vendor_id=report.vendor_id,
        vendor_error_code=vendor_error_code, transaction_id=transaction_id, flags=sorted(set(flags)),
        ocpp_version=ocpp_version,
    )
