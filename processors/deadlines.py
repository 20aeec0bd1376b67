"""Time passing for one charge point: what waits for a deadline of gateway time, and what happens when it passes
(:class:`~processors.vocabulary.DeadlineKind`). The correlator moves time on before each frame and, from the worker,
with its partition's watermark, so a replay of the same frames makes the same decisions (SESSIONS.md, *Time*).

- a stopped session waits for its status window (``emit``), then goes out, its move out of Charging missing if it
  never came;
- an open session is closed by an Available with no stop within the window (``available``), or by age
  (``timeout``);
- an Authorize is decided when its window passes (``authorize``: processors.attempts);
- a 2.0.1 fault waiting for the problem that names it goes out unnamed (``naming``: processors.problems).

Deadlines that fall at one time are handled in the order of their time, their kind, then their session.
"""

from __future__ import annotations

from processors import emission
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.problems import announce_unnamed, naming_deadlines
from processors.state import SessionState
from processors.vocabulary import DeadlineKind
from schemas.flags import Flag
from schemas.records import ClosedBy

_CLOSED_BY = {DeadlineKind.AVAILABLE: ClosedBy.AVAILABLE, DeadlineKind.TIMEOUT: ClosedBy.TIMEOUT}


def session_deadlines(session: SessionState) -> list[tuple[int, DeadlineKind]]:
    if session.stopped:
        return [(session.emit_deadline, DeadlineKind.EMIT)] if session.emit_deadline is not None else []
    out: list[tuple[int, DeadlineKind]] = []
    if session.available_deadline is not None:
        out.append((session.available_deadline, DeadlineKind.AVAILABLE))
    if session.age_deadline is not None:
        out.append((session.age_deadline, DeadlineKind.TIMEOUT))
    return out


def next_deadline(cp: ChargePoint) -> int | None:
    """The earliest gateway time at which :func:`advance` has something to do."""
    state = cp.state
    deadlines = [d for s in state.sessions.values() for d, _ in session_deadlines(s)]
    authorize = cp.attempts.next_deadline(held_cards(cp)) if state.attempts.authorizes else None
    if authorize is not None:
        deadlines.append(authorize)
    if state.naming:
        deadlines.append(min(naming_deadlines(cp)))
    return min(deadlines) if deadlines else None


def advance(cp: ChargePoint, now_ms: int) -> list[Event]:
    """Let gateway time reach ``now_ms``: close what waited for a deadline before it."""
    state = cp.state
    events: list[Event] = []
    held = held_cards(cp) if state.attempts.authorizes else {}
    while True:
        due = [(d, kind, key) for key, s in state.sessions.items() for d, kind in session_deadlines(s) if d < now_ms]
        authorize = cp.attempts.next_deadline(held) if state.attempts.authorizes else None
        if authorize is not None and authorize < now_ms:
            due.append((authorize, DeadlineKind.AUTHORIZE, ""))
        if state.naming:
            due.extend((d, DeadlineKind.NAMING, "") for d in naming_deadlines(cp) if d < now_ms)
        if not due:
            break
        deadline, kind, key = min(due)
        if kind is DeadlineKind.AUTHORIZE:
            events.extend(cp.attempts.expire(deadline + 1, held))  # the Authorizes due at this deadline
        elif kind is DeadlineKind.NAMING:
            events.extend(announce_unnamed(cp, deadline))
        elif kind is DeadlineKind.EMIT:
            session = state.sessions[key]
            if not session.stop_status_known:
                session.flag(Flag.STATUS_TRANSITION_MISSING)
            events.extend(emission.emit(cp, session, version_ms=deadline))
        else:
            events.extend(emission.close_unstopped(cp, state.sessions[key], _CLOSED_BY[kind], deadline))
    emission.forget_closed(cp, now_ms)
    return events


def held_cards(cp: ChargePoint) -> dict[str, int]:
    """idTags of 1.6 starts waiting for their answer, each with the end of the window from its request: their
    Authorizes wait until then (the answer claims them). A start whose answer never came (a gateway crash)
    holds nothing past its window."""
    held: dict[str, int] = {}
    for pending in cp.state.pending_starts.values():
        if pending.start.id_tag:
            until = pending.gw_ms + cp.config.authorize_window_ms
            held[pending.start.id_tag] = max(held.get(pending.start.id_tag, 0), until)
    return held
