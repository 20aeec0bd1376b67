"""Signed meter values through the FrameProcessor (issue 25, SIGNED_METER_VALUES.md Part 2): the real records of
``../shared/ocmf`` replayed as sessions of OCPP 1.6 and 2.0.1 chargers, each session its own charge point, get the
verdicts its README says, the signed data as sent, the signed energy it expects; tampered copies are caught; garbage
is a verdict and a flag, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import state_codec
from processors.correlator import Correlator
from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from schemas.tables import SESSIONS
from signed_meter.keys import decode_public_key
from signed_meter.model import SignatureStatus, SignedFlag
from signed_meter.registry import KeyRegistry
from tests.processors.signed_conversations import (
    V16,
    V201,
    Conversation,
    load,
    pairs,
    registry,
    run,
    sampled_16,
    sampled_201,
)

SAMPLES = load("samples.json")
TAMPERED = load("tampered.json")
PAIRS = pairs(SAMPLES)
BY_NAME = {r["name"]: r for r in SAMPLES}
# Alfen's own format is recognised; verifying it is allowed to be "not here" (the README: verified or unsupported).
ALFEN_OK = {SignatureStatus.VERIFIED.value, SignatureStatus.UNSUPPORTED.value}
SESSION_FLAGS = {f.value for f in (SignedFlag.ENERGY_MISMATCH, SignedFlag.PAGINATION_GAP, SignedFlag.METER_SERIAL_CHANGED,
                                   SignedFlag.BEGIN_WITHOUT_END, SignedFlag.END_WITHOUT_BEGIN, SignedFlag.REGISTER_MISMATCH)}


def _conversation(pair_id: str, version: str, *, end_in_stop: bool = False,
                  replace: dict[str, str] | None = None, oca_spelling: bool = False) -> Conversation:
    records = PAIRS[pair_id]
    pair = records[0]["pair"]
    conv = Conversation(f"SMV-{pair_id}-{version}-{int(end_in_stop)}", version)
    replace = replace or {}
    if version == V16:
        values = [sampled_16(r, replace.get(r["name"])) for r in records]
        if oca_spelling:
            values = [{**v, "value": r["ocpp16_value_as_published"]} if "ocpp16_value_as_published" in r else v
                      for v, r in zip(values, records)]
        conv.session_16(1, pair["begin_register_wh"], pair["end_register_wh"], values, end_in_stop=end_in_stop)
    else:
        conv.session_201("tx-1", pair["begin_register_wh"], [sampled_201(r, replace.get(r["name"])) for r in records])
    return conv


def _one(sessions: dict[str, Any]) -> Any:
    assert len(sessions) == 1, sessions
    return next(iter(sessions.values()))


CASES = [(p, v, s) for p in PAIRS for v in (V16, V201) for s in ((False, True) if v == V16 else (False,))]


@pytest.mark.parametrize(("pair_id", "version", "end_in_stop"), CASES,
                         ids=[f"{p}-{v}-{'stop' if s else 'mv'}" for p, v, s in CASES])
def test_a_real_session_with_its_registered_key_is_verified_with_its_signed_energy(pair_id: str, version: str,
                                                                                  end_in_stop: bool) -> None:
    conv = _conversation(pair_id, version, end_in_stop=end_in_stop)
    records = PAIRS[pair_id]
    key = records[0]["public_key_hex"]
    session = _one(run(conv.envelopes, registry({conv.charge_point_id: key}))[0])
    begin = next(r for r in records if r["role"] in ("begin", "begin_end"))
    end = records[-1]
    if records[0]["format"] == "ALFEN":
        assert session.signature_status in ALFEN_OK
    else:
        assert session.signature_status == SignatureStatus.VERIFIED
        assert session.signature_key == decode_public_key(key).fingerprint
    assert session.signed_start == begin["signed_data"] and session.signed_stop == end["signed_data"]
    assert session.signed_energy_wh == pytest.approx(records[0]["expected_signed_energy_wh"])
    assert session.energy_wh == pytest.approx(records[0]["expected_signed_energy_wh"])
    assert not SESSION_FLAGS & set(session.flags), session.flags
    assert session.signed_meter_serial == (begin["meter_serial"] or "")


@pytest.mark.parametrize("version", [V16, V201])
def test_no_registered_key_is_key_unknown_and_a_key_of_another_charge_point_does_not_count(version: str) -> None:
    conv = _conversation("bsm_fw17", version)
    other = registry({"SOMEONE-ELSE": PAIRS["bsm_fw17"][0]["public_key_hex"]})
    session = _one(run(conv.envelopes, other)[0])
    assert session.signature_status == SignatureStatus.KEY_UNKNOWN and session.signature_key == ""
    assert session.signed_energy_wh == 150.0  # read, though nobody vouches for it


def test_the_oca_spelling_with_the_key_in_the_frame_is_verified_with_the_frame_key_only() -> None:
    conv = _conversation("oca_dzg", V16, oca_spelling=True)
    assert "signedMeterData" in conv.envelopes[2].frame
    session = _one(run(conv.envelopes)[0])
    assert session.signature_status == SignatureStatus.VERIFIED_WITH_FRAME_KEY
    assert session.signed_stop == PAIRS["oca_dzg"][0]["signed_data"] and session.signed_energy_wh == 636.0
    registered = _one(run(conv.envelopes, registry({conv.charge_point_id: PAIRS["oca_dzg"][0]["public_key_hex"]}))[0])
    assert registered.signature_status == SignatureStatus.VERIFIED


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("variant", TAMPERED, ids=[t["name"] for t in TAMPERED])
def test_every_tampered_copy_in_an_otherwise_identical_session_is_invalid(variant: dict[str, Any], version: str) -> None:
    original = BY_NAME[variant["of"]]
    conv = _conversation(original["pair_id"], version, replace={original["name"]: variant["signed_data"]})
    session = _one(run(conv.envelopes, registry({conv.charge_point_id: variant["public_key_hex"]}))[0])
    assert session.signature_status == SignatureStatus.INVALID, variant["reason"]


GARBAGE = ["OCMF|{\"FV\":\"1.0\"", "OCMF|not json|{}", "", "AP;0;3;", "x" * 40_000, "{\"signedMeterData\": 12}",
           "\u0000\udcff"]


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("garbage", GARBAGE, ids=[f"garbage{n}" for n in range(len(GARBAGE))])
def test_garbage_is_unparsable_and_flagged_never_a_failure(garbage: str, version: str) -> None:
    conv = _conversation("bsm_fw17", version, replace={"bsm_ws36a_fw17_T2065_end": garbage})
    sessions, out = run(conv.envelopes, registry({conv.charge_point_id: PAIRS["bsm_fw17"][0]["public_key_hex"]}))
    session = _one(sessions)
    assert out.processing_failures == 0
    assert session.signature_status == SignatureStatus.UNPARSABLE
    assert {Flag.SIGNED_DATA_UNPARSABLE, Flag.SIGNED_DATA_TOO_LARGE} & set(session.flags)
    assert session.energy_wh == 150.0  # the OCPP energy is untouched
    assert len(session.signed_stop) <= 32 * 1024  # an over-size value is never copied into the row


@pytest.mark.parametrize("version", [V16, V201])
def test_a_record_whose_signature_is_not_hex_is_unparsable_and_says_why(version: str) -> None:
    end = PAIRS["bsm_fw17"][1]["signed_data"]
    broken = end[: end.rindex('"SD":"') + 6] + 'zz-not-hex"}'
    conv = _conversation("bsm_fw17", version, replace={"bsm_ws36a_fw17_T2065_end": broken})
    sessions, out = run(conv.envelopes, registry({conv.charge_point_id: PAIRS["bsm_fw17"][0]["public_key_hex"]}))
    session = _one(sessions)
    assert out.processing_failures == 0 and session.signature_status == SignatureStatus.UNPARSABLE
    assert Flag.SIGNED_SIGNATURE_MALFORMED in session.flags and session.signed_stop == broken


def test_a_signed_end_after_the_session_was_written_is_a_new_revision() -> None:
    conv = Conversation("SMV-late", V16)
    begin, end = PAIRS["bsm_fw17"]
    conv.session_16(7, 0, 150, [sampled_16(begin)])
    conv.now_s += 3600  # the session is written (its status window passed) before the End comes
    late = list(conv.envelopes)
    conv.call("MeterValues", {"connectorId": 1, "transactionId": 7,
                              "meterValue": [{"timestamp": conv.iso(), "sampledValue": [sampled_16(end)]}]})
    keys = registry({"SMV-late": begin["public_key_hex"]})
    first, _ = run(late, keys)
    assert _one(first).signature_status == SignatureStatus.VERIFIED and Flag.SIGNED_BEGIN_WITHOUT_END in _one(first).flags
    _, out = run(conv.envelopes, keys, flush_every=1)
    revisions = sorted((s for s in out.sessions if s.transaction_id == "7"), key=lambda s: s.revision)
    assert [r.revision for r in revisions] == [0, 1]
    assert revisions[0].signed_stop == "" and revisions[1].signed_stop == end["signed_data"]
    assert revisions[1].signed_energy_wh == 150.0 and Flag.SIGNED_BEGIN_WITHOUT_END not in revisions[1].flags


def test_signatures_survive_the_state_written_and_read_between_every_frame() -> None:
    conv = _conversation("dzg_dvh4013", V16)
    keys = registry({conv.charge_point_id: PAIRS["dzg_dvh4013"][0]["public_key_hex"]})
    at_once, _ = run(conv.envelopes, keys)
    frame_by_frame, _ = run(conv.envelopes, keys, flush_every=1)
    assert _one(at_once).row() == _one(frame_by_frame).row()
    assert _one(frame_by_frame).signature_status == SignatureStatus.VERIFIED


class Holder:
    """The worker's kind of lookup: a registry replaced as key events arrive."""

    def __init__(self) -> None:
        self.registry = KeyRegistry()
        self.asked = 0

    def keys_for(self, charge_point_id: str, connector_id: int | None) -> Any:
        self.asked += 1
        return self.registry.keys_for(charge_point_id, connector_id)


def test_the_key_lookup_is_asked_at_verification_time() -> None:
    holder = Holder()
    first = _conversation("bsm_fw19", V16)
    second = Conversation(first.charge_point_id, V16, now_s=first.now_s + 10)
    second.session_16(2, 0, 150, [sampled_16(r) for r in PAIRS["bsm_fw19"]])
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get, meter_keys=holder)
    for offset, env in enumerate(first.envelopes):
        processor.process(0, offset, None, env.model_dump_json().encode())
    holder.registry = registry({first.charge_point_id: PAIRS["bsm_fw19"][0]["public_key_hex"]})
    for offset, env in enumerate(second.envelopes, start=len(first.envelopes)):
        processor.process(0, offset, None, env.model_dump_json().encode())
    processor.advance(0, second.envelopes[-1].gateway_ts_ms + 86_400_000)
    out = processor.take()
    status = {s.transaction_id: s.signature_status for s in out.sessions}
    assert status == {"1": SignatureStatus.KEY_UNKNOWN, "2": SignatureStatus.VERIFIED} and holder.asked >= 4
    assert out.signed_values == {"key_unknown": 2, "verified": 2}


def test_an_unsigned_session_has_the_columns_at_their_defaults() -> None:
    conv = Conversation("PLAIN", V16)
    conv.session_16(1, 1000, 5000, [])
    session = _one(run(conv.envelopes)[0])
    row = dict(zip(SESSIONS.column_names, session.row()))
    assert (row["signed_start"], row["signed_stop"], row["signature_status"], row["signed_energy_wh"],
            row["signed_energy_register"], row["signed_meter_serial"], row["signature_key"]) == (
                "", "", "unsigned", None, "", "", "")


def test_every_signed_flag_is_a_flag_of_the_rows() -> None:
    assert {f.value for f in SignedFlag} <= {f.value for f in Flag}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON, key=JSON, context=JSON, where=st.sampled_from(["mv16", "stop16", "started", "ended", "mv201"]))
def test_any_json_in_the_signed_fields_gives_rows_and_never_a_failure(value: Any, key: Any, context: Any,
                                                                      where: str) -> None:
    conv = Conversation("HYP", V201 if where in ("started", "ended", "mv201") else V16)
    if conv.version == V16:
        sampled = {"format": "SignedData", "value": value, "context": context}
        conv.session_16(1, 0, 100, [sampled], end_in_stop=where == "stop16")
    else:
        sampled = {"value": 1.0, "context": context, "signedMeterValue": {"signedMeterData": value, "publicKey": key,
                                                                         "encodingMethod": context}}
        if where == "mv201":
            conv.call("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": conv.iso(), "sampledValue": [sampled]}]})
        conv.session_201("t", 0, [{**sampled, "context": "Transaction.Begin"}] if where == "started" else [sampled])
    sessions, out = run(conv.envelopes, registry({"HYP": PAIRS["bsm_fw17"][0]["public_key_hex"]}))
    assert out.processing_failures == 0 and len(sessions) == 1
    session = _one(sessions)
    assert session.signature_status in {s.value for s in SignatureStatus}
    json.dumps(session.model_dump(mode="json"))


def test_the_state_keeps_the_signatures_under_their_own_name_and_a_state_without_them_reads_as_none() -> None:
    conv = _conversation("bsm_fw17", V16)
    keys = registry({conv.charge_point_id: PAIRS["bsm_fw17"][0]["public_key_hex"]})
    correlator = Correlator(conv.charge_point_id, CorrelatorConfig.defaults(), meter_keys=keys)
    for env in conv.envelopes[:3]:  # the start, its answer, the signed Begin
        correlator.feed(env)
    written = json.loads(state_codec.dumps(correlator.state))
    (session,) = written["sessions"].values()
    assert session[state_codec.SIGNATURES]["values"][0]["signed_data"] == PAIRS["bsm_fw17"][0]["signed_data"]
    # Read back and written again untouched: the same bytes (kept as read, not decoded).
    again = state_codec.dumps(state_codec.loads(json.dumps(written)))
    assert json.loads(again) == written
    del session[state_codec.SIGNATURES]
    (read,) = state_codec.loads(json.dumps(written)).sessions.values()
    assert read.signed().verdicts == () and read.signed().result().signature_status == SignatureStatus.UNSIGNED
    # Continued from the state that keeps them: the End completes the verdict.
    state = state_codec.loads(state_codec.dumps(correlator.state))
    later = Correlator(conv.charge_point_id, CorrelatorConfig.defaults(), state, meter_keys=keys)
    rows = [e for env in conv.envelopes[3:] for e in later.feed(env)]
    rows += later.advance(conv.envelopes[-1].gateway_ts_ms + 86_400_000)
    (row,) = [r for r in rows if type(r).__name__ == "Session"]
    assert row.signature_status == SignatureStatus.VERIFIED and row.signed_energy_wh == 150.0


def test_a_signed_end_naming_only_its_connector_after_the_stop_is_its_sessions() -> None:
    begin, end = PAIRS["bsm_fw17"]
    conv = Conversation("SMV-conn", V16)
    conv.session_16(3, 0, 150, [sampled_16(begin)])
    conv.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": conv.iso(), "sampledValue": [sampled_16(end)]}]})
    session = _one(run(conv.envelopes, registry({"SMV-conn": begin["public_key_hex"]}), flush_every=1)[0])
    assert session.signed_stop == end["signed_data"] and session.signature_status == SignatureStatus.VERIFIED
