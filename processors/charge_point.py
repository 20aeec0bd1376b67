"""One charge point as the trackers work on it: who it is, the rules' settings, its state, its two trackers with
state of their own (outages, attempts), and the protocol of the frame being applied. The correlator makes one per
call and hands it to the tracker functions (:mod:`processors.sessions`, :mod:`processors.stops`,
:mod:`processors.samples`, :mod:`processors.status_timeline`, :mod:`processors.problems`,
:mod:`processors.emission`); everything they keep between frames is in :attr:`ChargePoint.state`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from processors import clock
from processors.attempts import AttemptTracker
from processors.outages import OutageTracker
from processors.protocols import DEFAULT, Protocol
from processors.settings import CorrelatorConfig
from processors.state import CorrelatorState
from schemas.records import ChargeAttempt
from signed_meter.model import SignatureStatus
from signed_meter.registry import KeyRegistry, RegisteredKey


class KeyLookup(typing.Protocol):
    """Where meter public keys come from (issue 25): a :class:`signed_meter.registry.KeyRegistry`, or a holder of the
    current one (the worker's, replaced as ``ocpp.meter_keys.v1`` brings changes): asked at each verification."""

    def keys_for(self, charge_point_id: str, connector_id: int | None) -> tuple[RegisteredKey, ...]: ...


NO_KEYS: KeyLookup = KeyRegistry()


@dataclass(slots=True)
class ChargePoint:
    id: str
    config: CorrelatorConfig
    state: CorrelatorState
    outages: OutageTracker = field(init=False)
    attempts: AttemptTracker = field(init=False)
    # Of the frame being applied: recorded on what it opens (sessions, faults, attempts); until the first frame of
    # this object (a clock move alone), OCPP 1.6's.
    protocol: Protocol = DEFAULT
    # The frame (event id) whose 2.0.1 seqNo its transaction had already passed: its stop is a resend (a fact of
    # that one frame, never kept).
    resent_event: str = ""
    meter_keys: KeyLookup = NO_KEYS  # the keys signed meter values are verified with (processors.signed_samples)
    # The verdicts on signed values since the last look (the worker counts them: signed_values_total{status}).
    signed_statuses: list[SignatureStatus] = field(default_factory=list)
    # Transactions' attempt rows made beside their sessions' rows (:mod:`processors.emission`) during one call of the
    # correlator: handed out after that call's other rows (:meth:`take_attempt_rows`), the order the rows have
    # always had within a flush (tests/golden holds it).
    attempt_rows: list[ChargeAttempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outages = OutageTracker(self.id, self.state.outages, self.state.connectors)
        self.attempts = AttemptTracker(self.id, self.state.attempts, self.config.authorize_window_ms)

    def saw_time(self, gw_ms: int, charger_ms: int | None, flags: frozenset[str]) -> None:
        """A frame stamped by the charger: what it shows of the charger's clock (:func:`processors.clock.saw`)."""
        clock.saw(self.state.clock, gw_ms, charger_ms, flags, self.config.clock_skew_ms)

    def take_attempt_rows(self) -> list[ChargeAttempt]:
        rows, self.attempt_rows = self.attempt_rows, []
        return rows
