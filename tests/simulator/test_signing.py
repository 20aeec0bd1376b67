"""Signing chargers (issue 25, item 5): the simulator's OCMF meters, held against the ``signed_meter`` package.

Every record a simulated meter writes is real OCMF that pyocmf reads without a spec warning and that verifies
with the key the keys file registers; every honest signing charger's session verifies and signs exactly the
energy the charger metered; every signing quirk gives the verdict and flags its ground truth says, in both OCPP
versions, whatever the ending - and the pipeline's own correlator still makes exactly the expected sessions of
those frames. The ground truth (:mod:`simulator.signed_truth`) is built from what the simulator knows it did;
``signed_meter`` judges only what went on the wire.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pyocmf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.payload_schemas import compile_validators
from processors.correlator import Correlator, CorrelatorConfig
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import Session
from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value, from_ocpp201_sampled_value
from signed_meter.model import TX_BEGIN, TX_END, SignatureStatus, SignedFlag
from signed_meter.record import read_record
from signed_meter.registry import KeyRegistry, parse_key_file, registry_of
from signed_meter.session import SessionSignatures
from signed_meter.verification import verify_signed_value
from simulator import expectations, lives, ocmf_meter, signed_truth, signing_plan
from simulator.charger import Charger, Ledger, Timing
from simulator.charger_v201 import Charger201
from simulator.fleet import plan_fleet, write_meter_keys
from simulator.lives import SIGNING_QUIRKS, Ending, Quirk
from simulator.meter_models import AC_METERS, DC_METERS, MeterModel, MeterPlan
from simulator.settings import SimulatorSettings
from tests.simulator.test_behaviours import FakeLink
from tests.simulator.test_v201 import valid as valid_201

MODELS = AC_METERS + DC_METERS
VALIDATORS_16 = compile_validators()
T_MS = 1_764_000_000_000
TIMING = Timing(time_scale=3000, meter_interval_s=300, heartbeat_interval_s=300, idle_mean_s=600)
# Quirks that break the OCPP schema on purpose (tests/simulator/test_lives.py, test_v201.py): no validity check there.
SCHEMA_BREAKERS = {Quirk.NUMERIC_SAMPLES, Quirk.FLOAT_METER, Quirk.NON_ENUM_ERROR_CODE, Quirk.NAIVE_TIMESTAMPS,
                   Quirk.ENDED_WITHOUT_TRIGGER}

# The verdict and flags each signing quirk must give a session that ends normally (issue 25, Deliver 3).
QUIRK_VERDICTS: dict[Quirk | None, tuple[SignatureStatus, set[SignedFlag]]] = {
    None: (SignatureStatus.VERIFIED, set()),
    Quirk.SIGNATURE_BYTE_FLIPPED: (SignatureStatus.INVALID, set()),
    Quirk.KEY_ONLY_IN_FRAME: (SignatureStatus.VERIFIED_WITH_FRAME_KEY, set()),
    Quirk.PAYLOAD_CHANGED_AFTER_SIGNING: (SignatureStatus.INVALID, {SignedFlag.ENERGY_MISMATCH}),
    Quirk.SIGNED_END_MISSING: (SignatureStatus.VERIFIED, {SignedFlag.BEGIN_WITHOUT_END}),
    Quirk.PAGINATION_GAP: (SignatureStatus.VERIFIED, {SignedFlag.PAGINATION_GAP}),
    Quirk.METER_SWAPPED: (SignatureStatus.VERIFIED, {SignedFlag.METER_SERIAL_CHANGED}),  # its first session
}


def signing_profile(version: str = "1.6", model: MeterModel = AC_METERS[0], *quirks: Quirk, number: int = 1,
                    **changes: Any) -> lives.Profile:
    base = lives.make_profile(random.Random(3), number, id_prefix="SIM-", connectors=(1, 1), quirky_share=0, ocpp=version)
    dc = model in DC_METERS
    return replace(base, quirks=frozenset(quirks), meter=MeterPlan(model, key_seed=f"test:{number}"),
                   max_power_w=150_000 if dc else 22_000, **changes)


def registry_for(*profiles: lives.Profile) -> KeyRegistry:
    """The keys an operator registers from the run's keys file, through the parser of ``keys import``."""
    return registry_of(parse_key_file(signing_plan.key_file_text(list(profiles))))


def judge(values: Iterable[SignedValue], registry: KeyRegistry, cp: str, connector: int, energy_wh: float) -> dict[str, Any]:
    """What ``signed_meter`` makes of the signed values a session's frames carried, in the expectation's terms."""
    state = SessionSignatures().add_all(verify_signed_value(v, registry.keys_for(cp, connector)) for v in values)
    verdict = state.result(energy_wh)
    return {"signature_status": verdict.signature_status.value, "signed_start": verdict.signed_start,
            "signed_stop": verdict.signed_stop, "signed_energy_wh": verdict.signed_energy_wh,
            "signed_meter_serial": verdict.meter_serial, "signed_flags": sorted(f.value for f in verdict.flags)}


def truth(e: lives.ExpectedSession) -> dict[str, Any]:
    return {k: getattr(e, k) for k in ("signature_status", "signed_start", "signed_stop", "signed_energy_wh",
                                       "signed_meter_serial", "signed_flags")}


def as_16(sent: ocmf_meter.SentRecord, context: str) -> SignedValue:
    value = from_ocpp16_sampled_value(ocmf_meter.ocpp16_sampled_value(sent, context))
    assert value is not None
    return value


# --- the meter: records, keys, quirks (pure) -----------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.vendor}-{m.curve}")
@pytest.mark.parametrize("tx, register_wh", [(TX_BEGIN, 0), (TX_END, 38_123_456), (TX_BEGIN, 999)])
def test_every_model_writes_real_ocmf_that_verifies_with_its_registered_key(model: MeterModel, tx: str, register_wh: int) -> None:
    profile = signing_profile("1.6", model)
    meter = ocmf_meter.OcmfMeter(profile, 1)
    sent = meter.sign(tx, register_wh, T_MS + 123, "TAG0A1B2C")
    assert sent is not None and sent.intact and sent.register_wh == register_wh
    record = read_record(sent.text)
    payload_text = sent.text[len("OCMF|"):sent.text.rindex("|")]
    assert record.signed_bytes == payload_text.encode()
    with warnings.catch_warnings(record=True) as seen:  # spec-conformant: pyocmf has nothing to say
        warnings.simplefilter("always")
        payload = pyocmf.Payload.model_validate(json.loads(payload_text))
    assert [str(w.message) for w in seen] == []
    assert (payload.FV, payload.MS, payload.PG, payload.ID, payload.IT) == ("1.0", sent.meter_serial, f"T{sent.pagination}",
                                                                           "TAG0A1B2C", "CENTRAL")
    (reading,) = record.readings
    assert (reading.tx, reading.value_wh, reading.resolution_wh, reading.unit) == (tx, register_wh, 1, model.unit)
    assert reading.obis == ocmf_meter.OBIS_IMPORT and reading.status == "G"
    assert reading.at is not None and int(reading.at.timestamp() * 1000) == T_MS + 123
    assert reading.time.endswith(f" {model.time_status}")
    assert (record.method.curve, record.method.declared) == (model.curve, model.declared_method)
    assert ('"SA"' in sent.text) == (model.signing_method is not None)
    verdict = verify_signed_value(as_16(sent, "Transaction.Begin" if tx == TX_BEGIN else "Transaction.End"),
                                  registry_for(profile).keys_for(profile.charge_point_id, 1))
    assert (verdict.status, verdict.flags) == (SignatureStatus.VERIFIED, frozenset())


def test_keys_come_from_the_seed_and_differ_per_meter() -> None:
    a, b = signing_profile(number=1), signing_profile(number=2)
    assert signing_plan.key_file_text([a]) == signing_plan.key_file_text([a])  # the same seed: the same keys
    keys = [r.public_key for p in (a, b) for c in (1, 2) for r in signing_plan.key_rows(replace(p, connectors=2)) if r.connector_id == c]
    assert len(set(keys)) == len(keys) == 4
    other_seed = replace(a, meter=MeterPlan(a.meter.model, key_seed="other:1"))  # type: ignore[union-attr]
    assert signing_plan.key_rows(other_seed)[0].public_key != signing_plan.key_rows(a)[0].public_key


def test_the_keys_file_is_what_keys_import_reads_one_line_per_meter() -> None:
    plain = replace(signing_profile(number=1), connectors=3)
    swapped = replace(signing_profile("2.0.1", AC_METERS[2], Quirk.METER_SWAPPED, number=2), connectors=2)
    frame_only = signing_profile("1.6", AC_METERS[3], Quirk.KEY_ONLY_IN_FRAME, number=3)
    unsigned = replace(signing_profile(number=4), meter=None)
    text = signing_plan.key_file_text([plain, swapped, frame_only, unsigned])
    assert text.splitlines()[0] == "charge_point_id,connector_id,public_key,meter_serial"
    events = parse_key_file(text, author="simulator")
    assert [(e.key.charge_point_id, e.key.connector_id) for e in events] == [
        ("SIM-00001", 1), ("SIM-00001", 2), ("SIM-00001", 3), ("SIM-00002", 1), ("SIM-00002", 1), ("SIM-00002", 2)]
    assert [e.key.meter_serial for e in events][3:5] == [ocmf_meter.meter_serial(swapped, 1, 0), ocmf_meter.meter_serial(swapped, 1, 1)]
    assert len({e.key.meter_serial for e in events}) == 6
    assert signing_plan.key_file_text([unsigned]).splitlines() == ["charge_point_id,connector_id,public_key,meter_serial"]


def records_of_sessions(profile: lives.Profile, sessions: list[tuple[int, int]], id_tag: str = "TAG0A1B2C",
                        ) -> list[list[ocmf_meter.SentRecord]]:
    """The records a connector-1 meter sends for sessions of (meter start, meter stop) in turn."""
    meter = ocmf_meter.OcmfMeter(profile, 1)
    out = []
    for i, (start, stop) in enumerate(sessions):
        records = [meter.sign(TX_BEGIN, start, T_MS + i * 7_200_000, id_tag),
                   meter.sign(TX_END, stop, T_MS + i * 7_200_000 + 3_600_000, id_tag)]
        out.append([r for r in records if r is not None])
    return out


@pytest.mark.parametrize("quirk", [None, *SIGNING_QUIRKS], ids=str)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_each_signing_quirk_gets_its_verdict_in_both_spellings(quirk: Quirk | None, version: str) -> None:
    """The table: each quirk's verdict and flags on its first session, as signed_meter finds them on the wire and
    as the ground truth says; a meter swapped during the first session signs the second whole and honest."""
    profile = signing_profile(version, AC_METERS[0], *([quirk] if quirk else []))
    registry = registry_for(profile)
    first, second = records_of_sessions(profile, [(1_000_000, 1_007_400), (1_007_400, 1_010_000)])
    for records, energy, (status, flags) in ((first, 7400.0, QUIRK_VERDICTS[quirk]),
                                             (second, 2600.0, QUIRK_VERDICTS[quirk if quirk is not Quirk.METER_SWAPPED else None])):
        values = [spelled(r, version) for r in records]
        found = judge(values, registry, profile.charge_point_id, 1, energy)
        assert found == signed_truth.expected_signatures(records, energy)
        assert (found["signature_status"], set(found["signed_flags"])) == (status, flags)
        if quirk in (None, Quirk.PAGINATION_GAP, Quirk.KEY_ONLY_IN_FRAME, Quirk.SIGNATURE_BYTE_FLIPPED):
            assert found["signed_energy_wh"] == energy  # a broken signature still signs its reading
        assert found["signed_start"] == records[0].text


def spelled(sent: ocmf_meter.SentRecord, version: str) -> SignedValue:
    """A record as a 1.6 sampled value or a 2.0.1 register sample's signedMeterValue, read back by the package."""
    context = "Transaction.Begin" if sent.tx == TX_BEGIN else "Transaction.End"
    if version == "1.6":
        return as_16(sent, context)
    meter = ocmf_meter.with_signed_201({"timestamp": "t", "sampledValue": [{"value": 1, "context": context}]}, sent)
    value = from_ocpp201_sampled_value(meter["sampledValue"][0])
    assert value is not None and value.signed_data == sent.text
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), quirk=st.sampled_from([None, *SIGNING_QUIRKS]), version=st.sampled_from(["1.6", "2.0.1"]),
       start=st.integers(0, 10**9), deltas=st.lists(st.integers(0, 300_000), min_size=1, max_size=3),
       off=st.sampled_from([0, 0, 0, 1, -1, 2, 999]), id_tag=st.text(max_size=20))
def test_any_sessions_of_any_meter_get_the_verdict_the_ground_truth_says(
        model: MeterModel, quirk: Quirk | None, version: str, start: int, deltas: list[int], off: int, id_tag: str) -> None:
    """Any model, quirk, registers, driver's id (quotes, unicode), sessions in a row, and a session energy off
    the metered one by ``off`` Wh: signed_meter on the wire agrees with the ground truth, field by field."""
    profile = signing_profile(version, model, *([quirk] if quirk else []))
    registry = registry_for(profile)
    bounds = [start]
    for delta in deltas:
        bounds.append(bounds[-1] + delta)
    for records, delta in zip(records_of_sessions(profile, list(zip(bounds, bounds[1:])), id_tag), deltas):
        energy = float(delta + off)
        found = judge([spelled(r, version) for r in records], registry, profile.charge_point_id, 1, energy)
        assert found == signed_truth.expected_signatures(records, energy)
        assert (SignedFlag.ENERGY_MISMATCH.value in found["signed_flags"]) == (
            off != 0 or quirk is Quirk.PAYLOAD_CHANGED_AFTER_SIGNING) or found["signed_energy_wh"] is None
        assert all(read_record(r.text).identification == id_tag for r in records)


def test_an_unregistered_key_is_key_unknown_and_a_swapped_meter_without_its_new_key_invalid() -> None:
    honest = signing_profile()
    (records,) = records_of_sessions(honest, [(10, 20)])
    assert judge([as_16(r, "Transaction.End") for r in records], KeyRegistry(), honest.charge_point_id, 1, 10.0)[
        "signature_status"] == SignatureStatus.KEY_UNKNOWN
    swapped = signing_profile("1.6", AC_METERS[0], Quirk.METER_SWAPPED)
    old_key_only = registry_of(e for e in parse_key_file(signing_plan.key_file_text([swapped])) if e.key.meter_serial.endswith("0"))
    (records,) = records_of_sessions(swapped, [(10, 20)])
    assert judge([as_16(r, "Transaction.End") for r in records], old_key_only, swapped.charge_point_id, 1, 10.0)[
        "signature_status"] == SignatureStatus.INVALID


# --- whole lives, both versions, over a recording link ---------------------------------------------------------


class Case:
    def __init__(self, version: str, ending: Ending | None, *quirks: Quirk, model: MeterModel = AC_METERS[0],
                 after: bool = False, transaction_data: bool = False, backlog: bool = False) -> None:
        self.version, self.ending, self.quirks, self.model = version, ending, frozenset(quirks), model
        self.after, self.transaction_data, self.backlog = after, transaction_data, backlog

    def __repr__(self) -> str:
        return (f"{self.version} {self.ending} {sorted(self.quirks)} {self.model.vendor}/{self.model.curve} after={self.after} "
                f"td={self.transaction_data} backlog={self.backlog}")


CASES: list[Case] = (
    # honest meters: every ending, both firmware orders, every model, transactionData or MeterValues
    [Case(v, e, model=MODELS[i % len(MODELS)], after=i % 2 == 1, transaction_data=i % 3 == 0)
     for v in ("1.6", "2.0.1") for i, e in enumerate(Ending)]
    + [Case(v, None, model=MODELS[i]) for i, v in enumerate(("1.6", "2.0.1"))]  # the run ends while it charges
    + [Case(v, None, model=MODELS[2], backlog=True) for v in ("1.6", "2.0.1")]  # a session from the offline queue
    # every signing quirk, both versions, a normal and a power-loss ending
    + [Case(v, e, q, model=MODELS[i % len(MODELS)], transaction_data=i % 2 == 0)
       for v in ("1.6", "2.0.1") for i, q in enumerate(SIGNING_QUIRKS) for e in (Ending.USER_STOP, Ending.POWER_LOSS)]
    # the OCPP quirks of signing chargers: where the End goes, resends, units, a charger that never stops
    + [Case("1.6", Ending.USER_STOP, q, model=MODELS[i % len(MODELS)], transaction_data=q is Quirk.METER_STOP_UNKNOWN)
       for i, q in enumerate(lives.QUIRKS_V16)]
    + [Case("1.6", Ending.EV_FULL, Quirk.LATE_TRANSACTION_END, Quirk.SIGNED_END_MISSING)]
    + [Case("2.0.1", Ending.USER_STOP, q, model=MODELS[i % len(MODELS)]) for i, q in enumerate(lives.QUIRKS_V201)]
)


def profile_of(n: int, case: Case) -> lives.Profile:
    return signing_profile(case.version, case.model, *case.quirks, number=n, status_after_stop=case.after,
                           transaction_data=case.transaction_data or Quirk.METER_STOP_UNKNOWN in case.quirks,
                           charge_point_id=f"SIM-{n:05d}")


async def live(profile: lives.Profile, case: Case) -> tuple[FakeLink, Ledger]:
    """One charger: boot, one session with the case's ending (None: the run ends while it charges), or the
    session it queued before its first connection."""
    link, ledger, closing = FakeLink(profile.charge_point_id), Ledger(), asyncio.Event()
    cls = Charger201 if case.version == "2.0.1" else Charger
    charger = cls(profile, link, TIMING, ledger, random.Random(profile.number), closing)  # type: ignore[arg-type]
    await charger._boot()
    conn = charger.connectors[0]
    if case.backlog:
        await charger._flush_backlog(conn)
        return link, ledger
    plan = replace(lives.plan_session(random.Random(profile.number), profile), ending=case.ending or Ending.USER_STOP,
                   power_w=40_000, charge_s=1200, suspended_s=600, status_gap_s=30, unplug_s=60, fault_s=300, reboot_s=60)
    if case.ending is None:
        session = asyncio.create_task(charger._session(conn, plan))
        while not ledger.started:  # the run ends while it charges, not while it starts (a loaded machine is slow)
            await asyncio.sleep(0.01)
        await asyncio.sleep(TIMING.real(600))
        closing.set()
        await session
    else:
        await charger._session(conn, plan)
    return link, ledger


def signed_values(calls: list[tuple[int, str, dict]], version: str) -> dict[str, list[SignedValue]]:
    """Every signed value the frames carried, by transaction id: 1.6 MeterValues and StopTransaction.transactionData,
    2.0.1 TransactionEvent meter values."""
    out: dict[str, list[SignedValue]] = {}
    for _, action, payload in calls:
        if action in ("MeterValues", "StopTransaction"):
            tx, meter_values = payload.get("transactionId"), payload.get("meterValue") or payload.get("transactionData") or []
        elif action == "TransactionEvent":
            tx, meter_values = payload["transactionInfo"]["transactionId"], payload.get("meterValue", [])
        else:
            continue
        read = from_ocpp16_sampled_value if version == "1.6" else from_ocpp201_sampled_value
        for meter_value in meter_values:
            for sample in meter_value["sampledValue"]:
                value = read(sample)
                if value is not None:
                    out.setdefault(str(tx), []).append(value)
    return out


def correlate(profile: lives.Profile, calls: list[tuple[int, str, dict]]) -> list[dict]:
    """The pipeline's correlator on the frames, with the run's keys registered (the k-th StartTransaction was answered
    with transactionId 100 + k, as FakeLink does): the newest revision of each session."""
    correlator, events, starts, seq = Correlator(profile.charge_point_id, CorrelatorConfig.defaults(),
                                                    meter_keys=registry_for(profile)), [], 0, 0
    for i, (at, action, payload) in enumerate(calls):
        frames = [(Direction.IN, MessageType.CALL, [2, str(i), action, payload])]
        if action == "StartTransaction":
            starts += 1
            frames.append((Direction.OUT, MessageType.CALL_RESULT,
                           [3, str(i), {"transactionId": 100 + starts, "idTagInfo": {"status": "Accepted"}}]))
        for direction, kind, frame in frames:
            seq += 1
            events += correlator.feed(FrameEnvelope(
                charge_point_id=profile.charge_point_id, direction=direction, gateway_ts_ms=at, frame=json.dumps(frame),
                ocpp_version=profile.subprotocol, gateway_id="gw", connection_id="c", seq=seq,
                message_type=kind, action=action, message_id=str(i)))
    events += correlator.advance(calls[-1][0] + 3_600_000)
    newest: dict[str, Session] = {}
    for e in events:
        if isinstance(e, Session) and (e.session_id not in newest or e.version > newest[e.session_id].version):
            newest[e.session_id] = e
    return [s.model_dump(mode="json") for s in newest.values()]


def test_signing_chargers_lives_verify_as_their_ground_truth_says_and_sessions_stay_as_expected() -> None:
    profiles = [profile_of(n, case) for n, case in enumerate(CASES, start=1)]

    async def run() -> list[tuple[FakeLink, Ledger]]:
        return await asyncio.gather(*(live(p, case) for p, case in zip(profiles, CASES)))

    problems: list[str] = []
    verdicts: set[str] = set()
    for case, profile, (link, ledger) in zip(CASES, profiles, asyncio.run(run())):
        assert len(ledger.sessions) == 1, (case, ledger.sessions)
        expected = ledger.sessions[0]
        if not case.quirks & SCHEMA_BREAKERS:
            valid = valid_201 if case.version == "2.0.1" else _valid_16
            problems += [f"{case}: invalid {action} {payload}" for _, action, payload in link.calls if not valid(action, payload)]
        found = judge(signed_values(link.calls, case.version).get(expected.transaction_id, []), registry_for(profile),
                      profile.charge_point_id, 1, expected.energy_wh)
        if found != truth(expected):
            problems.append(f"{case}: signed_meter found {found}, the ground truth says {truth(expected)}")
        signing_quirks = case.quirks & set(SIGNING_QUIRKS)
        if not signing_quirks:
            if (found["signature_status"], found["signed_energy_wh"], found["signed_flags"]) != ("verified", expected.energy_wh, []):
                problems.append(f"{case}: an honest meter's session {found} (energy {expected.energy_wh})")
        elif case.ending is Ending.USER_STOP:
            status, flags = QUIRK_VERDICTS[next(iter(signing_quirks))]
            if (found["signature_status"], set(found["signed_flags"])) != (status, flags):
                problems.append(f"{case}: {found['signature_status']} {found['signed_flags']}, the table says {status} {flags}")
        problems += [f"{case}: {p}" for p in expectations.session_mismatches([expected.to_json()], correlate(profile, link.calls))]
        verdicts.add(found["signature_status"])
    assert problems == [], "\n".join(problems)
    assert verdicts == {"verified", "invalid", "verified_with_frame_key"}


def _valid_16(action: str, payload: dict) -> bool:
    try:
        VALIDATORS_16[action](copy.deepcopy(payload))
    except Exception:  # noqa: BLE001 - fastjsonschema's error: not valid
        return False
    return True


def test_a_16_charger_puts_its_end_where_its_firmware_does() -> None:
    """transactionData (Begin and End beside their register values), else a Transaction.End MeterValues just before
    the stop, or after it with the late values (LATE_TRANSACTION_END); the key only in the frame: the OCA document."""
    def where(case: Case) -> list[str]:
        profile = profile_of(1, case)
        link, _ = asyncio.run(live(profile, case))
        out = []
        for _, action, payload in link.calls:
            for meter_value in payload.get("meterValue") or payload.get("transactionData") or []:
                for sample in meter_value["sampledValue"]:
                    if sample.get("format") == "SignedData":
                        out.append(f"{action} {sample['context']}" + (" oca" if sample["value"].startswith("{") else ""))
        return out

    assert where(Case("1.6", Ending.USER_STOP, transaction_data=True)) == [
        "MeterValues Transaction.Begin", "StopTransaction Transaction.Begin", "StopTransaction Transaction.End"]
    assert where(Case("1.6", Ending.USER_STOP)) == ["MeterValues Transaction.Begin", "MeterValues Transaction.End"]
    assert where(Case("1.6", Ending.USER_STOP, Quirk.KEY_ONLY_IN_FRAME)) == [
        "MeterValues Transaction.Begin oca", "MeterValues Transaction.End oca"]
    assert where(Case("1.6", Ending.USER_STOP, Quirk.SIGNED_END_MISSING, transaction_data=True)) == [
        "MeterValues Transaction.Begin", "StopTransaction Transaction.Begin"]

    link, _ = asyncio.run(live(profile_of(1, Case("1.6", Ending.USER_STOP, Quirk.LATE_TRANSACTION_END)),
                               Case("1.6", Ending.USER_STOP, Quirk.LATE_TRANSACTION_END)))
    actions = [(a, any(s.get("format") == "SignedData" for mv in p.get("meterValue", []) for s in mv["sampledValue"]))
               for _, a, p in link.calls if a in ("MeterValues", "StopTransaction")]
    stop = actions.index(("StopTransaction", False))
    assert actions[stop + 1:] == [("MeterValues", False), ("MeterValues", True)]  # the late plain values, then the signed


def test_a_201_register_value_carries_its_signed_reading_with_the_key_only_when_unregistered() -> None:
    for quirks, key in (((), False), ((Quirk.KEY_ONLY_IN_FRAME,), True)):
        case = Case("2.0.1", Ending.USER_STOP, *quirks, model=AC_METERS[3])
        profile = profile_of(1, case)
        link, ledger = asyncio.run(live(profile, case))
        events = [p for _, a, p in link.calls if a == "TransactionEvent" and "meterValue" in p]
        signed = [(e["eventType"], s) for e in events for s in e["meterValue"][0]["sampledValue"] if "signedMeterValue" in s]
        assert [kind for kind, _ in signed] == ["Started", "Ended"]
        for kind, sample in signed:
            smv = sample["signedMeterValue"]
            assert sample["measurand"] == "Energy.Active.Import.Register" and isinstance(sample["value"], int)
            assert (smv["encodingMethod"], smv["signingMethod"]) == ("OCMF", "ECDSA-brainpoolP256r1-SHA256")
            assert bool(smv["publicKey"]) is key
        assert signed[1][1]["value"] - signed[0][1]["value"] == ledger.sessions[0].energy_wh == ledger.sessions[0].signed_energy_wh


def test_a_swapped_meter_signs_the_end_of_its_first_session_and_every_later_session() -> None:
    case = Case("1.6", Ending.USER_STOP, Quirk.METER_SWAPPED)
    profile = profile_of(1, case)

    async def two_sessions() -> tuple[FakeLink, Ledger]:
        link, ledger = FakeLink(profile.charge_point_id), Ledger()
        charger = Charger(profile, link, TIMING, ledger, random.Random(1), asyncio.Event())  # type: ignore[arg-type]
        await charger._boot()
        for _ in range(2):
            plan = replace(lives.plan_session(random.Random(1), profile), ending=Ending.USER_STOP, power_w=40_000, charge_s=900)
            await charger._session(charger.connectors[0], plan)
        return link, ledger

    link, ledger = asyncio.run(two_sessions())
    first, second = ledger.sessions
    values = signed_values(link.calls, "1.6")
    for expected, flags in ((first, ["signed_meter_serial_changed"]), (second, [])):
        found = judge(values[expected.transaction_id], registry_for(profile), profile.charge_point_id, 1, expected.energy_wh)
        assert found == truth(expected) and (found["signature_status"], found["signed_flags"]) == ("verified", flags)
    assert first.signed_meter_serial is None and second.signed_meter_serial == ocmf_meter.meter_serial(profile, 1, 1)
    assert second.signed_energy_wh == second.energy_wh
    # The new meter's first record (T1) ended the first session; the second begins with its T2.
    assert [read_record(text).pagination for text in (first.signed_stop, second.signed_start, second.signed_stop)] == ["T1", "T2", "T3"]


# --- the fleet: who signs, with which quirk ------------------------------------------------------------------


def test_the_signing_shares_hold_exactly_and_every_quirk_kind_comes_in_turn() -> None:

    settings = SimulatorSettings(chargers=240, seed=9, signing_share=0.25, signing_quirky_share=0.5, quirky_share=0.3)
    fleet = plan_fleet(settings)
    signing = [p for p in fleet if p.meter is not None]
    for n in (7, 20, 100, 240):  # any run of chargers holds the share within one
        assert abs(sum(1 for p in fleet[:n] if p.meter) - n * 0.25) <= 1, n
    kinds = [next(iter(p.quirks & set(SIGNING_QUIRKS)), None) for p in signing]
    quirky = [k for k in kinds if k is not None]
    assert abs(len(quirky) - len(signing) / 2) <= 1
    assert quirky[:len(SIGNING_QUIRKS)] == list(SIGNING_QUIRKS)  # in turn, the flipped signature first
    assert all(p.quirks - set(SIGNING_QUIRKS) <= set(lives.QUIRKS_V16) for p in fleet)
    assert {p.meter.model for p in signing if p.dc} <= set(DC_METERS) and {p.meter.model for p in signing if not p.dc} <= set(AC_METERS)
    # Signing changes nothing else: the same chargers and plans as without it, and fleet size changes no one's meter.
    unsigned = plan_fleet(settings.model_copy(update={"signing_share": 0.0}))
    assert [replace(p, meter=None, quirks=p.quirks - set(SIGNING_QUIRKS)) for p in fleet] == unsigned
    assert all(p.meter is None for p in unsigned)
    assert plan_fleet(settings.model_copy(update={"chargers": 50})) == fleet[:50]
    # A 2.0.1 fleet signs as its 1.6 twin does.
    twins = plan_fleet(settings.model_copy(update={"ocpp": "2.0.1"}))
    assert [(p.meter, p.quirks & set(SIGNING_QUIRKS)) for p in twins] == [(p.meter, p.quirks & set(SIGNING_QUIRKS)) for p in fleet]
    assert plan_fleet(settings.model_copy(update={"seed": 10})) != fleet


def test_make_run_shows_verified_failed_and_frame_key_sessions() -> None:
    """``dev``'s defaults: 4 of its 20 chargers sign, 2 of them with faults (a signature that fails, a key only in
    the frames), whatever the seed."""
    from ocpp_pipeline.dev import DEV_SIMULATOR_DEFAULTS

    for seed in range(1, 30):
        fleet = plan_fleet(SimulatorSettings(**DEV_SIMULATOR_DEFAULTS, seed=seed))
        signing = [p for p in fleet if p.meter is not None]
        assert len(signing) == 4, seed
        assert sorted(q for p in signing for q in p.quirks & set(SIGNING_QUIRKS)) == sorted(SIGNING_QUIRKS[:2]), seed


def test_the_keys_file_of_a_fleet_is_written_at_once_and_read_by_keys_import(tmp_path) -> None:

    settings = SimulatorSettings(chargers=30, signing_share=0.3, signing_quirky_share=1.0, connectors="2")
    path = tmp_path / "keys" / "meter-keys.csv"
    keys, signing = write_meter_keys(settings, path)
    fleet = [p for p in plan_fleet(settings) if p.meter is not None]
    assert signing == len(fleet) == 9
    events = parse_key_file(path.read_text())
    assert keys == len(events) == sum(len(signing_plan.key_rows(p)) for p in fleet)
    assert {e.key.charge_point_id for e in events} == {p.charge_point_id for p in fleet if not p.has(Quirk.KEY_ONLY_IN_FRAME)}
    assert not list(path.parent.glob("*.tmp"))
    assert write_meter_keys(settings.model_copy(update={"signing_share": 0.0}), tmp_path / "none.csv") == (0, 0)
    assert not (tmp_path / "none.csv").exists()
    assert settings.meter_keys_path(tmp_path) == (tmp_path / "simulator" / "meter-keys.csv").resolve()
    assert settings.model_copy(update={"meter_keys_file": path}).meter_keys_path(tmp_path / "x") == path.resolve()


# --- the comparison the end-to-end tests make once sessions carry the signature columns ----------------------


def _expected(**signed: Any) -> dict[str, Any]:
    return {"signature_status": "verified", "signed_start": "OCMF|B", "signed_stop": "OCMF|E", "signed_energy_wh": 150.0,
            "signed_meter_serial": "M1", "signed_flags": []} | signed


@pytest.mark.parametrize("row, differs", [
    ({}, set()),  # a row without the signature columns (before issue 25 part 2): not compared
    ({"signature_status": "verified", "signed_start": "OCMF|B", "signed_stop": "OCMF|E", "signed_energy_wh": 150.5,
      "signed_meter_serial": "M1", "flags": ["meter_values_used", "signed_data_skipped"]}, set()),
    ({"signature_status": "invalid", "signed_start": "OCMF|B", "signed_stop": "OCMF|E", "signed_energy_wh": 150.0}, {"signature_status"}),
    ({"signature_status": "verified", "signed_start": "OCMF|B", "signed_stop": "", "signed_energy_wh": 150.0}, {"signed_stop"}),
    ({"signature_status": "verified", "signed_start": "OCMF|B", "signed_stop": "OCMF|E", "signed_energy_wh": None}, {"signed_energy_wh"}),
    ({"signature_status": "verified", "signed_start": "OCMF|B", "signed_stop": "OCMF|E", "signed_energy_wh": 152.0,
      "signed_meter_serial": "", "flags": ["signed_pagination_gap"]}, {"signed_energy_wh", "signed_meter_serial", "signed_flags"}),
])
def test_signature_columns_are_compared_when_the_row_has_them(row: dict[str, Any], differs: set[str]) -> None:
    assert set(signed_truth.signature_differences(_expected(), row)) == differs


def test_an_unsigned_expectation_wants_empty_signature_columns() -> None:
    unsigned = signed_truth.expected_signatures([], 10.0)
    assert unsigned["signature_status"] == "unsigned" and signed_truth.signature_differences(
        unsigned, {"signature_status": "unsigned", "signed_start": "", "signed_stop": "", "signed_energy_wh": None,
                   "signed_meter_serial": "", "flags": []}) == {}
    session = {"kind": "session", "charge_point_id": "CP", "connector_id": 1, "transaction_id": "1", "id_tag": "T",
               "energy_wh": 10.0, "stop_reason": "Local", "stop_status": "Finishing", "closed_by": "stop_transaction",
               "ending": "user_stop", "quirks": []}  # an expectations file from before signing: unsigned
    row = {k: session[k] for k in ("charge_point_id", "connector_id", "transaction_id", "id_tag", "energy_wh", "stop_reason",
                                   "stop_status", "closed_by")}
    assert expectations.session_mismatches([session], [row | {"signature_status": "unsigned"}]) == []
    assert "signature_status 'verified' != 'unsigned'" in expectations.session_mismatches(
        [session], [row | {"signature_status": "verified"}])[0]


# --- keys from a secret, settings and flags ------------------------------------------------------------------


@pytest.mark.parametrize("curve", sorted({m.curve for m in MODELS} | {"secp192k1", "secp521r1", "brainpoolP384r1"}))
def test_a_signer_from_a_secret_has_the_same_keys_every_time_and_signs_verifiably(curve: str) -> None:
    from signed_meter.registry import RegisteredKey
    from signed_meter.signing import Signer
    from signed_meter.verification import verify_text

    one, again, other = Signer(curve, secret=b"seed:1:1:0"), Signer(curve, secret=b"seed:1:1:0"), Signer(curve, secret=b"seed:1:1:1")
    assert one.public_key_hex == again.public_key_hex != other.public_key_hex
    record = one.sign('{"FV":"1.0","PG":"T1","MS":"M","RD":[{"TM":"2024-03-01T10:00:00,000+0000 S","TX":"B","RV":1,'
                      '"RI":"1-b:1.8.0","RU":"Wh","ST":"G"}]}', f"ECDSA-{curve}-SHA256")
    assert verify_text(record, [RegisteredKey("CP", None, again.public_key_hex)]).status == SignatureStatus.VERIFIED
    assert verify_text(record, [RegisteredKey("CP", None, other.public_key_hex)]).status == SignatureStatus.INVALID


def test_the_signing_flags_reach_the_settings_and_dev_passes_them_on(tmp_path) -> None:
    from ocpp_pipeline.cli import build_parser, simulator_settings
    from ocpp_pipeline.dev import DEV_SIMULATOR_DEFAULTS, simulator_args

    keys = tmp_path / "k.csv"
    settings = simulator_settings(build_parser().parse_args(
        ["simulate", "--signing-share", "0.3", "--signing-quirky-share", "1", "--meter-keys", str(keys)]))
    assert (settings.signing_share, settings.signing_quirky_share, settings.meter_keys_file) == (0.3, 1.0, keys)
    dev = simulator_settings(build_parser().parse_args(["dev"]), DEV_SIMULATOR_DEFAULTS)
    assert (dev.signing_share, dev.signing_quirky_share, dev.meter_keys_file) == (0.2, 0.5, None)
    plain = simulator_settings(build_parser().parse_args(["simulate"]))
    assert (plain.signing_share, plain.signing_quirky_share) == (0.0, 0.25)  # nobody signs unless asked
    child = dev.model_copy(update={"url": "ws://127.0.0.1:1/ocpp", "meter_keys_file": dev.meter_keys_path(tmp_path)})
    assert simulator_settings(build_parser().parse_args(["simulate", *simulator_args(child)])) == child
    for bad in ({"signing_share": 1.5}, {"signing_quirky_share": -0.1}):
        with pytest.raises(ValidationError):
            SimulatorSettings(**bad)
