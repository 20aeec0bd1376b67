"""The per-session reducer: each rule a table row, and order independence as a property."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signed_meter.arrival import SignedValue
from signed_meter.model import SignatureStatus, SignedFlag
from signed_meter.registry import RegisteredKey
from signed_meter.session import SessionSignatures
from signed_meter.verification import RecordVerdict, verify_signed_value
from tests.signed_meter.signing import TM1, TM2, Signer, payload

METER = Signer("secp256r1")
OTHER = Signer("secp256r1")
KEYS = [RegisteredKey("CP", None, METER.public_key_hex)]


def value(text: str, context: str | None = None, key: str | None = None) -> SignedValue:
    return SignedValue(text, text, "1.6", context, public_key=key)


def v(pg: int, *readings: tuple[str, str, str], ms: str = "M1", unit: str = "kWh", ri: str = "1-b:1.8.0",
      signer: Signer = METER, context: str | None = None, frame_key: str | None = None,
      keys: list[RegisteredKey] | None = None) -> RecordVerdict:
    text = signer.sign(payload(pg, *readings, ms=ms, unit=unit, ri=ri))
    return verify_signed_value(value(text, context, frame_key), KEYS if keys is None else keys)


BEGIN = v(10, ("B", "1.000", TM1))
END = v(11, ("E", "1.150", TM2))
GARBAGE = verify_signed_value(value("OCMF|{garbage", "Transaction.End"), KEYS)

# (case, verdicts, session energy, status, signed energy, flags)
RULES = [
    ("no signed values", [], None, SignatureStatus.UNSIGNED, None, ()),
    ("begin and end", [BEGIN, END], 150.0, SignatureStatus.VERIFIED, 150.0, ()),
    ("one record with both", [v(3, ("B", "10", TM1), ("E", "20.5", TM2), unit="Wh")], 10.5, SignatureStatus.VERIFIED, 10.5, ()),
    ("begin without end", [BEGIN], None, SignatureStatus.VERIFIED, None, (SignedFlag.BEGIN_WITHOUT_END,)),
    ("end without begin", [END], None, SignatureStatus.VERIFIED, None, (SignedFlag.END_WITHOUT_BEGIN,)),
    ("energy off by less than a step (1 Wh)", [BEGIN, END], 150.9, SignatureStatus.VERIFIED, 150.0, ()),
    ("energy off by a step", [BEGIN, END], 151.0, SignatureStatus.VERIFIED, 150.0, (SignedFlag.ENERGY_MISMATCH,)),
    ("kWh with two decimals: 10 Wh steps",
     [v(1, ("B", "0.00", TM1)), v(2, ("E", "0.15", TM2))], 159.0, SignatureStatus.VERIFIED, 150.0, ()),
    ("kWh with two decimals, a step off",
     [v(1, ("B", "0.00", TM1)), v(2, ("E", "0.15", TM2))], 160.0, SignatureStatus.VERIFIED, 150.0, (SignedFlag.ENERGY_MISMATCH,)),
    ("meter changed", [BEGIN, v(11, ("E", "1.150", TM2), ms="M2")], None, SignatureStatus.VERIFIED, None,
     (SignedFlag.METER_SERIAL_CHANGED,)),
    ("pagination gap", [BEGIN, v(13, ("E", "1.150", TM2))], None, SignatureStatus.VERIFIED, 150.0, (SignedFlag.PAGINATION_GAP,)),
    ("intermediate closes the gap", [BEGIN, v(11, ("C", "1.1", TM2)), v(12, ("E", "1.150", TM2))], None,
     SignatureStatus.VERIFIED, 150.0, ()),
    ("no common register", [BEGIN, v(11, ("E", "1.150", TM2), ri="1-b:2.8.0")], None, SignatureStatus.VERIFIED, None,
     (SignedFlag.REGISTER_MISMATCH,)),
    ("end below begin", [BEGIN, v(11, ("E", "0.900", TM2))], None, SignatureStatus.VERIFIED, -100.0, (SignedFlag.ENERGY_NEGATIVE,)),
    ("two different begins", [BEGIN, v(9, ("B", "0.990", TM1)), END], None, SignatureStatus.VERIFIED, 160.0,
     (SignedFlag.BEGIN_REPEATED,)),
    ("a non-energy register is not energy", [v(1, ("B", "5", TM1), unit="mOhm"), v(2, ("E", "6", TM2), unit="mOhm")], None,
     SignatureStatus.VERIFIED, None, ()),
    ("frame key only", [v(10, ("B", "1.000", TM1), frame_key=METER.public_key_hex, keys=[]), END], 150.0,
     SignatureStatus.VERIFIED_WITH_FRAME_KEY, 150.0, ()),
    ("key unknown beats frame key", [v(10, ("B", "1.000", TM1), keys=[]),
                                     v(11, ("E", "1.150", TM2), frame_key=METER.public_key_hex, keys=[])], 150.0,
     SignatureStatus.KEY_UNKNOWN, 150.0, ()),
    ("garbage beats key unknown", [v(10, ("B", "1.000", TM1), keys=[]), GARBAGE], None, SignatureStatus.UNPARSABLE, None,
     (SignedFlag.BEGIN_WITHOUT_END, SignedFlag.DATA_UNPARSABLE)),
    ("invalid beats everything", [BEGIN, v(11, ("E", "1.150", TM2), signer=OTHER), GARBAGE], 150.0, SignatureStatus.INVALID,
     150.0, (SignedFlag.DATA_UNPARSABLE,)),
    ("context says Begin, record says End", [BEGIN, v(11, ("E", "1.150", TM2), context="Transaction.Begin")], 150.0,
     SignatureStatus.VERIFIED, 150.0, (SignedFlag.CONTEXT_MISMATCH,)),
]


@pytest.mark.parametrize(("case", "verdicts", "energy", "status", "signed_energy", "flags"), RULES, ids=[r[0] for r in RULES])
def test_session_rules(case, verdicts, energy, status, signed_energy, flags):
    result = SessionSignatures().add_all(verdicts).result(energy)
    assert result.signature_status is status
    assert result.signed_energy_wh == signed_energy
    assert result.flags == tuple(sorted(flags))


def test_start_and_stop_are_the_signed_data_as_sent_and_garbage_counts_by_context():
    result = SessionSignatures().add_all([BEGIN, GARBAGE]).result()
    assert result.signed_start == BEGIN.value.signed_data
    assert result.signed_stop == "OCMF|{garbage"
    assert [r.value.signed_data for r in SessionSignatures().add_all([END, BEGIN]).result().records] == [
        BEGIN.value.signed_data, END.value.signed_data]


def test_a_late_end_amends_the_verdict():
    early = SessionSignatures().add(BEGIN)
    assert early.result().signed_energy_wh is None and SignedFlag.BEGIN_WITHOUT_END in early.result().flags
    late = early.add(END).result(150.0)
    assert late.signed_energy_wh == 150.0 and late.flags == ()


def test_the_same_record_twice_is_once_with_the_strongest_verdict():
    text = METER.sign(payload(10, ("B", "1.000", TM1)))
    unknown = verify_signed_value(value(text, "Transaction.Begin"), [])
    verified = verify_signed_value(value(text, "Transaction.Begin"), KEYS)
    for order in ([unknown, verified], [verified, unknown], [verified, verified, unknown]):
        state = SessionSignatures().add_all(order)
        assert len(state.verdicts) == 1 and state.result().signature_status is SignatureStatus.VERIFIED


def test_extra_tolerance():
    state = SessionSignatures().add_all([BEGIN, END])
    assert SignedFlag.ENERGY_MISMATCH not in state.result(155.0, extra_tolerance_wh=5.0).flags
    assert SignedFlag.ENERGY_MISMATCH in state.result(156.0, extra_tolerance_wh=5.0).flags


POOL = [BEGIN, END, GARBAGE, v(11, ("C", "1.1", TM2)), v(12, ("E", "1.2", TM2)), v(10, ("B", "1.000", TM1), keys=[]),
        v(11, ("E", "1.150", TM2), signer=OTHER), v(5, ("B", "0.5", TM1), ms="M2")]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(picks=st.lists(st.sampled_from(POOL), max_size=8), seed=st.randoms(use_true_random=False),
       energy=st.none() | st.floats(min_value=-1e6, max_value=1e6))
def test_any_arrival_order_and_any_resend_give_the_same_result(picks, seed, energy):
    shuffled = list(picks) + picks[: len(picks) // 2]  # resends
    seed.shuffle(shuffled)
    a, b = SessionSignatures().add_all(picks), SessionSignatures().add_all(shuffled)
    assert a == b
    assert a.result(energy) == b.result(energy)
    assert SessionSignatures.from_state(a.to_state()) == a
