"""The frame envelope: what the gateway writes to ``ocpp.frames.v1`` for every frame.

One envelope per WebSocket text message, in both directions, keyed by charge point id.
The frame itself is kept exactly as received or sent (``frame``), so nothing a charger
said is ever lost; what the gateway understood of it (message type, action, message id)
and what it could not (``error``, ``flags``) travel beside it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field

ENVELOPE_VERSION = 1


class Direction(StrEnum):
    """Who sent the frame: ``in`` = charger to backend, ``out`` = backend to charger."""

    IN = "in"
    OUT = "out"


class MessageType(IntEnum):
    """OCPP-J message type ids (OCPP-J 1.6 section 4.1.3)."""

    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4


class ConnectionEvent(StrEnum):
    """A charger's WebSocket connection opened or closed (KPIS.md, Connection events). The envelope
    that says it has ``frame`` ``""`` and no message type, action or id."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


# Written only on connection events, so a frame's JSON is what it was before they existed.
CONNECTION_EVENT_FIELDS = frozenset({"event", "close_code", "reason"})


class FrameEnvelope(BaseModel):
    """One frame as the gateway saw it. Field names are the JSON keys on the topic.

    ``message_type``, ``action`` and ``message_id`` are ``None`` when the frame could not be
    parsed that far; ``error`` then says why. For a CALLRESULT / CALLERROR the gateway fills
    ``action`` from the CALL it answers (or that the charger answers), so a consumer never
    needs to pair them itself. ``flags`` name every schema violation the gateway let through
    (transaction messages are never refused for content, see DESIGN.md).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: int = Field(default=ENVELOPE_VERSION, description="envelope version")
    charge_point_id: str
    direction: Direction
    gateway_ts_ms: int = Field(description="gateway clock, UTC milliseconds since the epoch")
    frame: str = Field(description="the WebSocket text message exactly as received or sent")
    ocpp_version: str = Field(description="negotiated subprotocol, e.g. ocpp1.6")
    gateway_id: str
    connection_id: str
    seq: int = Field(ge=0, description="per-connection sequence number, both directions")
    message_type: MessageType | None = None
    action: str | None = None
    message_id: str | None = None
    error: str | None = Field(default=None, description="why the frame could not be parsed or validated")
    flags: tuple[str, ...] = ()
    event: ConnectionEvent | None = Field(default=None, description="set on connection events only")
    close_code: int | None = Field(default=None, description="disconnected: the WebSocket close code (1006: no close frame)")
    reason: str | None = Field(default=None, description="disconnected: the close reason, when known")

    def to_bytes(self) -> bytes:
        """The JSON value on the topic. The connection-event fields appear only on connection events."""
        return self.model_dump_json(exclude=None if self.event is not None else CONNECTION_EVENT_FIELDS).encode()

    def event_id(self) -> str:
        """Names the frame: connection id / sequence number, stable across replays."""
        return f"{self.connection_id}/{self.seq}"

    def content_flags(self) -> frozenset[str]:
        """The gateway's flags about the payload (``schema_violation``, ``schema:<field>:<rule>``): they
        travel on to the rows made of it."""
        return frozenset(f for f in self.flags if f.startswith("schema"))

    def key(self) -> bytes:
        """The Kafka key: the charge point id, so one charger's frames stay in one partition."""
        return self.charge_point_id.encode()
