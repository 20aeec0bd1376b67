"""Bad input anywhere: a verdict and a flag, never an exception (issue 25, Deliver 6)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value, from_ocpp201_sampled_value
from signed_meter.limits import SignedDataLimits
from signed_meter.model import SignatureStatus, SignedFlag
from signed_meter.registry import RegisteredKey
from signed_meter.session import SessionSignatures
from signed_meter.verification import verify_signed_value, verify_text
from tests.signed_meter.signing import TM1, Signer, payload

SIGNER = Signer("secp256r1")
KEYS = [RegisteredKey("CP", None, SIGNER.public_key_hex)]
GOOD = SIGNER.sign(payload(1, ("B", "1.000", TM1)))
PAYLOAD = GOOD[len("OCMF|") : GOOD.rfind("|")]
SD = json.loads(GOOD[GOOD.rfind("|") + 1 :])["SD"]
P192 = Signer("secp192r1")

U = SignatureStatus.UNPARSABLE
I = SignatureStatus.INVALID

# (case, signed text, status, flag that must be set)
CASES = [
    ("empty", "", U, SignedFlag.DATA_UNPARSABLE),
    ("header only", "OCMF|", U, SignedFlag.DATA_UNPARSABLE),
    ("truncated in the payload", GOOD[:40], U, SignedFlag.DATA_UNPARSABLE),
    ("truncated in the signature", GOOD[:-20], U, SignedFlag.DATA_UNPARSABLE),
    ("payload not JSON", f"OCMF|{{nope|{{\"SD\":\"{SD}\"}}", U, SignedFlag.DATA_UNPARSABLE),
    ("payload a list", f'OCMF|[1,2]|{{"SD":"{SD}"}}', U, SignedFlag.DATA_UNPARSABLE),
    ("signature section a list", f"OCMF|{PAYLOAD}|[1]", U, SignedFlag.DATA_UNPARSABLE),
    ("no SD", f'OCMF|{PAYLOAD}|{{"SA":"ECDSA-secp256r1-SHA256"}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("SD a number", f'OCMF|{PAYLOAD}|{{"SD":12}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("non-hex signature", f'OCMF|{PAYLOAD}|{{"SD":"30zz"}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("odd-length hex", f'OCMF|{PAYLOAD}|{{"SD":"{SD[:-1]}"}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("not base64 when SE says so", f'OCMF|{PAYLOAD}|{{"SE":"base64","SD":"!!"}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("unknown SE", f'OCMF|{PAYLOAD}|{{"SE":"rot13","SD":"{SD}"}}', U, SignedFlag.SIGNATURE_MALFORMED),
    ("invalid DER", f'OCMF|{PAYLOAD}|{{"SD":"300201"}}', I, SignedFlag.SIGNATURE_MALFORMED),
    ("DER with r = 0", f'OCMF|{PAYLOAD}|{{"SD":"3006020100020101"}}', I, SignedFlag.SIGNATURE_MALFORMED),
    ("wrong curve declared", GOOD.replace('{"SD"', '{"SA":"ECDSA-secp384r1-SHA256","SD"'), I, SignedFlag.CURVE_MISMATCH),
    ("repeated JSON key", f'OCMF|{PAYLOAD[:-1]},"MS":"other"}}|{{"SD":"{SD}"}}', U, SignedFlag.DATA_UNPARSABLE),
    ("nested beyond json's recursion guard", f'OCMF|{{"RD":{"[" * 5000}{"]" * 5000}}}|{{"SD":"{SD}"}}', U,
     SignedFlag.DATA_UNPARSABLE),
    ("nested, within the guard", f'OCMF|{{"RD":{"[" * 40}{"]" * 40}}}|{{"SD":"{SD}"}}', I,
     SignedFlag.PAYLOAD_NONCONFORMING),
    ("huge", "OCMF|" + "x" * 100_000, U, SignedFlag.DATA_TOO_LARGE),
    ("not a known format", "EDL40;0102", U, SignedFlag.DATA_UNPARSABLE),
    ("Alfen, too few fields", "AP;0;3;AAAA", U, SignedFlag.DATA_UNPARSABLE),
    ("Alfen, data not base32", "AP;0;3;AAAA;!!!;AAAA;", U, SignedFlag.DATA_UNPARSABLE),
    ("Alfen, short data set", "AP;0;3;AAAA;AAAAAAAA;AAAA;", U, SignedFlag.DATA_UNPARSABLE),
    ("Alfen, unknown type", "AP;7;3;AAAA;AAAAAAAA;AAAA;", U, SignedFlag.DATA_UNPARSABLE),
    ("Alfen, other blob version", "AP;0;4;AAAA;AAAAAAAA;AAAA;", SignatureStatus.UNSUPPORTED, SignedFlag.ALGORITHM_UNSUPPORTED),
    ("payload readings unreadable", SIGNER.sign('{"PG":"T1","RD":[{"TM":"yesterday","TX":"B","RV":1}]}'),
     SignatureStatus.VERIFIED, SignedFlag.PAYLOAD_NONCONFORMING),
]


@pytest.mark.parametrize(("case", "text", "status", "flag"), CASES, ids=[c[0] for c in CASES])
def test_bad_signed_data(case, text, status, flag):
    verdict = verify_text(text, KEYS)
    assert verdict.status is status, verdict.detail
    assert flag in verdict.flags, verdict.flags


def test_a_point_not_on_the_curve_in_the_frame_is_key_unknown_and_flagged():
    bogus = "04" + "11" * 64
    verdict = verify_text(GOOD, public_key=bogus)
    assert verdict.status is SignatureStatus.KEY_UNKNOWN
    assert SignedFlag.KEY_UNUSABLE in verdict.flags


def test_a_wrong_curve_frame_key_is_invalid():
    verdict = verify_text(GOOD, public_key=P192.public_key_hex)
    assert verdict.status is SignatureStatus.INVALID and SignedFlag.CURVE_MISMATCH in verdict.flags


def test_transport_problems_keep_the_value_and_say_why():
    huge = {"format": "SignedData", "value": "x" * 40_000, "context": "Transaction.End"}
    value = from_ocpp16_sampled_value(huge)
    assert value is not None and value.problem is SignedFlag.DATA_TOO_LARGE
    assert verify_signed_value(value, KEYS).status is SignatureStatus.UNPARSABLE
    assert value.raw == huge["value"] and value.signed_data == ""
    session = SessionSignatures().add(verify_signed_value(value, KEYS))
    assert session.result().signed_stop is None and len(str(session.to_state())) < 1000
    number = from_ocpp16_sampled_value({"format": "SignedData", "value": 12.5})
    assert number is not None and number.raw == "12.5" and number.problem is SignedFlag.DATA_UNPARSABLE
    oca_broken = from_ocpp16_sampled_value({"format": "SignedData", "value": '{"signedMeterData": "***"}'})
    assert oca_broken is not None and verify_signed_value(oca_broken).status is SignatureStatus.UNPARSABLE
    plain_201 = from_ocpp201_sampled_value({"value": 1, "signedMeterValue": {"signedMeterData": GOOD}})
    assert plain_201 is not None and verify_signed_value(plain_201, KEYS).status is SignatureStatus.VERIFIED


@pytest.mark.parametrize(
    "sampled_value",
    [None, 3, "x", [], {}, {"format": "Raw", "value": "OCMF|"}, {"value": "1"}, {"signedMeterValue": None}],
)
def test_sampled_values_that_are_not_signed(sampled_value):
    assert from_ocpp16_sampled_value(sampled_value) is None
    assert from_ocpp201_sampled_value(sampled_value) is None


def test_hex_and_base64_wrapped_records_are_read():
    for wrapped in (GOOD.encode().hex(), base64.b64encode(GOOD.encode()).decode()):
        verdict = verify_text(wrapped, KEYS)
        assert verdict.status is SignatureStatus.VERIFIED and verdict.record is not None
        assert verdict.record.signed_data == GOOD


def test_limits_are_settings_not_constants():
    small = SignedDataLimits(max_chars=100)
    assert verify_text(GOOD, KEYS, limits=small).status is SignatureStatus.UNPARSABLE
    many = SIGNER.sign(payload(1, *[("C", "1", TM1)] * 5))
    assert SignedFlag.DATA_TOO_LARGE in verify_text(many, KEYS, limits=SignedDataLimits(max_readings=4)).flags


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
texts = st.one_of(
    st.text(max_size=300),
    st.text(max_size=200).map(lambda t: "OCMF|" + t),
    st.text(max_size=200).map(lambda t: "AP;" + t),
    st.builds(lambda i, j, s: GOOD[:i] + s + GOOD[j:], st.integers(0, len(GOOD)), st.integers(0, len(GOOD)),
              st.text(max_size=8)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=texts, key=st.none() | st.text(max_size=60), context=st.none() | st.text(max_size=20))
def test_any_text_gives_a_verdict(text, key, context):
    value = SignedValue(text, text, "1.6", context, public_key=key)
    verdict = verify_signed_value(value, KEYS)
    assert isinstance(verdict.status, SignatureStatus)
    assert verdict.status is not SignatureStatus.UNSIGNED
    if verdict.status is SignatureStatus.VERIFIED:
        assert verdict.record is not None and verdict.record.signed_bytes.decode() == PAYLOAD
    SessionSignatures().add(verdict).result(123.0)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_give_a_verdict(data):
    assert isinstance(verify_text(data, KEYS).status, SignatureStatus)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(sampled_value=json_values, signed=json_values)
def test_any_sampled_value_gives_none_or_a_verdict(sampled_value, signed):
    shapes = [sampled_value]
    if isinstance(sampled_value, dict):
        shapes += [dict(sampled_value, format="SignedData"), dict(sampled_value, signedMeterValue=signed)]
    for shape in shapes:
        for read in (from_ocpp16_sampled_value, from_ocpp201_sampled_value):
            value = read(shape)
            if value is not None:
                assert isinstance(verify_signed_value(value, KEYS).status, SignatureStatus)
