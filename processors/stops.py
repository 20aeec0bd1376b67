"""How a session ends: its stop (OCPP 1.6 StopTransaction, 6.47; 2.0.1 TransactionEvent Ended), whatever id it
carries. Tracker functions of one :class:`ChargePoint` (SESSIONS.md, *Stops*):

- a stop names its transaction: the session open with that id (on that connector when it names one; the
  likeliest by :mod:`processors.transaction_identity` otherwise), or one already emitted that it amends (a late
  stop of a session closed on a guess: ``late_stop``; a second, different stop: ``duplicate_stop_conflict``);
  the same stop resent changes nothing;
- a stop without a usable id (-1, 0) is matched only when the status timeline leaves no doubt; a stop of a
  transaction never seen started is a session of its own (``stop_without_start``);
- 1.6 stops carry no connectorId: the connector is the start's, or its MeterValues', or the one the status
  timeline shows stopping (``connector_inferred``);
- a stopped session waits up to the status window for its connector's move out of Charging, and is emitted at
  once when that is known and meterStop settles its energy.
"""

from __future__ import annotations

from processors import emission, transaction_identity
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.inputs import TransactionStopped
from processors.samples import add_readings
from processors.signed_samples import add_values
from processors.state import LeftCharging, SessionState, StopInfo
from processors.transaction_identity import closed_with, open_with
from processors.vocabulary import IN_TRANSACTION, SUSPENDED, Status
from schemas.flags import Flag
from schemas.records import ClosedBy

_STILL_CHARGING = IN_TRANSACTION - SUSPENDED  # a connector in these has not stopped, whatever it left before


def on_stopped(cp: ChargePoint, item: TransactionStopped) -> list[Event]:
    state = cp.state
    cp.saw_time(item.gw_ms, item.stopped_ms, item.flags)
    tx = state.aliases.get(item.transaction_id, item.transaction_id) if item.transaction_id else None
    if tx is None:
        return _on_stop_without_id(cp, item)
    open_ones = open_with(state, tx, item.connector_id)
    session = open_ones[0] if open_ones else None
    closed = closed_with(state, tx, item.connector_id)
    if any(s.stop is not None and s.stop.fingerprint == item.fingerprint for s in (*open_ones, *closed)):
        return []  # the same stop resent after a reconnect: already counted
    # A 2.0.1 Ended whose seqNo its transaction already passed is a resend, whatever was rebuilt in it: the
    # first stands (flagged seq_no_repeated when the number came), it is no second, different stop.
    resent = item.event_id == cp.resent_event
    if closed and (session is None or session.started_after(item.stopped_ms)):
        # No open session with that id, or the open one started after this stop: the stop belongs to
        # a session already emitted (a late stop beside a reused id).
        owner = _owner(closed, item.stopped_ms)
        return [] if resent and owner.stop is not None else _stop_after_close(cp, owner, item)
    if session is not None and session.stop is not None:
        if item.fingerprint != session.stop.fingerprint and not resent:
            session.flag(Flag.DUPLICATE_STOP_CONFLICT)  # a second, different stop (steve #1293): the first stands
        return []
    extra: list[str] = []
    if transaction_identity.ambiguous(open_ones, item.connector_id):
        extra.append(Flag.TRANSACTION_EVSE_AMBIGUOUS)
    if session is None:
        extra += [Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_UNKNOWN]
        session = _stop_only_session(cp, tx, item)
        hint = state.meter_hints.pop(tx, None)
        if hint is not None and item.connector_id is None:
            session.connector = hint
            extra.append(Flag.CONNECTOR_FROM_METER_VALUES)
    return _stop(cp, session, item, extra)


def _on_stop_without_id(cp: ChargePoint, item: TransactionStopped) -> list[Event]:
    """-1 / 0 (a Keba P30, starts made offline): matched only when the status timeline leaves no doubt
    which connector stopped and that connector has the one open session, which started before the stop's
    timestamp (both charger clock: a stop from before a transaction began cannot end it)."""
    state = cp.state
    remembered = [*state.sessions.values(), *state.closed.values()]
    if any(s.stop is not None and s.stop.fingerprint == item.fingerprint for s in remembered):
        return []  # the same stop resent
    connector = _stopping_connector(cp, item.gw_ms)
    open_ones = [s for s in state.sessions.values() if not s.stopped and not s.started_after(item.stopped_ms)]
    if connector is not None:
        matched = [s for s in open_ones if s.connector == connector]
    else:
        matched = open_ones if len(open_ones) == 1 and open_ones[0].connector is None else []
    if len(matched) == 1:
        return _stop(cp, matched[0], item, [Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION])
    session = _stop_only_session(cp, item.raw_transaction_id or "", item)
    extra: list[str] = [Flag.STOP_WITHOUT_START]
    if connector is not None and not any(s.connector == connector for s in state.sessions.values()):
        session.connector = connector
        extra.append(Flag.CONNECTOR_INFERRED)
    return _stop(cp, session, item, extra)


def _stopping_connector(cp: ChargePoint, now_ms: int) -> int | None:
    """The connector a stop without a usable id is about: the one that just left Charging (for a suspended
    state only while no other connector is in a transaction nobody knows: that one's stop is as likely), or
    else the only one in a transaction (open session, or a charging status). ``None`` when that is not one."""
    window = cp.config.status_window_ms
    connectors = cp.state.connectors
    left = [c for c, st in connectors.items()
            if c > 0 and st.left_charging is not None and now_ms - st.left_charging.gw_ms <= window
            and st.status not in _STILL_CHARGING]
    if len(left) == 1:
        own = connectors[left[0]]
        suspended = own.status in SUSPENDED or own.charging in SUSPENDED
        unknown = [c for c, st in connectors.items() if c > 0 and c != left[0] and st.tx is None
                   and (st.status in IN_TRANSACTION or st.charging in IN_TRANSACTION)]
        return None if suspended and unknown else left[0]
    if left:
        return None
    busy = {s.connector for s in cp.state.sessions.values() if not s.stopped}
    busy |= {c for c, st in connectors.items()
             if c > 0 and (st.status in IN_TRANSACTION or st.charging in IN_TRANSACTION)}
    return busy.pop() if len(busy) == 1 and None not in busy else None


def _inferred_connector(cp: ChargePoint, now_ms: int) -> int | None:
    """For a stop without a known start: the one connector charging, or that just stopped, with no session."""
    candidates = []
    for key, state in cp.state.connectors.items():
        left = state.left_charging
        recently_left = left is not None and now_ms - left.gw_ms <= cp.config.status_window_ms
        if key > 0 and (state.charging_now or recently_left) and not state.tx:
            candidates.append(key)
    return candidates[0] if len(candidates) == 1 else None


def _stop_only_session(cp: ChargePoint, tx: str, item: TransactionStopped) -> SessionState:
    """A session known only from its stop: its start register is what the stop reports of it (a 2.0.1 Ended's
    meter series), if anything."""
    session = SessionState(
        transaction_id=tx, session_id=cp.state.new_session_id(tx, item.gw_ms), connector=None, id_tag=item.id_tag,
        start_ms=None, start_gw_ms=None, meter_start=item.meter_start, start_fingerprint=None, protocol=cp.protocol,
    )
    cp.state.sessions[session.session_id] = session
    return session


def _stop(cp: ChargePoint, session: SessionState, item: TransactionStopped, extra: list[str]) -> list[Event]:
    session.flag(*extra)
    if session.connector is None and item.connector_id is not None:
        session.connector = item.connector_id  # 2.0.1: the Ended names its EVSE
    _apply_stop(cp, session, item)
    session.available_deadline = None
    connector = session.connector
    if connector is None:
        connector = _inferred_connector(cp, item.gw_ms)
        if connector is not None:
            session.connector = connector
            session.flag(Flag.CONNECTOR_INFERRED)
    if connector is not None:
        state = cp.state.connector(connector)
        left = state.left_charging
        if left and left.gw_ms >= (session.start_gw_ms or 0) and not state.charging_now:
            session.attach_status(left)
        elif not state.charging_now and not session.stop_status_known:
            session.flag(Flag.NO_CHARGING_STATUS)  # it never charged, or never said so
            session.stop_status_known = True
        if state.tx == session.session_id:
            state.tx = None
        if state.status is Status.AVAILABLE:
            session.blocked_ms = 0  # the car had left before the stop went out (ev-server #4082)
        else:
            state.blocked_by = session.session_id  # the bay is occupied until the connector is Available
        if state.status is Status.FAULTED:
            session.flag(Flag.FAULTED_AT_STOP)
        if session.protocol.charging_state_in_transaction and state.tx is None:
            state.charging = Status.NONE  # the chargingState belongs to its transaction: the next one starts unknown
    else:
        session.flag(Flag.CONNECTOR_UNKNOWN)
        session.stop_status_known = True
    session.emit_deadline = item.gw_ms + cp.config.status_window_ms
    if session.stop_status_known and session.energy_final:
        return emission.emit(cp, session, version_ms=item.gw_ms)
    return []


def _apply_stop(cp: ChargePoint, session: SessionState, item: TransactionStopped) -> None:
    if session.phase_ms is not None:
        session.set_phase(Status.NONE, item.gw_ms)  # the phase times end at the stop
    session.flag(*sorted(item.flags))
    session.clock_stop = cp.state.clock.lag_ms  # (clock skew is the row's to decide: processors.clock)
    if session.meter_start is None and item.meter_start is not None:
        session.meter_start = item.meter_start  # the Started said none (or was never seen): the Ended's series does
    if item.stopped_ms is not None and session.start_ms is not None and item.stopped_ms < session.start_ms:
        session.flag(Flag.STOP_BEFORE_START)
    if not session.id_tag:
        session.id_tag = item.id_tag
    add_readings(session, item.readings, transaction_data=True)
    add_values(cp, session, item.signed, connector=item.connector_id)  # its signed values (issue 25)
    session.stop = StopInfo(item.stopped_ms, item.gw_ms, item.meter_stop, item.has_meter_stop, item.reason,
                            item.fingerprint)
    session.closed_gw_ms = item.gw_ms


def _stop_after_close(cp: ChargePoint, session: SessionState, item: TransactionStopped) -> list[Event]:
    if session.stop is not None:
        if Flag.DUPLICATE_STOP_CONFLICT in session.flags:
            return []  # a conflict already said
        session.flag(Flag.DUPLICATE_STOP_CONFLICT)  # a second, different stop: the first stands
        return emission.reemit(cp, session, item.gw_ms)
    # Closed on a guess (Available, the next start, age): the real stop settles it (an offline backlog).
    guessed_by = session.emitted.closed_by if session.emitted is not None else None
    _apply_stop(cp, session, item)
    if not session.stop_status_known:
        left = _left_charging_of(cp, session)  # the move out of Charging came after the guess closed it
        if left is not None:
            session.attach_status(left)
    if guessed_by is ClosedBy.AVAILABLE:
        session.blocked_ms = 0  # Available came before the stop: the car had left
    elif session.connector is not None and session.blocked_ms is None:
        state = cp.state.connector(session.connector)
        if state.tx is None and state.status is not Status.AVAILABLE:
            state.blocked_by = session.session_id  # still occupied: the bay time ends at the next Available
    session.unflag(Flag.STOP_MISSING)
    session.flag(Flag.LATE_STOP)
    return emission.reemit(cp, session, item.gw_ms, closed_by=ClosedBy.STOP_TRANSACTION)


def _left_charging_of(cp: ChargePoint, session: SessionState) -> LeftCharging | None:
    """The connector's last move out of Charging, if it was this session's: after its start, and no other
    session began on the connector in between."""
    if session.connector is None:
        return None
    left = cp.state.connector(session.connector).left_charging
    began = session.start_gw_ms or 0
    if left is None or left.gw_ms < began:
        return None
    for other in (*cp.state.sessions.values(), *cp.state.closed.values()):
        if (other is not session and other.connector == session.connector and other.start_gw_ms is not None
                and began < other.start_gw_ms <= left.gw_ms):
            return None
    return left


def _owner(closed: list[SessionState], stopped_ms: int | None) -> SessionState:
    """Of the remembered sessions with one transaction id, the one a stop at ``stopped_ms`` ends: the newest
    that started before it."""
    if stopped_ms is not None:
        before = [s for s in closed if s.start_ms is not None and s.start_ms <= stopped_ms]
        if before:
            return before[-1]
    return closed[-1]
