"""States written by earlier workers, read into the typed :class:`~processors.state.CorrelatorState`. Changelogs
written before an upgrade hold them, and a worker upgraded in place continues from them
(:func:`processors.state_codec.loads` picks the reader by the state's ``"v"``).

- **Format 2** (``"v": 2``, issues #9 to #24): dicts of named scalars, with positional arrays for the nested
  values (a connector's ``left`` and ``fault``, a pending start, a session's ``stop``, ``emitted`` and ``mv``, the
  clock, short keys for attempts and outages). Each array's layout is written out below, in the order the code of
  that time wrote it: a layout grew only at its end, so a shorter array is an older writer's.
- **Format 1** (no ``"v"``, the first worker): plain dicts with string keys. Its emitted sessions were rows without
  a ``session_id`` (the column came with migration 3 and reads ``''`` for them), so a remembered session keeps
  ``session_id`` ``''``: a late stop amends the very row it wrote. Its open sessions have no row yet and get the id
  of :func:`processors.state.session_id`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from processors import ocpp16, values
from processors.clock import ClockState
from processors.energy import RegisterReducer, RegisterSample
from processors.inputs import StartDetails
from processors.protocols import DEFAULT, protocol_of
from processors.seq_no import Numbering
from processors.session_record import record_digest
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
    session_id,
)
from processors.vocabulary import status_of
from schemas.base import datetime_to_ms
from schemas.records import ClosedBy, Session

# --- format 2: the positional layouts, as that code wrote them --------------------------------------------

REDUCER_V2: Final = ("first", "prev", "total", "suspect", "last_at_ms", "count", "resets", "dropouts", "out_of_order",
                     "peak_power_w", "first_at_ms", "resolution", "suspect_reset", "rebases", "dips", "in_break",
                     "breaks")
"""A register reducer (``mv``): the first ten fields, then fifteen, then seventeen, as writers grew."""
SAMPLE_V2: Final = ("at_ms", "value", "resolution", "mark")
"""A transactionData sample (``td``): (ms, Wh), then with its resolution, then with a break mark when it has one."""
LEFT_V2: Final = ("status", "error_code", "gw_ms", "ms")
FAULT_V2: Final = ("error_code", "ms", "gw_ms", "tx", "vendor_error_code", "info", "stale", "announced", "event_id")
START_V2: Final = ("connector_id", "id_tag", "meter_start", "started_ms", "fingerprint", "flags", "id_token_type")
STOP_V2: Final = ("stopped_ms", "gw_ms", "meter_stop", "has_meter_stop", "reason", "fingerprint")
EMITTED_V2: Final = ("revision", "version", "received_ms", "closed_by", "energy_wh", "duration_s", "digest")
AUTHORIZE_V2: Final = ("gw_ms", "event_id", "message_id", "id_tag", "accepted", "ocpp_version")
PLUGIN_V2: Final = ("gw_ms", "event_id", "id_tag", "rejected", "ocpp_version")
OUTAGE_V2: Final = ("outage_id", "started_ms", "cause", "error_code", "vendor_error_code", "version", "ended_ms")
SESSION_SCALARS_V2: Final = (
    "transaction_id", "session_id", "connector", "id_tag", "start_ms", "start_gw_ms", "meter_start",
    "start_fingerprint", "flags", "peak_w", "soc", "age_deadline", "available_deadline", "emit_deadline",
    "stop_error_code", "stop_status_ms", "stop_status_known", "closed_gw_ms", "seq_no", "attempt_ms",
    "first_charging_ms", "phase_ms", "phase_totals", "blocked_ms", "attempt_key", "id_token_type",
    # written only when set
    "clock_start", "clock_stop", "available_ms",
)


def named(layout: tuple[str, ...], items: list[Any]) -> dict[str, Any]:
    """A positional array of ``layout`` as named values (an older, shorter array names only its first ones)."""
    return dict(zip(layout, items))


def reducer(items: list[Any] | None) -> RegisterReducer:
    return RegisterReducer(**named(REDUCER_V2, items)) if items else RegisterReducer()


def sample(items: list[Any]) -> RegisterSample:
    return RegisterSample(**named(SAMPLE_V2, items))


def from_v2(data: dict[str, Any]) -> CorrelatorState:
    return CorrelatorState(
        connectors={int(k): _connector_v2(c) for k, c in data["connectors"].items()},
        pending_starts={k: PendingStart(p[0], p[1], _start_v2(p[2])) for k, p in data["pending_starts"].items()},
        sessions={k: _session_v2(s) for k, s in data["sessions"].items()},
        closed={k: _session_v2(s) for k, s in data["closed"].items()},
        aliases=dict(data.get("aliases", {})),
        meter_hints=dict(data.get("meter_hints", {})),
        seq_no=data.get("seq_no"),
        seq_numbering=Numbering(data["seq_numbering"]) if data.get("seq_numbering") else None,
        clock=_clock_v2(data.get("clock")),
        naming=list(data.get("naming", ())),
        outages=_outages_v2(data["outages"]) if "outages" in data else OutageState(),
        attempts=_attempts_v2(data["attempts"]) if "attempts" in data else AttemptState(),
        offset=data.get("offset", -1),
        partition=data.get("p"),
    )


def _connector_v2(data: dict[str, Any]) -> ConnectorState:
    left, fault = data.get("left"), data.get("fault")
    return ConnectorState(
        status=status_of(data.get("status", "")), status_text=data.get("status", ""), tx=data.get("tx"),
        charging=status_of(data.get("charging", "")), left_charging=_left(named(LEFT_V2, left)) if left else None,
        fault=OpenFault(**named(FAULT_V2, fault)) if fault else None, blocked_by=data.get("blocked_by"),
        problems=list(data.get("problems", ())),
    )


def _left(data: dict[str, Any]) -> LeftCharging:
    return LeftCharging(status_of(data["status"]), data["status"], data["error_code"], data["gw_ms"], data["ms"])


def _start_v2(items: list[Any]) -> StartDetails:
    start = named(START_V2, items)
    return StartDetails(**{**start, "flags": frozenset(start["flags"])})  # the token type came 7th, later


def _session_v2(data: dict[str, Any]) -> SessionState:
    session = SessionState(**{name: data[name] for name in SESSION_SCALARS_V2 if name in data})
    session.stop_status, session.stop_status_text = status_of(data.get("stop_status", "")), data.get("stop_status", "")
    session.phase = status_of(data.get("phase", ""))
    session.protocol = protocol_of(data.get("ocpp_version", DEFAULT.version))
    session.mv = reducer(data.get("mv"))
    session.td = [sample(items) for items in data.get("td", ())]
    if data.get("stop"):
        session.stop = StopInfo(**named(STOP_V2, data["stop"]))
    if data.get("emitted"):
        emitted = named(EMITTED_V2, data["emitted"])
        session.emitted = Emitted(**{**emitted, "closed_by": ClosedBy(emitted["closed_by"])})
    return session


def _clock_v2(items: list[Any] | None) -> ClockState:
    if not items:
        return ClockState()
    lag, candidate = items[0], items[1] if len(items) > 1 else None
    return ClockState(lag, (candidate[0], candidate[1]) if candidate else None)


def _attempts_v2(data: dict[str, Any]) -> AttemptState:
    return AttemptState(authorizes=[PendingAuthorize(**named(AUTHORIZE_V2, a)) for a in data.get("a", [])],
                        plugins={int(k): PlugIn(**named(PLUGIN_V2, p)) for k, p in data.get("p", {}).items()})


def _outages_v2(data: dict[str, Any]) -> OutageState:
    newest, newest_ms = data.get("n") or ["", 0]
    return OutageState(connections=dict(data.get("c", {})), newest=newest, newest_ms=newest_ms,
                       closed=list(data.get("x", [])), offline_ms=data.get("off"), ports=list(data.get("p", [])),
                       open={int(k): OpenOutage(**named(OUTAGE_V2, v)) for k, v in data.get("o", {}).items()},
                       last={int(k): OpenOutage(**named(OUTAGE_V2, v)) for k, v in data.get("e", {}).items()})


# --- format 1: the first worker ------------------------------------------------------------------------


def from_v1(data: dict[str, Any]) -> CorrelatorState:
    state = CorrelatorState(offset=data.get("offset", -1), partition=data.get("p"))
    by_tx: dict[str, str] = {}
    for tx, old in data.get("sessions", {}).items():
        session = _open_session_v1(tx, old)
        state.sessions[session.session_id] = session
        by_tx[tx] = session.session_id
    for tx, old in data.get("closed", {}).items():
        record = Session.model_validate(old["session"])
        state.closed[f"legacy:{tx}"] = _closed_session_v1(tx, record, old.get("stop_digest"))
    for key, old in data.get("connectors", {}).items():
        left, fault = old.get("left_charging"), old.get("fault")
        status = old.get("status", "")
        state.connectors[int(key)] = ConnectorState(
            status=status_of(status), status_text=status,
            tx=by_tx.get(old["tx"]) if old.get("tx") else None,
            left_charging=_left(left) if left else None,
            fault=OpenFault(fault["error_code"], fault["ms"], fault["gw_ms"], fault.get("tx"), fault.get("vendor_error_code", ""),
                            fault.get("info", ""), bool(fault.get("stale"))) if fault else None,
        )
    for message_id, pending in data.get("pending_starts", {}).items():
        details = ocpp16.start_details(pending.get("payload", {}), frozenset(pending.get("flags", ())))
        state.pending_starts[message_id] = PendingStart(pending["gw_ms"], "", details)
    state.aliases = dict(data.get("aliases", {}))
    return state


def _open_session_v1(tx: str, old: dict[str, Any]) -> SessionState:
    start_gw_ms = old.get("start_gw_ms")
    stop_status = old.get("stop_status", "")
    session = SessionState(
        transaction_id=tx, session_id=session_id(tx, start_gw_ms if start_gw_ms is not None else old.get("stop_gw_ms", 0)),
        connector=old.get("connector"), id_tag=old.get("id_tag", ""), start_ms=old.get("start_ms"),
        start_gw_ms=start_gw_ms, meter_start=values.number(old.get("meter_start")),
        start_fingerprint=json.dumps(old["start_content"]) if old.get("start_content") else None,
        flags=list(old.get("flags", [])), mv=reducer(old.get("mv")),
        td=[sample(items) for items in old.get("td", [])], peak_w=old.get("peak_w"),
        soc=list(old.get("soc") or [None, None]), age_deadline=old.get("age_deadline"),
        available_deadline=old.get("available_deadline"), emit_deadline=old.get("emit_deadline"),
        stop_status=status_of(stop_status), stop_status_text=stop_status, stop_error_code=old.get("stop_error_code", ""),
        stop_status_ms=old.get("stop_status_ms"), stop_status_known=bool(old.get("stop_status_known")),
    )
    if old.get("stopped"):
        session.stop = StopInfo(old.get("stop_ms"), old["stop_gw_ms"], values.number(old.get("meter_stop")),
                                bool(old.get("has_meter_stop")), old.get("reason", ""), old.get("stop_digest"))
        session.closed_gw_ms = old["stop_gw_ms"]
    return session


def _ms(value: datetime | None) -> int | None:
    return datetime_to_ms(value) if value is not None else None


def _closed_session_v1(tx: str, record: Session, stop_digest: str | None) -> SessionState:
    received_ms = _ms(record.received_at) or 0
    session = SessionState(
        transaction_id=tx, session_id="", connector=record.connector_id, id_tag=record.id_tag,
        start_ms=_ms(record.started_at), start_gw_ms=None, meter_start=record.meter_start_wh, start_fingerprint=None,
        flags=list(record.flags), stop_status=status_of(record.stop_status), stop_status_text=record.stop_status,
        stop_error_code=record.stop_error_code, stop_status_ms=_ms(record.stop_status_at), stop_status_known=True,
        closed_gw_ms=received_ms,
    )
    closed_by = ClosedBy(record.closed_by)
    if closed_by is ClosedBy.STOP_TRANSACTION:
        session.stop = StopInfo(_ms(record.stopped_at), received_ms, record.meter_stop_wh, record.meter_stop_wh is not None,
                                record.stop_reason, stop_digest)
    session.emitted = Emitted(record.revision, record.version, received_ms, closed_by, record.energy_wh,
                              record.duration_s, record_digest(record))
    return session
