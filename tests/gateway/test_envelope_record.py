"""The gateway's per-frame envelope (msgspec) against the contract's model (pydantic): same JSON meaning, lone
surrogates included; what a reader of ``ocpp.frames.v1`` parses is what the gateway meant (the field-by-field
mirror and the three-way round trip: ``tests/test_envelope_contract.py``)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.envelope_record import EnvelopeRecord, encode_envelope
from gateway.handler import ConnectionInfo, FrameHandler
from gateway.answers import AnswerPolicy
from gateway.payload_schemas import compile_validators
from gateway.transaction_ids import TransactionIdAllocator
from schemas.envelope import Direction, FrameEnvelope, MessageType

VALIDATORS = compile_validators()


# Any text, lone surrogates included: a JSON escape can put one in a parsed message id or action.
texts = st.text(st.characters(), max_size=40)
records = st.builds(
    EnvelopeRecord,
    v=st.just(1),
    charge_point_id=st.from_regex(r"[A-Za-z0-9*\-_=+|@.]{1,48}", fullmatch=True),
    direction=st.sampled_from([d.value for d in Direction]),
    gateway_ts_ms=st.integers(0, 2**53),
    frame=st.text(max_size=200),  # a WebSocket text frame is valid UTF-8
    ocpp_version=st.sampled_from(["ocpp1.6", "ocpp2.0.1"]),
    gateway_id=st.text(min_size=1, max_size=20),
    connection_id=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    seq=st.integers(0, 2**40),
    message_type=st.none() | st.sampled_from([int(t) for t in MessageType]),
    action=st.none() | texts,
    message_id=st.none() | texts,
    error=st.none() | texts,
    flags=st.lists(st.text(max_size=30), max_size=3).map(tuple),
)


@settings(max_examples=500, deadline=None)
@given(records)
def test_a_record_reads_back_as_the_equal_contract_model(record: EnvelopeRecord) -> None:
    model = FrameEnvelope.model_validate_json(record.encode())
    assert model.frame == record.frame and model.seq == record.seq and model.flags == record.flags
    assert model.direction == record.direction and model.message_type == record.message_type
    if all(value is None or value.isascii() for value in (record.action, record.message_id, record.error)):
        # Nothing to replace: the contract's own serialisation of what it read says the same as ours.
        assert json.loads(record.encode()) == json.loads(model.to_bytes())

def test_a_lone_surrogate_in_a_parsed_field_is_replaced_not_fatal() -> None:
    record = EnvelopeRecord(1, "CP-1", "in", 1, "[2]", "ocpp1.6", "gw", "c", 0, 2, "A\ud800", "m\udfff", None, ())
    model = FrameEnvelope.model_validate_json(record.encode())
    assert (model.action, model.message_id, model.frame) == ("A?", "m?", "[2]")


def test_both_forms_encode_for_the_publisher() -> None:
    record = EnvelopeRecord(1, "CP-1", "out", 5, "[3,\"1\",{}]", "ocpp1.6", "gw", "c", 1, 3, "Heartbeat", "1")
    model = record.to_model()
    assert json.loads(encode_envelope(model)) == json.loads(encode_envelope(record))


def test_a_json_escaped_surrogate_id_gets_a_call_error_with_id_minus_one() -> None:
    handler = FrameHandler(ConnectionInfo("CP-1", "c", "gw", "ocpp1.6"), VALIDATORS, AnswerPolicy(),
                           TransactionIdAllocator())
    reaction = handler.receive('[2,"\\ud800","Heartbeat",{}]', 1_764_000_000_000)
    reply = json.loads(reaction.reply)
    assert reply[0] == 4 and reply[1] == "-1"
    reaction.inbound.to_model()
    reaction.reply_envelope.to_model()
