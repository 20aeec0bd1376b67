"""Which session a transaction frame names: a transaction is its id **and** its connector (OCPP 2.0.1: its EVSE)
when the frame names one. SESSIONS.md, *Which session a frame belongs to*.

Stations that number transactions per EVSE (OCPP 2.0.1 leaves ``transactionId`` to the station) have "1" open
on EVSE 1 and on EVSE 2 at the same time: two sessions, each with its own register, never one merged from both.
A frame that names no connector (1.6 StopTransaction; a 2.0.1 event after the first, which may omit ``evse``,
E01.FR.16) belongs to the one open transaction with that id: one not stopped yet comes before one whose stop
waits for its status window (EVSE 1's "1" ended a moment ago; EVSE 2's "1" goes on); when the id is open on
several connectors the oldest is taken and the doubt is flagged (``transaction_evse_ambiguous``). Pure functions
over sessions.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.state import CorrelatorState, SessionState


def same_connector(session_connector: int | None, connector: int | None) -> bool:
    """A frame for ``connector`` may be about a session on ``session_connector`` (``None``: not known or not named)."""
    return connector is None or session_connector is None or session_connector == connector


def with_id(sessions: Iterable[SessionState], transaction_id: str, connector: int | None) -> list[SessionState]:
    """The sessions that a frame naming ``transaction_id`` on ``connector`` can be about, the likeliest first: in
    the order given (oldest first), except that, when the frame names no connector, those not stopped yet come
    first."""
    # (same_connector, inlined: this runs for every transaction frame)
    found = [s for s in sessions if s.transaction_id == transaction_id
             and (connector is None or s.connector is None or s.connector == connector)]
    if connector is None and len(found) > 1:
        found.sort(key=lambda s: s.stop is not None)  # stable: the oldest of each kind first
    return found


def ambiguous(candidates: list[SessionState], connector: int | None) -> bool:
    """The frame named no connector and its id is open (not stopped) on more than one connector: the oldest is
    taken, with a flag."""
    return connector is None and len({s.connector for s in candidates if s.stop is None}) > 1


# --- lookups over a charge point's sessions ----------------------------------------------------------


def open_with(state: CorrelatorState, transaction_id: str, connector: int | None = None) -> list[SessionState]:
    """Sessions not emitted yet (open, or stopped and waiting for the window) that a frame naming
    ``transaction_id`` on ``connector`` (``None``: not named) is about, the likeliest first."""
    return with_id(state.sessions.values(), transaction_id, connector)


def closed_with(state: CorrelatorState, transaction_id: str, connector: int | None = None) -> list[SessionState]:
    """Remembered sessions that a frame naming ``transaction_id`` on ``connector`` is about, oldest first."""
    return with_id(state.closed.values(), transaction_id, connector)


def transaction_on(state: CorrelatorState, connector: int) -> str | None:
    """The transaction id of the session open on ``connector`` (none on connector 0, the whole charge point)."""
    if connector <= 0:
        return None
    key = state.connector(connector).tx
    session = state.sessions.get(key) if key else None
    return session.transaction_id if session is not None else None


def stopped(state: CorrelatorState, key: str | None) -> SessionState | None:
    """The stopped session a connector waits on (``blocked_by``), written yet or not; None if forgotten."""
    session = (state.sessions.get(key) or state.closed.get(key)) if key else None
    return session if session is not None and session.stop is not None else None
