"""The simulator's pure parts: seeded plans, OCPP 1.6 payloads (valid unless a quirk says otherwise),
settings, source-address spreading, and the comparison the end-to-end tests rely on."""

from __future__ import annotations

import random
from dataclasses import replace

import fastjsonschema
import pytest
from pydantic import ValidationError

from gateway.payload_schemas import compile_validators
from simulator import expectations, lives
from simulator.fleet import CHARGERS_PER_SOURCE_ADDRESS, plan_fleet, source_address, timing_for
from simulator.lives import Ending, Quirk
from simulator.settings import SimulatorSettings

VALIDATORS = compile_validators()
T_MS = 1_764_000_000_000


def profile(*quirks: Quirk, **overrides) -> lives.Profile:
    base = lives.make_profile(random.Random(3), 1, id_prefix="T-", connectors=(2, 2), quirky_share=0)
    return replace(base, quirks=frozenset(quirks), **overrides)


def valid(action: str, payload: dict) -> bool:
    try:
        VALIDATORS[action](payload)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def all_payloads(p: lives.Profile) -> dict[str, dict]:
    plan = lives.plan_session(random.Random(1), p)
    return {
        "BootNotification": lives.boot_payload(p),
        "StatusNotification": lives.status_payload(p, 1, "Faulted", T_MS, plan.fault),
        "StartTransaction": lives.start_payload(p, 1, plan, 1000, T_MS),
        "StopTransaction": lives.stop_payload(p, plan, 42, 1000, 8500, T_MS, T_MS + 3_600_000, "Local"),
        "MeterValues": {"connectorId": 1, "transactionId": 42,
                        "meterValue": [lives.meter_value(p, T_MS, 1234, 7200, 55.5)]},
    }


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another() -> None:
    settings = SimulatorSettings(chargers=50, seed=5, quirky_share=0.3)
    assert plan_fleet(settings) == plan_fleet(settings)
    assert plan_fleet(settings) != plan_fleet(settings.model_copy(update={"seed": 6}))
    fleet = plan_fleet(settings)
    assert {p.connectors for p in fleet} <= {1, 2} and [p.charge_point_id for p in fleet][:2] == ["SIM-00001", "SIM-00002"]
    assert 5 <= sum(1 for p in fleet if p.quirks) <= 25


def test_plain_chargers_send_payloads_valid_against_the_ocpp16_schemas() -> None:
    for p in (profile(), profile(transaction_data=True), profile(max_power_w=150_000)):
        for action, payload in all_payloads(p).items():
            assert valid(action, payload), (action, payload)


@pytest.mark.parametrize("quirk", lives.QUIRKS_V16)
def test_quirks_break_the_schema_only_where_real_chargers_do(quirk: Quirk) -> None:
    breaking = {Quirk.NUMERIC_SAMPLES: {"MeterValues", "StopTransaction"}, Quirk.FLOAT_METER: {"StartTransaction", "StopTransaction"},
                Quirk.NON_ENUM_ERROR_CODE: {"StatusNotification"},
                Quirk.NAIVE_TIMESTAMPS: {"StatusNotification", "StartTransaction", "StopTransaction", "MeterValues"}}
    p = profile(quirk, transaction_data=True)
    invalid = {action for action, payload in all_payloads(p).items() if not valid(action, payload)}
    assert invalid == breaking.get(quirk, set())


def test_payload_details_of_quirks() -> None:
    plain, naive = profile(), profile(Quirk.NAIVE_TIMESTAMPS)
    assert lives.timestamp(T_MS, plain).endswith("Z") and "+" not in lives.timestamp(T_MS, naive)
    assert not lives.timestamp(T_MS, naive).endswith("Z")
    kwh = lives.meter_value(profile(Quirk.KWH_REGISTER), T_MS, 12_345, None, None)["sampledValue"][0]
    assert (kwh["value"], kwh["unit"]) == ("12.345", "kWh")
    lifetime = lives.meter_value(profile(Quirk.KWH_REGISTER), T_MS, 38_123_456, None, None)["sampledValue"][0]
    assert lifetime["value"] == "38123.456"  # every Wh of a big lifetime register survives
    phases = lives.meter_value(profile(Quirk.PER_PHASE), T_MS, 1000, None, None)["sampledValue"]
    assert sum(int(s["value"]) for s in phases if s.get("phase")) == 1000
    plan = lives.plan_session(random.Random(1), profile())
    stop = lives.stop_payload(profile(Quirk.METER_STOP_UNKNOWN, transaction_data=True), plan, 7, 100, 900, T_MS, T_MS, "Local")
    assert stop["meterStop"] == -1 and stop["transactionData"][-1]["sampledValue"][0]["value"] == "900"


def test_every_ending_happens_and_never_stopping_chargers_only_unplug() -> None:
    rng, p = random.Random(11), profile()
    assert {lives.plan_session(rng, p).ending for _ in range(2000)} == set(Ending)
    never = profile(Quirk.NEVER_STOPS)
    assert {lives.plan_session(rng, never).ending for _ in range(200)} == {Ending.CABLE_PULLED}
    assert lives.session_stop_status(lives.plan_session(rng, never), never) == "Available"
    assert lives.first_register_wh(rng, profile(Quirk.REGISTER_PER_SESSION)) == 0


def test_energy_follows_real_time_at_the_planned_power() -> None:
    assert lives.energy_wh(7200, 3600) == 7200 and lives.energy_wh(7200, 10) == 20


@pytest.mark.parametrize("text,expected", [("1", (1, 1)), ("1-4", (1, 4)), ("2-3", (2, 3))])
def test_connector_ranges(text: str, expected: tuple[int, int]) -> None:
    assert SimulatorSettings(connectors=text).connector_range() == expected


@pytest.mark.parametrize("text", ["0", "1-5", "3-2", "two", ""])
def test_bad_connector_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="connectors"):
        SimulatorSettings(connectors=text)


def test_big_fleets_spread_over_loopback_source_addresses() -> None:
    url, big = "ws://127.0.0.1:9000/ocpp", 3 * CHARGERS_PER_SOURCE_ADDRESS
    assert source_address(url, 5, 1000) is None
    addresses = {source_address(url, n, big) for n in range(1, big + 1, 997)}
    assert len(addresses) == 3 and all(a[0].startswith("127.") for a in addresses)
    assert source_address("ws://gateway.example.com/ocpp", 5, big) is None


def test_rate_sets_the_idle_time_of_connectors() -> None:
    settings = SimulatorSettings(chargers=100, connectors="2", time_scale=60, rate=2.0)
    timing = timing_for(settings, plan_fleet(settings))
    # 200 connectors at 2 sessions/s: a cycle of 100 real s, of which ~67 s are a session.
    assert timing.real(timing.idle_mean_s) == pytest.approx(100 - 4000 / 60)


def session(**overrides) -> dict:
    base = {"charge_point_id": "SIM-00001", "transaction_id": "7", "connector_id": 1, "id_tag": "T", "energy_wh": 100.0,
            "stop_reason": "Local", "stop_status": "Finishing", "closed_by": "stop_transaction", "ending": "user_stop",
            "quirks": []}
    return base | overrides


def test_session_comparison_names_every_difference() -> None:
    assert expectations.session_mismatches([session()], [session(energy_wh=100.6)]) == []
    problems = expectations.session_mismatches(
        [session(), session(transaction_id="8")], [session(energy_wh=98.0, stop_status="Available"), session(transaction_id="9")])
    assert len(problems) == 3
    assert any("missing session SIM-00001/8" in p for p in problems)
    assert any("unexpected session SIM-00001/9" in p for p in problems)
    assert any("stop_status 'Available' != 'Finishing'" in p and "energy_wh 98.0 != 100.0" in p for p in problems)


def test_sessions_sharing_a_transaction_id_on_two_evses_are_told_apart_by_their_connector() -> None:
    """A station numbering per EVSE: "1" on connector 1 and on connector 2, each held against its own row."""
    one, two = session(transaction_id="1", connector_id=1), session(transaction_id="1", connector_id=2, energy_wh=300.0)
    assert expectations.session_mismatches([one, two], [two, one]) == []
    problems = expectations.session_differences([one, two], [one | {"energy_wh": 300.0}, two | {"energy_wh": 100.0}])
    assert [m.fields for m in problems] == [("energy_wh",), ("energy_wh",)]
    assert [m.kind for m in expectations.session_differences([one, two], [two])] == [expectations.MismatchKind.MISSING]


def test_fault_comparison_counts_began_and_cleared_per_connector() -> None:
    fault = {"charge_point_id": "C", "connector_id": 1, "error_code": "GroundFailure", "cleared": True}
    began = {"charge_point_id": "C", "connector_id": 1, "error_code": "GroundFailure", "event": "began"}
    cleared = began | {"event": "cleared"}
    assert expectations.fault_mismatches([fault], [began, cleared]) == []
    assert expectations.fault_mismatches([fault], [began]) == ["fault cleared ('C', 1, 'GroundFailure'): 0 events, expected 1"]
    assert len(expectations.fault_mismatches([fault | {"cleared": False}], [began, began])) == 1
