"""Signed meter values of a session (issue 25; SIGNED_METER_VALUES.md, Part 2): each verified once, on arrival, with
the keys registered for the charge point (and connector) at that moment, and added to the session's
:class:`~signed_meter.session.SessionSignatures`. Tracker functions of one :class:`ChargePoint`.

- Values name their transaction, or only their connector (its open session). A signed End that comes after its
  session's stop (a MeterValues of the transaction, or of its connector once the stop left it) still belongs to
  that session: a session already written gets a new revision, as a late stop does.
- A stop's signed values (1.6 transactionData, the 2.0.1 Ended's) are added by :mod:`processors.stops` through
  :func:`add_values`, once the stop found its session.
- Signed values of no transaction and no session (connector-level values outside one) are kept in the frames table
  only.
- A session keeps at most :data:`MAX_SIGNED_PER_SESSION` signed values: beyond it only values whose OCPP context is
  Transaction.Begin / .End (and resends) are taken, the rest dropped (``signed_values_dropped``): a state is
  written at every flush and kept for days.

The keys come from the :class:`~processors.charge_point.KeyLookup` the worker holds (``meter_keys``, asked at each
verification, so a registry replaced later is seen); a key added after a value was verified does not revise it
(``ocpp-pipeline verify`` checks again with today's keys).
"""

from __future__ import annotations

from collections.abc import Sequence

from processors import emission
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.inputs import SignedSamples
from processors.state import SessionState
from processors.transaction_identity import closed_with, open_with
from schemas.flags import Flag
from signed_meter.arrival import SignedValue
from signed_meter.verification import BEGIN_CONTEXT, END_CONTEXT, RecordVerdict, verify_signed_value

MAX_SIGNED_PER_SESSION = 32


def on_signed(cp: ChargePoint, item: SignedSamples) -> list[Event]:
    session = _session_of(cp, item)
    if session is None:
        return []  # outside any transaction: the frames table keeps them
    session.flag(*sorted(item.flags))
    changed = add_values(cp, session, item.values, connector=item.connector_id)
    if not changed or session.session_id in cp.state.sessions:
        return []  # its row, when written, says it
    return emission.amend(cp, session, item.gw_ms)


def add_values(cp: ChargePoint, session: SessionState, values: Sequence[SignedValue], *,
               connector: int | None = None) -> bool:
    """Verify ``values`` and add them to ``session``; whether its signatures changed."""
    if not values:
        return False
    signatures = before = session.signed()
    keys = None
    for value in values:
        if len(signatures.verdicts) >= MAX_SIGNED_PER_SESSION and not _still_taken(value, signatures.verdicts):
            session.flag(Flag.SIGNED_VALUES_DROPPED)
            continue
        if keys is None:
            keys = cp.meter_keys.keys_for(cp.id, session.connector if session.connector is not None else connector)
        verdict = verify_signed_value(value, keys)
        cp.signed_statuses.append(verdict.status)
        signatures = signatures.add(verdict)
    session.signatures = signatures
    return signatures != before


def _still_taken(value: SignedValue, verdicts: tuple[RecordVerdict, ...]) -> bool:
    """A value a full session still takes: one it has (a resend), or one that says it is a Begin or an End."""
    return value.context in (BEGIN_CONTEXT, END_CONTEXT) or any(
        v.value.signed_data == value.signed_data for v in verdicts)


def _session_of(cp: ChargePoint, item: SignedSamples) -> SessionState | None:
    """The session the values are about: their transaction's (open, else the last written with that id), or their
    connector's open one, or, for a signed End with no transaction named, the connector's last session."""
    state = cp.state
    connector = item.connector_id if item.connector_id is not None and item.connector_id > 0 else None
    if item.transaction_id is not None:
        tx = state.aliases.get(item.transaction_id, item.transaction_id)
        open_ones = open_with(state, tx, connector)
        if open_ones:
            return open_ones[0]
        closed = closed_with(state, tx, connector)
        return closed[-1] if closed else None
    if connector is None:
        return None
    held = state.connectors.get(connector)
    key = held.tx if held is not None else None
    if key is not None and key in state.sessions:
        return state.sessions[key]
    if not any(v.context == END_CONTEXT for v in item.values):
        return None
    # A Transaction.End sent after the stop, naming only its connector: the connector's newest session.
    mine = [s for s in (*state.sessions.values(), *state.closed.values()) if s.connector == connector]
    return max(mine, key=lambda s: s.start_gw_ms or s.closed_gw_ms or 0, default=None)
