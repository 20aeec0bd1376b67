"""What a connector does: its statuses (OCPP 1.6 StatusNotification, 6.48; 2.0.1 StatusNotification and the
station's AvailabilityState) and, in 2.0.1, its transaction's chargingState. Tracker functions of one
:class:`ChargePoint` (SESSIONS.md, KPIS.md):

- every status is a row of the timeline (``connector_status``), with the one before it;
- faults begin and clear with them (1.6 :mod:`processors.faults`; 2.0.1 :mod:`processors.evse_faults`), outages
  follow them (:mod:`processors.outages`), a plug-in without a start is a charge attempt (:mod:`processors.attempts`);
- a session's phase times follow them (1.6 status; 2.0.1 chargingState);
- the move out of Charging is the session's ``stop_status``, before or after its stop (the seed article); an
  Available before the stop closes the session when no stop follows within the window, unless the transaction
  goes on; an Available after the stop ends its bay time (``blocked_after_stop_s``); Faulted soon after the stop
  says it stopped into a fault (``faulted_at_stop``).
"""

from __future__ import annotations

from processors import emission, evse_faults
from processors.charge_point import ChargePoint
from processors.events import Event, codes
from processors.faults import track_fault
from processors.inputs import ChargingStateChanged, StatusReported
from processors.outages import STATION
from processors.problems import naming_changed, station_problem
from processors.state import ConnectorState, LeftCharging
from processors.transaction_identity import open_with, stopped, transaction_on
from processors.vocabulary import IN_TRANSACTION, OUT_OF_CHARGING, Status
from schemas.base import ms_to_datetime
from schemas.flags import Flag
from schemas.records import StatusChange


def on_status(cp: ChargePoint, item: StatusReported) -> list[Event]:
    if item.connector_id < 0:
        return []  # no usable connectorId: the frame is kept, nothing to put on a timeline
    config = cp.config
    occurred_ms = item.occurred_ms
    flags: list[str] = sorted(item.flags)
    cp.saw_time(item.gw_ms, occurred_ms, item.flags)
    if occurred_ms is None:
        occurred_ms = item.gw_ms  # optional in OCPP 1.6: the gateway's time stands in
    elif item.gw_ms - occurred_ms > config.clock_skew_ms:
        flags.append(Flag.STALE_TIMESTAMP)  # e.g. a Faulted replayed after reboot (Alfen)
    elif occurred_ms - item.gw_ms > config.clock_skew_ms:
        flags.append(Flag.CLOCK_SKEW)
    state = cp.state.connector(item.connector_id)
    previous = state.status
    events: list[Event] = [
        StatusChange.trusted(
            event_id=item.event_id, charge_point_id=cp.id, connector_id=item.connector_id,
            status=item.status_text, previous_status=state.status_text, error_code=item.error_code, info=item.info,
            vendor_id=item.vendor_id, vendor_error_code=item.vendor_error_code,
            occurred_at=ms_to_datetime(occurred_ms), received_at=ms_to_datetime(item.gw_ms), flags=codes(flags),
        )
    ]
    open_tx = transaction_on(cp.state, item.connector_id)
    if item.has_error_code:
        state.fault, faults = track_fault(cp.id, state.fault, item, occurred_ms, codes(flags), open_tx,
                                          cp.protocol.version)
        events.extend(faults)
    else:
        events.extend(evse_faults.on_status(cp.id, state, item, occurred_ms, codes(flags), station_problem(cp),
                                            open_tx, cp.protocol.version))
        naming_changed(cp, item.connector_id, state)
    state.status, state.status_text = item.status, item.status_text
    if item.connector_id == STATION:
        events.extend(cp.outages.station_changed(item.gw_ms))
        return events
    port = item.connector_id
    events.extend(cp.outages.port_seen(port, item.gw_ms) if port not in cp.state.outages.ports
                  else cp.outages.refresh(port, item.gw_ms))
    held = cp.state.sessions.get(state.tx) if state.tx else None
    if held is not None and not held.stopped and not held.protocol.charging_state_in_transaction:
        held.set_phase(item.status, item.gw_ms)  # (a chargingState says it, where the protocol has one)
    events.extend(cp.attempts.status(port, item.status, item.gw_ms, item.event_id,
                                     free=state.tx is None and state.blocked_by is None,
                                     ocpp_version=cp.protocol.version))
    if item.status is Status.AVAILABLE and state.blocked_by is not None:
        events.extend(_bay_freed(cp, state, item.gw_ms))
    elif item.status is Status.FAULTED and state.blocked_by is not None:
        events.extend(_faulted_after_stop(cp, state.blocked_by, item.gw_ms))
    if previous is Status.CHARGING and item.status in OUT_OF_CHARGING:
        left = state.left_charging = LeftCharging(item.status, item.status_text, item.error_code, item.gw_ms,
                                                  occurred_ms)
        events.extend(_transition_after_stop(cp, item.connector_id, left, item.gw_ms))
    session = cp.state.sessions.get(state.tx) if state.tx else None
    if session is not None and not session.stopped:
        if item.status is Status.AVAILABLE and session.available_deadline is None:
            # Available may come before StopTransaction (ev-server #4082); wait the window for it.
            session.available_deadline = item.gw_ms + config.status_window_ms
            session.available_ms = item.occurred_ms
        elif (item.status in IN_TRANSACTION and session.available_deadline is not None
              and session.after_available(item.occurred_ms)):
            session.resume()  # Available, then Preparing / Charging: the transaction goes on
    return events


def on_charging_state(cp: ChargePoint, item: ChargingStateChanged) -> list[Event]:
    """2.0.1: the EV's state in the transaction; a move out of Charging is the session's transition."""
    cp.saw_time(item.gw_ms, item.occurred_ms, item.flags)
    session = None
    if item.transaction_id is not None:
        session = next(iter(open_with(cp.state, item.transaction_id, item.connector_id)), None)
        if session is None:
            return []  # a closed transaction's state (an Updated replayed after the Ended): nothing to do
    connector = item.connector_id if item.connector_id is not None else (session.connector if session else None)
    if connector is None:
        return []
    state = cp.state.connector(connector)
    previous, state.charging = state.charging, item.state
    held = session if session is not None else (cp.state.sessions.get(state.tx) if state.tx else None)
    if held is not None and not held.stopped:
        held.set_phase(item.state, item.gw_ms)
    events: list[Event] = []
    if previous is Status.CHARGING and item.state is not Status.CHARGING:
        occurred_ms = item.occurred_ms if item.occurred_ms is not None else item.gw_ms
        left = state.left_charging = LeftCharging(item.state, item.state_text, "", item.gw_ms, occurred_ms)
        events.extend(_transition_after_stop(cp, connector, left, item.gw_ms))
    if (session is not None and not session.stopped and item.state is Status.CHARGING and session.available_deadline
            and session.after_available(item.occurred_ms)):
        session.resume()
    return events


def _transition_after_stop(cp: ChargePoint, connector: int, left: LeftCharging, now_ms: int) -> list[Event]:
    """The connector left Charging: the status of a stopped session on it that waited for it."""
    attached = False
    for session in list(cp.state.sessions.values()):
        if session.connector == connector and session.stopped and not session.stop_status_known:
            session.attach_status(left)
            attached = True
            if session.energy_final:
                return emission.emit(cp, session, version_ms=now_ms)
    if attached:
        return []
    # A late stop that amended a session closed on a guess, its move out of Charging coming after it.
    late = stopped(cp.state, cp.state.connector(connector).blocked_by)
    if late is not None and late.emitted is not None and not late.stop_status_known:
        late.attach_status(left)
        return emission.amend(cp, late, now_ms)
    return []


def _bay_freed(cp: ChargePoint, state: ConnectorState, now_ms: int) -> list[Event]:
    """The connector is Available after a stop: the session's ``blocked_after_stop_s`` is known."""
    key, state.blocked_by = state.blocked_by, None
    session = stopped(cp.state, key)
    if session is None or session.blocked_ms is not None or session.stop is None:
        return []
    session.blocked_ms = max(0, now_ms - session.stop.gw_ms)
    return emission.amend(cp, session, now_ms)


def _faulted_after_stop(cp: ChargePoint, key: str, now_ms: int) -> list[Event]:
    """The connector went Faulted after a stop, before it was Available again: within the status window,
    the stop went into a fault (a 2.0.1 EVSE says so in its StatusNotification, after the Ended)."""
    session = stopped(cp.state, key)
    if session is None or session.stop is None or Flag.FAULTED_AT_STOP in session.flags:
        return []
    if now_ms - session.stop.gw_ms > cp.config.status_window_ms:
        return []
    session.flag(Flag.FAULTED_AT_STOP)
    return emission.amend(cp, session, now_ms)
