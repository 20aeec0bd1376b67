"""The frame handler on an ``ocpp2.0.1`` connection: the answer to every charger action, the durable
ones, TransactionEvent never refused for content, the OCPP-J 2.0.1 CALLERROR codes. No socket, no Kafka."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from gateway.answers import AnswerPolicy
from gateway.handler import FrameHandler
from schemas.envelope import Direction, FrameEnvelope, MessageType
from tests.gateway.samples_v201 import ANSWERS, DURABLE, ENDED, REQUESTS, TAG, TS, UPDATED
from tests.gateway.test_handler import NOW, call, make_handler


def handler(policy: AnswerPolicy | None = None) -> FrameHandler:
    return make_handler(policy, version="ocpp2.0.1")


@pytest.mark.parametrize("action", sorted(REQUESTS))
def test_every_charger_action_gets_its_answer(action: str) -> None:
    reaction = handler().receive(call(action, REQUESTS[action]), NOW)
    assert json.loads(reaction.reply) == [3, "m1", ANSWERS[action]]
    assert reaction.durable == (action in DURABLE)
    assert reaction.inbound.error is None and reaction.inbound.flags == ()
    assert reaction.outcome == "accepted"
    for envelope in (reaction.inbound, reaction.reply_envelope):
        assert envelope.ocpp_version == "ocpp2.0.1" and envelope.action == action and envelope.message_id == "m1"


@pytest.mark.parametrize(
    "payload, answer",
    [
        (REQUESTS["TransactionEvent"], {"idTokenInfo": {"status": "Accepted"}}),
        (UPDATED, {}),  # no idToken: no idTokenInfo
        (ENDED, {}),
        ({**ENDED, "idToken": TAG}, {"idTokenInfo": {"status": "Accepted"}}),
    ],
)
def test_transaction_event_answers_id_token_info_only_for_an_id_token(payload: dict, answer: dict) -> None:
    reaction = handler().receive(call("TransactionEvent", payload), NOW)
    assert json.loads(reaction.reply)[2] == answer
    assert reaction.durable


@pytest.mark.parametrize(
    "id_token, status",
    [
        ({"idToken": "GOOD", "type": "ISO14443"}, "Accepted"),
        ({"idToken": "good", "type": "ISO14443"}, "Accepted"),  # IdTokens are case insensitive
        ({"idToken": "BAD", "type": "ISO14443"}, "Unknown"),
        ({"idToken": "", "type": "NoAuthorization"}, "Accepted"),  # a start button (ocpp-go #223)
    ],
)
def test_an_id_token_list_decides_authorization(id_token: dict, status: str) -> None:
    h = handler(AnswerPolicy(authorized_id_tags=frozenset({"GOOD"})))
    authorize = json.loads(h.receive(call("Authorize", {"idToken": id_token}, "a"), NOW).reply)
    started = json.loads(h.receive(call("TransactionEvent", {**REQUESTS["TransactionEvent"], "idToken": id_token}, "t"), NOW).reply)
    assert authorize[2] == started[2] == {"idTokenInfo": {"status": status}}


def test_the_charger_gives_the_transaction_id() -> None:
    # Unlike 1.6 StartTransaction, nothing is allocated: the answer carries no transactionId.
    reply = json.loads(handler().receive(call("TransactionEvent", REQUESTS["TransactionEvent"]), NOW).reply)
    assert "transactionId" not in json.dumps(reply[2])


# Never block (DESIGN.md; OCPP-QUIRKS.md, OCPP 2.0.1): answered anyway, the frame flagged.
NEVER_BLOCK = [
    ("TransactionEvent", {k: v for k, v in ENDED.items() if k != "triggerReason"}, "schema:payload:required"),  # MicroOcpp #405
    ("TransactionEvent", {**UPDATED, "seqNo": "1"}, "schema:seqNo:type"),
    ("TransactionEvent", {**UPDATED, "seqNo": 1.5}, "schema:seqNo:type"),
    ("TransactionEvent", {**UPDATED, "eventType": "Resumed"}, "schema:eventType:enum"),
    ("TransactionEvent", {**ENDED, "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "Unplugged"}},
     "schema:transactionInfo.stoppedReason:enum"),
    ("TransactionEvent", {**UPDATED, "timestamp": "2025-11-24T16:00:00"}, "schema:timestamp:format"),
    ("TransactionEvent", {**UPDATED, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "2500"}]}]},
     "schema:meterValue[*].sampledValue[*].value:type"),
    ("TransactionEvent", {**UPDATED, "transactionInfo": {"transactionId": "x" * 37}}, "schema:transactionInfo.transactionId:maxLength"),
    ("TransactionEvent", {k: v for k, v in UPDATED.items() if k != "transactionInfo"}, "schema:payload:required"),
    ("TransactionEvent", {**UPDATED, "vendorField": 1}, "schema:payload:additionalProperties"),
    ("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]},
     "schema:meterValue[*].sampledValue[*].value:type"),
    ("MeterValues", {"evseId": 1}, "schema:payload:required"),
    ("StatusNotification", {"timestamp": TS, "connectorStatus": "Charging", "evseId": 1, "connectorId": 1},
     "schema:connectorStatus:enum"),
]


@pytest.mark.parametrize("action, payload, flag", NEVER_BLOCK)
def test_transaction_messages_are_never_refused_for_content(action: str, payload: dict, flag: str) -> None:
    reaction = handler().receive(call(action, payload), NOW)
    reply = json.loads(reaction.reply)
    assert reply[:2] == [3, "m1"], reply
    assert reaction.inbound.flags == ("schema_violation", flag)
    assert reaction.outcome == "flagged" and reaction.durable == (action in DURABLE)
    # The envelope names the violation with the OCPP-J 2.0.1 code.
    assert reaction.inbound.error.split(":")[0] in {
        "OccurrenceConstraintViolation", "TypeConstraintViolation", "PropertyConstraintViolation"}


def test_a_lenient_id_token_of_the_wrong_shape_still_gets_id_token_info() -> None:
    h = handler(AnswerPolicy(authorized_id_tags=frozenset({"TAG1"})))
    for id_token, status in (("TAG1", "Accepted"), (["TAG1"], "Unknown"), ({"idToken": 5}, "Unknown"), (None, "Unknown")):
        reaction = h.receive(call("TransactionEvent", {**REQUESTS["TransactionEvent"], "idToken": id_token}), NOW)
        assert json.loads(reaction.reply)[2] == {"idTokenInfo": {"status": status}}
        assert reaction.inbound.flags[0] == "schema_violation"


@pytest.mark.parametrize(
    "frame, code, message_id",
    [
        (call("BootNotification", {"chargingStation": {"model": "M", "vendorName": "V"}}), "OccurrenceConstraintViolation", "m1"),
        (call("BootNotification", {"chargingStation": {"model": 5, "vendorName": "V"}, "reason": "PowerUp"}),
         "TypeConstraintViolation", "m1"),
        (call("Authorize", {"idToken": {"idToken": "X" * 37, "type": "ISO14443"}}), "PropertyConstraintViolation", "m1"),
        (call("NotifyEvent", {"generatedAt": TS, "seqNo": 0, "eventData": []}), "OccurrenceConstraintViolation", "m1"),
        (call("RequestStartTransaction", {"idToken": TAG, "remoteStartId": 1}), "NotSupported", "m1"),
        (call("GetVariables", {"getVariableData": []}), "NotSupported", "m1"),
        (call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}), "NotImplemented", "m1"),
        (call("FancyVendorThing", {}), "NotImplemented", "m1"),
        ('[2,"m1","Heartbeat"', "RpcFrameworkError", "-1"),
        ("[]", "RpcFrameworkError", "-1"),
        ('[2,7,"Heartbeat",{}]', "RpcFrameworkError", "-1"),
        ('[2,"m1","Heartbeat"]', "RpcFrameworkError", "m1"),
        ('[2,"m1","Heartbeat",[]]', "FormatViolation", "m1"),
        ('[6,"m1","Heartbeat",{}]', "MessageTypeNotSupported", "m1"),
    ],
)
def test_other_messages_get_the_201_callerror(frame: str, code: str, message_id: str) -> None:
    reaction = handler().receive(frame, NOW)
    reply = json.loads(reaction.reply)
    assert reply[:3] == [4, message_id, code]
    assert reaction.inbound.frame == frame and reaction.inbound.error.startswith(code + ":")
    assert not reaction.durable and reaction.outcome == "call_error"


def test_binary_frames_are_kept_and_refused_with_rpc_framework_error() -> None:
    reaction = handler().receive(b"\x00\xffOCPP", NOW)
    assert reaction.inbound.flags == ("binary_frame",) and reaction.inbound.error.startswith("RpcFrameworkError:")
    assert json.loads(reaction.reply)[:3] == [4, "-1", "RpcFrameworkError"]


def test_unacknowledged_transaction_events_get_internal_error() -> None:
    h = handler()
    reaction = h.receive(call("TransactionEvent", UPDATED, "t1"), NOW)
    refused = h.unacknowledged(reaction, NOW + 10_000, "Kafka did not acknowledge in time")
    assert json.loads(refused.reply)[:3] == [4, "t1", "InternalError"]
    assert refused.reply_envelope.message_type == MessageType.CALL_ERROR and refused.inbound is reaction.inbound


def test_results_from_the_charger_are_kept_not_answered() -> None:
    reaction = handler().receive('[3,"x",{"getVariableResult":[]}]', NOW)
    assert reaction.reply is None and reaction.inbound.message_type == MessageType.CALL_RESULT
    assert reaction.inbound.direction == Direction.IN and reaction.inbound.ocpp_version == "ocpp2.0.1"


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
payloads = st.one_of(
    st.sampled_from([REQUESTS["TransactionEvent"], UPDATED, ENDED]).flatmap(
        lambda base: st.dictionaries(st.sampled_from(sorted(base) + ["x"]), json_leaf | st.dictionaries(st.text(max_size=8), json_leaf),
                                     max_size=4).map(lambda changes: {**base, **changes})),
    st.dictionaries(st.text(max_size=12), json_leaf, max_size=5),
)
actions = st.sampled_from(["TransactionEvent", "MeterValues", "StatusNotification", "Authorize", "BootNotification", "NotifyEvent",
                           "SignCertificate", "RequestStopTransaction", "StartTransaction", "Nope", ""])


@settings(max_examples=1000, deadline=None)
@given(actions, payloads, st.sampled_from([None, frozenset({"TAG1"})]))
def test_the_handler_never_raises_and_never_refuses_a_transaction_event(action: str, payload: dict, tags) -> None:
    frame = json.dumps([2, "m1", action, payload])
    reaction = handler(AnswerPolicy(authorized_id_tags=tags)).receive(frame, NOW)
    assert isinstance(reaction.inbound.to_model(), FrameEnvelope) and reaction.inbound.frame == frame
    reply = json.loads(reaction.reply)
    assert reply[1] == "m1"
    if action in {"TransactionEvent", "MeterValues", "StatusNotification"}:
        assert reply[0] == 3, f"a lenient {action} was refused: {reply}"
        assert reaction.durable == (action in DURABLE)
