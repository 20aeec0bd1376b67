"""The correlator's state, typed: one charge point's connectors, pending starts, open sessions, the sessions it
still remembers after emitting them, and what its trackers keep (its clock, charge attempts, outages). Plain data
(dataclasses, a few helpers that only read or set their own fields); the rules that change it are the trackers'.

Persisted as JSON in the changelog-backed Faust table by :mod:`processors.state_codec` (named fields, a version),
which reads every state ever written (:mod:`processors.legacy_state`). A field added here is read as its default
from a state written before it: give every new field a default.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from processors.clock import ClockState
from processors.energy import RegisterReducer, RegisterSample
from processors.inputs import StartDetails
from processors.protocols import DEFAULT, Protocol
from processors.seq_no import Numbering
from processors.vocabulary import PHASES, Status
from schemas.flags import Flag
from schemas.records import ClosedBy
from signed_meter.session import SessionSignatures


def session_id(transaction_id: str, opened_gw_ms: int, repeat: int = 0) -> str:
    """A session's id: the transaction id and the gateway time of the frame that opened the session
    (its start, or its stop when no start was seen). Stable across replays; two sessions that share a
    transaction id (chargers reuse them) differ. ``repeat`` n > 0: the n-th other session of that transaction id
    opened in that millisecond (:meth:`CorrelatorState.new_session_id`)."""
    text = f"{transaction_id}|{opened_gw_ms}" if not repeat else f"{transaction_id}|{opened_gw_ms}|{repeat}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- connectors --------------------------------------------------------------------------------------


@dataclass(slots=True)
class LeftCharging:
    """The last move of a connector out of Charging (the seed: Charging -> Finishing, ...)."""

    status: Status  # where it went (1.6 status; 2.0.1 chargingState)
    status_text: str  # as the charger said it: the session's ``stop_status``
    error_code: str
    gw_ms: int
    ms: int  # charger clock (the gateway's when the charger gave none)


@dataclass(slots=True)
class OpenFault:
    error_code: str
    ms: int
    gw_ms: int
    tx: str | None
    vendor_error_code: str
    info: str
    stale: bool  # began with a replayed old timestamp (Alfen after reboot)
    # OCPP 2.0.1: a Faulted status's fault whose began event waits for a problem to name it (processors.evse_faults),
    # and the frame that began it.
    announced: bool = True
    event_id: str = ""


@dataclass(slots=True)
class ConnectorState:
    status: Status = Status.NONE  # its last status (connector 0: the whole charge point)
    status_text: str = ""  # that status as the charger sent it (the next status row's ``previous_status``)
    tx: str | None = None  # session_id of the open session on this connector
    charging: Status = Status.NONE  # OCPP 2.0.1 chargingState of its transaction (1.6 says it in ``status``)
    left_charging: LeftCharging | None = None
    fault: OpenFault | None = None
    blocked_by: str | None = None  # session_id of a stopped session waiting for this connector's Available
    problems: list[str] = field(default_factory=list)  # OCPP 2.0.1: codes of the component problems active on it, oldest first

    @property
    def charging_now(self) -> bool:
        """It says it charges (1.6 status, or 2.0.1 chargingState)."""
        return self.status is Status.CHARGING or self.charging is Status.CHARGING


# --- sessions ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class PendingStart:
    """A 1.6 StartTransaction waiting for the answer that names its transaction."""

    gw_ms: int
    event_id: str
    start: StartDetails


@dataclass(slots=True)
class StopInfo:
    """What the stop said."""

    stopped_ms: int | None
    gw_ms: int
    meter_stop: float | None
    has_meter_stop: bool
    reason: str
    fingerprint: str | None


@dataclass(slots=True)
class Emitted:
    """What the newest revision of an emitted session said."""

    revision: int
    version: int
    received_ms: int  # of the first emission: every revision keeps it (the table's partition key)
    closed_by: ClosedBy
    energy_wh: float | None
    duration_s: float | None
    digest: str  # the row's content without version, revision and what they imply


@dataclass(slots=True)
class SessionState:
    transaction_id: str
    session_id: str
    connector: int | None
    id_tag: str
    start_ms: int | None
    start_gw_ms: int | None
    meter_start: float | None
    start_fingerprint: str | None
    flags: list[str] = field(default_factory=list)
    mv: RegisterReducer = field(default_factory=RegisterReducer)
    td: list[RegisterSample] = field(default_factory=list)  # the stop's transactionData register samples
    peak_w: float | None = None
    soc: list[float | None] = field(default_factory=lambda: [None, None])  # first and last
    age_deadline: int | None = None
    available_deadline: int | None = None
    stop: StopInfo | None = None
    emit_deadline: int | None = None
    stop_status: Status = Status.NONE  # where its connector went from Charging
    stop_status_text: str = ""  # the same, as the charger said it (the row's ``stop_status``)
    stop_error_code: str = ""
    stop_status_ms: int | None = None
    stop_status_known: bool = False
    closed_gw_ms: int | None = None  # when it closed (stop, or a guess)
    protocol: Protocol = DEFAULT  # of the frame that opened it
    seq_no: int | None = None  # OCPP 2.0.1: the highest TransactionEvent seqNo of this transaction
    # KPIs (KPIS.md), gateway clock: the attempt's start (its Authorize or plug-in, when earlier than the
    # start), the first Charging, the charging phase and the time spent in each, the bay blocked after the stop.
    attempt_ms: int | None = None
    first_charging_ms: int | None = None
    phase: Status = Status.NONE  # one of PHASES, or NONE (another state, or none known)
    phase_ms: int | None = None  # since when; None: no status known since the start
    phase_totals: list[int] = field(default_factory=lambda: [0, 0, 0])  # ms in each of PHASES, up to phase_ms
    blocked_ms: int | None = None  # from the stop until Available; None until known
    attempt_key: str = ""  # of the attempt row last written for it (processors.attempts.attempt_key)
    emitted: Emitted | None = None
    # The charger's clock (lag, processors.clock) as known when the start and the stop came; None: nothing shown.
    clock_start: int | None = None
    clock_stop: int | None = None
    available_ms: int | None = None  # charger time of the Available that may close it (or closed it): a backlog is older
    id_token_type: str = ""  # how its driver identified (StartDetails.id_token_type)
    # Its signed meter values, each verified once on arrival (issue 25; processors.signed_samples). A state read back
    # keeps them as written (``signed_state``) until something needs them: reading a record again costs a parse, and
    # most remembered sessions are never touched again.
    signatures: SessionSignatures = field(default_factory=SessionSignatures)
    signed_state: dict[str, Any] | None = None

    def flag(self, *flags: str) -> None:
        for flag in flags:
            if flag not in self.flags:
                self.flags.append(flag)

    def unflag(self, flag: str) -> None:
        if flag in self.flags:
            self.flags.remove(flag)

    @property
    def stopped(self) -> bool:
        return self.stop is not None

    def signed(self) -> SessionSignatures:
        """Its signed values: decoded on first use from the state they were read from (a state that cannot be read
        as one, which only a bug writes, reads as none rather than fail every frame of its charger)."""
        if self.signed_state is not None:
            try:
                self.signatures = SessionSignatures.from_state(self.signed_state)
            except (KeyError, TypeError, ValueError, AttributeError):
                self.signatures = SessionSignatures()
            self.signed_state = None
        return self.signatures

    @property
    def memory_key(self) -> str:
        """Its key among the remembered sessions (:attr:`CorrelatorState.closed`): its id, or, for a session the
        first worker remembered (no id), its transaction's."""
        return self.session_id or f"legacy:{self.transaction_id}"

    def set_phase(self, phase: Status, now_ms: int) -> None:
        """Its connector now does ``phase`` (a status or a 2.0.1 chargingState): the time since the last change
        goes to the phase it ends (KPIS.md, Blocked and idle time)."""
        if self.phase_ms is not None and self.phase in PHASES and now_ms > self.phase_ms:
            self.phase_totals[PHASES.index(self.phase)] += now_ms - self.phase_ms
        self.phase = phase if phase in PHASES else Status.NONE
        self.phase_ms = now_ms if self.phase_ms is None else max(now_ms, self.phase_ms)
        if phase is Status.CHARGING and self.first_charging_ms is None:
            self.first_charging_ms = now_ms

    def attach_status(self, left: LeftCharging) -> None:
        """Its connector's move out of Charging is its ``stop_status``."""
        self.stop_status, self.stop_status_text = left.status, left.status_text
        self.stop_error_code = left.error_code
        self.stop_status_ms = left.ms
        self.stop_status_known = True

    def resume(self) -> None:
        """An Available did not end it after all: the transaction went on."""
        self.available_deadline = self.available_ms = None
        self.flag(Flag.AVAILABLE_THEN_RESUMED)

    def after_available(self, charger_ms: int | None) -> bool:
        """Something the charger stamped ``charger_ms`` happened after the Available that may close (or closed) the
        session, by the charger's clock; or nothing tells (no time). What happened before it is a backlog (an
        offline queue) of the session as it was: it amends the session, it never resumes or reopens it."""
        available_ms = self.available_ms
        if available_ms is None and self.stop_status is Status.AVAILABLE:
            available_ms = self.stop_status_ms  # a state written before available_ms: the Available it went to
        return available_ms is None or charger_ms is None or charger_ms > available_ms

    def started_after(self, stopped_ms: int | None) -> bool:
        """A stop stamped ``stopped_ms`` (charger clock) came from before this session began."""
        return stopped_ms is not None and self.start_ms is not None and stopped_ms < self.start_ms

    @property
    def energy_final(self) -> bool:
        """meterStop settles the energy: no late sample can change it."""
        start = self.meter_start
        stop = self.stop.meter_stop if self.stop is not None else None
        return start is not None and stop is not None and 0 <= start <= stop


# --- charge attempts (processors.attempts) ---------------------------------------------------------


@dataclass(slots=True)
class PendingAuthorize:
    gw_ms: int
    event_id: str
    message_id: str
    id_tag: str
    accepted: bool | None = None  # None until answered (or when the answer said nothing readable)
    ocpp_version: str = DEFAULT.version  # of its frame


@dataclass(slots=True)
class PlugIn:
    """A connector plugged in (Preparing / Occupied) with no transaction yet."""

    gw_ms: int  # when the attempt began: the plug-in, or an Authorize of its driver before it
    event_id: str  # the plug-in's frame (the attempt's identity)
    id_tag: str = ""  # of an Authorize that joined it
    rejected: bool = False  # that Authorize was refused
    ocpp_version: str = DEFAULT.version  # of its frame

    def join(self, pending: PendingAuthorize) -> None:
        """An Authorize of this plug-in's driver: its idTag names the attempt (a refused one wins: it says why
        the driver left), and the attempt began with it if it came first."""
        if not self.id_tag or pending.accepted is False:
            self.id_tag, self.rejected = pending.id_tag, pending.accepted is False
        self.gw_ms = min(self.gw_ms, pending.gw_ms)


@dataclass(slots=True)
class AttemptState:
    authorizes: list[PendingAuthorize] = field(default_factory=list)  # oldest first
    plugins: dict[int, PlugIn] = field(default_factory=dict)  # connector -> its open plug-in

    def is_empty(self) -> bool:
        return not (self.authorizes or self.plugins)


# --- port outages (processors.outages) -------------------------------------------------------------


@dataclass(slots=True)
class OpenOutage:
    outage_id: str
    started_ms: int
    cause: str  # an OutageCause's value
    error_code: str
    vendor_error_code: str
    version: int  # of the row last written for it
    ended_ms: int | None = None


@dataclass(slots=True)
class OutageState:
    connections: dict[str, int] = field(default_factory=dict)  # open connection id -> gateway ms of its last frame
    newest: str = ""  # the connection opened last
    newest_ms: int = 0  # when it opened
    closed: list[str] = field(default_factory=list)  # recently closed connection ids, oldest first
    offline_ms: int | None = None  # since when the charger has had no open connection
    ports: list[int] = field(default_factory=list)  # connector ids >= 1 the charger reported, in order seen
    open: dict[int, OpenOutage] = field(default_factory=dict)  # port -> its open outage
    last: dict[int, OpenOutage] = field(default_factory=dict)  # port -> its last ended outage (it may rejoin)

    def is_empty(self) -> bool:
        return not (self.connections or self.closed or self.ports or self.open or self.offline_ms is not None)


# --- the charge point --------------------------------------------------------------------------------


@dataclass(slots=True)
class CorrelatorState:
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    pending_starts: dict[str, PendingStart] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)  # open (or stopped, not emitted), by session_id
    closed: dict[str, SessionState] = field(default_factory=dict)  # emitted and remembered, by memory_key, oldest first
    aliases: dict[str, str] = field(default_factory=dict)  # transaction id -> the one it duplicates
    meter_hints: dict[str, int] = field(default_factory=dict)  # unknown transaction id -> connector of its MeterValues
    seq_no: int | None = None  # OCPP 2.0.1: the last TransactionEvent seqNo of any transaction
    seq_numbering: Numbering | None = None  # OCPP 2.0.1: how the station counts seqNo (processors.seq_no), None: not shown
    clock: ClockState = field(default_factory=ClockState)  # what the charger's frames showed of its clock
    naming: list[int] = field(default_factory=list)  # connectors whose fault waits for its name (processors.evse_faults)
    outages: OutageState = field(default_factory=OutageState)
    attempts: AttemptState = field(default_factory=AttemptState)
    offset: int = -1  # Kafka offset of the last frame applied (pipeline: frames are never applied twice)
    partition: int | None = None

    def new_session_id(self, transaction_id: str, opened_gw_ms: int) -> str:
        """The id of a session opening now, distinct from every session this charge point holds or remembers.
        A reused transaction id can open two sessions in one gateway millisecond (the stop of its previous
        session, then the start that reuses it, queued back to back): with :func:`session_id` alone both had one
        id and revision 0, and the table kept one of them. Ids of every other session are unchanged."""
        sid, repeat = session_id(transaction_id, opened_gw_ms), 0
        while sid in self.sessions or sid in self.closed:
            repeat += 1
            sid = session_id(transaction_id, opened_gw_ms, repeat)
        return sid

    def connector(self, connector_id: int) -> ConnectorState:
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState()
        return state
