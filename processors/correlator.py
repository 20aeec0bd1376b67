"""The correlator: one per charge point, pure (no I/O, no clock), and knowing no OCPP version. Frames in, in Kafka
order; sessions (and their revisions), fault events, status changes, port outages and charge attempts out. Its
state is a typed :class:`~processors.state.CorrelatorState`, kept as JSON (:mod:`processors.state_codec`) in a
changelog-backed table by the Faust shell.

It dispatches, and does nothing else:

- :meth:`Correlator.feed` takes a frame envelope: time moves on to the frame's (:meth:`advance`), a connection
  event goes to the outage tracker, and the frame is read into domain inputs by the normalizer of its version
  (:mod:`processors.normalize`);
- :meth:`Correlator.apply` hands one domain input (:mod:`processors.inputs`) to the tracker that owns it;
- :meth:`Correlator.advance` lets gateway time pass (:mod:`processors.deadlines`).

Time is the **gateway clock** (``gw_ms`` of the inputs): charger clocks drift, jump and lack zones, and a window
must mean the same thing on every charger. Charger timestamps are kept and checked against it (flags).

The processors, bottom to top (each imports only what is below it; ``tests/test_imports.py`` holds it):

1. settings, words and facts: :mod:`~processors.settings`, :mod:`~processors.vocabulary`,
   :mod:`~processors.protocols`, :mod:`schemas.flags`, :mod:`schemas.records` (``ClosedBy``),
   :mod:`schemas.attempt_failure`; JSON values and charger times:
   :mod:`~processors.values`, :mod:`~processors.frame_json`, :mod:`~processors.timestamps`;
2. rules on plain values: :mod:`~processors.meter`, :mod:`~processors.energy`, :mod:`~processors.clock`,
   :mod:`~processors.seq_no`;
3. domain inputs: :mod:`~processors.inputs`;
4. the normalizers, one per version (:mod:`~processors.ocpp16`, :mod:`~processors.ocpp201`), and the one place
   that picks them (:mod:`~processors.normalize`);
5. state: :mod:`~processors.state`; rows of it and lookups in it: :mod:`~processors.events`,
   :mod:`~processors.session_record`, :mod:`~processors.transaction_identity`, :mod:`~processors.faults`,
   :mod:`~processors.evse_faults`; its codec: :mod:`~processors.state_codec` (earlier formats:
   :mod:`~processors.legacy_state`);
6. the trackers with state of their own, beside each other: :mod:`~processors.outages`,
   :mod:`~processors.attempts`; the charge point they share with the others: :mod:`~processors.charge_point`;
7. the trackers of one charge point: :mod:`~processors.emission` (rows and revisions), then
   :mod:`~processors.samples`, :mod:`~processors.sessions`, :mod:`~processors.stops`,
   :mod:`~processors.problems`, :mod:`~processors.status_timeline`, :mod:`~processors.deadlines`,
   :mod:`~processors.signed_samples` (signed meter values, issue 25);
8. this module; above it the frame processor (:mod:`~processors.pipeline`) and the worker's shell.

No tracker imports this module or calls back into it; none names an OCPP version (the facts that differ are the
:class:`~processors.protocols.Protocol` of the frame being applied, or of the frame that opened a session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from processors import deadlines, problems, samples, sessions, signed_samples, status_timeline, stops
from processors.charge_point import NO_KEYS, ChargePoint, KeyLookup
from processors.events import Event
from processors.inputs import (
    AuthorizeAnswered,
    AuthorizeRequested,
    Booted,
    ChargingStateChanged,
    DomainInput,
    EventSequenced,
    Frame,
    MeterSamples,
    ProblemReported,
    SignedSamples,
    StartAnswered,
    StartRequested,
    StatusReported,
    TokenPresented,
    TransactionStarted,
    TransactionStopped,
)
from processors.normalize import reader
from processors.settings import CorrelatorConfig
from processors.state import CorrelatorState
from schemas.envelope import ConnectionEvent, Direction

# Each domain input and the tracker function that owns it.
_HANDLERS: Final[dict[type[DomainInput], Callable[[ChargePoint, Any], list[Event]]]] = {
    StartRequested: sessions.on_start_requested,
    StartAnswered: sessions.on_start_answered,
    TransactionStarted: sessions.on_started,
    TokenPresented: sessions.on_token,
    EventSequenced: sessions.on_sequenced,
    AuthorizeRequested: sessions.on_authorize_requested,
    AuthorizeAnswered: sessions.on_authorize_answered,
    Booted: sessions.on_booted,
    TransactionStopped: stops.on_stopped,
    MeterSamples: samples.on_samples,
    StatusReported: status_timeline.on_status,
    ChargingStateChanged: status_timeline.on_charging_state,
    ProblemReported: problems.on_problem,
    SignedSamples: signed_samples.on_signed,
}


class Correlator:
    """Turns one charge point's frames into events. ``state`` is read and written in place."""

    __slots__ = ("cp", "charge_point_id", "config", "state")

    def __init__(self, charge_point_id: str, config: CorrelatorConfig, state: CorrelatorState | None = None, *,
                 meter_keys: KeyLookup = NO_KEYS) -> None:
        """``meter_keys``: the meter public keys signed values are verified with (issue 25), asked at each
        verification."""
        self.cp = ChargePoint(charge_point_id, config, state if state is not None else CorrelatorState(),
                              meter_keys=meter_keys)
        # The charge point's, as plain attributes (the pipeline reads them for every frame): never reassigned.
        self.charge_point_id: Final = charge_point_id
        self.config: Final = config
        self.state: Final = self.cp.state

    def feed(self, envelope: Frame) -> list[Event]:
        """One envelope, in Kafka order. Never raises for any content."""
        cp, now_ms = self.cp, envelope.gateway_ts_ms
        events = self.advance(now_ms)
        cp.protocol, normalize = reader(envelope)
        if envelope.event is not None:  # a connection opened or closed (KPIS.md): no frame to read
            if envelope.event == ConnectionEvent.CONNECTED:
                events.extend(cp.outages.connected(envelope.connection_id, now_ms))
            else:
                events.extend(cp.outages.disconnected(envelope.connection_id, now_ms))
            return events
        if envelope.connection_id != cp.state.outages.newest and envelope.direction == Direction.IN:
            # What the charger sent shows its socket alive; what a gateway sent on it does not (a replica
            # writes to a socket it has not yet noticed dead). Nearly every frame comes on the newest.
            events.extend(cp.outages.frame_on(envelope.connection_id, now_ms))
        for item in normalize(envelope):
            events.extend(self.apply(item))
        return events

    def apply(self, item: DomainInput) -> list[Event]:
        """One domain input (its time already reached by :meth:`advance`), read as the frame last fed was."""
        cp = self.cp
        events = _HANDLERS[type(item)](cp, item)
        if cp.attempt_rows:
            events += cp.take_attempt_rows()
        return events

    def advance(self, now_ms: int) -> list[Event]:
        """Let gateway time reach ``now_ms``: close what waited for a deadline before it."""
        cp = self.cp
        events = deadlines.advance(cp, now_ms)
        if cp.attempt_rows:
            events += cp.take_attempt_rows()
        return events

    def next_deadline(self) -> int | None:
        """The earliest gateway time at which :meth:`advance` has something to do."""
        return deadlines.next_deadline(self.cp)
