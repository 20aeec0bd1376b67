"""The envelope is declared once (:class:`schemas.envelope.FrameEnvelope`); the gateway's encoder and the worker's
decoder are msgspec mirrors held to it field by field, and any envelope reads the same through all three."""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.envelope_record import EnvelopeRecord, encode_envelope
from processors.envelope_decode import Envelope, decode_envelope
from schemas.envelope import (
    CONNECTION_EVENT_FIELDS,
    ConnectionEvent,
    Direction,
    FrameEnvelope,
    envelope_drift,
    hold_to_envelope,
)
from schemas.errors import EnvelopeDrift

RECORD_FIELDS = tuple(f.name for f in msgspec.structs.fields(EnvelopeRecord))
INT64 = (-(2**63), 2**63 - 1)  # what msgspec reads as an int (the gateway's are far inside)


def test_both_fast_forms_mirror_the_declaration() -> None:
    assert envelope_drift(EnvelopeRecord, role="encoder", omit=CONNECTION_EVENT_FIELDS) == []
    assert envelope_drift(Envelope, role="decoder") == []


# --- a field added in one place only -----------------------------------------------------------------------------


class GrownEnvelope(FrameEnvelope):
    tariff_id: str | None = None


class GrownRecord(EnvelopeRecord, frozen=True, gc=False):
    tariff_id: str | None = None


class GrownDecoder(Envelope, frozen=True, gc=False):
    tariff_id: str | None = None


class StricterDecoder(msgspec.Struct, forbid_unknown_fields=True):
    charge_point_id: str
    direction: str  # the declaration's Direction: a decoder must give the enum
    gateway_ts_ms: int
    frame: str
    ocpp_version: str
    gateway_id: str
    connection_id: str
    seq: int  # without ge=0
    v: int  # required: FrameEnvelope reads a record without it
    message_type: int | None = None
    action: str | None = None
    message_id: str | None = None
    error: str | None = None
    flags: tuple[str, ...] = ("x",)
    event: ConnectionEvent | None = None
    close_code: int | None = None
    reason: str | None = None


class ReorderedRecord(msgspec.Struct):
    charge_point_id: str
    v: int
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


@pytest.mark.parametrize(("struct", "role", "declaration", "problems"), [
    (EnvelopeRecord, "encoder", GrownEnvelope, ["lacks 'tariff_id'"]),
    (Envelope, "decoder", GrownEnvelope, ["lacks 'tariff_id'"]),
    (GrownRecord, "encoder", FrameEnvelope, ["has 'tariff_id', which FrameEnvelope does not declare"]),
    (GrownDecoder, "decoder", FrameEnvelope, ["has 'tariff_id', which FrameEnvelope does not declare"]),
    (ReorderedRecord, "encoder", FrameEnvelope, ["writes its fields in another order"]),
    (StricterDecoder, "decoder", FrameEnvelope, [
        "'direction' is StrType", "'seq' is IntType(gt=None, ge=None", "'v' defaults to NODEFAULT, FrameEnvelope to 1",
        "'message_type' is UnionType(types=(IntType", "'flags' defaults to ('x',), FrameEnvelope to ()",
        "refuses unknown fields"]),
])
def test_a_drift_is_named(struct: type[msgspec.Struct], role: Any, declaration: type[FrameEnvelope],
                          problems: list[str]) -> None:
    omit = CONNECTION_EVENT_FIELDS if role == "encoder" else frozenset()
    found = envelope_drift(struct, role=role, omit=omit, declaration=declaration)
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found)), found


def test_a_drifted_form_cannot_be_defined() -> None:
    with pytest.raises(EnvelopeDrift, match=r"GrownDecoder \(the envelope's decoder\) no longer mirrors .*'tariff_id'"):
        hold_to_envelope(GrownDecoder, role="decoder")


# --- any envelope through the three forms ------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # a lone surrogate: the record's own test


def _values(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values of a declared field's type, from the type: a field added to the declaration is drawn too."""
    if isinstance(annotation, types.UnionType):
        return st.one_of(*(_values(a, metadata) for a in typing.get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if typing.get_origin(annotation) is tuple:
        return st.lists(_values(typing.get_args(annotation)[0], []), max_size=3).map(tuple)
    if isinstance(annotation, type) and issubclass(annotation, (Direction, ConnectionEvent)) or (
            isinstance(annotation, type) and issubclass(annotation, int) and annotation is not int):
        return st.sampled_from(list(annotation))
    if annotation is int:
        low = max([INT64[0], *(getattr(m, "ge", INT64[0]) for m in metadata)])
        return st.integers(low, INT64[1])
    if annotation is str:
        return _TEXT
    raise AssertionError(f"no strategy for a declared field of type {annotation!r}: add one here")


def envelopes(*, events: bool) -> st.SearchStrategy[FrameEnvelope]:
    fields = {name: _values(f.annotation, f.metadata) for name, f in FrameEnvelope.model_fields.items()}
    # The connection event's fields are written on connection events only (FrameEnvelope.to_bytes).
    if events:
        fields["event"] = st.sampled_from(list(ConnectionEvent))
    else:
        fields |= {name: st.none() for name in CONNECTION_EVENT_FIELDS}
    return st.fixed_dictionaries(fields).map(lambda values: FrameEnvelope(**values))


@settings(max_examples=300, deadline=None)
@given(envelopes(events=False))
def test_a_frame_is_the_same_bytes_and_the_same_values_in_all_three(envelope: FrameEnvelope) -> None:
    data = envelope.to_bytes()
    record = EnvelopeRecord(**{name: getattr(envelope, name) for name in RECORD_FIELDS})
    assert record.encode() == data == encode_envelope(record) == encode_envelope(envelope)
    _reads_the_same(data, envelope)


@settings(max_examples=150, deadline=None)
@given(envelopes(events=True))
def test_a_connection_event_reads_the_same_in_both_readers(envelope: FrameEnvelope) -> None:
    _reads_the_same(envelope.to_bytes(), envelope)


def _reads_the_same(data: bytes, envelope: FrameEnvelope) -> None:
    assert FrameEnvelope.model_validate_json(data) == envelope
    decoded = decode_envelope(data)
    assert type(decoded) is Envelope  # the fast path: what the gateway writes never falls back to pydantic
    assert {f.name for f in msgspec.structs.fields(Envelope)} == set(FrameEnvelope.model_fields)
    assert {name: getattr(decoded, name) for name in FrameEnvelope.model_fields} == dict(envelope)
    assert (decoded.event_id(), decoded.content_flags(), decoded.key()) == (
        envelope.event_id(), envelope.content_flags(), envelope.key())
