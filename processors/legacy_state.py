"""The first worker's correlator state (plain dicts with string keys, no ``"v"``), read into the typed
:class:`~processors.state.CorrelatorState`. Changelogs written before the upgrade hold it.

Its emitted sessions were rows without a ``session_id`` (the column came with migration 3 and reads
``''`` for them), so a remembered session keeps ``session_id`` ``''``: a late stop amends the very row it
wrote. Its open sessions have no row yet and get the id of :func:`processors.correlator.session_id`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from processors import ocpp16, values
from processors.energy import RegisterReducer
from processors.state import (
    ConnectorState,
    CorrelatorState,
    Emitted,
    LeftCharging,
    OpenFault,
    PendingStart,
    SessionState,
    StopInfo,
    record_digest,
    session_id,
)
from schemas.records import Session


def from_legacy(data: dict[str, Any]) -> CorrelatorState:
    state = CorrelatorState(offset=data.get("offset", -1), partition=data.get("p"))
    by_tx: dict[str, str] = {}
    for tx, old in data.get("sessions", {}).items():
        session = _open_session(tx, old)
        state.sessions[session.session_id] = session
        by_tx[tx] = session.session_id
    for tx, old in data.get("closed", {}).items():
        record = Session.model_validate(old["session"])
        state.closed[f"legacy:{tx}"] = _closed_session(tx, record, old.get("stop_digest"))
    for key, old in data.get("connectors", {}).items():
        left, fault = old.get("left_charging"), old.get("fault")
        state.connectors[int(key)] = ConnectorState(
            status=old.get("status", ""),
            tx=by_tx.get(old["tx"]) if old.get("tx") else None,
            left_charging=LeftCharging(left["status"], left["error_code"], left["gw_ms"], left["ms"]) if left else None,
            fault=OpenFault(fault["error_code"], fault["ms"], fault["gw_ms"], fault.get("tx"), fault.get("vendor_error_code", ""),
                            fault.get("info", ""), bool(fault.get("stale"))) if fault else None,
        )
    for message_id, pending in data.get("pending_starts", {}).items():
        details = ocpp16.start_details(pending.get("payload", {}), frozenset(pending.get("flags", ())))
        state.pending_starts[message_id] = PendingStart(pending["gw_ms"], "", details)
    state.aliases = dict(data.get("aliases", {}))
    return state


def _open_session(tx: str, old: dict[str, Any]) -> SessionState:
    start_gw_ms = old.get("start_gw_ms")
    session = SessionState(
        transaction_id=tx, session_id=session_id(tx, start_gw_ms if start_gw_ms is not None else old.get("stop_gw_ms", 0)),
        connector=old.get("connector"), id_tag=old.get("id_tag", ""), start_ms=old.get("start_ms"),
        start_gw_ms=start_gw_ms, meter_start=values.number(old.get("meter_start")),
        start_fingerprint=json.dumps(old["start_content"]) if old.get("start_content") else None,
        flags=list(old.get("flags", [])), mv=RegisterReducer.from_state(old.get("mv")),
        td=[list(sample) for sample in old.get("td", [])], peak_w=old.get("peak_w"),
        soc=list(old.get("soc") or [None, None]), age_deadline=old.get("age_deadline"),
        available_deadline=old.get("available_deadline"), emit_deadline=old.get("emit_deadline"),
        stop_status=old.get("stop_status", ""), stop_error_code=old.get("stop_error_code", ""),
        stop_status_ms=old.get("stop_status_ms"), stop_status_known=bool(old.get("stop_status_known")),
    )
    if old.get("stopped"):
        session.stop = StopInfo(old.get("stop_ms"), old["stop_gw_ms"], values.number(old.get("meter_stop")),
                                bool(old.get("has_meter_stop")), old.get("reason", ""), old.get("stop_digest"))
        session.closed_gw_ms = old["stop_gw_ms"]
    return session


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _closed_session(tx: str, record: Session, stop_digest: str | None) -> SessionState:
    received_ms = _ms(record.received_at) or 0
    session = SessionState(
        transaction_id=tx, session_id="", connector=record.connector_id, id_tag=record.id_tag,
        start_ms=_ms(record.started_at), start_gw_ms=None, meter_start=record.meter_start_wh, start_fingerprint=None,
        flags=list(record.flags), stop_status=record.stop_status, stop_error_code=record.stop_error_code,
        stop_status_ms=_ms(record.stop_status_at), stop_status_known=True, closed_gw_ms=received_ms,
    )
    if record.closed_by == "stop_transaction":
        session.stop = StopInfo(_ms(record.stopped_at), received_ms, record.meter_stop_wh, record.meter_stop_wh is not None,
                                record.stop_reason, stop_digest)
    session.emitted = Emitted(record.revision, record.version, received_ms, record.closed_by, record.energy_wh,
                              record.duration_s, record_digest(record))
    return session
