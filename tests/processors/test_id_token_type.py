"""``sessions.id_token_type``: how the driver identified, as the charger said it (OCPP 2.0.1 ``idToken.type``; a 1.6
start with an empty idTag is ``NoAuthorization``), carried from the start (or the first event naming the driver)
to every row of the session. The EV-ChART export turns it into ``payment_method`` (KPIS.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from processors.inputs import MAX_TOKEN_TYPE
from processors.state import CorrelatorState
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import Session
from tests.processors.script import T0_MS, Script, iso, only_session

TX = "tx-0001"
ABSENT = object()  # no idToken in the event


def event(seq: int, event_type: str, token: Any = ABSENT, *, at: float) -> FrameEnvelope:
    """A TransactionEvent of transaction TX on EVSE 1; ``token`` is the whole ``idToken`` object."""
    payload: dict[str, Any] = {"eventType": event_type, "timestamp": iso(at), "seqNo": seq, "triggerReason": "Authorized",
                               "transactionInfo": {"transactionId": TX}, "evse": {"id": 1, "connectorId": 1}}
    if token is not ABSENT:
        payload["idToken"] = token
    if event_type == "Ended":
        payload["transactionInfo"]["stoppedReason"] = "Local"
    return FrameEnvelope(
        charge_point_id="CS-1", direction=Direction.IN, gateway_ts_ms=T0_MS + int(at * 1000),
        frame=json.dumps([2, f"m{seq}", "TransactionEvent", payload]), ocpp_version="ocpp2.0.1", gateway_id="gw",
        connection_id="c", seq=seq, message_type=MessageType.CALL, action="TransactionEvent", message_id=f"m{seq}")


def session_of(envelopes: list[FrameEnvelope]) -> Session:
    state, events = None, []
    for envelope in envelopes:
        correlator = Correlator("CS-1", CorrelatorConfig.defaults(), state)
        events += correlator.feed(envelope)
        state = state_codec.loads(state_codec.dumps(correlator.state))  # as the changelog-backed table keeps it
    events += Correlator("CS-1", CorrelatorConfig.defaults(), state).advance(envelopes[-1].gateway_ts_ms + 3_600_000)
    return only_session(events)


def card(token: str, kind: Any) -> dict[str, Any]:
    return {"idToken": token, "type": kind}


@pytest.mark.parametrize("started, updated, expected", [
    (card("04A2B3C4", "ISO14443"), ABSENT, "ISO14443"),
    (card("04A2B3C4", "ISO15693"), ABSENT, "ISO15693"),
    (card("USA-ABC-123456-7", "eMAID"), ABSENT, "eMAID"),
    (card("c0ffee00-1111", "Central"), ABSENT, "Central"),
    (card("", "NoAuthorization"), ABSENT, "NoAuthorization"),
    (card("1234", "KeyCode"), ABSENT, "KeyCode"),
    (card("", "NoAuthorization"), card("04A2B3C4", "ISO14443"), "ISO14443"),  # TxStartPoint EVConnected: card later
    (ABSENT, card("c0ffee00-1111", "Central"), "Central"),  # started at plug-in, driver named by an Updated
    (card("USA-ABC-123456-7", "eMAID"), card("04A2B3C4", "ISO14443"), "eMAID"),  # the driver who started it stands
    (card("04A2B3C4", "DirectPayment"), ABSENT, "DirectPayment"),  # a newer type: kept as sent
    (card("04A2B3C4", "x" * 500), ABSENT, "x" * MAX_TOKEN_TYPE),  # bounded
    (card("04A2B3C4", 7), ABSENT, "7"),
    ({"idToken": "04A2B3C4"}, ABSENT, ""),  # no type: not known
    (ABSENT, ABSENT, ""),
])
def test_a_2_0_1_session_keeps_the_type_of_its_driver_s_token(started: Any, updated: Any, expected: str) -> None:
    envelopes = [event(0, "Started", started, at=0), event(1, "Updated", updated, at=60), event(2, "Ended", at=600)]
    assert session_of(envelopes).id_token_type == expected


@pytest.mark.parametrize("start_payload, expected", [
    ({"idTag": "TAG-1"}, ""),  # 1.6 does not say what kind of token an idTag is
    ({"idTag": ""}, "NoAuthorization"),  # a start without a driver (free vend)
    ({"idTag": "   "}, "NoAuthorization"),
    ({}, "NoAuthorization"),  # the idTag left out (a schema violation, still a start)
])
def test_a_1_6_session_knows_only_whether_a_driver_was_named(start_payload: dict[str, Any], expected: str) -> None:
    script = Script().at(0)
    message_id = script.call("StartTransaction", {"connectorId": 1, "meterStart": 0, "timestamp": iso(0), **start_payload})
    script.at(1)._env(Direction.OUT, [3, message_id, {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}],
                      MessageType.CALL_RESULT, "StartTransaction", message_id)
    script.at(600).stop(7, 5000)
    session = only_session(script.run(until=3600))  # the start waits for its answer in the persisted state
    assert session.id_token_type == expected


@settings(max_examples=60, deadline=None)
@given(kind=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                         max_leaves=6))
def test_whatever_a_charger_sends_as_the_type_the_row_holds_a_bounded_string(kind: Any) -> None:
    session = session_of([event(0, "Started", card("04A2B3C4", kind), at=0), event(1, "Ended", at=600)])
    assert isinstance(session.id_token_type, str) and len(session.id_token_type) <= MAX_TOKEN_TYPE
    session.row()  # storable: the sink's check passes
