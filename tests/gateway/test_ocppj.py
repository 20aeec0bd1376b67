"""OCPP-J framing: table of frames -> parsed message or CALLERROR code; fuzzed never to raise
anything but an OcppError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from gateway import ocppj
from gateway.errors import OcppError


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[2,"1","Heartbeat",{}]', ocppj.Call("1", "Heartbeat", {})),
        ('[3,"1",{"currentTime":"x"}]', ocppj.CallResult("1", {"currentTime": "x"})),
        ('[4,"1","NotImplemented","",{}]', ocppj.CallErrorMessage("1", "NotImplemented", "", {})),
    ],
)
def test_parses_the_three_message_types(text: str, expected: object) -> None:
    assert ocppj.parse(text) == expected


@pytest.mark.parametrize(
    "text, code, message_id",
    [
        ("", "FormationViolation", "-1"),
        ("{}", "FormationViolation", "-1"),
        ("[]", "FormationViolation", "-1"),
        ('[2,"1","Heartbeat"', "FormationViolation", "-1"),  # truncated JSON
        ('["2","1","Heartbeat",{}]', "FormationViolation", "1"),  # type id as string
        ('[2,1,"Heartbeat",{}]', "FormationViolation", "-1"),  # numeric message id
        ('[2,"","Heartbeat",{}]', "FormationViolation", "-1"),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "FormationViolation", "-1"),
        ('[2,"7","Heartbeat"]', "FormationViolation", "7"),
        ('[2,"7","Heartbeat",[]]', "FormationViolation", "7"),
        ('[2,"7","",{}]', "FormationViolation", "7"),
        ('[2,"7",5,{}]', "FormationViolation", "7"),
        ('[3,"7"]', "FormationViolation", "7"),
        ('[4,"7","X"]', "FormationViolation", "7"),
        ('[5,"7",{}]', "ProtocolError", "7"),
        ('[2.0,"7","Heartbeat",{}]', "FormationViolation", "7"),
        ('[true,"7","Heartbeat",{}]', "FormationViolation", "7"),
    ],
)
def test_malformed_frames_map_to_their_callerror(text: str, code: str, message_id: str) -> None:
    with pytest.raises(OcppError) as info:
        ocppj.parse(text)
    assert info.value.code == code
    assert info.value.message_id == message_id


@pytest.mark.parametrize(
    "text, code_v201",
    [
        ("", "RpcFrameworkError"),  # OCPP-J 2.0.1, 4.3: "not a valid RPC Request, e.g. MessageId could not be read"
        ("[]", "RpcFrameworkError"),
        ('[2,1,"Heartbeat",{}]', "RpcFrameworkError"),
        ('["2","1","Heartbeat",{}]', "RpcFrameworkError"),
        ('[2,"7","Heartbeat"]', "RpcFrameworkError"),
        ('[2,"7",5,{}]', "RpcFrameworkError"),
        ('[3,"7"]', "RpcFrameworkError"),
        ('[2,"7","Heartbeat",[]]', "FormatViolation"),  # the payload: 1.6's FormationViolation, renamed
        ('[5,"7",{}]', "MessageTypeNotSupported"),
    ],
)
def test_malformed_frames_carry_their_201_code_too(text: str, code_v201: str) -> None:
    with pytest.raises(OcppError) as info:
        ocppj.parse(text)
    assert info.value.code_v201 == code_v201
    assert info.value.code in {"FormationViolation", "ProtocolError"}  # what 1.6 answers, unchanged


def test_error_codes_of_both_versions() -> None:
    from gateway import errors

    assert (errors.OccurenceConstraintViolation.code, errors.OccurenceConstraintViolation.code_v201) == (
        "OccurenceConstraintViolation", "OccurrenceConstraintViolation")
    assert (errors.FormationViolation.code, errors.FormationViolation.code_v201) == ("FormationViolation", "FormatViolation")
    for same in (errors.ProtocolError, errors.ActionNotImplemented, errors.NotSupported, errors.TypeConstraintViolation,
                 errors.PropertyConstraintViolation, errors.InternalError):
        assert same.code == same.code_v201


def test_rendered_answers_are_valid_ocppj() -> None:
    assert json.loads(ocppj.call_result("a", {"x": 1})) == [3, "a", {"x": 1}]
    error = json.loads(ocppj.call_error("a", "NotImplemented", "d" * 1000))
    assert error[:3] == [4, "a", "NotImplemented"] and len(error[3]) == 255 and error[4] == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), st.lists(json_values, max_size=6).map(json.dumps)))
def test_parse_never_raises_anything_but_an_ocpp_error(text: str) -> None:
    try:
        message = ocppj.parse(text)
    except OcppError as exc:
        assert exc.code in {"FormationViolation", "ProtocolError"}
        assert isinstance(exc.message_id, str) and 1 <= len(exc.message_id) <= 36
    else:
        assert isinstance(message, (ocppj.Call, ocppj.CallResult, ocppj.CallErrorMessage))
