"""The correlator: one per charge point, pure (no I/O, no clock). Domain inputs in, in Kafka order;
sessions (and their revisions), fault events and status changes out. Its state is a typed
:class:`~processors.state.CorrelatorState`, kept as JSON in a changelog-backed table by the Faust shell.

:meth:`Correlator.feed` takes a frame envelope and reads it with the normalizer of its OCPP version
(:mod:`processors.ocpp16`); :meth:`Correlator.apply` takes one domain input (:mod:`processors.inputs`).
The rules are in SESSIONS.md; in short:

Time is the **gateway clock** (``gw_ms`` of the inputs): charger clocks drift, jump and lack zones, and a
window must mean the same thing on every charger. Charger timestamps are kept (``started_at``,
``stopped_at``, ``occurred_at``) and checked against the gateway clock (flags). Deadlines (the status
window, Available without a stop, sessions never stopped) expire when time passes them:
:meth:`Correlator.advance` is called with each frame's time and, by the shell, with the partition's
watermark, so a replay of the same frames makes the same decisions.

Session life (OCPP 1.6, 6.45 / 6.47, and the seed article):
- opens on a start that names its transaction (1.6: StartTransaction + the CALLRESULT's transactionId);
- closes on its stop (no connectorId in 1.6: the connector is the start's, or MeterValues');
- its ``stop_status`` is the status the connector went to from Charging, before or after the stop;
- emitted once nothing it needs can still arrive: at the stop if the transition is known and meterStop
  settles the energy, else when the window closes;
- never stopped: closed on a guess by the next start on its connector, by Available without a stop within
  the window, or by age; flagged ``stop_missing``;
- remembered after emission for ``closed_retention_ms``: what arrives for it later (the real stop, late
  samples, a conflicting stop) amends it as a new revision; a resend changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from processors import clock, evse_faults, ocpp16, ocpp201, seq_no, transaction_identity
from processors.attempts import AttemptTracker, attempt_key, transaction_attempt
from processors.energy import DEFAULT_MAX_POWER_W
from processors.faults import track_fault
from processors.outages import STATION, OutageTracker, PortCondition
from processors.session_record import PHASES, STOP_TRANSACTION, codes, session_record
from processors.flags import Flag
from processors.inputs import (
    IN_TRANSACTION,
    OUT_OF_CHARGING,
    AuthorizeAnswered,
    AuthorizeRequested,
    Booted,
    ChargingStateChanged,
    DomainInput,
    EventSequenced,
    MeterSamples,
    ProblemReported,
    StartAnswered,
    StartRequested,
    Status,
    StatusReported,
    TokenPresented,
    TransactionStarted,
    TransactionStopped,
)
from processors.meter import BREAK_MARKS, ENERGY_REGISTER, POWER, SOC, Reading
from processors.state import (
    ConnectorState,
    CorrelatorState,
    Emitted,
    LeftCharging,
    PendingStart,
    SessionState,
    StopInfo,
    record_digest,
    session_id,
)
from schemas.base import ms_to_datetime
from schemas.envelope import ConnectionEvent, Direction, FrameEnvelope
from schemas.records import ChargeAttempt, FaultEvent, PortOutage, Session, StatusChange

TIMEOUT, NEXT_TRANSACTION, AVAILABLE = "timeout", "next_transaction", "available"
AUTHORIZE = "authorize"  # the deadline of a pending Authorize (charge attempts)
NAMING = "naming"  # the deadline of a 2.0.1 fault waiting for the problem that names it
PENDING_STARTS_KEPT = 16  # answers that never came (a gateway crash): do not grow forever
METER_HINTS_KEPT = 16
TRANSACTION_DATA_KEPT = 500  # register samples of one StopTransaction kept in the state
CLOSED_KEPT = 512  # a bound beside the time bound, for a charger that floods stops with unknown ids
DAY_MS = 24 * 3600 * 1000

NORMALIZERS: dict[str, Callable[[FrameEnvelope], list[DomainInput]]] = {
    ocpp16.VERSION: ocpp16.normalize,
    ocpp201.VERSION: ocpp201.normalize,
}


@dataclass(frozen=True)
class CorrelatorConfig:
    status_window_ms: int = 60_000
    max_session_age_ms: int = 72 * 3600 * 1000
    clock_skew_ms: int = 5 * 60 * 1000
    max_power_w: float = DEFAULT_MAX_POWER_W
    # How long an emitted session is remembered (a late stop or a resend still finds it): the longest a
    # session can stay open, plus a day of offline backlog.
    closed_retention_ms: int = 72 * 3600 * 1000 + DAY_MS
    # An Authorize followed by no start with its idTag within this is an attempt of its own (KPIS.md).
    authorize_window_ms: int = 300_000


Event = Session | FaultEvent | StatusChange | PortOutage | ChargeAttempt


class Correlator:
    """Turns one charge point's frames into events. ``state`` is read and written in place."""

    def __init__(self, charge_point_id: str, config: CorrelatorConfig, state: CorrelatorState | None = None) -> None:
        self.charge_point_id = charge_point_id
        self.config = config
        self.state = state if state is not None else CorrelatorState()
        self.ocpp_version = ocpp16.VERSION  # of the frame being applied: recorded on what it opens
        self.outages = OutageTracker(charge_point_id, self.state.outages, self._port_condition)
        self.attempts = AttemptTracker(charge_point_id, self.state.attempts, config.authorize_window_ms)
        # A transaction's attempt row, made beside each session row it follows: handed out with the events of
        # the public call that made it.
        self._attempt_rows: list[Event] = []
        # The frame (event id) whose 2.0.1 seqNo its transaction had already passed: its stop is a resend.
        self._resent_event = ""

    # --- time ------------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The earliest gateway time at which :meth:`advance` has something to do."""
        deadlines = [d for s in self.state.sessions.values() for d, _ in _deadlines(s)]
        authorize = self.attempts.next_deadline(self._held_cards()) if self.state.attempts.authorizes else None
        if authorize is not None:
            deadlines.append(authorize)
        if self.state.naming:
            deadlines.append(min(self._naming_deadlines()))
        return min(deadlines) if deadlines else None

    def _naming_deadlines(self) -> list[int]:
        """When each fault waiting for its name goes out without one (processors.evse_faults)."""
        connectors = self.state.connectors
        return [evse_faults.naming_deadline(connectors[c].fault) for c in self.state.naming  # type: ignore[arg-type]
                if c in connectors and connectors[c].fault is not None]

    def advance(self, now_ms: int) -> list[Event]:
        """Let gateway time reach ``now_ms``: close what waited for a deadline before it."""
        events: list[Event] = []
        held = self._held_cards() if self.state.attempts.authorizes else {}
        while True:
            due = [(d, kind, key) for key, s in self.state.sessions.items() for d, kind in _deadlines(s) if d < now_ms]
            authorize = self.attempts.next_deadline(held) if self.state.attempts.authorizes else None
            if authorize is not None and authorize < now_ms:
                due.append((authorize, AUTHORIZE, ""))
            if self.state.naming:
                due.extend((d, NAMING, "") for d in self._naming_deadlines() if d < now_ms)
            if not due:
                break
            deadline, kind, key = min(due)
            if kind == AUTHORIZE:
                events.extend(self.attempts.expire(deadline + 1, held))  # the Authorizes due at this deadline
                continue
            if kind == NAMING:
                events.extend(self._announce_unnamed(deadline))
                continue
            session = self.state.sessions[key]
            if kind == "emit":
                if not session.stop_status_known:
                    session.flag(Flag.STATUS_TRANSITION_MISSING)
                events.append(self._emit(session, version_ms=deadline))
            else:
                events.append(self._close_unstopped(session, AVAILABLE if kind == AVAILABLE else TIMEOUT, deadline))
        self._forget_closed(now_ms)
        if self._attempt_rows:
            events += self._take_attempt_rows()
        return events

    # --- inputs ----------------------------------------------------------------------------------

    def feed(self, envelope: FrameEnvelope) -> list[Event]:
        """One envelope, in Kafka order. Never raises for any content."""
        now_ms = envelope.gateway_ts_ms
        events = self.advance(now_ms)
        self.ocpp_version = envelope.ocpp_version if envelope.ocpp_version in NORMALIZERS else ocpp16.VERSION
        if envelope.event is not None:  # a connection opened or closed (KPIS.md): no frame to read
            if envelope.event == ConnectionEvent.CONNECTED:
                events.extend(self.outages.connected(envelope.connection_id, now_ms))
            else:
                events.extend(self.outages.disconnected(envelope.connection_id, now_ms))
            return events
        if envelope.connection_id != self.state.outages.newest and envelope.direction == Direction.IN:
            # What the charger sent shows its socket alive; what a gateway sent on it does not (a replica
            # writes to a socket it has not yet noticed dead). Nearly every frame comes on the newest.
            events.extend(self.outages.frame_on(envelope.connection_id, now_ms))
        normalize = NORMALIZERS.get(envelope.ocpp_version, ocpp16.normalize)
        for item in normalize(envelope):
            events.extend(self.apply(item))
        return events

    def apply(self, item: DomainInput) -> list[Event]:
        """One domain input (its time already reached by :meth:`advance`)."""
        events = self._apply(item)
        if self._attempt_rows:
            events += self._take_attempt_rows()
        return events

    def _take_attempt_rows(self) -> list[Event]:
        rows, self._attempt_rows = self._attempt_rows, []
        return rows

    def _apply(self, item: DomainInput) -> list[Event]:
        if isinstance(item, StartRequested):
            return self._on_start_requested(item)
        if isinstance(item, StartAnswered):
            return self._on_start_answered(item)
        if isinstance(item, TransactionStarted):
            return self._on_started(item)
        if isinstance(item, TransactionStopped):
            return self._on_stopped(item)
        if isinstance(item, MeterSamples):
            return self._on_samples(item)
        if isinstance(item, StatusReported):
            return self._on_status(item)
        if isinstance(item, ChargingStateChanged):
            return self._on_charging_state(item)
        if isinstance(item, ProblemReported):
            return self._on_problem(item)
        if isinstance(item, EventSequenced):
            return self._on_sequenced(item)
        if isinstance(item, AuthorizeRequested):
            if not self._tap_of_a_transaction(item.id_tag):
                self.attempts.authorize_requested(item.gw_ms, item.event_id, item.message_id, item.id_tag, self.ocpp_version)
            return []
        if isinstance(item, AuthorizeAnswered):
            self.attempts.authorize_answered(item.message_id, item.accepted)
            return []
        if isinstance(item, TokenPresented):
            self._on_token(item)
            return []
        if isinstance(item, Booted):
            clock.forget(self.state.clock)  # the charger sets its clock from the answer's currentTime
            for session in self.state.sessions.values():
                if not session.stopped:
                    session.flag(Flag.CHARGER_REBOOTED)
        return []

    def _saw_time(self, gw_ms: int, charger_ms: int | None, flags: frozenset[str]) -> None:
        """A frame stamped by the charger: what it shows of the charger's clock (processors.clock). A 2.0.1 event
        the charger says it made offline is a queue's, and shows nothing."""
        if charger_ms is not None and Flag.OFFLINE_EVENT not in flags:
            clock.observe(self.state.clock, gw_ms, charger_ms, self.config.clock_skew_ms)

    # --- starts ----------------------------------------------------------------------------------

    def _on_start_requested(self, item: StartRequested) -> list[Event]:
        starts = self.state.pending_starts
        starts[item.message_id] = PendingStart(item.gw_ms, item.event_id, item.start)
        while len(starts) > PENDING_STARTS_KEPT:
            starts.pop(next(iter(starts)))
        return []

    def _on_start_answered(self, item: StartAnswered) -> list[Event]:
        pending = self.state.pending_starts.pop(item.message_id, None)
        if pending is None or item.transaction_id is None:
            return []  # a CALLERROR: the charger keeps the start and tries again, or stops with -1 later
        return self._on_started(TransactionStarted(pending.gw_ms, pending.event_id, item.transaction_id, pending.start))

    def _on_started(self, item: TransactionStarted) -> list[Event]:
        start = item.start
        self._saw_time(item.gw_ms, start.started_ms, start.flags)
        tx = self.state.aliases.get(item.transaction_id, item.transaction_id)
        events: list[Event] = []
        reused = False
        # The same id on another connector is another transaction (stations that number per EVSE).
        for other in self._open_with(tx, start.connector_id):
            if other.start_fingerprint == start.fingerprint:
                other.flag(Flag.DUPLICATE_START)  # the same start answered twice with the same id
                return []
            reused = True  # the charger reuses the id while we still hold a session with it
            events.append(self._close_before_next(other, item.gw_ms))
        closed = self._closed_with(tx, start.connector_id)
        if any(s.start_fingerprint == start.fingerprint for s in closed):
            return events  # a resend of a start whose session is already closed
        reused = reused or bool(closed)
        for other in self.state.sessions.values():
            if other.start_fingerprint == start.fingerprint and not other.stopped and other.transaction_id != tx:
                # Resent after a lost answer and given another id (another gateway replica): one session.
                self.state.aliases[tx] = other.transaction_id
                other.flag(Flag.DUPLICATE_START)
                return events
        flags = list(start.flags)
        if reused:
            flags.append(Flag.TRANSACTION_ID_REUSED)
        if start.connector_id is not None:
            # A new transaction on this connector ends whatever the previous one left open.
            for other in [s for s in self.state.sessions.values() if s.connector == start.connector_id]:
                events.append(self._close_before_next(other, item.gw_ms))
        session = SessionState(
            transaction_id=tx, session_id=session_id(tx, item.gw_ms), connector=start.connector_id, id_tag=start.id_tag,
            start_ms=start.started_ms, start_gw_ms=item.gw_ms, meter_start=start.meter_start,
            start_fingerprint=start.fingerprint, flags=sorted(set(flags)),
            age_deadline=item.gw_ms + self.config.max_session_age_ms, ocpp_version=self.ocpp_version,
            attempt_ms=self.attempts.claim(start.connector_id, start.id_tag, item.gw_ms),
            clock_start=self.state.clock.lag_ms,
            id_token_type=start.id_token_type,
        )
        self.state.sessions[session.session_id] = session
        if start.connector_id is not None:
            state = self.state.connector(start.connector_id)
            state.tx = session.session_id
            state.blocked_by = None  # the bay is taken again: how long the last car stayed is not known
            if state.status or state.charging:  # what the connector is doing is known from the start on
                _set_phase(session, state.charging or state.status, item.gw_ms)
            events.extend(self.outages.port_seen(start.connector_id, item.gw_ms))
        return events

    def _close_before_next(self, session: SessionState, now_ms: int) -> Session:
        if session.stopped:
            if not session.stop_status_known:
                session.flag(Flag.STATUS_TRANSITION_MISSING)
            return self._emit(session, version_ms=now_ms)
        return self._close_unstopped(session, NEXT_TRANSACTION, now_ms)

    # --- stops -----------------------------------------------------------------------------------

    def _on_stopped(self, item: TransactionStopped) -> list[Event]:
        self._saw_time(item.gw_ms, item.stopped_ms, item.flags)
        tx = self.state.aliases.get(item.transaction_id, item.transaction_id) if item.transaction_id else None
        if tx is None:
            return self._on_stop_without_id(item)
        open_ones = self._open_with(tx, item.connector_id)
        session = open_ones[0] if open_ones else None
        closed = self._closed_with(tx, item.connector_id)
        if any(s.stop is not None and s.stop.fingerprint == item.fingerprint for s in (*open_ones, *closed)):
            return []  # the same stop resent after a reconnect: already counted
        # A 2.0.1 Ended whose seqNo its transaction already passed is a resend, whatever was rebuilt in it: the
        # first stands (flagged seq_no_repeated when the number came), it is no second, different stop.
        resent = item.event_id == self._resent_event
        if closed and (session is None or _started_after(session, item.stopped_ms)):
            # No open session with that id, or the open one started after this stop: the stop belongs to
            # a session already emitted (a late stop beside a reused id).
            owner = _owner(closed, item.stopped_ms)
            return [] if resent and owner.stop is not None else self._stop_after_close(owner, item)
        if session is not None and session.stopped:
            if item.fingerprint != session.stop.fingerprint and not resent:
                session.flag(Flag.DUPLICATE_STOP_CONFLICT)  # a second, different stop (steve #1293): the first stands
            return []
        extra: list[str] = []
        if transaction_identity.ambiguous(open_ones, item.connector_id):
            extra.append(Flag.TRANSACTION_EVSE_AMBIGUOUS)
        if session is None:
            extra += [Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_UNKNOWN]
            session = self._stop_only_session(tx, item)
            hint = self.state.meter_hints.pop(tx, None)
            if hint is not None and item.connector_id is None:
                session.connector = hint
                extra.append(Flag.CONNECTOR_FROM_METER_VALUES)
        return self._stop(session, item, extra)

    def _on_stop_without_id(self, item: TransactionStopped) -> list[Event]:
        """-1 / 0 (a Keba P30, starts made offline): matched only when the status timeline leaves no doubt
        which connector stopped and that connector has the one open session, which started before the stop's
        timestamp (both charger clock: a stop from before a transaction began cannot end it)."""
        remembered = [*self.state.sessions.values(), *self.state.closed.values()]
        if any(s.stop is not None and s.stop.fingerprint == item.fingerprint for s in remembered):
            return []  # the same stop resent
        connector = self._stopping_connector(item.gw_ms)
        open_ones = [s for s in self.state.sessions.values() if not s.stopped and not _started_after(s, item.stopped_ms)]
        if connector is not None:
            matched = [s for s in open_ones if s.connector == connector]
        else:
            matched = open_ones if len(open_ones) == 1 and open_ones[0].connector is None else []
        if len(matched) == 1:
            return self._stop(matched[0], item, [Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION])
        session = self._stop_only_session(item.raw_transaction_id or "", item)
        extra: list[str] = [Flag.STOP_WITHOUT_START]
        if connector is not None and not any(s.connector == connector for s in self.state.sessions.values()):
            session.connector = connector
            extra.append(Flag.CONNECTOR_INFERRED)
        return self._stop(session, item, extra)

    def _stopping_connector(self, now_ms: int) -> int | None:
        """The connector a stop without a usable id is about: the one that just left Charging (for a suspended
        state only while no other connector is in a transaction nobody knows: that one's stop is as likely), or
        else the only one in a transaction (open session, or a charging status). ``None`` when that is not one."""
        window = self.config.status_window_ms
        connectors = self.state.connectors
        left = [c for c, st in connectors.items()
                if c > 0 and st.left_charging is not None and now_ms - st.left_charging.gw_ms <= window
                and st.status not in IN_TRANSACTION - {Status.suspended_ev, Status.suspended_evse}]
        if len(left) == 1:
            own = connectors[left[0]]
            suspended = own.status in (Status.suspended_ev, Status.suspended_evse) or own.charging in (
                Status.suspended_ev, Status.suspended_evse)
            unknown = [c for c, st in connectors.items() if c > 0 and c != left[0] and st.tx is None
                       and (st.status in IN_TRANSACTION or st.charging in IN_TRANSACTION)]
            return None if suspended and unknown else left[0]
        if left:
            return None
        busy = {s.connector for s in self.state.sessions.values() if not s.stopped}
        busy |= {c for c, st in connectors.items()
                 if c > 0 and (st.status in IN_TRANSACTION or st.charging in IN_TRANSACTION)}
        return busy.pop() if len(busy) == 1 and None not in busy else None

    def _stop_only_session(self, tx: str, item: TransactionStopped) -> SessionState:
        """A session known only from its stop: its start register is what the stop reports of it (a 2.0.1 Ended's
        meter series), if anything."""
        session = SessionState(
            transaction_id=tx, session_id=session_id(tx, item.gw_ms), connector=None, id_tag=item.id_tag,
            start_ms=None, start_gw_ms=None, meter_start=item.meter_start, start_fingerprint=None,
            ocpp_version=self.ocpp_version,
        )
        self.state.sessions[session.session_id] = session
        return session

    def _stop(self, session: SessionState, item: TransactionStopped, extra: list[str]) -> list[Event]:
        session.flag(*extra)
        if session.connector is None and item.connector_id is not None:
            session.connector = item.connector_id  # 2.0.1: the Ended names its EVSE
        self._apply_stop(session, item)
        session.available_deadline = None
        connector = session.connector
        if connector is None:
            connector = self._inferred_connector(item.gw_ms)
            if connector is not None:
                session.connector = connector
                session.flag(Flag.CONNECTOR_INFERRED)
        if connector is not None:
            state = self.state.connector(connector)
            left = state.left_charging
            if left and left.gw_ms >= (session.start_gw_ms or 0) and not _charging(state):
                _attach_status(session, left)
            elif not _charging(state) and not session.stop_status_known:
                session.flag(Flag.NO_CHARGING_STATUS)  # it never charged, or never said so
                session.stop_status_known = True
            if state.tx == session.session_id:
                state.tx = None
            if state.status == Status.available:
                session.blocked_ms = 0  # the car had left before the stop went out (ev-server #4082)
            else:
                state.blocked_by = session.session_id  # the bay is occupied until the connector is Available
            if state.status == Status.faulted:
                session.flag(Flag.FAULTED_AT_STOP)
            if session.ocpp_version == ocpp201.VERSION and state.tx is None:
                state.charging = ""  # 2.0.1 chargingState belongs to its transaction: the next one starts unknown
        else:
            session.flag(Flag.CONNECTOR_UNKNOWN)
            session.stop_status_known = True
        session.emit_deadline = item.gw_ms + self.config.status_window_ms
        if session.stop_status_known and _energy_final(session):
            return [self._emit(session, version_ms=item.gw_ms)]
        return []

    def _apply_stop(self, session: SessionState, item: TransactionStopped) -> None:
        if session.phase_ms is not None:
            _set_phase(session, "", item.gw_ms)  # the phase times end at the stop
        session.flag(*sorted(item.flags))
        session.clock_stop = self.state.clock.lag_ms  # (clock skew is the row's to decide: processors.clock)
        if session.meter_start is None and item.meter_start is not None:
            session.meter_start = item.meter_start  # the Started said none (or was never seen): the Ended's series does
        if item.stopped_ms is not None and session.start_ms is not None and item.stopped_ms < session.start_ms:
            session.flag(Flag.STOP_BEFORE_START)
        if not session.id_tag:
            session.id_tag = item.id_tag
        self._add_readings(session, item.readings, transaction_data=True)
        session.stop = StopInfo(item.stopped_ms, item.gw_ms, item.meter_stop, item.has_meter_stop, item.reason,
                                item.fingerprint)
        session.closed_gw_ms = item.gw_ms

    def _stop_after_close(self, session: SessionState, item: TransactionStopped) -> list[Event]:
        if session.stop is not None:
            if Flag.DUPLICATE_STOP_CONFLICT in session.flags:
                return []  # a conflict already said
            session.flag(Flag.DUPLICATE_STOP_CONFLICT)  # a second, different stop: the first stands
            return self._reemit(session, item.gw_ms)
        # Closed on a guess (Available, the next start, age): the real stop settles it (an offline backlog).
        guessed_by = session.emitted.closed_by if session.emitted is not None else ""
        self._apply_stop(session, item)
        if not session.stop_status_known:
            left = self._left_charging_of(session)  # the move out of Charging came after the guess closed it
            if left is not None:
                _attach_status(session, left)
        if guessed_by == AVAILABLE:
            session.blocked_ms = 0  # Available came before the stop: the car had left
        elif session.connector is not None and session.blocked_ms is None:
            state = self.state.connector(session.connector)
            if state.tx is None and state.status != Status.available:
                state.blocked_by = session.session_id  # still occupied: the bay time ends at the next Available
        session.unflag(Flag.STOP_MISSING)
        session.flag(Flag.LATE_STOP)
        return self._reemit(session, item.gw_ms, closed_by=STOP_TRANSACTION)

    def _left_charging_of(self, session: SessionState) -> LeftCharging | None:
        """The connector's last move out of Charging, if it was this session's: after its start, and no other
        session began on the connector in between."""
        if session.connector is None:
            return None
        left = self.state.connector(session.connector).left_charging
        began = session.start_gw_ms or 0
        if left is None or left.gw_ms < began:
            return None
        for other in (*self.state.sessions.values(), *self.state.closed.values()):
            if (other is not session and other.connector == session.connector and other.start_gw_ms is not None
                    and began < other.start_gw_ms <= left.gw_ms):
                return None
        return left

    # --- meter values ----------------------------------------------------------------------------

    def _on_samples(self, item: MeterSamples) -> list[Event]:
        if item.readings:
            self._saw_time(item.gw_ms, item.readings[-1].at_ms, item.flags)
        connector = item.connector_id if item.connector_id is not None and item.connector_id > 0 else None
        port_rows: list[Event] = []
        if connector is not None and connector not in self.state.outages.ports:
            port_rows.extend(self.outages.port_seen(connector, item.gw_ms))  # meter values name a port too
        return port_rows + self._samples(item, connector)

    def _samples(self, item: MeterSamples, connector: int | None) -> list[Event]:
        session: SessionState | None = None
        if item.transaction_id is not None:
            tx = self.state.aliases.get(item.transaction_id, item.transaction_id)
            open_ones = self._open_with(tx, connector)
            if open_ones:
                session = open_ones[0]
            else:
                closed = self._closed_with(tx, connector)
                if closed:  # never the connector's current session: these name another transaction
                    return self._samples_after_close(closed[-1], item)
                if connector is not None:
                    hints = self.state.meter_hints
                    hints[tx] = connector  # a stop for this unknown transaction will need its connector
                    while len(hints) > METER_HINTS_KEPT:
                        hints.pop(next(iter(hints)))
                return []
        elif connector is not None:
            key = self.state.connector(connector).tx
            session = self.state.sessions.get(key) if key else None
        if session is None:
            return []  # connector-level values outside a transaction
        if session.connector is None and connector is not None:
            session.connector = connector
            self.state.connector(connector).tx = session.session_id
        session.flag(*sorted(item.flags - {Flag.CONNECTOR_ID_INVALID}))
        if session.stopped:
            session.flag(Flag.METER_VALUES_AFTER_STOP)
        elif session.available_deadline is not None and item.transaction_id is not None and _metered_after_available(session, item):
            _resume(session)  # the charger goes on metering the transaction after an Available
        self._add_readings(session, item.readings, transaction_data=False)
        return []

    def _samples_after_close(self, session: SessionState, item: MeterSamples) -> list[Event]:
        """Samples for an emitted session. Closed by Available while the charger goes on metering it (a
        reboot that reported Available): it is going on, and is open again until it stops. Otherwise a
        revision only if they change its energy (they cannot when meterStop settled it); kept either way,
        so a later revision counts them."""
        last = session.emitted
        assert last is not None
        # Metered after the Available that closed it: it went on. Metered before it: a backlog of what it was.
        if session.stop is None and last.closed_by == AVAILABLE and _metered_after_available(session, item) and self._reopen(session):
            self._add_readings(session, item.readings, transaction_data=False)
            return []
        self._add_readings(session, item.readings, transaction_data=False)
        candidate = session_record(self.charge_point_id, self.config, session, last.closed_by, revision=last.revision,
                                   version=last.version, received_ms=last.received_ms)
        if candidate.energy_wh == last.energy_wh:
            return []
        session.flag(Flag.LATE_METER_VALUES)
        return self._reemit(session, item.gw_ms)

    def _reopen(self, session: SessionState) -> bool:
        connector = self.state.connector(session.connector) if session.connector is not None else None
        if connector is not None and connector.tx is not None:
            return False  # another session holds the connector now: these are a backlog's late values
        del self.state.closed[session.session_id or f"legacy:{session.transaction_id}"]
        self.state.sessions[session.session_id] = session
        session.unflag(Flag.STOP_MISSING)
        session.flag(Flag.AVAILABLE_THEN_RESUMED)
        session.closed_gw_ms = None
        session.age_deadline = (session.start_gw_ms or 0) + self.config.max_session_age_ms
        if connector is not None:
            connector.tx = session.session_id
        return True

    def _add_readings(self, session: SessionState, readings: tuple[Reading, ...], *, transaction_data: bool) -> None:
        for reading in readings:
            if reading.measurand == ENERGY_REGISTER:
                mark = BREAK_MARKS.get(reading.context, 0)  # where it stands to a break in metering (Interruption.*)
                if transaction_data:
                    if len(session.td) >= TRANSACTION_DATA_KEPT:
                        # A state is kept for days and written at every flush: beyond this, only the newest
                        # reading replaces the last one kept (a register's energy is in its ends).
                        session.td.pop()
                        session.flag(Flag.TRANSACTION_DATA_TRUNCATED)
                    session.td.append([reading.at_ms, reading.value, reading.resolution, mark] if mark
                                      else [reading.at_ms, reading.value, reading.resolution])
                else:
                    session.mv.add(reading.value, reading.at_ms, reading.resolution, mark)
            elif reading.measurand == POWER:
                session.peak_w = reading.value if session.peak_w is None else max(session.peak_w, reading.value)
            elif reading.measurand == SOC:
                if session.soc[0] is None:
                    session.soc[0] = reading.value
                session.soc[1] = reading.value

    # --- status ----------------------------------------------------------------------------------

    def _on_status(self, item: StatusReported) -> list[Event]:
        if item.connector_id < 0:
            return []  # no usable connectorId: the frame is kept, nothing to put on a timeline
        occurred_ms = item.occurred_ms
        flags = sorted(item.flags)
        self._saw_time(item.gw_ms, occurred_ms, item.flags)
        if occurred_ms is None:
            occurred_ms = item.gw_ms  # optional in OCPP 1.6: the gateway's time stands in
        elif item.gw_ms - occurred_ms > self.config.clock_skew_ms:
            flags.append(Flag.STALE_TIMESTAMP)  # e.g. a Faulted replayed after reboot (Alfen)
        elif occurred_ms - item.gw_ms > self.config.clock_skew_ms:
            flags.append(Flag.CLOCK_SKEW)
        state = self.state.connector(item.connector_id)
        previous = state.status
        events: list[Event] = [
            StatusChange(
                event_id=item.event_id, charge_point_id=self.charge_point_id, connector_id=item.connector_id,
                status=item.status, previous_status=previous, error_code=item.error_code, info=item.info,
                vendor_id=item.vendor_id, vendor_error_code=item.vendor_error_code,
                occurred_at=ms_to_datetime(occurred_ms), received_at=ms_to_datetime(item.gw_ms), flags=codes(flags),
            )
        ]
        open_tx = self._transaction_on(item.connector_id)
        if item.has_error_code:
            state.fault, faults = track_fault(self.charge_point_id, state.fault, item, occurred_ms, codes(flags), open_tx,
                                              self.ocpp_version)
            events.extend(faults)
        else:
            events.extend(evse_faults.on_status(self.charge_point_id, state, item, occurred_ms, codes(flags),
                                                self._station_problem(), open_tx, self.ocpp_version))
            self._naming_changed(item.connector_id, state)
        state.status = item.status
        if item.connector_id == STATION:
            events.extend(self.outages.station_changed(item.gw_ms))
            return events
        port = item.connector_id
        events.extend(self.outages.port_seen(port, item.gw_ms) if port not in self.state.outages.ports
                      else self.outages.refresh(port, item.gw_ms))
        held = self.state.sessions.get(state.tx) if state.tx else None
        if held is not None and not held.stopped and held.ocpp_version != ocpp201.VERSION:
            _set_phase(held, item.status, item.gw_ms)  # (2.0.1 says it in chargingState, not in its status)
        events.extend(self.attempts.status(port, item.status, item.gw_ms, item.event_id,
                                           free=state.tx is None and state.blocked_by is None,
                                           ocpp_version=self.ocpp_version))
        if item.status == Status.available and state.blocked_by is not None:
            events.extend(self._bay_freed(state, item.gw_ms))
        elif item.status == Status.faulted and state.blocked_by is not None:
            events.extend(self._faulted_after_stop(state.blocked_by, item.gw_ms))
        if previous == Status.charging and item.status in OUT_OF_CHARGING:
            left = state.left_charging = LeftCharging(item.status, item.error_code, item.gw_ms, occurred_ms)
            events.extend(self._transition_after_stop(item.connector_id, left, item.gw_ms))
        session = self.state.sessions.get(state.tx) if state.tx else None
        if session is not None and not session.stopped:
            if item.status == Status.available and session.available_deadline is None:
                # Available may come before StopTransaction (ev-server #4082); wait the window for it.
                session.available_deadline = item.gw_ms + self.config.status_window_ms
                session.available_ms = item.occurred_ms
            elif (item.status in IN_TRANSACTION and session.available_deadline is not None
                  and _after_available(session, item.occurred_ms)):
                _resume(session)  # Available, then Preparing / Charging: the transaction goes on
        return events

    def _on_charging_state(self, item: ChargingStateChanged) -> list[Event]:
        """2.0.1: the EV's state in the transaction; a move out of Charging is the session's transition."""
        self._saw_time(item.gw_ms, item.occurred_ms, item.flags)
        session = None
        if item.transaction_id is not None:
            session = next(iter(self._open_with(item.transaction_id, item.connector_id)), None)
            if session is None:
                return []  # a closed transaction's state (an Updated replayed after the Ended): nothing to do
        connector = item.connector_id if item.connector_id is not None else (session.connector if session else None)
        if connector is None:
            return []
        state = self.state.connector(connector)
        previous, state.charging = state.charging, item.state
        held = session if session is not None else (self.state.sessions.get(state.tx) if state.tx else None)
        if held is not None and not held.stopped:
            _set_phase(held, item.state, item.gw_ms)
        events: list[Event] = []
        if previous == Status.charging and item.state != Status.charging:
            occurred_ms = item.occurred_ms if item.occurred_ms is not None else item.gw_ms
            left = state.left_charging = LeftCharging(item.state, "", item.gw_ms, occurred_ms)
            events.extend(self._transition_after_stop(connector, left, item.gw_ms))
        if (session is not None and not session.stopped and item.state == Status.charging and session.available_deadline
                and _after_available(session, item.occurred_ms)):
            _resume(session)
        return events

    def _on_sequenced(self, item: EventSequenced) -> list[Event]:
        """2.0.1 ``seqNo`` (processors.seq_no): gaps per transaction or per station as the station counts; a number
        the transaction already passed is a resend or a replay (flagged, and its stop is no second stop); an event
        after the transaction's Ended is flagged on it."""
        station_last, self.state.seq_no = self.state.seq_no, item.seq_no
        session = next(iter(self._open_with(item.transaction_id, item.connector_id)), None)
        if session is None:
            closed = self._closed_with(item.transaction_id, item.connector_id)
            return self._sequenced_after_close(closed[-1], item, station_last) if closed else []
        if session.seq_no is None:
            self.state.seq_numbering = seq_no.numbering(self.state.seq_numbering, station_last, item.seq_no, item.opens)
        verdict = seq_no.verdict(self.state.seq_numbering, session.seq_no, station_last, item.seq_no)
        if verdict == seq_no.REPEATED:
            session.flag(Flag.SEQ_NO_REPEATED)
            self.state.seq_no, self._resent_event = station_last, item.event_id
            return []
        if verdict == seq_no.GAP:
            session.flag(Flag.SEQ_NO_GAP)
        session.seq_no = item.seq_no
        return []

    def _sequenced_after_close(self, session: SessionState, item: EventSequenced, station_last: int | None) -> list[Event]:
        """An event of a transaction already written: a resend (its number passed), or, after its Ended, a replay
        from the offline queue. Either changes nothing but the flag that says it (a revision)."""
        last = session.seq_no
        if last is not None and item.seq_no <= last:
            session.flag(Flag.SEQ_NO_REPEATED)
            self.state.seq_no, self._resent_event = station_last, item.event_id
        elif session.stop is not None:
            session.flag(Flag.EVENT_AFTER_ENDED)
            session.seq_no = item.seq_no
        else:
            session.seq_no = item.seq_no  # closed on a guess: its events go on (a late stop, late samples)
            return []
        return self._amend(session, item.gw_ms)

    def _on_problem(self, item: ProblemReported) -> list[Event]:
        """2.0.1 NotifyEvent: a component's problem begins or ends a fault on its EVSE (0: the station, whose problem
        also takes every port down: processors.evse_faults, KPIS.md)."""
        self._saw_time(item.gw_ms, item.occurred_ms, item.flags)
        state = self.state.connector(item.connector_id)
        occurred_ms = item.occurred_ms if item.occurred_ms is not None else item.gw_ms
        events: list[Event] = list(evse_faults.on_problem(self.charge_point_id, state, item, occurred_ms,
                                                          self._transaction_on(item.connector_id), self.ocpp_version))
        self._naming_changed(item.connector_id, state)
        # The problem's code names an outage it joins (a Faulted status came, or comes, with it).
        if item.connector_id == STATION:
            if item.active:  # the EVSEs it took down, Faulted a moment before it came
                for connector in list(self.state.naming):
                    evse = self.state.connectors[connector]
                    events.extend(evse_faults.name_by_station(self.charge_point_id, connector, evse, item, self.ocpp_version))
                    self._naming_changed(connector, evse)
            events.extend(self.outages.station_changed(item.gw_ms))
        else:
            events.extend(self.outages.refresh(item.connector_id, item.gw_ms))
        return events

    def _station_problem(self) -> str:
        """The code of the station-level problem active now ('' if none): it names the faults of the EVSEs it takes
        down."""
        station = self.state.connectors.get(STATION)
        return station.problems[-1] if station is not None and station.problems else ""

    def _naming_changed(self, connector: int, state: ConnectorState) -> None:
        """Keep the list of connectors whose fault waits for its name (their deadlines) in step with their faults."""
        waiting = state.fault is not None and not state.fault.announced
        if waiting and connector not in self.state.naming:
            self.state.naming.append(connector)
        elif not waiting and connector in self.state.naming:
            self.state.naming.remove(connector)

    def _announce_unnamed(self, deadline: int) -> list[Event]:
        """The faults whose naming wait ended at ``deadline`` go out, code unknown."""
        events: list[Event] = []
        for connector in list(self.state.naming):
            state = self.state.connectors.get(connector)
            if state is None or state.fault is None:
                self.state.naming.remove(connector)
            elif evse_faults.naming_deadline(state.fault) <= deadline:
                events.extend(evse_faults.announce(self.charge_point_id, connector, state, self.ocpp_version))
                self._naming_changed(connector, state)
        return events

    def _transition_after_stop(self, connector: int, left: LeftCharging, now_ms: int) -> list[Event]:
        attached = False
        for session in list(self.state.sessions.values()):
            if session.connector == connector and session.stopped and not session.stop_status_known:
                _attach_status(session, left)
                attached = True
                if _energy_final(session):
                    return [self._emit(session, version_ms=now_ms)]
        if attached:
            return []
        # A late stop that amended a session closed on a guess, its move out of Charging coming after it.
        late = self._stopped(self.state.connector(connector).blocked_by)
        if late is not None and late.emitted is not None and not late.stop_status_known:
            _attach_status(late, left)
            return self._amend(late, now_ms)
        return []

    # --- closing and emitting ----------------------------------------------------------------------

    def _close_unstopped(self, session: SessionState, closed_by: str, at_ms: int) -> Session:
        session.flag(Flag.STOP_MISSING)
        session.closed_gw_ms = at_ms
        session.clock_stop = self.state.clock.lag_ms
        if session.connector is not None:
            state = self.state.connector(session.connector)
            left = state.left_charging
            if left and left.gw_ms >= (session.start_gw_ms or 0):
                _attach_status(session, left)
            if state.tx == session.session_id:
                state.tx = None
        return self._emit(session, version_ms=at_ms, closed_by=closed_by)

    def _emit(self, session: SessionState, *, version_ms: int, closed_by: str = STOP_TRANSACTION) -> Session:
        """The session moves from open to remembered: revision 0, or the next one of a reopened session."""
        del self.state.sessions[session.session_id]
        for alias, target in list(self.state.aliases.items()):
            if target == session.transaction_id and not self._open_with(target):
                del self.state.aliases[alias]
        if session.connector is not None and self.state.connector(session.connector).tx == session.session_id:
            self.state.connector(session.connector).tx = None
        session.available_deadline = session.emit_deadline = session.age_deadline = None
        last = session.emitted
        if last is None:
            revision, received_ms = 0, session.stop.gw_ms if session.stop is not None else (session.closed_gw_ms or version_ms)
        else:
            revision, received_ms, version_ms = last.revision + 1, last.received_ms, max(version_ms, last.version + 1)
        record = session_record(self.charge_point_id, self.config, session, closed_by, revision=revision,
                                version=version_ms, received_ms=received_ms, previous=last)
        session.emitted = Emitted(revision, version_ms, received_ms, closed_by, record.energy_wh, record.duration_s,
                                  record_digest(record))
        self._attempt_row(session, record)
        closed = self.state.closed
        closed[session.session_id or f"legacy:{session.transaction_id}"] = session
        while len(closed) > CLOSED_KEPT:
            closed.pop(next(iter(closed)))
        return record

    def _reemit(self, session: SessionState, now_ms: int, closed_by: str | None = None) -> list[Event]:
        """A new revision of an emitted session, if its row changed."""
        last = session.emitted
        assert last is not None
        closed_by = closed_by or last.closed_by
        version = max(now_ms, last.version + 1)  # always newer than what it replaces
        record = session_record(self.charge_point_id, self.config, session, closed_by, revision=last.revision + 1,
                                version=version, received_ms=last.received_ms, previous=last)
        digest = record_digest(record)
        if digest == last.digest:
            return []
        session.emitted = Emitted(last.revision + 1, version, last.received_ms, closed_by, record.energy_wh,
                                  record.duration_s, digest)
        self._attempt_row(session, record)
        return [record]

    def _forget_closed(self, now_ms: int) -> None:
        closed = self.state.closed
        horizon = now_ms - self.config.closed_retention_ms
        while closed:
            key = next(iter(closed))
            if (closed[key].closed_gw_ms or 0) >= horizon:
                break
            del closed[key]

    # --- KPIs ------------------------------------------------------------------------------------

    def _attempt_row(self, session: SessionState, record: Session) -> None:
        """The transaction's attempt beside a row of its session, when it says something new: a revision that
        only learnt the bay time leaves the attempt as it was (its row stands, at the version it was written)."""
        attempt = transaction_attempt(session, record)
        key = attempt_key(attempt)
        if key != session.attempt_key:
            session.attempt_key = key
            self._attempt_rows.append(attempt)

    def _held_cards(self) -> dict[str, int]:
        """idTags of 1.6 starts waiting for their answer, each with the end of the window from its request: their
        Authorizes wait until then (the answer claims them). A start whose answer never came (a gateway crash)
        holds nothing past its window."""
        held: dict[str, int] = {}
        for pending in self.state.pending_starts.values():
            if pending.start.id_tag:
                until = pending.gw_ms + self.config.authorize_window_ms
                held[pending.start.id_tag] = max(held.get(pending.start.id_tag, 0), until)
        return held

    def _on_token(self, item: TokenPresented) -> None:
        """A 2.0.1 transaction started without an idToken names it now: the session has its driver's id,
        and that driver's Authorize is this transaction's, no attempt of its own."""
        tx = self.state.aliases.get(item.transaction_id, item.transaction_id)
        for session in self._open_with(tx, item.connector_id):
            if not session.id_tag:
                session.id_tag, session.id_token_type = item.id_tag, item.id_token_type
                self.attempts.take(item.id_tag, item.gw_ms)

    def _tap_of_a_transaction(self, id_tag: str) -> bool:
        """An Authorize that belongs to a transaction held now, not a new driver's try: its card stopping the
        transaction or unlocking the cable (the transaction's idTag)."""
        return bool(id_tag) and any(s.id_tag == id_tag for s in self.state.sessions.values())

    def _port_condition(self, port: int) -> PortCondition:
        """What a port's outage depends on, read from the connector states (the outage tracker's view)."""
        connectors = self.state.connectors
        own, station = connectors.get(port), connectors.get(STATION)
        station_status = station.status if station is not None else ""
        if station is not None and station.problems:
            station_status = Status.faulted  # 2.0.1: a station-level problem (an emergency stop) takes every port down
        return PortCondition(
            status=own.status if own is not None else "", fault=_fault_codes(own),
            station_status=station_status, station_fault=_fault_codes(station),
        )

    def _bay_freed(self, state: ConnectorState, now_ms: int) -> list[Event]:
        """The connector is Available after a stop: the session's ``blocked_after_stop_s`` is known."""
        key, state.blocked_by = state.blocked_by, None
        session = self._stopped(key)
        if session is None or session.blocked_ms is not None:
            return []
        session.blocked_ms = max(0, now_ms - session.stop.gw_ms)
        return self._amend(session, now_ms)

    def _faulted_after_stop(self, key: str, now_ms: int) -> list[Event]:
        """The connector went Faulted after a stop, before it was Available again: within the status window,
        the stop went into a fault (a 2.0.1 EVSE says so in its StatusNotification, after the Ended)."""
        session = self._stopped(key)
        if session is None or Flag.FAULTED_AT_STOP in session.flags:
            return []
        if now_ms - session.stop.gw_ms > self.config.status_window_ms:
            return []
        session.flag(Flag.FAULTED_AT_STOP)
        return self._amend(session, now_ms)

    def _stopped(self, key: str | None) -> SessionState | None:
        """The stopped session a connector waits on (``blocked_by``), written yet or not; None if forgotten."""
        session = (self.state.sessions.get(key) or self.state.closed.get(key)) if key else None
        return session if session is not None and session.stop is not None else None

    def _amend(self, session: SessionState, now_ms: int) -> list[Event]:
        """A change to a stopped session: a new revision when its row was already written (else its first
        row, when it is written, says it)."""
        if session.session_id in self.state.sessions or session.emitted is None:
            return []
        return self._reemit(session, now_ms)

    # --- lookups ---------------------------------------------------------------------------------

    def _open_with(self, tx: str, connector: int | None = None) -> list[SessionState]:
        """Sessions not emitted yet (open, or stopped and waiting for the window) that a frame naming ``tx`` on
        ``connector`` (``None``: not named) is about, the likeliest first (processors.transaction_identity)."""
        return transaction_identity.with_id(self.state.sessions.values(), tx, connector)

    def _closed_with(self, tx: str, connector: int | None = None) -> list[SessionState]:
        """Remembered sessions that a frame naming ``tx`` on ``connector`` is about, oldest first."""
        return transaction_identity.with_id(self.state.closed.values(), tx, connector)

    def _transaction_on(self, connector: int) -> str | None:
        if connector <= 0:
            return None
        key = self.state.connector(connector).tx
        session = self.state.sessions.get(key) if key else None
        return session.transaction_id if session is not None else None

    def _inferred_connector(self, now_ms: int) -> int | None:
        """For a stop without a known start: the one connector charging, or that just stopped, with no session."""
        candidates = []
        for key, state in self.state.connectors.items():
            left = state.left_charging
            recently_left = left is not None and now_ms - left.gw_ms <= self.config.status_window_ms
            if key > 0 and (_charging(state) or recently_left) and not state.tx:
                candidates.append(key)
        return candidates[0] if len(candidates) == 1 else None


def _deadlines(session: SessionState) -> list[tuple[int, str]]:
    if session.stopped:
        return [(session.emit_deadline, "emit")] if session.emit_deadline is not None else []
    out: list[tuple[int, str]] = []
    if session.available_deadline is not None:
        out.append((session.available_deadline, AVAILABLE))
    if session.age_deadline is not None:
        out.append((session.age_deadline, TIMEOUT))
    return out


def _fault_codes(state: ConnectorState | None) -> tuple[str, str]:
    fault = state.fault if state is not None else None
    return (fault.error_code, fault.vendor_error_code) if fault is not None else ("", "")


def _set_phase(session: SessionState, phase: str, now_ms: int) -> None:
    """The connector of an unstopped session now does ``phase`` (a status or a 2.0.1 chargingState): the
    time since the last change goes to the phase it ends (KPIS.md, Blocked and idle time)."""
    if session.phase_ms is not None and session.phase in PHASES and now_ms > session.phase_ms:
        session.phase_totals[PHASES.index(session.phase)] += now_ms - session.phase_ms
    session.phase = phase if phase in PHASES else ""
    session.phase_ms = now_ms if session.phase_ms is None else max(now_ms, session.phase_ms)
    if phase == Status.charging and session.first_charging_ms is None:
        session.first_charging_ms = now_ms


def _charging(state: ConnectorState) -> bool:
    return state.status == Status.charging or state.charging == Status.charging


def _attach_status(session: SessionState, left: LeftCharging) -> None:
    session.stop_status = left.status
    session.stop_error_code = left.error_code
    session.stop_status_ms = left.ms
    session.stop_status_known = True


def _resume(session: SessionState) -> None:
    session.available_deadline = session.available_ms = None
    session.flag(Flag.AVAILABLE_THEN_RESUMED)


def _after_available(session: SessionState, charger_ms: int | None) -> bool:
    """Something the charger stamped ``charger_ms`` happened after the Available that may close (or closed) the
    session, by the charger's clock; or nothing tells (no time). What happened before it is a backlog (an offline
    queue) of the session as it was: it amends the session, it never resumes or reopens it."""
    available_ms = session.available_ms
    if available_ms is None and session.stop_status == Status.available:
        available_ms = session.stop_status_ms  # a state written before available_ms: the Available it went to
    return available_ms is None or charger_ms is None or charger_ms > available_ms


def _metered_after_available(session: SessionState, item: MeterSamples) -> bool:
    """Samples that show the transaction went on after its Available: one of them metered after it."""
    return not item.readings or any(_after_available(session, r.at_ms) for r in item.readings)


def _energy_final(session: SessionState) -> bool:
    """True when meterStop settles the energy: no late sample can change it."""
    start = session.meter_start
    stop = session.stop.meter_stop if session.stop is not None else None
    return start is not None and stop is not None and 0 <= start <= stop


def _started_after(session: SessionState, stopped_ms: int | None) -> bool:
    return stopped_ms is not None and session.start_ms is not None and stopped_ms < session.start_ms


def _owner(closed: list[SessionState], stopped_ms: int | None) -> SessionState:
    """Of the remembered sessions with one transaction id, the one a stop at ``stopped_ms`` ends: the newest
    that started before it."""
    if stopped_ms is not None:
        before = [s for s in closed if s.start_ms is not None and s.start_ms <= stopped_ms]
        if before:
            return before[-1]
    return closed[-1]
