"""The correlator's state, typed: one charge point's connectors, pending starts, open sessions and the
sessions it still remembers after emitting them. Persisted as JSON in the changelog-backed Faust table.

:meth:`CorrelatorState.from_json` reads every format ever persisted: the current one (``"v": 2``) and
the plain-dict state of the first worker (no ``"v"``), so a worker upgraded in place continues from the
changelog its predecessor wrote.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from processors.attempts import AttemptState
from processors.clock import ClockState
from processors.energy import RegisterReducer
from processors.inputs import StartDetails
from processors.outages import OutageState
from schemas.records import Session

STATE_FORMAT = 2
# What a revision's digest leaves out: it changes with every revision, or follows from one that does.
_NOT_CONTENT = frozenset({"version", "revision", "received_at", "previous_energy_wh", "previous_duration_s"})
# Fields of the row added after digests were persisted: left out while empty, so a session remembered across the
# upgrade keeps its digest (and is not re-emitted for a field it never had).
_ADDED_LATER = ("id_token_type",)


def session_id(transaction_id: str, opened_gw_ms: int) -> str:
    """A session's id: the transaction id and the gateway time of the frame that opened the session
    (its start, or its stop when no start was seen). Stable across replays; two sessions that share a
    transaction id (chargers reuse them) differ."""
    return hashlib.sha256(f"{transaction_id}|{opened_gw_ms}".encode()).hexdigest()[:16]


def record_digest(record: Session) -> str:
    """The content of an emitted row: a revision is emitted only when it differs."""
    content = record.model_dump(mode="json", exclude=set(_NOT_CONTENT))
    for name in _ADDED_LATER:
        if not content[name]:
            del content[name]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(slots=True)
class LeftCharging:
    """The last move of a connector out of Charging (the seed: Charging -> Finishing, ...)."""

    status: str
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
    # Appended (states persisted before hold the seven above). OCPP 2.0.1: a Faulted status's fault whose began
    # event waits for a problem to name it (processors.evse_faults), and the frame that began it.
    announced: bool = True
    event_id: str = ""


@dataclass(slots=True)
class ConnectorState:
    status: str = ""
    tx: str | None = None  # session_id of the open session on this connector
    charging: str = ""  # OCPP 2.0.1 chargingState of its transaction (1.6 says it in ``status``)
    left_charging: LeftCharging | None = None
    fault: OpenFault | None = None
    blocked_by: str | None = None  # session_id of a stopped session waiting for this connector's Available
    problems: list[str] = field(default_factory=list)  # OCPP 2.0.1: codes of the component problems active on it, oldest first


@dataclass(slots=True)
class PendingStart:
    """A 1.6 StartTransaction waiting for the answer that names its transaction."""

    gw_ms: int
    event_id: str
    start: StartDetails


@dataclass(slots=True)
class StopInfo:
    """What the StopTransaction said."""

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
    closed_by: str
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
    td: list[list[Any]] = field(default_factory=list)  # transactionData register samples [at_ms, Wh, resolution]
    peak_w: float | None = None
    soc: list[float | None] = field(default_factory=lambda: [None, None])
    age_deadline: int | None = None
    available_deadline: int | None = None
    stop: StopInfo | None = None
    emit_deadline: int | None = None
    stop_status: str = ""
    stop_error_code: str = ""
    stop_status_ms: int | None = None
    stop_status_known: bool = False
    closed_gw_ms: int | None = None  # when it closed (stop, or a guess)
    ocpp_version: str = "ocpp1.6"  # of the frame that opened it
    seq_no: int | None = None  # OCPP 2.0.1: the highest TransactionEvent seqNo of this transaction
    # KPIs (KPIS.md), gateway clock: the attempt's start (its Authorize or plug-in, when earlier than the
    # start), the first Charging, the charging phase and the time spent in each, the bay blocked after the stop.
    attempt_ms: int | None = None
    first_charging_ms: int | None = None
    phase: str = ""  # Charging, SuspendedEV, SuspendedEVSE, or '' (another state, or none known)
    phase_ms: int | None = None  # since when; None: no status known since the start
    phase_totals: list[int] = field(default_factory=lambda: [0, 0, 0])  # ms in each of PHASES, up to phase_ms
    blocked_ms: int | None = None  # from the stop until Available; None until known
    attempt_key: str = ""  # of the attempt row last written for it (processors.attempts.attempt_key)
    emitted: Emitted | None = None
    # The charger's clock (lag, processors.clock) as known when the start and the stop came; None: nothing shown.
    clock_start: int | None = None
    clock_stop: int | None = None
    available_ms: int | None = None  # charger time of the Available that may close it (or closed it): a backlog is older
    id_token_type: str = ""  # how its driver identified (StartDetails.id_token_type); appended: states before it lack it

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


@dataclass(slots=True)
class CorrelatorState:
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    pending_starts: dict[str, PendingStart] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)  # open (or stopped, not emitted), by session_id
    closed: dict[str, SessionState] = field(default_factory=dict)  # emitted and remembered, by session_id, oldest first
    aliases: dict[str, str] = field(default_factory=dict)  # transaction id -> the one it duplicates
    meter_hints: dict[str, int] = field(default_factory=dict)  # unknown transaction id -> connector of its MeterValues
    seq_no: int | None = None  # OCPP 2.0.1: the last TransactionEvent seqNo of any transaction
    seq_numbering: str | None = None  # OCPP 2.0.1: how the station counts seqNo (processors.seq_no), None: not shown
    clock: ClockState = field(default_factory=ClockState)  # what the charger's frames showed of its clock
    naming: list[int] = field(default_factory=list)  # connectors whose fault waits for its name (processors.evse_faults)
    outages: OutageState = field(default_factory=OutageState)
    attempts: AttemptState = field(default_factory=AttemptState)
    offset: int = -1  # Kafka offset of the last frame applied (pipeline: frames are never applied twice)
    partition: int | None = None

    def connector(self, connector_id: int) -> ConnectorState:
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState()
        return state

    # --- JSON ------------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "CorrelatorState":
        return cls.from_dict(json.loads(data))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_FORMAT,
            "connectors": {str(k): _connector_out(c) for k, c in self.connectors.items()},
            "pending_starts": {k: [p.gw_ms, p.event_id, _start_out(p.start)] for k, p in self.pending_starts.items()},
            "sessions": {k: _session_out(s) for k, s in self.sessions.items()},
            "closed": {k: _session_out(s) for k, s in self.closed.items()},
            "aliases": self.aliases,
            "meter_hints": self.meter_hints,
            "seq_no": self.seq_no,
            # Written only when they hold something, so a state without them costs what it did before.
            **({"seq_numbering": self.seq_numbering} if self.seq_numbering is not None else {}),
            **({"clock": self.clock.to_list()} if not self.clock.is_empty() else {}),
            **({"naming": self.naming} if self.naming else {}),
            **({"outages": self.outages.to_dict()} if not self.outages.is_empty() else {}),
            **({"attempts": self.attempts.to_dict()} if not self.attempts.is_empty() else {}),
            "offset": self.offset,
            "p": self.partition,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorrelatorState":
        if data.get("v") != STATE_FORMAT:
            from processors.legacy_state import from_legacy

            return from_legacy(data)
        return cls(
            connectors={int(k): _connector_in(c) for k, c in data["connectors"].items()},
            pending_starts={k: PendingStart(p[0], p[1], _start_in(p[2])) for k, p in data["pending_starts"].items()},
            sessions={k: _session_in(s) for k, s in data["sessions"].items()},
            closed={k: _session_in(s) for k, s in data["closed"].items()},
            aliases=dict(data.get("aliases", {})),
            meter_hints=dict(data.get("meter_hints", {})),
            seq_no=data.get("seq_no"),
            seq_numbering=data.get("seq_numbering"),
            clock=ClockState.from_list(data.get("clock")),
            naming=list(data.get("naming", ())),
            outages=OutageState.from_dict(data["outages"]) if "outages" in data else OutageState(),
            attempts=AttemptState.from_dict(data["attempts"]) if "attempts" in data else AttemptState(),
            offset=data.get("offset", -1),
            partition=data.get("p"),
        )


def _connector_out(c: ConnectorState) -> dict[str, Any]:
    out: dict[str, Any] = {"status": c.status, "tx": c.tx}
    if c.charging:
        out["charging"] = c.charging
    if c.left_charging is not None:
        lc = c.left_charging
        out["left"] = [lc.status, lc.error_code, lc.gw_ms, lc.ms]
    if c.fault is not None:
        f = c.fault
        out["fault"] = [f.error_code, f.ms, f.gw_ms, f.tx, f.vendor_error_code, f.info, f.stale, f.announced, f.event_id]
    if c.blocked_by is not None:
        out["blocked_by"] = c.blocked_by
    if c.problems:
        out["problems"] = c.problems
    return out


def _connector_in(data: dict[str, Any]) -> ConnectorState:
    left = data.get("left")
    fault = data.get("fault")
    return ConnectorState(
        status=data.get("status", ""), tx=data.get("tx"), charging=data.get("charging", ""),
        left_charging=LeftCharging(*left) if left else None,
        fault=OpenFault(*fault) if fault else None, blocked_by=data.get("blocked_by"), problems=list(data.get("problems", ())),
    )


def _start_out(s: StartDetails) -> list[Any]:
    out = [s.connector_id, s.id_tag, s.meter_start, s.started_ms, s.fingerprint, sorted(s.flags)]
    return out + [s.id_token_type] if s.id_token_type else out


def _start_in(data: list[Any]) -> StartDetails:
    # A 7th item, the token type, came later: pending starts persisted before it have 6.
    return StartDetails(data[0], data[1], data[2], data[3], data[4], frozenset(data[5]), data[6] if len(data) > 6 else "")


_SESSION_SCALARS = ("transaction_id", "session_id", "connector", "id_tag", "start_ms", "start_gw_ms", "meter_start",
                    "start_fingerprint", "flags", "td", "peak_w", "soc", "age_deadline", "available_deadline",
                    "emit_deadline", "stop_status", "stop_error_code", "stop_status_ms", "stop_status_known",
                    "closed_gw_ms", "ocpp_version", "seq_no", "attempt_ms", "first_charging_ms", "phase", "phase_ms",
                    "phase_totals", "blocked_ms", "attempt_key", "id_token_type")
# Written only when set: most sessions never need them, and a state is written at every flush.
_SESSION_OPTIONAL = ("clock_start", "clock_stop", "available_ms")


def _session_out(s: SessionState) -> dict[str, Any]:
    out = {name: getattr(s, name) for name in _SESSION_SCALARS}
    for name in _SESSION_OPTIONAL:
        value = getattr(s, name)
        if value is not None:
            out[name] = value
    out["mv"] = s.mv.to_state()
    if s.stop is not None:
        st = s.stop
        out["stop"] = [st.stopped_ms, st.gw_ms, st.meter_stop, st.has_meter_stop, st.reason, st.fingerprint]
    if s.emitted is not None:
        e = s.emitted
        out["emitted"] = [e.revision, e.version, e.received_ms, e.closed_by, e.energy_wh, e.duration_s, e.digest]
    return out


def _session_in(data: dict[str, Any]) -> SessionState:
    session = SessionState(**{name: data[name] for name in _SESSION_SCALARS + _SESSION_OPTIONAL if name in data})
    session.mv = RegisterReducer.from_state(data.get("mv"))
    if data.get("stop"):
        session.stop = StopInfo(*data["stop"])
    if data.get("emitted"):
        session.emitted = Emitted(*data["emitted"])
    return session
