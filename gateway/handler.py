"""The gateway's frame handler: one per WebSocket connection, no I/O.

Text in (``receive``), a :class:`Reaction` out: the envelope of the received frame, whether Kafka
must acknowledge it before the answer goes out, the answer and its envelope. The server loop
(:mod:`gateway.server`) only moves bytes and awaits Kafka; everything OCPP lives here.

Rules (DESIGN.md, Gateway):
- every CALL the backend understands gets its CALLRESULT; unknown actions ``NotImplemented``;
  malformed frames the matching CALLERROR;
- StartTransaction, StopTransaction, MeterValues (and StatusNotification) are **never refused
  for content**: a schema violation is flagged in the envelope and the .conf goes out anyway,
  because a CALLERROR there makes the charger retry forever and blocks the connector;
- those transaction messages are *durable*: answered only after Kafka acknowledged their frame.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from gateway import answers, ocppj
from gateway.errors import ActionNotImplemented, FormationViolation, InternalError, NotSupported, OcppError
from gateway.payload_schemas import CHARGER_ACTIONS, Validator, violation, violation_flag
from gateway.transaction_ids import TransactionIdAllocator
from schemas.envelope import Direction, FrameEnvelope, MessageType

TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})
# Answered even when their content breaks the schema: the frame is kept and flagged instead.
LENIENT_ACTIONS = TRANSACTION_ACTIONS | {"StatusNotification"}
# OCPP 1.6 actions a backend sends, never answers: a charger sending one gets NotSupported.
BACKEND_ACTIONS = frozenset(
    {
        "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
        "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction",
        "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
        "UnlockConnector", "UpdateFirmware",
    }
)


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    charge_point_id: str
    connection_id: str
    gateway_id: str
    ocpp_version: str


@dataclass(frozen=True, slots=True)
class Reaction:
    """What to do with one received frame."""

    inbound: FrameEnvelope
    durable: bool  # the answer waits for Kafka's acknowledgement of ``inbound``
    reply: str | None
    reply_envelope: FrameEnvelope | None
    outcome: str  # for metrics: accepted, flagged, call_error, result, error_from_charger


class FrameHandler:
    def __init__(
        self,
        connection: ConnectionInfo,
        validators: dict[str, Validator],
        policy: answers.AnswerPolicy,
        transaction_ids: TransactionIdAllocator,
    ) -> None:
        self.connection = connection
        self._validators = validators
        self._policy = policy
        self._transaction_ids = transaction_ids
        self._seq = 0

    # --- envelopes -----------------------------------------------------------------------------

    def envelope(
        self,
        direction: Direction,
        frame: str,
        now_ms: int,
        *,
        message_type: int | None = None,
        action: str | None = None,
        message_id: str | None = None,
        error: str | None = None,
        flags: tuple[str, ...] = (),
    ) -> FrameEnvelope:
        c = self.connection
        seq = self._seq
        self._seq += 1
        # model_construct: every field is built here from known-good values; validation would
        # only cost time on the per-frame path.
        return FrameEnvelope.model_construct(
            v=1,
            charge_point_id=c.charge_point_id,
            direction=direction,
            gateway_ts_ms=now_ms,
            frame=frame,
            ocpp_version=c.ocpp_version,
            gateway_id=c.gateway_id,
            connection_id=c.connection_id,
            seq=seq,
            message_type=MessageType(message_type) if message_type is not None else None,
            action=action,
            message_id=message_id,
            error=error,
            flags=flags,
        )

    def _reply(
        self, inbound: FrameEnvelope, reply: str, now_ms: int, *, is_error: bool, durable: bool, outcome: str
    ) -> Reaction:
        out = self.envelope(
            Direction.OUT,
            reply,
            now_ms,
            message_type=ocppj.CALL_ERROR if is_error else ocppj.CALL_RESULT,
            action=inbound.action,
            message_id=inbound.message_id,
        )
        return Reaction(inbound, durable, reply, out, outcome)

    # --- receiving -----------------------------------------------------------------------------

    def receive(self, frame: str | bytes, now_ms: int) -> Reaction:
        """React to one WebSocket message from the charger. Never raises for any input."""
        if isinstance(frame, bytes):
            return self._binary(frame, now_ms)
        try:
            message = ocppj.parse(frame)
        except OcppError as exc:
            inbound = self.envelope(Direction.IN, frame, now_ms, error=f"{exc.code}: {exc}")
            return self._refuse_unparsed(inbound, exc, now_ms)
        if isinstance(message, ocppj.Call):
            return self._call(message, frame, now_ms)
        # A CALLRESULT / CALLERROR answers a CALL of the backend: kept, never answered.
        is_result = isinstance(message, ocppj.CallResult)
        inbound = self.envelope(
            Direction.IN,
            frame,
            now_ms,
            message_type=ocppj.CALL_RESULT if is_result else ocppj.CALL_ERROR,
            message_id=message.message_id,
        )
        return Reaction(inbound, False, None, None, "result" if is_result else "error_from_charger")

    def _binary(self, frame: bytes, now_ms: int) -> Reaction:
        # OCPP-J is text only; the bytes are kept (base64) so nothing a charger sent is lost.
        inbound = self.envelope(
            Direction.IN,
            base64.b64encode(frame).decode("ascii"),
            now_ms,
            error="FormationViolation: binary WebSocket message (OCPP-J uses text); frame is base64",
            flags=("binary_frame",),
        )
        return self._refuse_unparsed(inbound, FormationViolation("OCPP-J messages are WebSocket text messages"), now_ms)

    def _refuse_unparsed(self, inbound: FrameEnvelope, exc: OcppError, now_ms: int) -> Reaction:
        """The CALLERROR for a frame that is not a readable CALL (message id ``-1`` if unknown)."""
        reply = ocppj.call_error(exc.message_id, exc.code, exc.description)
        out = self.envelope(Direction.OUT, reply, now_ms, message_type=ocppj.CALL_ERROR, message_id=exc.message_id)
        return Reaction(inbound, False, reply, out, "call_error")

    def _call(self, call: ocppj.Call, frame: str, now_ms: int) -> Reaction:
        action = call.action
        durable = action in TRANSACTION_ACTIONS
        error: str | None = None
        flags: tuple[str, ...] = ()
        try:
            validate = self._validators.get(action)
            if validate is None:
                if action in BACKEND_ACTIONS:
                    raise NotSupported(f"{action} is sent by a central system, not by a charge point", call.message_id)
                raise ActionNotImplemented(f"action {action!r} is not implemented", call.message_id)
            try:
                validate(call.payload)
            except fastjsonschema.JsonSchemaValueException as exc:
                if action not in LENIENT_ACTIONS:
                    raise violation(exc, call.message_id) from None
                error = f"{violation(exc, call.message_id).code}: {exc.message}"
                flags = ("schema_violation", violation_flag(exc))
            payload = self._answer(call, now_ms)
        except OcppError as exc:
            inbound = self.envelope(
                Direction.IN, frame, now_ms, message_type=ocppj.CALL, action=action, message_id=call.message_id,
                error=f"{exc.code}: {exc.description}",
            )
            reply = ocppj.call_error(call.message_id, exc.code, exc.description)
            return self._reply(inbound, reply, now_ms, is_error=True, durable=False, outcome="call_error")
        inbound = self.envelope(
            Direction.IN, frame, now_ms, message_type=ocppj.CALL, action=action, message_id=call.message_id,
            error=error, flags=flags,
        )
        reply = ocppj.call_result(call.message_id, payload)
        return self._reply(inbound, reply, now_ms, is_error=False, durable=durable, outcome="flagged" if flags else "accepted")

    def _answer(self, call: ocppj.Call, now_ms: int) -> dict[str, Any]:
        payload = call.payload
        match call.action:
            case "BootNotification":
                return answers.boot_notification(self._policy, now_ms)
            case "Heartbeat":
                return answers.heartbeat(now_ms)
            case "Authorize":
                return answers.authorize(self._policy, payload)
            case "StartTransaction":
                transaction_id = self._transaction_ids.allocate(
                    self.connection.charge_point_id, answers.start_key(payload), now_ms
                )
                return answers.start_transaction(self._policy, payload, transaction_id)
            case "StopTransaction":
                return answers.stop_transaction(self._policy, payload)
            case "DataTransfer":
                return answers.data_transfer()
            case _:
                return answers.empty()

    def unacknowledged(self, reaction: Reaction, now_ms: int, reason: str) -> Reaction:
        """The answer to a durable CALL whose frame Kafka did not acknowledge: CALLERROR
        ``InternalError``, so the charger keeps the message queued and sends it again."""
        assert reaction.durable and reaction.inbound.message_id is not None
        exc = InternalError(f"not stored, send again: {reason}", reaction.inbound.message_id)
        reply = ocppj.call_error(exc.message_id, exc.code, exc.description)
        return self._reply(reaction.inbound, reply, now_ms, is_error=True, durable=False, outcome="unacknowledged")


assert set(CHARGER_ACTIONS).isdisjoint(BACKEND_ACTIONS)
