"""The correlator's state as JSON bytes, for the changelog-backed Faust table: :func:`dumps` writes the current
format, :func:`loads` reads every format ever written.

Format 3 (``{"v": 3, ...}``) names every field: an object per dataclass of :mod:`processors.state`, keyed by the
field's name, a field at its default left out (it reads back as its default, so a field added with a default
reads from every state written before it). Enums are written as their values; a status as the text the charger
sent (its meaning is read again from it). Two things stay positional, each with its layout declared once here: a
transactionData register sample (:data:`SAMPLE_LAYOUT`: hundreds per session, and it never grows) and a clock's
unexplained candidate (gateway ms, lag). The charge point's partition is the last key, so the worker can tell a
state's partition from its last bytes (:func:`partition_hint`).

Earlier formats: 2 (``"v": 2``) and 1 (no ``"v"``), read by :mod:`processors.legacy_state`. A format this code
does not know (a newer worker's, read after a downgrade) raises :class:`UnknownStateFormat`: the worker then starts
that charge point from an empty state rather than misread it.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any, Final, TypeVar

from processors import frame_json, legacy_state
from processors.clock import ClockState
from processors.energy import RegisterReducer, RegisterSample
from processors.inputs import StartDetails
from processors.protocols import DEFAULT, protocol_of
from processors.seq_no import Numbering
from processors.state import (
    AttemptState,
    ConnectorState,
    CorrelatorState,
    Emitted,
    LeftCharging,
    OpenFault,
    OpenOutage,
    OutageState,
    PendingAuthorize,
    PendingStart,
    PlugIn,
    SessionState,
    StopInfo,
)
from processors.vocabulary import Status, status_of
from schemas.records import ClosedBy

FORMAT: Final = 3
SAMPLE_LAYOUT: Final = ("at_ms", "value", "resolution", "mark")
"""A register sample's array: its trailing defaults (resolution 0, mark 0) left out."""
_PARTITION = "partition"

T = TypeVar("T")


class UnknownStateFormat(ValueError):
    """A state written in a format this code cannot read."""


def dumps(state: CorrelatorState) -> bytes:
    return json.dumps(to_dict(state), separators=(",", ":")).encode()


def loads(data: bytes | str) -> CorrelatorState:
    return from_dict(frame_json.loads(data))


def partition_hint(snapshot: bytes) -> int | None:
    """The partition a snapshot names in its last key (``..."partition":3}``; format 2: ``..."p":3}``), or None
    when it cannot be told so cheaply (the snapshot is then read whole)."""
    if not snapshot.endswith(b"}"):
        return None
    tail = snapshot[-32:]
    for key in (b'"partition":', b'"p":'):
        at = tail.rfind(key)
        if at >= 0:
            digits = tail[at + len(key):-1]
            return int(digits) if digits.isdigit() else None
    return None


# --- flat dataclasses: every field a JSON value ----------------------------------------------------------


def _defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, default) of each field; ``MISSING`` for a field without one."""
    out = []
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append((f.name, default))
    return tuple(out)


def _is_default(value: Any, default: Any) -> bool:
    # Same type as well as equal: 0.0 is not left out for a default of 0 (it would read back as an int).
    return value is default or (type(value) is type(default) and value == default)


def _out(obj: Any, spec: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    out = {}
    for name, default in spec:
        value = getattr(obj, name)
        if not _is_default(value, default):
            out[name] = value
    return out


def _in(cls: type[T], spec: tuple[tuple[str, Any], ...], data: dict[str, Any]) -> T:
    return cls(**{name: data[name] for name, _ in spec if name in data})


_REDUCER = _defaults(RegisterReducer)
_FAULT = _defaults(OpenFault)
_STOP = _defaults(StopInfo)
_AUTHORIZE = _defaults(PendingAuthorize)
_PLUGIN = _defaults(PlugIn)
_OUTAGE = _defaults(OpenOutage)
# Written by a rule of their own below: statuses (as sent), enums, nested values.
_SESSION_SPECIAL = frozenset({"mv", "td", "stop", "emitted", "stop_status", "stop_status_text", "phase", "protocol",
                              "signatures", "signed_state"})
SIGNATURES = "signatures"
"""A session's signed values (issue 25): :meth:`signed_meter.session.SessionSignatures.to_state` under this name."""
_SESSION = tuple((name, default) for name, default in _defaults(SessionState) if name not in _SESSION_SPECIAL)


def reducer_to_dict(reducer: RegisterReducer) -> dict[str, Any]:
    """A register reducer (a session's MeterValues) by field name, defaults left out."""
    return _out(reducer, _REDUCER)


def reducer_from_dict(data: dict[str, Any]) -> RegisterReducer:
    return _in(RegisterReducer, _REDUCER, data)


# --- the state ---------------------------------------------------------------------------------------------


def to_dict(state: CorrelatorState) -> dict[str, Any]:
    out: dict[str, Any] = {"v": FORMAT}
    if state.connectors:
        out["connectors"] = {str(k): _connector_out(c) for k, c in state.connectors.items()}
    if state.pending_starts:
        out["pending_starts"] = {k: {"gw_ms": p.gw_ms, "event_id": p.event_id, "start": _start_out(p.start)}
                                 for k, p in state.pending_starts.items()}
    if state.sessions:
        out["sessions"] = {k: _session_out(s) for k, s in state.sessions.items()}
    if state.closed:
        out["closed"] = {k: _session_out(s) for k, s in state.closed.items()}
    for name, value in (("aliases", state.aliases), ("meter_hints", state.meter_hints), ("naming", state.naming)):
        if value:
            out[name] = value
    if state.seq_no is not None:
        out["seq_no"] = state.seq_no
    if state.seq_numbering is not None:
        out["seq_numbering"] = state.seq_numbering.value
    if not state.clock.is_empty():
        out["clock"] = {"lag_ms": state.clock.lag_ms,
                        "candidate": list(state.clock.candidate) if state.clock.candidate is not None else None}
    if not state.outages.is_empty():
        out["outages"] = _outages_out(state.outages)
    if not state.attempts.is_empty():
        out["attempts"] = {"authorizes": [_out(a, _AUTHORIZE) for a in state.attempts.authorizes],
                           "plugins": {str(k): _out(p, _PLUGIN) for k, p in state.attempts.plugins.items()}}
    out["offset"] = state.offset
    out[_PARTITION] = state.partition  # last: partition_hint reads it from the end
    return out


def from_dict(data: dict[str, Any]) -> CorrelatorState:
    version = data.get("v")
    if version == FORMAT:
        return _from_v3(data)
    if version == 2:
        return legacy_state.from_v2(data)
    if version is None:
        return legacy_state.from_v1(data)
    raise UnknownStateFormat(f"a correlator state of format {version!r}; this code reads formats 1 to {FORMAT}")


def _from_v3(data: dict[str, Any]) -> CorrelatorState:
    clock = data.get("clock")
    candidate = clock.get("candidate") if clock else None
    attempts = data.get("attempts")
    return CorrelatorState(
        connectors={int(k): _connector_in(c) for k, c in data.get("connectors", {}).items()},
        pending_starts={k: PendingStart(p["gw_ms"], p["event_id"], _start_in(p["start"]))
                        for k, p in data.get("pending_starts", {}).items()},
        sessions={k: _session_in(s) for k, s in data.get("sessions", {}).items()},
        closed={k: _session_in(s) for k, s in data.get("closed", {}).items()},
        aliases=dict(data.get("aliases", {})),
        meter_hints=dict(data.get("meter_hints", {})),
        seq_no=data.get("seq_no"),
        seq_numbering=Numbering(data["seq_numbering"]) if "seq_numbering" in data else None,
        clock=ClockState(clock.get("lag_ms"), (candidate[0], candidate[1]) if candidate else None) if clock else ClockState(),
        naming=list(data.get("naming", ())),
        outages=_outages_in(data["outages"]) if "outages" in data else OutageState(),
        attempts=AttemptState(
            authorizes=[_in(PendingAuthorize, _AUTHORIZE, a) for a in attempts.get("authorizes", ())],
            plugins={int(k): _in(PlugIn, _PLUGIN, p) for k, p in attempts.get("plugins", {}).items()},
        ) if attempts else AttemptState(),
        offset=data.get("offset", -1),
        partition=data.get(_PARTITION),
    )


# --- connectors ----------------------------------------------------------------------------------------------


def _connector_out(c: ConnectorState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.status_text:
        out["status"] = c.status_text  # as sent; its meaning is read again from it
    if c.tx is not None:
        out["tx"] = c.tx
    if c.charging is not Status.NONE:
        out["charging"] = c.charging.value
    if c.left_charging is not None:
        left = c.left_charging
        out["left_charging"] = {"status": left.status_text, "error_code": left.error_code, "gw_ms": left.gw_ms,
                                "ms": left.ms}
    if c.fault is not None:
        out["fault"] = _out(c.fault, _FAULT)
    if c.blocked_by is not None:
        out["blocked_by"] = c.blocked_by
    if c.problems:
        out["problems"] = c.problems
    return out


def _connector_in(data: dict[str, Any]) -> ConnectorState:
    status = data.get("status", "")
    left, fault = data.get("left_charging"), data.get("fault")
    return ConnectorState(
        status=status_of(status), status_text=status, tx=data.get("tx"), charging=status_of(data.get("charging", "")),
        left_charging=LeftCharging(status_of(left["status"]), left["status"], left["error_code"], left["gw_ms"],
                                   left["ms"]) if left else None,
        fault=_in(OpenFault, _FAULT, fault) if fault else None,
        blocked_by=data.get("blocked_by"), problems=list(data.get("problems", ())),
    )


# --- sessions ------------------------------------------------------------------------------------------------


def _start_out(s: StartDetails) -> dict[str, Any]:
    out: dict[str, Any] = {"connector_id": s.connector_id, "id_tag": s.id_tag, "meter_start": s.meter_start,
                           "started_ms": s.started_ms, "fingerprint": s.fingerprint}
    if s.flags:
        out["flags"] = sorted(s.flags)
    if s.id_token_type:
        out["id_token_type"] = s.id_token_type
    return out


def _start_in(data: dict[str, Any]) -> StartDetails:
    return StartDetails(data["connector_id"], data["id_tag"], data["meter_start"], data["started_ms"], data["fingerprint"],
                        frozenset(data.get("flags", ())), data.get("id_token_type", ""))


def _sample_out(sample: RegisterSample) -> list[Any]:
    items = [getattr(sample, name) for name in SAMPLE_LAYOUT]
    while len(items) > 2 and not items[-1]:
        items.pop()  # a trailing 0 (no resolution known, no break)
    return items


def _sample_in(items: list[Any]) -> RegisterSample:
    return RegisterSample(**dict(zip(SAMPLE_LAYOUT, items)))


def _session_out(s: SessionState) -> dict[str, Any]:
    out = _out(s, _SESSION)
    if s.stop_status_text:
        out["stop_status"] = s.stop_status_text  # as sent; its meaning is read again from it
    if s.phase is not Status.NONE:
        out["phase"] = s.phase.value
    if s.protocol != DEFAULT:
        out["protocol"] = s.protocol.version  # left out: the default protocol
    mv = reducer_to_dict(s.mv)
    if mv:
        out["mv"] = mv
    if s.td:
        out["td"] = [_sample_out(sample) for sample in s.td]
    if s.stop is not None:
        out["stop"] = _out(s.stop, _STOP)
    if s.signed_state is not None:
        out[SIGNATURES] = s.signed_state  # never decoded since it was read: written back as it was
    elif s.signatures.verdicts:
        out[SIGNATURES] = s.signatures.to_state()
    if s.emitted is not None:
        e = s.emitted
        out["emitted"] = {"revision": e.revision, "version": e.version, "received_ms": e.received_ms,
                          "closed_by": e.closed_by.value, "energy_wh": e.energy_wh, "duration_s": e.duration_s,
                          "digest": e.digest}
    return out


def _session_in(data: dict[str, Any]) -> SessionState:
    session = _in(SessionState, _SESSION, data)
    stop_status = data.get("stop_status", "")
    session.stop_status, session.stop_status_text = status_of(stop_status), stop_status
    session.phase = status_of(data.get("phase", ""))
    session.protocol = protocol_of(data.get("protocol", DEFAULT.version))
    if "mv" in data:
        session.mv = reducer_from_dict(data["mv"])
    if "td" in data:
        session.td = [_sample_in(items) for items in data["td"]]
    if "stop" in data:
        session.stop = _in(StopInfo, _STOP, data["stop"])
    if SIGNATURES in data:
        session.signed_state = data[SIGNATURES]  # decoded when needed (processors.signed_samples.signatures_of)
    if "emitted" in data:
        e = data["emitted"]
        session.emitted = Emitted(e["revision"], e["version"], e["received_ms"], ClosedBy(e["closed_by"]), e["energy_wh"],
                                  e["duration_s"], e["digest"])
    return session


# --- outages ---------------------------------------------------------------------------------------------------


def _outages_out(o: OutageState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if o.connections:
        out["connections"] = o.connections
    if o.newest or o.newest_ms:
        out["newest"], out["newest_ms"] = o.newest, o.newest_ms
    if o.closed:
        out["closed"] = o.closed
    if o.offline_ms is not None:
        out["offline_ms"] = o.offline_ms
    if o.ports:
        out["ports"] = o.ports
    if o.open:
        out["open"] = {str(k): _out(v, _OUTAGE) for k, v in o.open.items()}
    if o.last:
        out["last"] = {str(k): _out(v, _OUTAGE) for k, v in o.last.items()}
    return out


def _outages_in(data: dict[str, Any]) -> OutageState:
    return OutageState(
        connections=dict(data.get("connections", {})), newest=data.get("newest", ""), newest_ms=data.get("newest_ms", 0),
        closed=list(data.get("closed", ())), offline_ms=data.get("offline_ms"), ports=list(data.get("ports", ())),
        open={int(k): _in(OpenOutage, _OUTAGE, v) for k, v in data.get("open", {}).items()},
        last={int(k): _in(OpenOutage, _OUTAGE, v) for k, v in data.get("last", {}).items()},
    )
