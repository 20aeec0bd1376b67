"""Charging sessions that carry signed meter values (issue 25), as the gateway writes their frames, for OCPP 1.6 and
2.0.1: built from the real records of ``../shared/ocmf`` (its README, "How a check uses it") or from any sampled
values a test gives. Read by the tests and by ``bench/``; the records are read there, never copied."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from processors.pipeline import FrameProcessor, Outputs
from processors.settings import CorrelatorConfig
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import Session
from signed_meter.registry import KeyRegistry, RegisteredKey

OCMF_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "ocmf"
T0_MS = 1_764_000_000_000
V16, V201 = "ocpp1.6", "ocpp2.0.1"
ROLE_ORDER = {"begin": 0, "intermediate": 1, "begin_end": 2, "end": 2}


def load(name: str) -> list[dict[str, Any]]:
    return list(json.loads((OCMF_DIR / name).read_text(encoding="utf-8")))


def pairs(samples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records of each session (``pair_id``), begin first, end last."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        out.setdefault(sample["pair_id"], []).append(sample)
    return {k: sorted(v, key=lambda r: ROLE_ORDER[r["role"]]) for k, v in out.items()}


def sampled_16(record: dict[str, Any], signed_data: str | None = None) -> dict[str, Any]:
    """The record's 1.6 sampled value, its signed data replaced when given (a tampered copy)."""
    value = dict(record["ocpp16_sampled_value"])
    if signed_data is not None:
        value["value"] = signed_data
    return value


def sampled_201(record: dict[str, Any], signed_data: str | None = None) -> dict[str, Any]:
    value = json.loads(json.dumps(record["ocpp201_sampled_value"]))
    if signed_data is not None:
        value["signedMeterValue"]["signedMeterData"] = base64.b64encode(signed_data.encode("utf-8", "surrogatepass")).decode()
    return value


@dataclass
class Conversation:
    """The frames of one charge point, as envelopes at gateway times it controls."""

    charge_point_id: str
    version: str = V16
    envelopes: list[FrameEnvelope] = field(default_factory=list)
    now_s: float = 0.0
    step_s: float = 600.0  # between two frames: a real session's pace (a fast one reads as implausible energy)
    _ids: int = 0

    def _env(self, direction: Direction, message_type: MessageType, action: str, message_id: str, frame: list[Any]) -> None:
        self.envelopes.append(FrameEnvelope(
            charge_point_id=self.charge_point_id, direction=direction, gateway_ts_ms=T0_MS + int(self.now_s * 1000),
            frame=json.dumps(frame), ocpp_version=self.version, gateway_id="gw", connection_id="c1",
            seq=len(self.envelopes), message_type=message_type, action=action, message_id=message_id))
        self.now_s += 1 if direction == Direction.OUT else self.step_s

    def call(self, action: str, payload: dict[str, Any]) -> str:
        self._ids += 1
        message_id = f"m{self._ids}"
        self._env(Direction.IN, MessageType.CALL, action, message_id, [2, message_id, action, payload])
        return message_id

    def answer(self, action: str, message_id: str, payload: dict[str, Any]) -> None:
        self._env(Direction.OUT, MessageType.CALL_RESULT, action, message_id, [3, message_id, payload])

    def iso(self) -> str:
        seconds = T0_MS // 1000 + int(self.now_s)
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- OCPP 1.6 ---------------------------------------------------------------------------------------
    def session_16(self, tx: int, begin_wh: float | None, end_wh: float | None, signed: list[dict[str, Any]], *,
                   end_in_stop: bool = False) -> None:
        """Start, MeterValues with each signed sampled value (the last in StopTransaction.transactionData when
        ``end_in_stop``), stop."""
        start = self.call("StartTransaction", {"connectorId": 1, "idTag": "SMV", "timestamp": self.iso(),
                                               **({"meterStart": round(begin_wh)} if begin_wh is not None else {})})
        self.answer("StartTransaction", start, {"transactionId": tx, "idTagInfo": {"status": "Accepted"}})
        in_meter_values = signed[:-1] if end_in_stop else signed
        for value in in_meter_values:
            self.call("MeterValues", {"connectorId": 1, "transactionId": tx,
                                      "meterValue": [{"timestamp": self.iso(), "sampledValue": [value]}]})
        stop: dict[str, Any] = {"transactionId": tx, "timestamp": self.iso(), "reason": "Local"}
        if end_wh is not None:
            stop["meterStop"] = round(end_wh)
        if end_in_stop and signed:
            stop["transactionData"] = [{"timestamp": self.iso(), "sampledValue": [signed[-1]]}]
        self.call("StopTransaction", stop)

    # --- OCPP 2.0.1 -------------------------------------------------------------------------------------
    def session_201(self, tx: str, begin_wh: float | None, signed: list[dict[str, Any]]) -> None:
        """Started (with the first signed value if it is a Begin, else a plain register at ``begin_wh``), Updated
        with the intermediate ones, Ended with the last."""
        def event(kind: str, seq: int, values: list[dict[str, Any]], **extra: Any) -> None:
            payload: dict[str, Any] = {
                "eventType": kind, "timestamp": self.iso(), "triggerReason": "Authorized", "seqNo": seq,
                "transactionInfo": {"transactionId": tx, **extra}, "evse": {"id": 1, "connectorId": 1}}
            if kind == "Started":
                payload["idToken"] = {"idToken": "SMV", "type": "ISO14443"}
            if values:
                payload["meterValue"] = [{"timestamp": self.iso(), "sampledValue": values}]
            self.call("TransactionEvent", payload)

        first = signed[0] if signed and signed[0].get("context") == "Transaction.Begin" else None
        plain = [{"value": begin_wh, "context": "Transaction.Begin", "measurand": "Energy.Active.Import.Register",
                  "unitOfMeasure": {"unit": "Wh"}}] if first is None and begin_wh is not None else []
        event("Started", 0, [first] if first is not None else plain, chargingState="Charging")
        middle = signed[1:-1] if first is not None else signed[:-1]
        for n, value in enumerate(middle, start=1):
            event("Updated", n, [value])
        last = signed[-1:] if signed and (first is None or len(signed) > 1) else []
        event("Ended", len(middle) + 1, last, stoppedReason="Local", chargingState="EVConnected")


def registry(keys: dict[str, str]) -> KeyRegistry:
    """A registry with one key per charge point."""
    reg = KeyRegistry()
    for charge_point_id, key in keys.items():
        reg = reg.add(RegisteredKey(charge_point_id, None, key))
    return reg


def run(envelopes: list[FrameEnvelope], meter_keys: Any = None, *, flush_every: int = 0,
        config: CorrelatorConfig | None = None) -> tuple[dict[str, Session], Outputs]:
    """Every envelope through a :class:`FrameProcessor` (a batch per ``flush_every`` frames, the states written
    and read back between), the clock moved a day on at the end. Returns the newest revision of each session
    (by charge point and transaction) and the outputs summed up."""
    states: dict[str, bytes] = {}
    kwargs = {"meter_keys": meter_keys} if meter_keys is not None else {}
    processor = FrameProcessor(config or CorrelatorConfig.defaults(), states.get, **kwargs)
    total = Outputs()
    newest: dict[str, Session] = {}

    def take() -> None:
        out = processor.take()
        states.update(out.states)
        processor.persisted(out.states)
        for session in out.sessions:
            key = f"{session.charge_point_id}/{session.transaction_id}"
            if key not in newest or newest[key].version < session.version:
                newest[key] = session
        total.sessions.extend(out.sessions)
        total.processing_failures += out.processing_failures
        for status, n in out.signed_values.items():
            total.signed_values[status] = total.signed_values.get(status, 0) + n

    for offset, envelope in enumerate(envelopes):
        processor.process(0, offset, envelope.charge_point_id.encode(), envelope.model_dump_json().encode())
        if flush_every and (offset + 1) % flush_every == 0:
            take()
    last = max((e.gateway_ts_ms for e in envelopes), default=T0_MS)
    processor.advance(0, last + 86_400_000)
    take()
    return newest, total
