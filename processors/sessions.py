"""How a session begins and who it is: a transaction's start (OCPP 1.6 StartTransaction and the answer that names
it, 2.0.1 TransactionEvent Started), its driver (an idToken learnt later, an Authorize that is its driver's), its
2.0.1 event numbers (``seqNo``), and a reboot under it. Tracker functions of one :class:`ChargePoint`: a domain
input in, the rows it makes out (SESSIONS.md).

- A session opens on a start that names its transaction; a start resent after a lost answer is the same session
  (same content: ``duplicate_start``; another id for it from another gateway replica: an alias of the first).
- A new start on a connector ends what the last one left open there (closed by ``next_transaction``), and a start
  that reuses an id still held ends that session (``transaction_id_reused``).
- What a driver did before the start (an Authorize, a plug-in) is claimed as the start's charge attempt
  (:mod:`processors.attempts`).
"""

from __future__ import annotations

from processors import clock, emission, seq_no
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.inputs import (
    AuthorizeAnswered,
    AuthorizeRequested,
    Booted,
    EventSequenced,
    StartAnswered,
    StartRequested,
    TokenPresented,
    TransactionStarted,
)
from processors.seq_no import Verdict
from processors.state import PendingStart, SessionState
from processors.transaction_identity import closed_with, open_with
from schemas.flags import Flag

PENDING_STARTS_KEPT = 16  # answers that never came (a gateway crash): do not grow forever


# --- starts ----------------------------------------------------------------------------------------------


def on_start_requested(cp: ChargePoint, item: StartRequested) -> list[Event]:
    starts = cp.state.pending_starts
    starts[item.message_id] = PendingStart(item.gw_ms, item.event_id, item.start)
    while len(starts) > PENDING_STARTS_KEPT:
        starts.pop(next(iter(starts)))
    return []


def on_start_answered(cp: ChargePoint, item: StartAnswered) -> list[Event]:
    pending = cp.state.pending_starts.pop(item.message_id, None)
    if pending is None or item.transaction_id is None:
        return []  # a CALLERROR: the charger keeps the start and tries again, or stops with -1 later
    return on_started(cp, TransactionStarted(pending.gw_ms, pending.event_id, item.transaction_id, pending.start))


def on_started(cp: ChargePoint, item: TransactionStarted) -> list[Event]:
    start, state = item.start, cp.state
    cp.saw_time(item.gw_ms, start.started_ms, start.flags)
    tx = state.aliases.get(item.transaction_id, item.transaction_id)
    events: list[Event] = []
    reused = False
    # The same id on another connector is another transaction (stations that number per EVSE).
    for other in open_with(state, tx, start.connector_id):
        if other.start_fingerprint == start.fingerprint:
            other.flag(Flag.DUPLICATE_START)  # the same start answered twice with the same id
            return []
        reused = True  # the charger reuses the id while we still hold a session with it
        events.extend(emission.close_before_next(cp, other, item.gw_ms))
    closed = closed_with(state, tx, start.connector_id)
    if any(s.start_fingerprint == start.fingerprint for s in closed):
        return events  # a resend of a start whose session is already closed
    reused = reused or bool(closed)
    for other in state.sessions.values():
        if other.start_fingerprint == start.fingerprint and not other.stopped and other.transaction_id != tx:
            # Resent after a lost answer and given another id (another gateway replica): one session.
            state.aliases[tx] = other.transaction_id
            other.flag(Flag.DUPLICATE_START)
            return events
    flags = list(start.flags)
    if reused:
        flags.append(Flag.TRANSACTION_ID_REUSED)
    if start.connector_id is not None:
        # A new transaction on this connector ends whatever the previous one left open.
        for other in [s for s in state.sessions.values() if s.connector == start.connector_id]:
            events.extend(emission.close_before_next(cp, other, item.gw_ms))
    session = SessionState(
        transaction_id=tx, session_id=state.new_session_id(tx, item.gw_ms), connector=start.connector_id, id_tag=start.id_tag,
        start_ms=start.started_ms, start_gw_ms=item.gw_ms, meter_start=start.meter_start,
        start_fingerprint=start.fingerprint, flags=sorted(set(flags)),
        age_deadline=item.gw_ms + cp.config.max_session_age_ms, protocol=cp.protocol,
        attempt_ms=cp.attempts.claim(start.connector_id, start.id_tag, item.gw_ms),
        clock_start=state.clock.lag_ms,
        id_token_type=start.id_token_type,
    )
    state.sessions[session.session_id] = session
    if start.connector_id is not None:
        connector = state.connector(start.connector_id)
        connector.tx = session.session_id
        connector.blocked_by = None  # the bay is taken again: how long the last car stayed is not known
        if connector.status or connector.charging:  # what the connector is doing is known from the start on
            session.set_phase(connector.charging or connector.status, item.gw_ms)
        events.extend(cp.outages.port_seen(start.connector_id, item.gw_ms))
    return events


# --- the driver ------------------------------------------------------------------------------------------


def on_token(cp: ChargePoint, item: TokenPresented) -> list[Event]:
    """A 2.0.1 transaction started without an idToken names it now: the session has its driver's id,
    and that driver's Authorize is this transaction's, no attempt of its own."""
    tx = cp.state.aliases.get(item.transaction_id, item.transaction_id)
    for session in open_with(cp.state, tx, item.connector_id):
        if not session.id_tag:
            session.id_tag, session.id_token_type = item.id_tag, item.id_token_type
            cp.attempts.take(item.id_tag, item.gw_ms)
    return []


def on_authorize_requested(cp: ChargePoint, item: AuthorizeRequested) -> list[Event]:
    """A card shown: a charge attempt of a driver (processors.attempts), unless it is the card of a transaction
    held now (stopping it, or unlocking the cable)."""
    if not (item.id_tag and any(s.id_tag == item.id_tag for s in cp.state.sessions.values())):
        cp.attempts.authorize_requested(item.gw_ms, item.event_id, item.message_id, item.id_tag, cp.protocol.version)
    return []


def on_authorize_answered(cp: ChargePoint, item: AuthorizeAnswered) -> list[Event]:
    cp.attempts.authorize_answered(item.message_id, item.accepted)
    return []


def on_booted(cp: ChargePoint, item: Booted) -> list[Event]:
    """The charger (re)booted: it sets its clock from the answer's currentTime; what was open goes on, flagged."""
    clock.forget(cp.state.clock)
    for session in cp.state.sessions.values():
        if not session.stopped:
            session.flag(Flag.CHARGER_REBOOTED)
    return []


# --- 2.0.1 event numbers ---------------------------------------------------------------------------------


def on_sequenced(cp: ChargePoint, item: EventSequenced) -> list[Event]:
    """2.0.1 ``seqNo`` (processors.seq_no): gaps per transaction or per station as the station counts; a number
    the transaction already passed is a resend or a replay (flagged, and its stop is no second stop); an event
    after the transaction's Ended is flagged on it."""
    state = cp.state
    station_last, state.seq_no = state.seq_no, item.seq_no
    session = next(iter(open_with(state, item.transaction_id, item.connector_id)), None)
    if session is None:
        closed = closed_with(state, item.transaction_id, item.connector_id)
        return _sequenced_after_close(cp, closed[-1], item, station_last) if closed else []
    if session.seq_no is None:
        state.seq_numbering = seq_no.numbering(state.seq_numbering, station_last, item.seq_no, item.opens)
    verdict = seq_no.verdict(state.seq_numbering, session.seq_no, station_last, item.seq_no)
    if verdict is Verdict.REPEATED:
        session.flag(Flag.SEQ_NO_REPEATED)
        state.seq_no, cp.resent_event = station_last, item.event_id
        return []
    if verdict is Verdict.GAP:
        session.flag(Flag.SEQ_NO_GAP)
    session.seq_no = item.seq_no
    return []


def _sequenced_after_close(cp: ChargePoint, session: SessionState, item: EventSequenced,
                           station_last: int | None) -> list[Event]:
    """An event of a transaction already written: a resend (its number passed), or, after its Ended, a replay
    from the offline queue. Either changes nothing but the flag that says it (a revision)."""
    last = session.seq_no
    if last is not None and item.seq_no <= last:
        session.flag(Flag.SEQ_NO_REPEATED)
        cp.state.seq_no, cp.resent_event = station_last, item.event_id
    elif session.stop is not None:
        session.flag(Flag.EVENT_AFTER_ENDED)
        session.seq_no = item.seq_no
    else:
        session.seq_no = item.seq_no  # closed on a guess: its events go on (a late stop, late samples)
        return []
    return emission.amend(cp, session, item.gw_ms)
