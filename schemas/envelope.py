"""The frame envelope: what the gateway writes to ``ocpp.frames.v1`` for every frame.

One envelope per WebSocket text message, in both directions, keyed by charge point id.
The frame itself is kept exactly as received or sent (``frame``), so nothing a charger
said is ever lost; what the gateway understood of it (message type, action, message id)
and what it could not (``error``, ``flags``) travel beside it.

:class:`FrameEnvelope` is the one declaration of its fields. Two fast msgspec forms mirror it, for the per-frame
paths: the gateway's encoder (``gateway.envelope_record.EnvelopeRecord``) and the worker's decoder
(``processors.envelope_decode.Envelope``); each module holds its form to the declaration with
:func:`hold_to_envelope` when it is imported (field by field: names, order, types, defaults, constraints), so a
field added in one place only stops the gateway and the worker from starting, with a message that names it. What
the envelope's fields imply (:func:`event_id`, :func:`content_flags`, :func:`key`) is defined once, here, for all
three.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, Protocol

import annotated_types
import msgspec
import msgspec.inspect as mi
from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import EnvelopeDrift

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


class Identified(Protocol):
    """The fields the envelope's derived facts read (any form of the envelope has them)."""

    @property
    def charge_point_id(self) -> str: ...
    @property
    def connection_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def flags(self) -> tuple[str, ...]: ...


def event_id(envelope: Identified) -> str:
    """Names the frame: connection id / sequence number, stable across replays."""
    return f"{envelope.connection_id}/{envelope.seq}"


def content_flags(envelope: Identified) -> frozenset[str]:
    """The gateway's flags about the payload (``schema_violation``, ``schema:<field>:<rule>``): they travel on to
    the rows made of it."""
    return frozenset(f for f in envelope.flags if f.startswith("schema"))


def key(envelope: Identified) -> bytes:
    """The Kafka key: the charge point id, so one charger's frames stay in one partition."""
    return envelope.charge_point_id.encode()


_event_id, _content_flags, _key = event_id, content_flags, key

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
        return self.model_dump_json(exclude=None if self.event is not None else set(CONNECTION_EVENT_FIELDS)).encode()

    # The three rules of the module, as methods (spelt out: the pydantic plugin reads a bare assignment as a field).
    def event_id(self) -> str:
        return _event_id(self)

    def content_flags(self) -> frozenset[str]:
        return _content_flags(self)

    def key(self) -> bytes:
        return _key(self)


# --- the fast forms, held to the declaration ---------------------------------------------------------------------

Role = Literal["encoder", "decoder"]

# pydantic's constraints (annotated_types) and msgspec's name for each.
_CONSTRAINTS = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt",
                annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length"}


def _declared_type(declaration: type[BaseModel], name: str) -> mi.Type:
    """The declared field's type as msgspec sees types, its constraints included."""
    field = declaration.model_fields[name]
    meta: dict[str, Any] = {}
    for constraint in field.metadata:
        kind = _CONSTRAINTS.get(type(constraint))
        if kind is None:
            raise EnvelopeDrift(f"{declaration.__name__}.{name}: {constraint!r} has no msgspec counterpart; the fast forms "
                                "cannot mirror it (add it to schemas.envelope._CONSTRAINTS)")
        meta[kind] = getattr(constraint, kind)
    annotation = Annotated[field.annotation, msgspec.Meta(**meta)] if meta else field.annotation
    return mi.type_info(annotation)


def _on_the_wire(t: mi.Type) -> mi.Type:
    """What the JSON of a value of type ``t`` is: an enum is its values' type, constraints say nothing."""
    if isinstance(t, mi.EnumType):
        return mi.IntType() if issubclass(t.cls, int) else mi.StrType()
    if isinstance(t, mi.IntType):
        return mi.IntType()
    if isinstance(t, mi.StrType):
        return mi.StrType()
    if isinstance(t, mi.UnionType):
        return mi.UnionType(tuple(_on_the_wire(u) for u in t.types))
    if isinstance(t, mi.VarTupleType):
        return mi.VarTupleType(_on_the_wire(t.item_type))
    return t


def _default(declaration: type[BaseModel], name: str) -> Any:
    field = declaration.model_fields[name]
    return msgspec.NODEFAULT if field.is_required() else field.get_default(call_default_factory=True)


def envelope_drift(struct: type[msgspec.Struct], *, role: Role, omit: frozenset[str] = frozenset(),
                   declaration: type[BaseModel] | None = None) -> list[str]:
    """How a msgspec form of the envelope differs from :class:`FrameEnvelope` (nothing: ``[]``), field by field.

    Both roles: the declaration's fields but ``omit``, no other, each under its own name, with the declared
    default where the form has one. An ``encoder`` writes the JSON readers parse: its fields in the declared order
    (the bytes on the topic), each of the declared JSON type (an enum may be given as its value). A ``decoder``
    reads what the declaration reads, never more: the declared types exactly (enums, constraints), the declared
    defaults for every field the declaration lets a record leave out, unknown fields ignored as the declaration
    ignores them. ``declaration``: :class:`FrameEnvelope` (another model in the tests that show what a drift says)."""
    declaration = declaration or FrameEnvelope
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    declared = [name for name in declaration.model_fields if name not in omit]
    fields = {f.name: f for f in info.fields}
    problems = [f"lacks {name!r}" for name in declared if name not in fields]
    problems += [f"has {name!r}, which {declaration.__name__} does not declare" for name in fields if name not in declared]
    problems += [f"writes {f.name!r} as {f.encode_name!r}" for f in info.fields if f.encode_name != f.name]
    shared = [f for f in info.fields if f.name in declared]
    if role == "encoder" and [f.name for f in shared] != [n for n in declared if n in fields]:
        problems.append(f"writes its fields in another order than {declaration.__name__}: {[f.name for f in shared]}")
    for f in shared:
        want = _declared_type(declaration, f.name)
        same = (_on_the_wire(f.type) == _on_the_wire(want)) if role == "encoder" else f.type == want
        if not same:
            problems.append(f"{f.name!r} is {f.type}, {declaration.__name__} declares {want}")
        default = _default(declaration, f.name)
        if (role == "decoder" or not f.required) and f.default is not default and f.default != default:
            problems.append(f"{f.name!r} defaults to {f.default!r}, {declaration.__name__} to {default!r}")
    if role == "decoder" and info.forbid_unknown_fields:
        problems.append(f"refuses unknown fields, which {declaration.__name__} ignores")
    return problems


def hold_to_envelope(struct: type[msgspec.Struct], *, role: Role, omit: frozenset[str] = frozenset()) -> None:
    """Raise :class:`~schemas.errors.EnvelopeDrift` naming every way ``struct`` differs from :class:`FrameEnvelope`
    (:func:`envelope_drift`); the module that defines a fast form calls it right after the class."""
    problems = envelope_drift(struct, role=role, omit=omit)
    if problems:
        raise EnvelopeDrift(f"{struct.__module__}.{struct.__qualname__} (the envelope's {role}) no longer mirrors "
                            f"schemas.envelope.FrameEnvelope: " + "; ".join(problems))
