"""A session's rows going out: its first row when it closes (on its stop, or on a guess), and a new revision each
time what is known of it after that changes its row (SESSIONS.md, *Revisions*). Beside each session row goes its
transaction's charge attempt row, when that changed (:mod:`processors.attempts`), after the other rows of the
correlator's call that made it.

A session moves from :attr:`~processors.state.CorrelatorState.sessions` (open, or stopped and waiting for its
status window) to :attr:`~processors.state.CorrelatorState.closed` (remembered for ``closed_retention_ms``, at
most :data:`CLOSED_KEPT`), where a late stop, late samples or a conflicting stop still find it.
"""

from __future__ import annotations

from processors import transaction_identity
from processors.attempts import attempt_key, transaction_attempt
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.session_record import record_digest, session_record
from processors.state import Emitted, SessionState
from schemas.flags import Flag
from schemas.records import ClosedBy, Session

CLOSED_KEPT = 512  # a bound beside the time bound, for a charger that floods stops with unknown ids


def emit(cp: ChargePoint, session: SessionState, *, version_ms: int,
         closed_by: ClosedBy = ClosedBy.STOP_TRANSACTION) -> list[Event]:
    """The session moves from open to remembered: revision 0, or the next one of a reopened session."""
    state = cp.state
    del state.sessions[session.session_id]
    for alias, target in list(state.aliases.items()):
        if target == session.transaction_id and not transaction_identity.open_with(state, target):
            del state.aliases[alias]
    if session.connector is not None and state.connector(session.connector).tx == session.session_id:
        state.connector(session.connector).tx = None
    session.available_deadline = session.emit_deadline = session.age_deadline = None
    last = session.emitted
    if last is None:
        revision = 0
        received_ms = session.stop.gw_ms if session.stop is not None else (session.closed_gw_ms or version_ms)
    else:
        revision, received_ms, version_ms = last.revision + 1, last.received_ms, max(version_ms, last.version + 1)
    record = session_record(cp.id, cp.config, session, closed_by, revision=revision, version=version_ms,
                            received_ms=received_ms, previous=last)
    session.emitted = Emitted(revision, version_ms, received_ms, closed_by, record.energy_wh, record.duration_s,
                              record_digest(record))
    closed = state.closed
    closed[session.memory_key] = session
    while len(closed) > CLOSED_KEPT:
        closed.pop(next(iter(closed)))
    return _with_attempt(cp, session, record)


def reemit(cp: ChargePoint, session: SessionState, now_ms: int, closed_by: ClosedBy | None = None) -> list[Event]:
    """A new revision of an emitted session, if its row changed."""
    last = session.emitted
    assert last is not None
    closed_by = closed_by or last.closed_by
    version = max(now_ms, last.version + 1)  # always newer than what it replaces
    record = session_record(cp.id, cp.config, session, closed_by, revision=last.revision + 1, version=version,
                            received_ms=last.received_ms, previous=last)
    digest = record_digest(record)
    if digest == last.digest:
        return []
    session.emitted = Emitted(last.revision + 1, version, last.received_ms, closed_by, record.energy_wh,
                              record.duration_s, digest)
    return _with_attempt(cp, session, record)


def amend(cp: ChargePoint, session: SessionState, now_ms: int) -> list[Event]:
    """A change to a stopped session: a new revision when its row was already written (else its first
    row, when it is written, says it)."""
    if session.session_id in cp.state.sessions or session.emitted is None:
        return []
    return reemit(cp, session, now_ms)


def close_unstopped(cp: ChargePoint, session: SessionState, closed_by: ClosedBy, at_ms: int) -> list[Event]:
    """Close a session whose stop never came, on a guess (``closed_by``), flagged ``stop_missing``."""
    session.flag(Flag.STOP_MISSING)
    session.closed_gw_ms = at_ms
    session.clock_stop = cp.state.clock.lag_ms
    if session.connector is not None:
        state = cp.state.connector(session.connector)
        left = state.left_charging
        if left and left.gw_ms >= (session.start_gw_ms or 0):
            session.attach_status(left)
        if state.tx == session.session_id:
            state.tx = None
    return emit(cp, session, version_ms=at_ms, closed_by=closed_by)


def close_before_next(cp: ChargePoint, session: SessionState, now_ms: int) -> list[Event]:
    """A new transaction begins on the session's connector (or reuses its id): whatever the session still waits
    for will not come."""
    if session.stopped:
        if not session.stop_status_known:
            session.flag(Flag.STATUS_TRANSITION_MISSING)
        return emit(cp, session, version_ms=now_ms)
    return close_unstopped(cp, session, ClosedBy.NEXT_TRANSACTION, now_ms)


def forget_closed(cp: ChargePoint, now_ms: int) -> None:
    """Remembered sessions closed longer than ``closed_retention_ms`` ago are forgotten."""
    closed = cp.state.closed
    horizon = now_ms - cp.config.closed_retention_ms
    while closed:
        key = next(iter(closed))
        if (closed[key].closed_gw_ms or 0) >= horizon:
            break
        del closed[key]


def _with_attempt(cp: ChargePoint, session: SessionState, record: Session) -> list[Event]:
    """The session's row; its transaction's attempt row, when that says something new, goes to
    :attr:`ChargePoint.attempt_rows` (handed out after the call's other rows). A revision that only learnt the bay
    time leaves the attempt as it was (its row stands, at the version it was written)."""
    attempt = transaction_attempt(session, record)
    key = attempt_key(attempt)
    if key != session.attempt_key:
        session.attempt_key = key
        cp.attempt_rows.append(attempt)
    return [record]
