"""The worker's envelope decoder: msgspec first (about 4x cheaper than pydantic), pydantic for the rest.

:class:`Envelope` mirrors :class:`~schemas.envelope.FrameEnvelope` field for field and is a strict subset of what
it accepts, with the same values (this module holds it to the declaration when it is imported:
:func:`schemas.envelope.hold_to_envelope`). A record msgspec refuses (a float for an int, a numeric string, a lone
surrogate, ...) goes to :class:`FrameEnvelope`, which decides, as it always did, whether it is an envelope and
why not. Both carry the same fields and the same derived facts (``event_id``, ``content_flags``, ``key``: defined
once in :mod:`schemas.envelope`); what reads an envelope takes :data:`AnyEnvelope`, either form.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec

from schemas import envelope as contract
from schemas.envelope import ENVELOPE_VERSION, ConnectionEvent, Direction, FrameEnvelope, MessageType


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """:class:`~schemas.envelope.FrameEnvelope`'s fields, decoded by msgspec."""

    charge_point_id: str
    direction: Direction
    gateway_ts_ms: int
    frame: str
    ocpp_version: str
    gateway_id: str
    connection_id: str
    seq: Annotated[int, msgspec.Meta(ge=0)]
    v: int = ENVELOPE_VERSION
    message_type: MessageType | None = None
    action: str | None = None
    message_id: str | None = None
    error: str | None = None
    flags: tuple[str, ...] = ()
    event: ConnectionEvent | None = None  # connection events (KPIS.md): frame "", no message
    close_code: int | None = None
    reason: str | None = None

    event_id = contract.event_id
    content_flags = contract.content_flags
    key = contract.key


contract.hold_to_envelope(Envelope, role="decoder")

AnyEnvelope: TypeAlias = Envelope | FrameEnvelope
"""An envelope as the worker reads it: the fast form, or the declared one (a record only pydantic reads, a test's)."""

_decode = msgspec.json.Decoder(Envelope).decode


def decode_envelope(value: bytes) -> AnyEnvelope:
    """The envelope of a record's value; raises pydantic's ``ValidationError`` when it is none."""
    try:
        return _decode(value)
    except msgspec.DecodeError:
        return FrameEnvelope.model_validate_json(value)
