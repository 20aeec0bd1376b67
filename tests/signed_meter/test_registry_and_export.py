"""The key registry (lookup, events, import file) and the exports a transparency application reads."""

from __future__ import annotations

import base64
import json
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pyocmf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value
from signed_meter.errors import UnusablePublicKey
from signed_meter.export import ocmf_json, safe_xml
from signed_meter.keys import decode_public_key
from signed_meter.model import SignatureStatus
from signed_meter.registry import (
    KeyAction,
    KeyEvent,
    KeyFileError,
    KeyRegistry,
    RegisteredKey,
    parse_key_file,
    registry_of,
)
from signed_meter.session import SessionSignatures
from signed_meter.verification import verify_signed_value
from tests.signed_meter.signing import TM1, Signer, payload

A, B, C = Signer("secp256r1"), Signer("secp256r1"), Signer("secp384r1")


def test_lookup_connector_first_then_station_then_nothing():
    registry = (KeyRegistry().add(RegisteredKey("CP1", None, A.public_key_hex))
                .add(RegisteredKey("CP1", 2, B.public_key_hex)).add(RegisteredKey("CP2", 1, C.public_key_hex)))
    assert [k.public_key for k in registry.keys_for("CP1", 2)] == [B.public_key_hex, A.public_key_hex]
    assert [k.public_key for k in registry.keys_for("CP1", 1)] == [A.public_key_hex]
    assert len(registry.keys_for("CP1")) == 2  # connector unknown: every key of the station
    assert registry.keys_for("CP2", 2) == ()
    assert registry.keys_for("CP3", 1) == ()


def test_the_same_key_in_another_spelling_is_registered_once_and_removed_by_any_spelling():
    der = bytes.fromhex(A.public_key_hex)
    registry = KeyRegistry().add(RegisteredKey("CP", 1, A.public_key_hex))
    registry = registry.add(RegisteredKey("CP", 1, base64.b64encode(der).decode()))
    assert len(registry.entries) == 1
    registry = registry.remove(RegisteredKey("CP", 1, A.point.hex()))
    assert registry.entries == ()


def test_an_unusable_key_is_refused_with_a_message():
    with pytest.raises(UnusablePublicKey, match="not a public key"):
        KeyRegistry().add(RegisteredKey("CP", None, "3059deadbeef"))


def test_events_replay_to_the_same_registry():
    events = [
        KeyEvent(KeyAction.ADD, RegisteredKey("CP", None, A.public_key_hex, author="ops", reference="T-1")),
        KeyEvent(KeyAction.ADD, RegisteredKey("CP", 1, B.public_key_hex)),
        KeyEvent(KeyAction.ADD, RegisteredKey("CP", 1, "garbage")),  # refused when it was sent: skipped
        KeyEvent(KeyAction.REMOVE, RegisteredKey("CP", None, A.public_key_hex)),
    ]
    registry = registry_of(events)
    assert [k.public_key for k in registry.keys_for("CP", 1)] == [B.public_key_hex]
    assert registry_of(events) == registry


def test_key_import_file():
    text = "charge_point_id,connector_id,public_key,meter_serial\n" \
           f"CP1,,{A.public_key_hex},M1\nCP1,2,{B.public_key_hex},\n"
    events = parse_key_file(text, author="ops", reference="import-1")
    assert [(e.key.charge_point_id, e.key.connector_id, e.key.meter_serial, e.key.author) for e in events] == [
        ("CP1", None, "M1", "ops"), ("CP1", 2, None, "ops")]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("cp,key\nCP1,00\n", 1),
        (f"charge_point_id,public_key\nCP1,{A.public_key_hex}\n,{A.public_key_hex}\n", 3),
        (f"charge_point_id,connector_id,public_key\nCP1,0,{A.public_key_hex}\n", 2),
        ("charge_point_id,public_key\nCP1,not-a-key\n", 2),
    ],
)
def test_key_import_file_errors_name_the_line(text, line):
    with pytest.raises(KeyFileError) as caught:
        parse_key_file(text)
    assert caught.value.line == line


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=400))
def test_any_import_file_parses_or_says_which_line(text):
    try:
        events = parse_key_file(text)
    except KeyFileError as e:
        assert e.line >= 1
    else:
        assert all(isinstance(e, KeyEvent) for e in events)


def _real_session(samples, pair_id):
    members = [s for s in samples if s["pair_id"] == pair_id]
    keys = [RegisteredKey("SMV", None, members[0]["public_key_hex"])]
    verdicts = [verify_signed_value(from_ocpp16_sampled_value(m["ocpp16_sampled_value"]), keys) for m in members]
    return members, SessionSignatures().add_all(verdicts).result()


@pytest.mark.parametrize("pair_id", ["bsm_fw19", "seal_em340", "oca_dzg", "nzr_bp256", "dzg_dvh4013", "alfen_10"])
def test_safe_xml_holds_the_signed_data_exactly_and_the_key_that_verified(samples, pair_id, tmp_path: Path):
    members, session = _real_session(samples, pair_id)
    document = safe_xml(session, transaction_id="42")
    root = ET.fromstring(document)
    values = root.findall("value")
    assert [v.find("signedData").text for v in values] == [r.value.signed_data for r in session.records]
    assert {v.get("transactionId") for v in values} == {"42"}
    assert values[-1].get("context") == "Transaction.End"
    if len(values) > 1:
        assert values[0].get("context") == "Transaction.Begin"
    is_alfen = members[0]["format"] == "ALFEN"
    for v in values:
        assert v.find("signedData").get("format") == ("ALFEN" if is_alfen else "OCMF")
        key = v.find("publicKey")
        if is_alfen:
            assert key is None
        else:
            assert decode_public_key(key.text) == decode_public_key(members[0]["public_key_hex"])
    if not is_alfen:  # an independent reader (pyocmf, after the Transparenzsoftware's format) verifies it
        path = tmp_path / "export.xml"
        path.write_text(document, encoding="utf-8")
        with warnings.catch_warnings():  # pyocmf's SpecWarnings on the real records (OCCP_AUTH, ID formats)
            warnings.simplefilter("ignore", pyocmf.SpecWarning)
            records = list(pyocmf.OcmfContainer.from_xml(path))
        assert len(records) == len(members) and all(r.verify_signature() for r in records)


def test_safe_xml_escapes_and_falls_back_to_base64():
    text = A.sign(payload(1, ("B", "1", TM1)).replace('"MS":"M1"', '"MS":"<&>"'))
    tricky = SessionSignatures().add(verify_signed_value(SignedValue(text, text, "1.6"), [RegisteredKey("C", None, A.public_key_hex)]))
    assert ET.fromstring(safe_xml(tricky.result(), "1")).find("value/signedData").text == text
    control = "OCMF|\x01garbage"
    garbage = SessionSignatures().add(verify_signed_value(SignedValue(control, control, "1.6", "Transaction.End")))
    element = ET.fromstring(safe_xml(garbage.result(), "1")).find("value/signedData")
    assert element.get("encoding") == "base64" and base64.b64decode(element.text).decode() == control


def test_ocmf_json_lists_strings_keys_and_verdicts(samples):
    members, session = _real_session(samples, "lem_dcbm")
    document = json.loads(ocmf_json(session, charge_point_id="SMV006", transaction_id="7"))
    assert document["signature_status"] == "verified" and document["signed_energy_wh"] == 1101.0
    (only,) = document["values"]
    assert only["signed_data"] == members[0]["signed_data"] and only["status"] == "verified"
    assert only["public_key"]["source"] == "registry" and only["public_key"]["curve"] == "secp256r1"
    assert decode_public_key(only["public_key"]["value"]) == decode_public_key(members[0]["public_key_hex"])


def test_an_unsigned_session_exports_empty_documents():
    empty = SessionSignatures().result()
    assert empty.signature_status is SignatureStatus.UNSIGNED
    assert ET.fromstring(safe_xml(empty, "1")).findall("value") == []
    assert json.loads(ocmf_json(empty, charge_point_id="CP", transaction_id="1"))["values"] == []
