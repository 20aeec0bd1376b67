"""The correlator: one per charge point, pure (no I/O, no clock). Envelopes in, in Kafka order;
closed sessions, fault events and status changes out. Its whole state is plain JSON data
(:attr:`Correlator.state`), kept in a changelog-backed table by the Faust shell.

Time is the **gateway clock** (``gateway_ts_ms`` of the envelopes): charger clocks drift, jump and
lack zones, and a window must mean the same thing on every charger. Charger timestamps are kept
(``started_at``, ``stopped_at``, ``occurred_at``) and checked against the gateway clock (flags).
Deadlines (the status window, sessions never stopped) expire when time passes them:
:meth:`Correlator.advance` is called with each envelope's time and, by the shell, with the
partition's watermark, so a replay of the same frames makes the same decisions.

Session life (OCPP 1.6, 6.45 / 6.46, and the seed article):
- opens on StartTransaction + the CALLRESULT that gave it a transactionId;
- closes on StopTransaction (no connectorId: the connector is the start's, or MeterValues');
- its ``stop_status`` is the status the connector went to from Charging, whether that
  StatusNotification came before or after the stop; after the stop it may come within the window;
- emitted once, when nothing it needs can still arrive: at the stop if the transition is known
  and meterStop is valid, else when the window closes (late Transaction.End values still count);
- never stopped: closed by the next StartTransaction on its connector, by Available without a
  stop within the window, or by age; flagged ``stop_missing``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from processors.energy import DEFAULT_MAX_POWER_W, EnergyInputs, RegisterReducer, session_energy, valid_meter
from processors.meter import ENERGY_REGISTER, POWER, SOC, read_meter_values
from processors.timestamps import parse_charger_time
from schemas.base import ms_to_datetime
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import FaultEvent, FaultEventKind, Session, StatusChange

CHARGING = "Charging"
# Where a connector goes when charging ends (the seed: Charging -> ...).
OUT_OF_CHARGING = frozenset({"Available", "SuspendedEV", "SuspendedEVSE", "Finishing", "Unavailable", "Faulted"})
NO_ERROR = "NoError"
CLOSED_REMEMBERED = 8  # recently closed transactions kept to recognise duplicate stops


@dataclass(frozen=True)
class CorrelatorConfig:
    status_window_ms: int = 60_000
    max_session_age_ms: int = 72 * 3600 * 1000
    clock_skew_ms: int = 5 * 60 * 1000
    max_power_w: float = DEFAULT_MAX_POWER_W


Event = Session | FaultEvent | StatusChange


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def empty_state() -> dict[str, Any]:
    return {"connectors": {}, "pending_starts": {}, "sessions": {}, "aliases": {}, "closed": {}}


class Correlator:
    """Turns one charge point's frames into events. ``state`` is read and written in place."""

    def __init__(self, charge_point_id: str, config: CorrelatorConfig, state: dict[str, Any] | None = None) -> None:
        self.charge_point_id = charge_point_id
        self.config = config
        self.state = state if state is not None else empty_state()

    # --- time ------------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The earliest gateway time at which :meth:`advance` has something to do."""
        deadlines = [d for s in self.state["sessions"].values() for d in _session_deadlines(s)]
        return min(deadlines) if deadlines else None

    def advance(self, now_ms: int) -> list[Event]:
        """Let gateway time reach ``now_ms``: close what waited for a deadline before it."""
        events: list[Event] = []
        while True:
            due = [(d, kind, tx) for tx, s in self.state["sessions"].items() for d, kind in _session_deadline_kinds(s) if d < now_ms]
            if not due:
                return events
            deadline, kind, tx = min(due)
            session = self.state["sessions"][tx]
            if kind == "emit":
                if not session.get("stop_status_known"):
                    session["flags"].append("status_transition_missing")
                events.append(self._emit(tx, received_ms=session["stop_gw_ms"], version_ms=deadline))
            elif kind == "available":
                events.append(self._close_unstopped(tx, "available", deadline))
            else:
                events.append(self._close_unstopped(tx, "timeout", deadline))

    # --- frames ----------------------------------------------------------------------------------

    def feed(self, envelope: FrameEnvelope) -> list[Event]:
        """One envelope, in Kafka order. Never raises for any content."""
        events = self.advance(envelope.gateway_ts_ms)
        if envelope.message_type is None:
            return events  # unparseable: kept in the frames table, nothing to correlate
        try:
            message = json.loads(envelope.frame)
        except ValueError:
            return events
        if not isinstance(message, list) or len(message) < 3:
            return events
        if envelope.direction == Direction.IN and envelope.message_type == MessageType.CALL:
            payload = message[3] if len(message) > 3 and isinstance(message[3], dict) else {}
            handler = _CALL_HANDLERS.get(_str(envelope.action))
            if handler is not None:
                events.extend(handler(self, envelope, payload))
        elif envelope.direction == Direction.OUT and envelope.action == "StartTransaction":
            pending = self.state["pending_starts"].pop(_str(envelope.message_id), None)
            if pending is not None and envelope.message_type == MessageType.CALL_RESULT and isinstance(message[2], dict):
                events.extend(self._open(envelope, pending, message[2]))
        return events

    # StartTransaction: wait for the answer that names the transaction.
    def _on_start(self, env: FrameEnvelope, payload: dict[str, Any]) -> list[Event]:
        starts = self.state["pending_starts"]
        starts[_str(env.message_id)] = {"payload": payload, "gw_ms": env.gateway_ts_ms, "flags": list(env.flags)}
        while len(starts) > 16:  # answers that never came (gateway crash): do not grow forever
            starts.pop(next(iter(starts)))
        return []

    def _open(self, env: FrameEnvelope, pending: dict[str, Any], conf: dict[str, Any]) -> list[Event]:
        tx_id = _int(conf.get("transactionId"))
        if tx_id is None:
            return []
        tx = str(tx_id)
        payload = pending["payload"]
        sessions, aliases = self.state["sessions"], self.state["aliases"]
        tx = aliases.get(tx, tx)
        if tx in sessions:  # the same start answered twice with the same id
            _flag(sessions[tx], "duplicate_start")
            return []
        if tx in self.state["closed"]:
            return []  # a resend of a start whose session is already closed
        content = _start_content(payload)
        for other_tx, other in sessions.items():
            if other.get("start_content") == content and not other.get("stopped"):
                # Resent after a lost answer and given another id (another gateway replica): one session.
                aliases[tx] = other_tx
                _flag(other, "duplicate_start")
                return []
        events: list[Event] = []
        connector = _int(payload.get("connectorId"))
        flags = [f for f in pending["flags"] if f.startswith("schema")]
        if connector is None or connector < 1:
            flags.append("connector_id_invalid")
            connector = None
        if connector is not None:
            # A new transaction on this connector ends whatever the previous one left open.
            for other_tx, other in list(sessions.items()):
                if other.get("connector") == connector:
                    if other.get("stopped"):
                        if not other.get("stop_status_known"):
                            _flag(other, "status_transition_missing")
                        events.append(self._emit(other_tx, received_ms=other["stop_gw_ms"], version_ms=env.gateway_ts_ms))
                    else:
                        events.append(self._close_unstopped(other_tx, "next_transaction", env.gateway_ts_ms))
        start_ms, time_flags = parse_charger_time(payload.get("timestamp"))
        flags += sorted(time_flags)
        if start_ms is not None and abs(start_ms - pending["gw_ms"]) > self.config.clock_skew_ms:
            flags.append("clock_skew")
        sessions[tx] = {
            "connector": connector,
            "id_tag": _str(payload.get("idTag")),
            "start_ms": start_ms,
            "start_gw_ms": pending["gw_ms"],
            "age_deadline": pending["gw_ms"] + self.config.max_session_age_ms,
            "meter_start": payload.get("meterStart"),
            "start_content": content,
            "flags": flags,
            "mv": None,
            "td": [],
            "peak_w": None,
            "soc": [None, None],
        }
        if connector is not None:
            self._connector(connector)["tx"] = tx
        return events

    def _on_stop(self, env: FrameEnvelope, payload: dict[str, Any]) -> list[Event]:
        sessions = self.state["sessions"]
        raw = payload.get("transactionId")
        tx_id = _int(raw)
        flags: list[str] = [f for f in env.flags if f.startswith("schema")]
        tx = self.state["aliases"].get(str(tx_id), str(tx_id)) if tx_id is not None else None
        if tx is not None and tx in self.state["closed"]:
            return self._duplicate_stop_after_close(tx, env, payload)
        session = sessions.get(tx) if tx is not None else None
        if session is not None and session.get("stopped"):
            if _stop_digest(payload) != session["stop_digest"]:
                _flag(session, "duplicate_stop_conflict")
            return []
        if session is None:
            open_ones = [t for t, s in sessions.items() if not s.get("stopped")]
            if tx_id is None or tx_id <= 0:
                flags.append("transaction_id_invalid")
                if len(open_ones) == 1:
                    # -1 / 0 from a charger whose start was made offline (Keba P30): its only open
                    # transaction is the one it is stopping.
                    tx = open_ones[0]
                    session = sessions[tx]
                    flags.append("transaction_id_matched_open_session")
            else:
                flags.append("transaction_id_unknown")
            if session is None:
                tx = str(tx_id) if tx_id is not None and tx_id > 0 else f"invalid:{_str(raw)}:{env.connection_id}:{env.seq}"
                session = sessions[tx] = self._stop_only_session()
        session["flags"].extend(flags)
        stop_ms, time_flags = parse_charger_time(payload.get("timestamp"))
        _flag(session, *sorted(time_flags))
        if stop_ms is not None and abs(stop_ms - env.gateway_ts_ms) > self.config.clock_skew_ms:
            _flag(session, "clock_skew")
        if stop_ms is not None and session.get("start_ms") is not None and stop_ms < session["start_ms"]:
            _flag(session, "stop_before_start")
        report = read_meter_values(payload.get("transactionData"))
        _flag(session, *sorted(report.flags))
        for reading in report.readings:
            if reading.measurand == ENERGY_REGISTER:
                session["td"].append([reading.at_ms, reading.value])
            else:
                self._track(session, reading)
        session.update(
            stopped=True,
            stop_ms=stop_ms,
            stop_gw_ms=env.gateway_ts_ms,
            meter_stop=payload.get("meterStop"),
            has_meter_stop="meterStop" in payload,
            reason=_str(payload.get("reason")) or "Local",  # OCPP 1.6, 6.46: absent means Local
            stop_digest=_stop_digest(payload),
        )
        session.pop("available_deadline", None)
        connector = session.get("connector")
        if connector is None:
            connector = self._infer_connector(env.gateway_ts_ms)
            if connector is not None:
                session["connector"] = connector
                _flag(session, "connector_inferred")
        if connector is not None:
            state = self._connector(connector)
            left = state.get("left_charging")
            if left and left["gw_ms"] >= (session.get("start_gw_ms") or 0) and state.get("status") != CHARGING:
                self._attach_status(session, left)
            elif state.get("status") != CHARGING and not session.get("stop_status_known"):
                _flag(session, "no_charging_status")  # it never charged, or never said so
                session["stop_status_known"] = True
            if state.get("tx") == tx:
                state["tx"] = None
        else:
            _flag(session, "connector_unknown")
            session["stop_status_known"] = True
        session["emit_deadline"] = env.gateway_ts_ms + self.config.status_window_ms
        if session.get("stop_status_known") and self._energy_final(session):
            return [self._emit(tx, received_ms=env.gateway_ts_ms, version_ms=env.gateway_ts_ms)]
        return []

    def _duplicate_stop_after_close(self, tx: str, env: FrameEnvelope, payload: dict[str, Any]) -> list[Event]:
        closed = self.state["closed"][tx]
        if _stop_digest(payload) == closed["stop_digest"]:
            return []  # the same stop resent after a reconnect: already counted
        # A second, different stop for a closed session (steve #1293): the first stands; the row is
        # re-emitted once with a newer version so the doubt is visible.
        if "duplicate_stop_conflict" in closed["session"]["flags"]:
            return []
        record = dict(closed["session"])
        record["flags"] = sorted(set(record["flags"]) | {"duplicate_stop_conflict"})
        record["version"] = max(env.gateway_ts_ms, record["version"] + 1)  # always newer than the first
        record["revision"] = record.get("revision", 0) + 1
        closed["session"] = record
        return [Session.model_validate(record)]

    def _on_meter_values(self, env: FrameEnvelope, payload: dict[str, Any]) -> list[Event]:
        sessions = self.state["sessions"]
        connector = _int(payload.get("connectorId"))
        tx_id = _int(payload.get("transactionId"))
        tx = self.state["aliases"].get(str(tx_id), str(tx_id)) if tx_id is not None else None
        session = sessions.get(tx) if tx is not None else None
        if session is None and connector is not None and connector > 0:
            tx = self._connector(connector).get("tx")
            session = sessions.get(tx) if tx is not None else None
        if session is None:
            return []  # connector-level values outside a transaction, or for a closed one
        if session.get("connector") is None and connector is not None and connector > 0:
            session["connector"] = connector
            self._connector(connector)["tx"] = tx
        report = read_meter_values(payload.get("meterValue"))
        _flag(session, *sorted(report.flags))
        if session.get("stopped"):
            _flag(session, "meter_values_after_stop")
        reducer = RegisterReducer.from_state(session["mv"])
        for reading in report.readings:
            if reading.measurand == ENERGY_REGISTER:
                reducer.add(reading.value, reading.at_ms)
            else:
                self._track(session, reading)
        session["mv"] = reducer.to_state()
        return []

    def _on_status(self, env: FrameEnvelope, payload: dict[str, Any]) -> list[Event]:
        connector = _int(payload.get("connectorId"))
        if connector is None or connector < 0:
            return []
        status = _str(payload.get("status"))
        error_code = _str(payload.get("errorCode"))
        occurred_ms, time_flags = parse_charger_time(payload.get("timestamp"))
        # The timestamp is optional in StatusNotification: its absence is no doubt.
        flags = sorted((time_flags - {"timestamp_missing"}) | {f for f in env.flags if f.startswith("schema")})
        if occurred_ms is None:
            occurred_ms = env.gateway_ts_ms  # optional in OCPP 1.6: the gateway's time stands in
        elif env.gateway_ts_ms - occurred_ms > self.config.clock_skew_ms:
            flags.append("stale_timestamp")  # e.g. a Faulted replayed after reboot (Alfen)
        elif occurred_ms - env.gateway_ts_ms > self.config.clock_skew_ms:
            flags.append("clock_skew")
        state = self._connector(connector)
        previous = state.get("status", "")
        event_id = f"{env.connection_id}/{env.seq}"
        events: list[Event] = [
            StatusChange(
                event_id=event_id, charge_point_id=self.charge_point_id, connector_id=connector, status=status,
                previous_status=previous, error_code=error_code, info=_str(payload.get("info")),
                vendor_id=_str(payload.get("vendorId")), vendor_error_code=_str(payload.get("vendorErrorCode")),
                occurred_at=ms_to_datetime(occurred_ms), received_at=ms_to_datetime(env.gateway_ts_ms), flags=flags,
            )
        ]
        events.extend(self._fault(connector, state, env, payload, status, error_code, occurred_ms, flags, event_id))
        state["status"] = status
        if connector == 0:
            return events
        if previous == CHARGING and status in OUT_OF_CHARGING:
            left = {"status": status, "error_code": error_code, "gw_ms": env.gateway_ts_ms, "ms": occurred_ms}
            state["left_charging"] = left
            events.extend(self._transition_after_stop(connector, left, env.gateway_ts_ms))
        if status == "Available":
            tx = state.get("tx")
            session = self.state["sessions"].get(tx) if tx else None
            if session is not None and not session.get("stopped"):
                # Available may come before StopTransaction (ev-server #4082); wait the window for it.
                session.setdefault("available_deadline", env.gateway_ts_ms + self.config.status_window_ms)
        return events

    def _transition_after_stop(self, connector: int, left: dict[str, Any], now_ms: int) -> list[Event]:
        for tx, session in self.state["sessions"].items():
            if session.get("connector") == connector and session.get("stopped") and not session.get("stop_status_known"):
                self._attach_status(session, left)
                if self._energy_final(session):
                    return [self._emit(tx, received_ms=session["stop_gw_ms"], version_ms=now_ms)]
        return []

    # --- faults ----------------------------------------------------------------------------------

    def _fault(self, connector: int, state: dict[str, Any], env: FrameEnvelope, payload: dict[str, Any], status: str,
               error_code: str, occurred_ms: int, flags: list[str], event_id: str) -> list[Event]:
        faulty = status == "Faulted" or (error_code != NO_ERROR)
        open_fault = state.get("fault")
        tx = state.get("tx") if connector > 0 else None
        base = dict(
            charge_point_id=self.charge_point_id, connector_id=connector, received_at=ms_to_datetime(env.gateway_ts_ms),
            status=status, error_code=error_code, info=_str(payload.get("info")), vendor_id=_str(payload.get("vendorId")),
            vendor_error_code=_str(payload.get("vendorErrorCode")), transaction_id=tx,
        )
        events: list[Event] = []
        if open_fault is not None and (not faulty or error_code != open_fault["error_code"]):
            began_ms = open_fault["ms"]
            duration_flags = list(flags)
            if open_fault.get("stale"):
                # Began with a replayed old timestamp (Alfen after reboot): the charger's clock
                # would make it days long; the gateway saw it open for this long.
                duration_s = max(0, env.gateway_ts_ms - open_fault["gw_ms"]) / 1000
                duration_flags += ["duration_from_gateway_clock", "began_stale"]
            elif occurred_ms >= began_ms:
                duration_s = (occurred_ms - began_ms) / 1000
            else:
                duration_s = max(0, env.gateway_ts_ms - open_fault["gw_ms"]) / 1000
                duration_flags.append("duration_from_gateway_clock")
            if faulty:
                duration_flags.append("superseded_by_other_error")
            events.append(FaultEvent(
                event_id=event_id, event=FaultEventKind.CLEARED, occurred_at=ms_to_datetime(occurred_ms),
                began_at=ms_to_datetime(began_ms), duration_s=duration_s, flags=sorted(set(duration_flags)),
                # The cleared event names the fault it ends (alerting and durations group by it);
                # the status that ended it is in ``status`` and in the status timeline.
                **(base | {"transaction_id": open_fault.get("tx") or tx, "error_code": open_fault["error_code"],
                           "vendor_error_code": open_fault.get("vendor_error_code", base["vendor_error_code"]),
                           "info": open_fault.get("info", base["info"])}),
            ))
            state["fault"] = open_fault = None
        if faulty and open_fault is None:
            fault_flags = list(flags)
            if status != "Faulted":
                fault_flags.append("error_code_while_" + (status.lower() or "unknown"))
            state["fault"] = {"error_code": error_code, "ms": occurred_ms, "gw_ms": env.gateway_ts_ms, "tx": tx,
                              "vendor_error_code": base["vendor_error_code"], "info": base["info"],
                              "stale": "stale_timestamp" in flags}
            events.append(FaultEvent(
                event_id=event_id, event=FaultEventKind.BEGAN, occurred_at=ms_to_datetime(occurred_ms),
                began_at=None, duration_s=None, flags=sorted(set(fault_flags)), **base,
            ))
        return events

    # --- helpers ---------------------------------------------------------------------------------

    def _connector(self, connector: int) -> dict[str, Any]:
        return self.state["connectors"].setdefault(str(connector), {})

    def _infer_connector(self, now_ms: int) -> int | None:
        """For a stop without a known start: the one connector charging, or that just stopped."""
        candidates = []
        for key, state in self.state["connectors"].items():
            left = state.get("left_charging")
            recently_left = left is not None and now_ms - left["gw_ms"] <= self.config.status_window_ms
            if key != "0" and (state.get("status") == CHARGING or recently_left) and not state.get("tx"):
                candidates.append(int(key))
        return candidates[0] if len(candidates) == 1 else None

    def _stop_only_session(self) -> dict[str, Any]:
        return {
            "connector": None, "id_tag": "", "start_ms": None, "start_gw_ms": None, "meter_start": None,
            "start_content": None, "flags": ["stop_without_start"], "mv": None, "td": [], "peak_w": None,
            "soc": [None, None],
        }

    def _track(self, session: dict[str, Any], reading: Any) -> None:
        if reading.measurand == POWER:
            session["peak_w"] = reading.value if session["peak_w"] is None else max(session["peak_w"], reading.value)
        elif reading.measurand == SOC:
            soc = session["soc"]
            if soc[0] is None:
                soc[0] = reading.value
            soc[1] = reading.value

    @staticmethod
    def _attach_status(session: dict[str, Any], left: dict[str, Any]) -> None:
        session["stop_status"] = left["status"]
        session["stop_error_code"] = left["error_code"]
        session["stop_status_ms"] = left["ms"]
        session["stop_status_known"] = True

    @staticmethod
    def _energy_final(session: dict[str, Any]) -> bool:
        """True when meterStop settles the energy: no late sample can change it."""
        start, stop = valid_meter(session.get("meter_start")), valid_meter(session.get("meter_stop"))
        return start is not None and stop is not None and stop >= start

    def _close_unstopped(self, tx: str, closed_by: str, at_ms: int) -> Session:
        session = self.state["sessions"][tx]
        _flag(session, "stop_missing")
        session.update(stopped=True, stop_ms=None, stop_gw_ms=at_ms, reason="", has_meter_stop=False,
                       stop_digest=None, meter_stop=None)
        connector = session.get("connector")
        if connector is not None:
            state = self._connector(connector)
            left = state.get("left_charging")
            if left and left["gw_ms"] >= (session.get("start_gw_ms") or 0):
                self._attach_status(session, left)
            if state.get("tx") == tx:
                state["tx"] = None
        return self._emit(tx, received_ms=at_ms, version_ms=at_ms, closed_by=closed_by)

    def _emit(self, tx: str, *, received_ms: int, version_ms: int, closed_by: str = "stop_transaction") -> Session:
        session = self.state["sessions"].pop(tx)
        for alias, target in list(self.state["aliases"].items()):
            if target == tx:
                del self.state["aliases"][alias]
        connector = session.get("connector")
        if connector is not None and self._connector(connector).get("tx") == tx:
            self._connector(connector)["tx"] = None
        record = self._session_record(tx, session, received_ms, version_ms, closed_by)
        closed = self.state["closed"]
        closed[tx] = {"stop_digest": session.get("stop_digest"), "session": record.model_dump(mode="json")}
        while len(closed) > CLOSED_REMEMBERED:
            closed.pop(next(iter(closed)))
        return record

    def _session_record(self, tx: str, s: dict[str, Any], received_ms: int, version_ms: int, closed_by: str) -> Session:
        flags = set(s["flags"])
        start_ms, stop_ms = s.get("start_ms"), s.get("stop_ms")
        duration_s: float | None = None
        if start_ms is not None and stop_ms is not None and stop_ms >= start_ms and "clock_skew" not in flags:
            duration_s = (stop_ms - start_ms) / 1000
        elif s.get("start_gw_ms") is not None and s.get("stop_gw_ms") is not None:
            duration_s = (s["stop_gw_ms"] - s["start_gw_ms"]) / 1000
            flags.add("duration_from_gateway_clock")
        mv = RegisterReducer.from_state(s.get("mv"))
        energy = session_energy(
            EnergyInputs(
                meter_start=s.get("meter_start"), meter_stop=s.get("meter_stop"), has_stop=closed_by == "stop_transaction",
                transaction_data=[(a, v) for a, v in s.get("td", [])], meter_values=mv, duration_s=duration_s,
                sampled_peak_power_w=s.get("peak_w"),
            ),
            self.config.max_power_w,
        )
        flags |= energy.flags
        if closed_by != "stop_transaction" and s.get("start_ms") is None:
            flags.add("stop_without_start")
        soc = s.get("soc") or [None, None]
        return Session(
            charge_point_id=self.charge_point_id,
            connector_id=s.get("connector"),
            transaction_id=tx,
            id_tag=s.get("id_tag", ""),
            started_at=ms_to_datetime(start_ms) if start_ms is not None else None,
            stopped_at=ms_to_datetime(stop_ms) if stop_ms is not None else None,
            meter_start_wh=_meter(s.get("meter_start")),
            meter_stop_wh=_meter(s.get("meter_stop")),
            energy_wh=energy.energy_wh,
            energy_source=energy.source,
            stop_reason=s.get("reason", ""),
            stop_status=s.get("stop_status", ""),
            stop_error_code=s.get("stop_error_code", ""),
            stop_status_at=ms_to_datetime(s["stop_status_ms"]) if s.get("stop_status_ms") is not None else None,
            duration_s=duration_s,
            peak_power_w=energy.peak_power_w,
            soc_start_pct=soc[0],
            soc_end_pct=soc[1],
            sample_count=mv.count + len(s.get("td", [])),
            closed_by=closed_by,
            flags=sorted(flags),
            received_at=ms_to_datetime(received_ms),
            version=version_ms,
        )


def _meter(value: Any) -> float | None:
    """A meter value as sent, for the row; NaN / Infinity (which JSON readers accept) are None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _flag(session: dict[str, Any], *flags: str) -> None:
    for flag in flags:
        if flag not in session["flags"]:
            session["flags"].append(flag)


def _start_content(payload: dict[str, Any]) -> list[str]:
    return [repr(payload.get(k)) for k in ("connectorId", "idTag", "meterStart", "timestamp")]


def _stop_digest(payload: dict[str, Any]) -> str:
    return json.dumps([payload.get(k) for k in ("transactionId", "meterStop", "timestamp", "reason")], sort_keys=True)


def _session_deadline_kinds(session: dict[str, Any]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    if session.get("stopped"):
        out.append((session["emit_deadline"], "emit"))
        return out
    if session.get("available_deadline") is not None:
        out.append((session["available_deadline"], "available"))
    if session.get("age_deadline") is not None:
        out.append((session["age_deadline"], "timeout"))
    return out


def _session_deadlines(session: dict[str, Any]) -> list[int]:
    return [d for d, _ in _session_deadline_kinds(session)]


_CALL_HANDLERS = {
    "StartTransaction": Correlator._on_start,
    "StopTransaction": Correlator._on_stop,
    "MeterValues": Correlator._on_meter_values,
    "StatusNotification": Correlator._on_status,
}
