"""The frame envelope as the gateway builds it on the per-frame path: a msgspec struct.

:class:`schemas.envelope.FrameEnvelope` (pydantic) is the contract of ``ocpp.frames.v1``, and what every
reader parses the topic with. Building one and serialising it cost ~9 us per frame on this machine (two
per CALL); :class:`EnvelopeRecord` has the same fields but the connection event's, in the same order, with the
same JSON types, and is built and encoded in under 1 us. This module holds it to the declaration when it is
imported (:func:`schemas.envelope.hold_to_envelope`); ``tests/test_envelope_contract.py`` checks that any envelope
goes through it, the worker's decoder and the declaration byte for byte.

Anything that submits a ``FrameEnvelope`` to the publisher still works (it is encoded the pydantic way);
the handler's own frames take this path.
"""

from __future__ import annotations

import msgspec

from schemas import envelope as contract
from schemas.envelope import CONNECTION_EVENT_FIELDS, FrameEnvelope

_encoder = msgspec.json.Encoder()


class EnvelopeRecord(msgspec.Struct, frozen=True, gc=False):
    """One frame as the gateway saw it; the fields of :class:`~schemas.envelope.FrameEnvelope` but the connection
    event's (a connection event is a ``FrameEnvelope``).

    ``direction`` is the wire string (``in`` / ``out``), ``message_type`` the OCPP-J type id (2, 3, 4):
    both compare equal to the contract's ``Direction`` / ``MessageType`` members. ``gc=False``: a record
    holds only strings, ints and a tuple of strings, so the collector need never walk it.
    """

    v: int
    charge_point_id: str
    direction: str
    gateway_ts_ms: int
    frame: str
    ocpp_version: str
    gateway_id: str
    connection_id: str
    seq: int
    message_type: int | None = None
    action: str | None = None
    message_id: str | None = None
    error: str | None = None
    flags: tuple[str, ...] = ()

    def encode(self) -> bytes:
        """The Kafka value: the envelope JSON (UTF-8), readable by ``FrameEnvelope.model_validate_json``."""
        try:
            return _encoder.encode(self)
        except UnicodeEncodeError:
            # A JSON escape can smuggle a lone surrogate into a parsed field (a message id, an action):
            # not UTF-8, so not storable. The frame itself is always valid text (WebSocket text frames
            # are UTF-8); the parsed copies get "?" in place of the surrogate.
            return _encoder.encode(msgspec.structs.replace(self, **{
                name: _scrub(value) for name in _TEXT_FIELDS if isinstance(value := getattr(self, name), str)
            } | {"flags": tuple(_scrub(flag) for flag in self.flags)}))

    key = contract.key
    event_id = contract.event_id

    def to_model(self) -> FrameEnvelope:
        """The contract's model of this envelope (validated): what a reader of the topic gets."""
        return FrameEnvelope.model_validate_json(self.encode())


contract.hold_to_envelope(EnvelopeRecord, role="encoder", omit=CONNECTION_EVENT_FIELDS)

# The fields that hold text (a surrogate in one is replaced): read from the record's own fields.
_TEXT_FIELDS = tuple(f.name for f in msgspec.structs.fields(EnvelopeRecord) if f.type in (str, str | None))


def _scrub(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def encode_envelope(envelope: EnvelopeRecord | FrameEnvelope) -> bytes:
    """The Kafka value of either form of an envelope."""
    if isinstance(envelope, EnvelopeRecord):
        return envelope.encode()
    return envelope.to_bytes()
