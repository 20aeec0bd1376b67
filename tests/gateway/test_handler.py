"""The sans-I/O frame handler: answers per action, never blocking transaction messages, envelopes
that keep every frame exactly. No socket, no Kafka."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from gateway.actions import SUPPORTED_SUBPROTOCOLS
from gateway.answers import AnswerPolicy
from gateway.handler import ConnectionInfo, FrameHandler
from gateway.payload_schemas import compile_validators
from gateway.transaction_ids import TransactionIdAllocator
from schemas.envelope import Direction, FrameEnvelope, MessageType

NOW = 1_764_000_000_123
VALIDATORS = {version: compile_validators(version) for version in SUPPORTED_SUBPROTOCOLS}
TS = "2025-11-24T16:00:00Z"


def make_handler(
    policy: AnswerPolicy | None = None, ids: TransactionIdAllocator | None = None, version: str = "ocpp1.6"
) -> FrameHandler:
    return FrameHandler(
        ConnectionInfo("CP-1", "conn-1", "gw-test", version), VALIDATORS[version], policy or AnswerPolicy(),
        ids or TransactionIdAllocator(),
    )


def call(action: str, payload: dict, message_id: str = "m1") -> str:
    return json.dumps([2, message_id, action, payload])


@pytest.mark.parametrize(
    "action, payload, expected",
    [
        ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"},
         {"status": "Accepted", "currentTime": "2025-11-24T16:00:00.123Z", "interval": 300}),
        ("Heartbeat", {}, {"currentTime": "2025-11-24T16:00:00.123Z"}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}, {}),
        ("Authorize", {"idTag": "TAG"}, {"idTagInfo": {"status": "Accepted"}}),
        ("StopTransaction", {"transactionId": 5, "meterStop": 10, "timestamp": TS}, {}),
        ("StopTransaction", {"transactionId": 5, "meterStop": 10, "timestamp": TS, "idTag": "T"}, {"idTagInfo": {"status": "Accepted"}}),
        ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]}, {}),
        ("DataTransfer", {"vendorId": "X"}, {"status": "UnknownVendorId"}),
        ("DiagnosticsStatusNotification", {"status": "Idle"}, {}),
        ("FirmwareStatusNotification", {"status": "Idle"}, {}),
    ],
)
def test_each_action_gets_its_conf(action: str, payload: dict, expected: dict) -> None:
    reaction = make_handler().receive(call(action, payload), NOW)
    assert json.loads(reaction.reply) == [3, "m1", expected]
    assert reaction.durable == (action in {"StartTransaction", "StopTransaction", "MeterValues"})
    assert reaction.inbound.error is None and reaction.inbound.flags == ()


def test_start_transaction_gets_an_id_and_a_resend_the_same_one() -> None:
    handler = make_handler()
    payload = {"connectorId": 1, "idTag": "TAG", "meterStart": 100, "timestamp": TS}
    first = json.loads(handler.receive(call("StartTransaction", payload, "a"), NOW).reply)
    again = json.loads(handler.receive(call("StartTransaction", payload, "b"), NOW + 30_000).reply)
    other = json.loads(handler.receive(call("StartTransaction", {**payload, "connectorId": 2}, "c"), NOW + 31_000).reply)
    assert first[2]["idTagInfo"] == {"status": "Accepted"}
    assert isinstance(first[2]["transactionId"], int) and first[2]["transactionId"] > 0
    assert again[2]["transactionId"] == first[2]["transactionId"]
    assert other[2]["transactionId"] != first[2]["transactionId"]


def test_an_id_tag_list_decides_authorization() -> None:
    handler = make_handler(AnswerPolicy(authorized_id_tags=frozenset({"GOOD"})))
    assert json.loads(handler.receive(call("Authorize", {"idTag": "GOOD"}), NOW).reply)[2] == {"idTagInfo": {"status": "Accepted"}}
    assert json.loads(handler.receive(call("Authorize", {"idTag": "BAD"}), NOW).reply)[2] == {"idTagInfo": {"status": "Invalid"}}


# Transaction messages that break the schema: still answered with their .conf, frame flagged.
NEVER_BLOCK = [
    ("StopTransaction", {"transactionId": 7, "meterStop": 1234.5, "timestamp": TS}, "schema:meterStop:type"),
    ("StopTransaction", {"transactionId": -1, "meterStop": 100, "timestamp": TS}, None),
    ("StopTransaction", {"transactionId": 0, "meterStop": 100, "timestamp": TS}, None),
    ("StopTransaction", {"transactionId": 999999, "meterStop": -1, "timestamp": TS}, None),
    ("StopTransaction", {"transactionId": 7, "timestamp": TS}, "schema:payload:required"),
    ("StopTransaction", {"transactionId": 7, "meterStop": 5, "timestamp": TS, "reason": "Unplugged"}, "schema:reason:enum"),
    ("StopTransaction", {"transactionId": "7", "meterStop": 5, "timestamp": TS}, "schema:transactionId:type"),
    ("StopTransaction", {"transactionId": 7, "meterStop": 5, "timestamp": "2025-11-24T16:00:00"}, "schema:timestamp:format"),
    ("StartTransaction", {"connectorId": 1, "meterStart": 0, "timestamp": TS}, "schema:payload:required"),
    ("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 10.5, "timestamp": TS}, "schema:meterStart:type"),
    ("StartTransaction", {"connectorId": 1, "idTag": "X" * 30, "meterStart": 0, "timestamp": TS}, "schema:idTag:maxLength"),
    ("MeterValues", {"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 12.5}]}]},
     "schema:meterValue[*].sampledValue[*].value:type"),
    ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1", "measurand": "Foo.Bar"}]}]},
     "schema:meterValue[*].sampledValue[*].measurand:enum"),
    ("MeterValues", {"connectorId": 1}, "schema:payload:required"),
    ("StatusNotification", {"connectorId": 1, "errorCode": "Error", "status": "Faulted"}, "schema:errorCode:enum"),
    ("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Faulted", "timestamp": "2025-11-24 16:00"},
     "schema:timestamp:format"),
]


@pytest.mark.parametrize("action, payload, flag", NEVER_BLOCK)
def test_transaction_messages_are_never_refused_for_content(action: str, payload: dict, flag: str | None) -> None:
    reaction = make_handler().receive(call(action, payload), NOW)
    reply = json.loads(reaction.reply)
    assert reply[0] == 3 and reply[1] == "m1", reply
    if action == "StartTransaction":
        assert reply[2]["transactionId"] > 0 and reply[2]["idTagInfo"]["status"] == "Accepted"
    if flag is None:
        assert reaction.inbound.flags == ()
    else:
        assert reaction.inbound.flags == ("schema_violation", flag)
        assert reaction.inbound.error


@pytest.mark.parametrize(
    "frame, code",
    [
        (call("BootNotification", {"chargePointVendor": "V"}), "OccurenceConstraintViolation"),
        (call("BootNotification", {"chargePointVendor": 5, "chargePointModel": "M"}), "TypeConstraintViolation"),
        (call("Authorize", {"idTag": "X" * 21}), "PropertyConstraintViolation"),
        (call("RemoteStartTransaction", {"idTag": "X"}), "NotSupported"),
        (call("FancyVendorThing", {}), "NotImplemented"),
        ('[2,"m1","Heartbeat"', "FormationViolation"),
    ],
)
def test_other_messages_get_the_matching_callerror(frame: str, code: str) -> None:
    reaction = make_handler().receive(frame, NOW)
    reply = json.loads(reaction.reply)
    assert reply[0] == 4 and reply[2] == code
    assert reaction.inbound.frame == frame and reaction.inbound.error.startswith(code)
    assert not reaction.durable


def test_results_from_the_charger_are_kept_not_answered() -> None:
    reaction = make_handler().receive('[3,"x",{"status":"Accepted"}]', NOW)
    assert reaction.reply is None and reaction.inbound.message_type == MessageType.CALL_RESULT


def test_binary_frames_are_kept_in_base64_and_refused() -> None:
    reaction = make_handler().receive(b"\x00\xffOCPP", NOW)
    assert reaction.inbound.flags == ("binary_frame",) and reaction.inbound.frame == "AP9PQ1BQ"
    assert json.loads(reaction.reply)[:3] == [4, "-1", "FormationViolation"]


def test_envelopes_number_both_directions_and_name_the_action() -> None:
    handler = make_handler()
    first = handler.receive(call("Heartbeat", {}, "h1"), NOW)
    second = handler.receive(call("Heartbeat", {}, "h2"), NOW + 5)
    seqs = [first.inbound.seq, first.reply_envelope.seq, second.inbound.seq, second.reply_envelope.seq]
    assert seqs == [0, 1, 2, 3]
    out = first.reply_envelope
    assert (out.direction, out.action, out.message_id, out.message_type) == (Direction.OUT, "Heartbeat", "h1", MessageType.CALL_RESULT)
    assert out.frame == first.reply and out.gateway_ts_ms == NOW


def test_unacknowledged_transaction_calls_get_internal_error() -> None:
    handler = make_handler()
    reaction = handler.receive(call("StopTransaction", {"transactionId": 5, "meterStop": 10, "timestamp": TS}, "s1"), NOW)
    refused = handler.unacknowledged(reaction, NOW + 10_000, "Kafka did not acknowledge in time")
    assert json.loads(refused.reply)[:3] == [4, "s1", "InternalError"]
    assert refused.reply_envelope.message_type == MessageType.CALL_ERROR and refused.inbound is reaction.inbound


payloads = st.dictionaries(
    st.sampled_from(["connectorId", "idTag", "meterStart", "meterStop", "timestamp", "transactionId", "reason",
                     "meterValue", "transactionData", "status", "errorCode", "x"]),
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.lists(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3), max_size=3),
    max_size=6,
)
actions = st.sampled_from(["StartTransaction", "StopTransaction", "MeterValues", "StatusNotification", "BootNotification",
                           "Authorize", "Heartbeat", "DataTransfer", "Reset", "Nope", ""])
frames = st.one_of(
    st.builds(lambda a, p, mid: json.dumps([2, mid, a, p]), actions, payloads, st.text(min_size=1, max_size=36)),
    st.text(max_size=100),
    st.binary(max_size=50),
)


@settings(max_examples=1500, deadline=None)
@given(frames)
def test_the_handler_never_raises_and_always_answers_a_call(frame: str | bytes) -> None:
    reaction = make_handler().receive(frame, NOW)
    # Every frame is kept exactly (bytes as base64), in an envelope the contract's model reads back.
    model = reaction.inbound.to_model()
    assert isinstance(model, FrameEnvelope)
    if isinstance(frame, str):
        assert reaction.inbound.frame == frame == model.frame
    if reaction.reply_envelope is not None:
        reaction.reply_envelope.to_model()
        reaction.reply.encode("utf-8")  # sendable as a WebSocket text frame
    if reaction.reply is None:
        assert reaction.inbound.message_type in (MessageType.CALL_RESULT, MessageType.CALL_ERROR)
        return
    reply = json.loads(reaction.reply)
    assert reply[0] in (3, 4) and isinstance(reply[1], str)
    if reaction.inbound.message_type == MessageType.CALL:
        assert reply[1] == reaction.inbound.message_id
        if reaction.inbound.action in {"StartTransaction", "StopTransaction", "MeterValues"}:
            assert reply[0] == 3, "a transaction message was refused"
