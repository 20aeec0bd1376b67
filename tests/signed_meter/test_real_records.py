"""The 20 real signed records and 40 tampered copies of ../shared/ocmf, through both OCPP spellings.

Every real record verifies with its published key (Alfen too: its format is verified faithfully);
every session's signed energy is the expected one in every arrival order; every tampered copy is
``invalid`` - not ``unparsable``, not ``key_unknown``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from decimal import Decimal
from typing import Any

import pytest

from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value, from_ocpp201_sampled_value
from signed_meter.model import SignatureStatus, SignedFlag, SignedFormat
from signed_meter.record import read_record
from signed_meter.registry import RegisteredKey
from signed_meter.session import SessionSignatures
from signed_meter.verification import verify_signed_value


def arrivals(sample: dict[str, Any]) -> list[SignedValue]:
    """The record as a 1.6 sampled value and as a 2.0.1 one (and the OCA 1.6 document where published)."""
    values = [from_ocpp16_sampled_value(sample["ocpp16_sampled_value"]),
              from_ocpp201_sampled_value(sample["ocpp201_sampled_value"])]
    if "ocpp16_value_as_published" in sample:
        values.append(from_ocpp16_sampled_value({"format": "SignedData", "value": sample["ocpp16_value_as_published"],
                                                 "context": sample["ocpp16_context"]}))
    assert all(v is not None for v in values)
    return values  # type: ignore[return-value]


def registered(key_hex: str, cp: str = "SMV000") -> list[RegisteredKey]:
    return [RegisteredKey(cp, None, key_hex)]


def test_the_material_is_all_there(samples, tampered, sessions):
    assert (len(samples), len(tampered), len(sessions)) == (20, 40, 11)


def test_every_real_record_verifies_with_its_registered_key_in_every_spelling(samples):
    for sample in samples:
        for value in arrivals(sample):
            verdict = verify_signed_value(value, registered(sample["public_key_hex"]))
            assert verdict.status is SignatureStatus.VERIFIED, (sample["name"], value.ocpp_version, verdict.detail)
            assert verdict.value.signed_data == sample["signed_data"], sample["name"]
            assert verdict.flags == frozenset(), (sample["name"], verdict.flags)


def test_the_signed_bytes_are_the_payload_as_sent(samples):
    for sample in samples:
        record = read_record(sample["signed_data"])
        assert hashlib.sha256(record.signed_bytes).hexdigest() == sample["signed_bytes"]["sha256"], sample["name"]
        assert record.format is (SignedFormat.ALFEN if sample["format"] == "ALFEN" else SignedFormat.OCMF)


def test_readings_meter_and_pagination_are_read_as_signed(samples):
    for sample in samples:
        record = read_record(sample["signed_data"])
        assert record.meter_serial == sample["meter_serial"], sample["name"]
        assert record.pagination == str(sample["pagination"]), sample["name"]
        assert len(record.readings) == len(sample["readings"]), sample["name"]
        for got, want in zip(record.readings, sample["readings"], strict=True):
            assert got.tx == want["tx"], sample["name"]
            assert got.unit == want["unit"], sample["name"]
            assert got.time == want["time"], sample["name"]
            assert Decimal(str(want["value"]).strip()) == got.value, sample["name"]
            assert got.value_wh == Decimal(str(want["value_wh"])), sample["name"]
            if sample["format"] == "OCMF":
                assert got.obis == want["obis"], sample["name"]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_session_signs_its_expected_energy_in_every_arrival_order(sessions, version):
    for pair_id, members in sessions.items():
        key = registered(members[0]["public_key_hex"])
        verdicts = [verify_signed_value(arrivals(m)[0 if version == "1.6" else 1], key) for m in members]
        first = members[0]
        session_energy = first["pair"]["end_register_wh"] - first["pair"]["begin_register_wh"]
        results = {SessionSignatures().add_all(order).result(session_energy) for order in itertools.permutations(verdicts)}
        assert len(results) == 1, pair_id
        result = results.pop()
        begin = next(m for m in members if m["role"] in ("begin", "begin_end"))
        end = next(m for m in members if m["role"] in ("end", "begin_end"))
        assert result.signature_status is SignatureStatus.VERIFIED, pair_id
        assert result.signed_energy_wh == first["expected_signed_energy_wh"], pair_id
        assert (result.signed_start, result.signed_stop) == (begin["signed_data"], end["signed_data"]), pair_id
        assert result.flags == (), (pair_id, result.flags)


def test_lifetime_registers_as_ocpp_energy_are_a_mismatch_on_the_bsm_sessions(sessions):
    """meterStart/meterStop from the lifetime register (XV) make 160 Wh against 150 Wh signed."""
    for pair_id in ("bsm_fw17", "bsm_fw19"):
        members = sessions[pair_id]
        key = registered(members[0]["public_key_hex"])
        state = SessionSignatures().add_all(verify_signed_value(arrivals(m)[0], key) for m in members)
        lifetime = members[0]["pair"]["lifetime_register_delta_wh"]
        assert SignedFlag.ENERGY_MISMATCH in state.result(lifetime).flags, pair_id
        assert state.result(lifetime).signed_energy_wh == 150.0


def test_every_tampered_copy_is_invalid_in_both_versions(samples, tampered):
    by_name = {s["name"]: s for s in samples}
    for variant in tampered:
        original = by_name[variant["of"]]
        sv16 = dict(original["ocpp16_sampled_value"], value=variant["signed_data"])
        smv = dict(original["ocpp201_sampled_value"]["signedMeterValue"],
                   signedMeterData=base64.b64encode(variant["signed_data"].encode()).decode())
        sv201 = dict(original["ocpp201_sampled_value"], signedMeterValue=smv)
        for value in (from_ocpp16_sampled_value(sv16), from_ocpp201_sampled_value(sv201)):
            verdict = verify_signed_value(value, registered(variant["public_key_hex"]))
            assert verdict.status is SignatureStatus.INVALID, (variant["name"], verdict.status, verdict.detail)


def test_a_tampered_record_spoils_its_session(sessions, tampered):
    variant = next(t for t in tampered if t["of"] == "bsm_ws36a_fw17_T2065_end" and t["kind"] == "value_digit_changed")
    members = sessions["bsm_fw17"]
    key = registered(members[0]["public_key_hex"])
    begin = verify_signed_value(arrivals(members[0])[0], key)
    end = verify_signed_value(from_ocpp16_sampled_value({"format": "SignedData", "value": variant["signed_data"],
                                                         "context": "Transaction.End"}), key)
    assert SessionSignatures().add(begin).add(end).result().signature_status is SignatureStatus.INVALID


def test_the_oca_spelling_with_the_key_in_the_frame_and_none_registered(samples):
    oca = next(s for s in samples if "ocpp16_value_as_published" in s)
    value = arrivals(oca)[2]
    assert value.public_key is not None and value.signed_data == oca["signed_data"]
    assert verify_signed_value(value).status is SignatureStatus.VERIFIED_WITH_FRAME_KEY
    assert verify_signed_value(value, registered(oca["public_key_hex"])).status is SignatureStatus.VERIFIED


def test_an_unregistered_key_is_key_unknown_and_alfen_carries_its_own(samples):
    for sample in samples:
        verdict = verify_signed_value(arrivals(sample)[0])
        want = SignatureStatus.VERIFIED_WITH_FRAME_KEY if sample["format"] == "ALFEN" else SignatureStatus.KEY_UNKNOWN
        assert verdict.status is want, sample["name"]


def test_a_meter_serial_is_not_a_key(sessions):
    """NZR 12345678 signs with two keys: the brainpool meter's key does not vouch for the P-384 meter."""
    bp_key = sessions["nzr_bp256"][0]["public_key_hex"]
    for member in sessions["nzr_p384"]:
        verdict = verify_signed_value(arrivals(member)[0], registered(bp_key))
        assert verdict.status is SignatureStatus.INVALID
        assert SignedFlag.CURVE_MISMATCH in verdict.flags


def test_a_frame_key_never_overrules_the_registered_one(sessions):
    """Registered: the wrong meter's key; the frame carries the right one: still invalid, and flagged."""
    oca = sessions["oca_dzg"][0]
    other = sessions["dzg_dvh4013"][0]["public_key_hex"]  # also secp256k1
    verdict = verify_signed_value(arrivals(oca)[2], registered(other))
    assert verdict.status is SignatureStatus.INVALID
    assert SignedFlag.FRAME_KEY_MISMATCH in verdict.flags


def test_connector_keys_come_before_the_station_key(sessions):
    member = sessions["lem_dcbm"][0]
    wrong = sessions["bsm_fw17"][0]["public_key_hex"]
    keys = [RegisteredKey("SMV", 2, wrong), RegisteredKey("SMV", None, member["public_key_hex"])]
    verdict = verify_signed_value(arrivals(member)[0], keys)
    assert verdict.status is SignatureStatus.VERIFIED and verdict.key is not None
    assert verdict.key.hex == member["public_key_hex"].upper()
