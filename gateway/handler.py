"""The gateway's frame handler: one per WebSocket connection, no I/O.

Text in (``receive``), a :class:`Reaction` out: the envelope of the received frame, whether Kafka
must acknowledge it before the answer goes out, the answer and its envelope. The server loop
(:mod:`gateway.server`) only moves bytes and awaits Kafka; everything OCPP lives here.

Rules (DESIGN.md, Gateway), per action from the table of the connection's OCPP version
(:mod:`gateway.actions`):
- every CALL the backend understands gets its CALLRESULT; unknown actions ``NotImplemented``,
  actions a backend sends ``NotSupported``; malformed frames the matching CALLERROR, with the
  error code of the connection's OCPP-J version;
- *lenient* actions (1.6 StartTransaction, StopTransaction, MeterValues, StatusNotification; 2.0.1
  TransactionEvent, MeterValues, StatusNotification) are **never refused for content**: a schema
  violation is flagged in the envelope and the answer goes out anyway, because a CALLERROR there
  makes the charger retry forever and blocks the connector;
- *durable* actions (the transaction messages) are answered only after Kafka acknowledged their frame.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import fastjsonschema

from gateway import answers, ocppj
from gateway.actions import VERSIONS
from gateway.envelope_record import EnvelopeRecord
from gateway.errors import ActionNotImplemented, InternalError, NotSupported, OcppError, RpcFrameworkError
from gateway.payload_schemas import Validator, violation, violation_flag
from gateway.transaction_ids import TransactionIdAllocator
from schemas.envelope import ConnectionEvent, Direction, FrameEnvelope


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    charge_point_id: str
    connection_id: str
    gateway_id: str
    ocpp_version: str  # the negotiated subprotocol, a key of gateway.actions.VERSIONS


@dataclass(frozen=True, slots=True)
class Reaction:
    """What to do with one received frame. ``reply`` and ``reply_envelope`` are both set (an answer) or both None."""

    inbound: EnvelopeRecord
    durable: bool  # the answer waits for Kafka's acknowledgement of ``inbound``
    reply: str | None
    reply_envelope: EnvelopeRecord | None
    outcome: str  # for metrics: accepted, flagged, call_error, result, error_from_charger


class FrameHandler:
    def __init__(
        self,
        connection: ConnectionInfo,
        validators: dict[str, Validator],
        policy: answers.AnswerPolicy,
        transaction_ids: TransactionIdAllocator,
    ) -> None:
        """``validators``: the compiled request schemas of ``connection.ocpp_version``
        (:func:`gateway.payload_schemas.compile_validators`), shared by all its connections."""
        self.connection = connection
        version = VERSIONS[connection.ocpp_version]
        self._actions = version.actions
        self._backend_actions = version.backend_actions
        self._error_code = version.error_code
        self._validators = validators
        self._context = answers.AnswerContext(policy, connection.charge_point_id, transaction_ids)
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
    ) -> EnvelopeRecord:
        """The envelope of one frame, numbered in this connection's sequence (both directions).
        Every field is built here from known-good values: an :class:`EnvelopeRecord`, encoded once
        by the publisher, not a validated ``FrameEnvelope`` (the per-frame path, see its module)."""
        c = self.connection
        seq = self._seq
        self._seq += 1
        return EnvelopeRecord(
            1, c.charge_point_id, direction.value, now_ms, frame, c.ocpp_version, c.gateway_id, c.connection_id, seq,
            message_type, action, message_id, error, flags,
        )

    def connection_event(self, event: ConnectionEvent, now_ms: int, *, close_code: int | None = None,
                         reason: str | None = None) -> FrameEnvelope:
        """The envelope saying this connection opened (the connection's first ``seq``) or closed (its last)."""
        envelope = self.envelope(Direction.IN, "", now_ms).to_model()
        if event is ConnectionEvent.CONNECTED:
            return envelope.model_copy(update={"event": event})
        return envelope.model_copy(update={"event": event, "close_code": close_code, "reason": (reason or None) and reason[:200]})

    def _reply(
        self, inbound: EnvelopeRecord, reply: str, now_ms: int, *, is_error: bool, durable: bool, outcome: str
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
            inbound = self.envelope(Direction.IN, frame, now_ms, error=f"{self._error_code(exc)}: {exc}")
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
        exc = RpcFrameworkError("OCPP-J messages are WebSocket text messages")
        inbound = self.envelope(
            Direction.IN,
            base64.b64encode(frame).decode("ascii"),
            now_ms,
            error=f"{self._error_code(exc)}: binary WebSocket message (OCPP-J uses text); frame is base64",
            flags=("binary_frame",),
        )
        return self._refuse_unparsed(inbound, exc, now_ms)

    def _refuse_unparsed(self, inbound: EnvelopeRecord, exc: OcppError, now_ms: int) -> Reaction:
        """The CALLERROR for a frame that is not a readable CALL (message id ``-1`` if unknown)."""
        reply = ocppj.call_error(exc.message_id, self._error_code(exc), exc.description)
        out = self.envelope(Direction.OUT, reply, now_ms, message_type=ocppj.CALL_ERROR, message_id=exc.message_id)
        return Reaction(inbound, False, reply, out, "call_error")

    def _call(self, call: ocppj.Call, frame: str, now_ms: int) -> Reaction:
        action = call.action
        error: str | None = None
        flags: tuple[str, ...] = ()
        try:
            facts = self._actions.get(action)
            if facts is None:
                if action in self._backend_actions:
                    raise NotSupported(f"{action} is sent by a central system, not by a charge point", call.message_id)
                raise ActionNotImplemented(f"action {action!r} is not implemented", call.message_id)
            try:
                self._validators[action](call.payload)
            except fastjsonschema.JsonSchemaValueException as exc:
                if not facts.lenient:
                    raise violation(exc, call.message_id) from None
                error = f"{self._error_code(violation(exc, call.message_id))}: {exc.message}"
                flags = ("schema_violation", violation_flag(exc))
            payload = facts.answer(self._context, call.payload, now_ms)
        except OcppError as exc:
            code = self._error_code(exc)
            inbound = self.envelope(
                Direction.IN, frame, now_ms, message_type=ocppj.CALL, action=action, message_id=call.message_id,
                error=f"{code}: {exc.description}",
            )
            reply = ocppj.call_error(call.message_id, code, exc.description)
            return self._reply(inbound, reply, now_ms, is_error=True, durable=False, outcome="call_error")
        inbound = self.envelope(
            Direction.IN, frame, now_ms, message_type=ocppj.CALL, action=action, message_id=call.message_id,
            error=error, flags=flags,
        )
        reply = ocppj.call_result(call.message_id, payload)
        outcome = "flagged" if flags else "accepted"
        return self._reply(inbound, reply, now_ms, is_error=False, durable=facts.durable, outcome=outcome)

    def unacknowledged(self, reaction: Reaction, now_ms: int, reason: str) -> Reaction:
        """The answer to a durable CALL whose frame Kafka did not acknowledge: CALLERROR
        ``InternalError``, so the charger keeps the message queued and sends it again."""
        assert reaction.durable and reaction.inbound.message_id is not None
        exc = InternalError(f"not stored, send again: {reason}", reaction.inbound.message_id)
        reply = ocppj.call_error(exc.message_id, self._error_code(exc), exc.description)
        return self._reply(reaction.inbound, reply, now_ms, is_error=True, durable=False, outcome="unacknowledged")
