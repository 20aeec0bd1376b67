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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processors.state import SessionState


def same_connector(session_connector: int | None, connector: int | None) -> bool:
    """A frame for ``connector`` may be about a session on ``session_connector`` (``None``: not known or not named)."""
    return connector is None or session_connector is None or session_connector == connector


def with_id(sessions: Iterable["SessionState"], transaction_id: str, connector: int | None) -> list["SessionState"]:
    """The sessions that a frame naming ``transaction_id`` on ``connector`` can be about, the likeliest first: in
    the order given (oldest first), except that, when the frame names no connector, those not stopped yet come
    first."""
    # (same_connector, inlined: this runs for every transaction frame)
    found = [s for s in sessions if s.transaction_id == transaction_id
             and (connector is None or s.connector is None or s.connector == connector)]
    if connector is None and len(found) > 1:
        found.sort(key=lambda s: s.stop is not None)  # stable: the oldest of each kind first
    return found


def ambiguous(candidates: list["SessionState"], connector: int | None) -> bool:
    """The frame named no connector and its id is open (not stopped) on more than one connector: the oldest is
    taken, with a flag."""
    return connector is None and len({s.connector for s in candidates if s.stop is None}) > 1
