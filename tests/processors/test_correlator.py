"""The correlator, table-driven: every transition and stop reason of the seed, multi-connector
chargers, and every quirk of OCPP-QUIRKS.md. Pure: no Kafka, no ClickHouse, no clock."""

from __future__ import annotations

import pytest

from processors.settings import CorrelatorConfig
from processors.vocabulary import OUT_OF_CHARGING
from schemas.records import EnergySource, FaultEventKind
from tests.processors.script import Script, T0_MS, energy, faults, iso, only_session, sessions, statuses

WINDOW = 60  # seconds, the default status window
STOP_REASONS = ["EmergencyStop", "EVDisconnected", "HardReset", "Local", "Other", "PowerLoss", "Reboot", "Remote",
                "SoftReset", "UnlockCommand", "DeAuthorized"]


def charging_session(script: Script | None = None, *, connector: int = 1, tx: int = 77, start_at: float = 0) -> Script:
    script = script or Script()
    script.at(start_at).status(connector, "Preparing")
    script.at(start_at + 1).start(connector, tx, meter_start=1000)
    script.at(start_at + 2).status(connector, "Charging")
    return script


# --- the seed: how a session ends -------------------------------------------------------------------

@pytest.mark.parametrize("to_status", sorted(OUT_OF_CHARGING))
def test_status_transition_before_the_stop(to_status: str) -> None:
    script = charging_session()
    script.at(3600).status(1, to_status, "GroundFailure" if to_status == "Faulted" else "NoError")
    script.at(3605).stop(77, 5000, reason="Local")
    session = only_session(script.run())
    assert (session.stop_status, session.closed_by, session.energy_wh) == (to_status, "stop_transaction", 4000.0)
    assert session.energy_source == EnergySource.METER_STOP
    assert "status_transition_missing" not in session.flags and "stop_missing" not in session.flags
    assert session.received_at.timestamp() * 1000 == T0_MS + 3605_000  # emitted at the stop


@pytest.mark.parametrize("to_status", sorted(OUT_OF_CHARGING))
@pytest.mark.parametrize("delay", [1, 30, WINDOW - 1])
def test_status_transition_after_the_stop_within_the_window(to_status: str, delay: float) -> None:
    script = charging_session()
    script.at(3600).stop(77, 5000)
    before = script.run()
    assert sessions(before) == []  # waiting for the transition
    script.at(3600 + delay).status(1, to_status)
    session = only_session(script.run())
    # Into Faulted: the stop went into a fault (a failed attempt, KPIS.md), said by a flag as well.
    assert session.stop_status == to_status and session.flags == (["faulted_at_stop"] if to_status == "Faulted" else [])
    assert session.stop_status_at.timestamp() * 1000 == T0_MS + (3600 + delay) * 1000


def test_a_transition_after_the_window_is_not_attached() -> None:
    script = charging_session()
    script.at(3600).stop(77, 5000)
    script.at(3600 + WINDOW + 5).status(1, "Available")
    session = only_session(script.run())
    assert session.stop_status == "" and "status_transition_missing" in session.flags
    assert session.energy_wh == 4000.0


def test_a_session_whose_transition_never_comes_is_still_emitted_once() -> None:
    script = charging_session()
    script.at(3600).stop(77, 5000)
    events = script.run(until=3600 + WINDOW + 1)
    session = only_session(events)
    assert "status_transition_missing" in session.flags
    assert session.received_at.timestamp() * 1000 == T0_MS + 3600_000  # the stop frame's time


def test_the_window_is_configurable() -> None:
    script = charging_session()
    script.at(3600).stop(77, 5000)
    script.at(3600 + 90).status(1, "Finishing")
    session = only_session(script.run(CorrelatorConfig.defaults(status_window_ms=120_000)))
    assert session.stop_status == "Finishing" and session.flags == []


def test_the_latest_transition_out_of_charging_counts() -> None:
    script = charging_session()
    script.at(600).status(1, "SuspendedEV")  # the car paused
    script.at(660).status(1, "Charging")  # and went on
    script.at(3600).status(1, "Finishing")
    script.at(3601).stop(77, 5000)
    assert only_session(script.run()).stop_status == "Finishing"


def test_ev_full_then_unplugged_keeps_suspended_ev() -> None:
    script = charging_session()
    script.at(3000).status(1, "SuspendedEV")
    script.at(3500).status(1, "Finishing")
    script.at(3501).stop(77, 5000, reason="EVDisconnected")
    session = only_session(script.run())
    assert (session.stop_status, session.stop_reason) == ("SuspendedEV", "EVDisconnected")


@pytest.mark.parametrize("reason", STOP_REASONS)
def test_every_stop_reason_is_kept(reason: str) -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 2000, reason=reason)
    assert only_session(script.run()).stop_reason == reason


def test_an_absent_reason_is_the_spec_default_local() -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 2000)
    assert only_session(script.run()).stop_reason == "Local"


def test_session_fields_from_start_and_stop() -> None:
    script = charging_session()
    script.at(1800).meter(1, 77, energy(2000), {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                          {"value": "35", "measurand": "SoC"})
    script.at(3500).meter(1, 77, energy(4500), {"value": "80", "measurand": "SoC"})
    script.at(3600).status(1, "Finishing")
    script.at(3601).stop(77, 5000, reason="Local")
    s = only_session(script.run())
    assert (s.charge_point_id, s.connector_id, s.transaction_id, s.id_tag) == ("CP-1", 1, "77", "TAG")
    assert s.started_at.timestamp() * 1000 == T0_MS + 1000 and s.stopped_at.timestamp() * 1000 == T0_MS + 3601_000
    assert (s.meter_start_wh, s.meter_stop_wh, s.duration_s) == (1000.0, 5000.0, 3600.0)
    assert (s.peak_power_w, s.soc_start_pct, s.soc_end_pct, s.sample_count) == (7400.0, 35.0, 80.0, 2)


# --- multi-connector chargers ---------------------------------------------------------------------

def test_connectors_are_independent() -> None:
    script = charging_session(connector=1, tx=10)
    charging_session(script, connector=2, tx=20, start_at=10)
    script.at(1000).status(1, "Available")  # connector 1 ends while connector 2 charges on
    script.at(1001).stop(10, 3000, reason="EVDisconnected")
    script.at(2000).meter(2, 20, energy(2500))
    script.at(3000).status(2, "Finishing")
    script.at(3001).stop(20, 9000)
    first, second = sessions(script.run())
    assert (first.transaction_id, first.connector_id, first.stop_status, first.energy_wh) == ("10", 1, "Available", 2000.0)
    assert (second.transaction_id, second.connector_id, second.stop_status, second.energy_wh) == ("20", 2, "Finishing", 8000.0)


def test_one_plug_at_a_time_chargers_report_unavailable_on_the_other() -> None:
    script = charging_session(connector=1, tx=10)
    script.at(3).status(2, "Unavailable")
    script.at(500).status(1, "Finishing")
    script.at(501).stop(10, 3000)
    events = script.run()
    assert only_session(events).stop_status == "Finishing"
    assert [(s.connector_id, s.status) for s in statuses(events)][-2:] == [(2, "Unavailable"), (1, "Finishing")]


# --- transaction ids ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id", [-1, 0])
def test_an_invalid_id_stops_the_only_open_transaction(bad_id: int) -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(bad_id, 3000)
    session = only_session(script.run())
    assert (session.transaction_id, session.energy_wh) == ("77", 2000.0)
    assert {"transaction_id_invalid", "transaction_id_matched_open_session"} <= set(session.flags)


def test_a_stop_without_a_start_still_becomes_a_session_with_an_inferred_connector() -> None:
    script = Script()
    script.at(0).status(1, "Available").status(2, "Charging")
    script.at(50).status(2, "Finishing")
    script.at(51).stop(0, 8000, transaction_data=[{"timestamp": iso(10), "sampledValue": [energy(5000)]},
                                                  {"timestamp": iso(51), "sampledValue": [energy(8000)]}])
    assert sessions(script.run()) == []  # energy from samples: late Transaction.End values may still come
    session = only_session(script.run(until=51 + WINDOW + 1))
    assert session.transaction_id == "0" and session.connector_id == 2
    assert {"stop_without_start", "transaction_id_invalid", "connector_inferred"} <= set(session.flags)
    assert (session.energy_wh, session.energy_source, session.stop_status) == (3000.0, EnergySource.TRANSACTION_DATA, "Finishing")
    assert session.started_at is None


def test_a_stop_for_an_unknown_id_is_kept_not_matched() -> None:
    script = charging_session()
    script.at(100).stop(424242, 3000)
    events = script.run(until=200)
    unknown = [s for s in sessions(events) if s.transaction_id == "424242"]
    assert len(unknown) == 1 and {"stop_without_start", "transaction_id_unknown"} <= set(unknown[0].flags)
    assert unknown[0].energy_source == EnergySource.NONE and unknown[0].energy_wh is None


def test_a_start_resent_with_the_same_id_is_one_session() -> None:
    script = charging_session()
    script.at(2).start(1, 77, meter_start=1000, ts=iso(1))  # the answer was lost; resent
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3000)
    session = only_session(script.run())
    assert "duplicate_start" in session.flags and session.energy_wh == 2000.0


def test_a_start_resent_to_another_replica_with_another_id_is_one_session() -> None:
    script = charging_session()  # tx 77 at t=1
    script.at(5).start(1, 78, meter_start=1000, ts=iso(1))  # same content, new id
    script.at(100).status(1, "Finishing")
    script.at(101).stop(78, 3000)  # the charger uses the id it got last
    session = only_session(script.run(until=300))
    assert session.transaction_id == "77" and "duplicate_start" in session.flags and session.energy_wh == 2000.0


def test_a_resent_identical_stop_is_counted_once() -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3000)
    script.at(130).stop(77, 3000, ts=iso(101))  # the same stop, resent after a reconnect (steve #955)
    assert len(sessions(script.run(until=1000))) == 1


def test_a_second_different_stop_keeps_the_first_and_flags_it() -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3000)
    script.at(130).stop(77, 3500)  # steve #1293
    first, corrected = sessions(script.run(until=1000))
    assert first.energy_wh == corrected.energy_wh == 2000.0
    assert "duplicate_stop_conflict" in corrected.flags and corrected.version > first.version
    assert (corrected.charge_point_id, corrected.transaction_id) == (first.charge_point_id, first.transaction_id)


def test_a_start_the_gateway_could_not_store_opens_nothing() -> None:
    script = Script()
    script.at(1).start(1, None, answer="error")
    script.at(2).stop(5, 100)
    session = only_session(script.run(until=500))
    assert "stop_without_start" in session.flags


# --- energy ---------------------------------------------------------------------------------------

def _meter_series(script: Script, *values: float, tx: int = 77, unit: str | None = None) -> None:
    for n, value in enumerate(values):
        script.at(100 + 60 * n).meter(1, tx, energy(value, unit))


def test_meter_stop_minus_one_falls_back_to_meter_values() -> None:
    script = charging_session()
    _meter_series(script, 1500, 2500, 3500)
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    session = only_session(script.run(until=1100))
    assert (session.energy_wh, session.energy_source) == (2500.0, EnergySource.METER_VALUES)
    assert "meter_stop_unknown" in session.flags and session.meter_stop_wh == -1.0


def test_meter_stop_below_meter_start_is_never_negative() -> None:
    script = charging_session()
    _meter_series(script, 1200, 1800)
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, 500)
    session = only_session(script.run(until=1100))
    assert "meter_stop_below_start" in session.flags
    assert session.energy_wh == 800.0 and session.energy_source == EnergySource.METER_VALUES


def test_meter_stop_below_start_without_samples_gives_no_energy() -> None:
    script = charging_session()
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, 500)
    session = only_session(script.run(until=1100))
    assert session.energy_wh is None and session.energy_source == EnergySource.NONE


def test_a_meter_reset_every_session_abb() -> None:
    script = charging_session()  # meterStart 1000 from a lifetime register...
    _meter_series(script, 0, 400, 900)  # ...but the meter restarts at 0 (lbbrhzn/ocpp #919)
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    session = only_session(script.run(until=1100))
    assert session.energy_wh == 900.0 and "meter_reset" in session.flags


def test_a_register_dropout_to_zero_is_ignored() -> None:
    script = charging_session()
    _meter_series(script, 1500, 0, 2500)  # lbbrhzn/ocpp #374
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    session = only_session(script.run(until=1100))
    assert session.energy_wh == 1500.0 and "meter_dropout" in session.flags


def test_transaction_end_values_after_the_stop_still_count() -> None:
    script = charging_session()
    _meter_series(script, 1500)
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    script.at(1003).meter(1, 77, energy(4000, context="Transaction.End"))  # lbbrhzn/ocpp PR #2075
    session = only_session(script.run(until=1100))
    assert session.energy_wh == 3000.0 and "meter_values_after_stop" in session.flags


def test_kwh_and_phases_in_transaction_data() -> None:
    script = charging_session()
    data = [
        {"timestamp": iso(120), "sampledValue": [energy("1.0", "kWh", phase="L1"), energy("0.5", "kWh", phase="L2"),
                                                energy("0.5", "kWh", phase="L3")]},
        {"timestamp": iso(900), "sampledValue": [energy("3.5", "kWh", phase="L1"), energy("3.0", "kWh", phase="L2"),
                                                 energy("3.0", "kWh", phase="L3")]},
    ]
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, omit_meter=True, transaction_data=data)
    session = only_session(script.run(until=1100))
    assert session.energy_source == EnergySource.TRANSACTION_DATA
    assert session.energy_wh == 9500.0 - 1000.0  # from meterStart (Wh) to 9.5 kWh summed over phases
    assert {"meter_stop_missing", "energy_summed_from_phases"} <= set(session.flags)


def test_the_total_is_preferred_over_phases_and_outlet_over_inlet() -> None:
    script = charging_session()
    script.at(100).meter(1, 77, energy(9999, location="Inlet"), energy(1500, location="Outlet"),
                         energy(700, phase="L1", location="Outlet"))
    script.at(200).meter(1, 77, energy(99999, location="Inlet"), energy(2500))
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    assert only_session(script.run(until=1100)).energy_wh == 1500.0


def test_numeric_sample_values_signed_data_and_unknown_measurands() -> None:
    script = charging_session()
    script.at(100).meter(1, 77, energy(1500, as_number=True), {"value": "abc==", "format": "SignedData"},
                         {"value": "230", "measurand": "Voltage"})
    script.at(200).meter(1, 77, energy(2600, as_number=True))
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1)
    session = only_session(script.run(until=1100))
    assert session.energy_wh == 1600.0
    assert {"sample_value_not_string", "signed_data_skipped"} <= set(session.flags)


def test_a_float_meter_stop_is_used_and_flagged() -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3210.5, ts=iso(101))
    session = only_session(script.run())
    assert session.energy_wh == 2210.5 and "meter_value_not_integer" in session.flags


def test_implausible_energy_is_flagged_and_not_billed() -> None:
    script = charging_session()
    script.at(60).status(1, "Finishing")
    script.at(61).stop(77, 1000 + 50_000_000)  # 50 MWh in a minute
    session = only_session(script.run())
    assert "energy_implausible" in session.flags and session.energy_wh is None


# --- sessions never stopped -----------------------------------------------------------------------

def test_the_next_start_on_the_connector_closes_an_unstopped_session() -> None:
    script = charging_session()
    script.at(500).meter(1, 77, energy(3000))
    script.at(4000).start(1, 99, meter_start=3500)  # steve #1264: no StopTransaction ever came
    session = only_session(script.run())
    assert (session.transaction_id, session.closed_by, session.energy_wh) == ("77", "next_transaction", 2000.0)
    assert session.energy_source == EnergySource.METER_VALUES and "stop_missing" in session.flags


def test_available_without_a_stop_closes_after_the_window() -> None:
    script = charging_session()
    script.at(1000).status(1, "Available")
    events = script.run(until=1000 + WINDOW + 1)
    session = only_session(events)
    assert (session.closed_by, session.stop_status, session.stop_reason) == ("available", "Available", "")
    assert "stop_missing" in session.flags


def test_available_before_the_stop_is_the_normal_case() -> None:
    script = charging_session()
    script.at(1000).status(1, "Available")  # ev-server PR #4082
    script.at(1000 + 20).stop(77, 3000)
    session = only_session(script.run(until=5000))
    assert (session.closed_by, session.stop_status) == ("stop_transaction", "Available")
    assert "stop_missing" not in session.flags


def test_a_session_is_closed_after_the_configured_age() -> None:
    script = charging_session()
    config = CorrelatorConfig.defaults(max_session_age_ms=3600_000)
    assert sessions(script.run(config, until=3000)) == []
    session = only_session(script.run(config, until=3700))
    assert session.closed_by == "timeout" and "stop_missing" in session.flags


# --- clocks ---------------------------------------------------------------------------------------

def test_charger_clock_skew_is_flagged_and_duration_uses_the_gateway_clock() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 5, ts="2025-11-24T13:00:00Z")  # three hours behind
    script.at(601).status(1, "Finishing")
    script.at(602).stop(5, 2000, ts="2025-11-24T13:10:01Z")
    session = only_session(script.run())
    assert {"clock_skew", "duration_from_gateway_clock"} <= set(session.flags) and session.duration_s == 601.0


def test_timestamps_without_a_zone_are_read_as_utc_and_flagged() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 5, ts=iso(1, zone=False))
    script.at(61).status(1, "Finishing")
    script.at(62).stop(5, 2000, ts=iso(62, zone=False))
    session = only_session(script.run())
    assert "timestamp_without_zone" in session.flags and session.duration_s == 61.0


def test_a_stop_before_its_start_is_flagged() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 5, ts=iso(100))
    script.at(61).status(1, "Finishing")
    script.at(62).stop(5, 2000, ts=iso(50))
    session = only_session(script.run())
    assert {"stop_before_start", "duration_from_gateway_clock"} <= set(session.flags)


# --- faults ---------------------------------------------------------------------------------------

def test_a_fault_begins_and_clears_with_its_duration_and_transaction() -> None:
    script = charging_session()
    script.at(100).status(1, "Faulted", "GroundFailure", info="RCD", vendorId="ACME", vendorErrorCode="E42")
    script.at(400).status(1, "Available")
    began, cleared = faults(script.run())
    assert (began.event, began.connector_id, began.error_code, began.transaction_id) == (FaultEventKind.BEGAN, 1, "GroundFailure", "77")
    assert (began.info, began.vendor_id, began.vendor_error_code) == ("RCD", "ACME", "E42")
    assert (cleared.event, cleared.duration_s, cleared.transaction_id) == (FaultEventKind.CLEARED, 300.0, "77")
    assert cleared.began_at == began.occurred_at


def test_connector_zero_is_the_whole_charge_point() -> None:
    script = charging_session()
    script.at(100).status(0, "Faulted", "PowerMeterFailure")
    script.at(160).status(0, "Available")
    began, cleared = faults(script.run())
    assert (began.connector_id, began.transaction_id, cleared.duration_s) == (0, None, 60.0)


def test_a_non_enum_error_code_is_still_a_fault() -> None:
    script = Script()
    script.at(0).call("StatusNotification", {"connectorId": 1, "errorCode": "Error", "status": "Faulted", "timestamp": iso(0)},
                      flags=("schema_violation", "schema:errorCode:enum"))
    (fault,) = faults(script.run())
    assert fault.error_code == "Error" and "schema:errorCode:enum" in fault.flags


def test_other_error_keeps_the_vendor_cause() -> None:
    script = Script()
    script.at(0).status(2, "Faulted", "OtherError", info="Contactor welded", vendorErrorCode="0x1F")
    (fault,) = faults(script.run())
    assert (fault.info, fault.vendor_error_code) == ("Contactor welded", "0x1F")


def test_finishing_with_an_error_code_abb() -> None:
    script = charging_session()
    script.at(100).status(1, "Finishing", "EVCommunicationError")
    script.at(101).stop(77, 2000)
    events = script.run()
    (fault,) = faults(events)
    assert fault.status == "Finishing" and "error_code_while_finishing" in fault.flags
    assert only_session(events).stop_error_code == "EVCommunicationError"


def test_a_stale_faulted_replayed_after_reboot_alfen() -> None:
    script = Script()
    script.at(0).status(0, "Faulted", "InternalError", ts="2025-11-20T08:00:00Z")
    script.at(30).status(0, "Available")
    fault, cleared = faults(script.run())
    assert "stale_timestamp" in fault.flags
    # Its duration is what the gateway saw, not days back to the replayed timestamp.
    assert cleared.duration_s == 30.0 and {"began_stale", "duration_from_gateway_clock"} <= set(cleared.flags)


def test_a_changed_error_code_closes_one_fault_and_opens_another() -> None:
    script = Script()
    script.at(0).status(1, "Faulted", "OverVoltage")
    script.at(10).status(1, "Faulted", "HighTemperature")
    events = faults(script.run())
    assert [(f.event, f.error_code) for f in events] == [
        (FaultEventKind.BEGAN, "OverVoltage"), (FaultEventKind.CLEARED, "OverVoltage"), (FaultEventKind.BEGAN, "HighTemperature")]
    assert "superseded_by_other_error" in events[1].flags


def test_the_status_timeline_keeps_previous_status() -> None:
    script = charging_session()
    events = statuses(script.run())
    assert [(s.previous_status, s.status) for s in events] == [("", "Preparing"), ("Preparing", "Charging")]


def test_state_survives_json_between_frames_and_gives_the_same_events() -> None:
    script = charging_session()
    _meter_series(script, 1500, 0, 2500)
    script.at(1000).status(1, "Faulted", "GroundFailure")
    script.at(1001).stop(77, -1)
    script.at(1002).status(1, "Available")
    direct = script.run(until=5000, roundtrip_state=False)
    via_json = script.run(until=5000, roundtrip_state=True)
    assert [e.model_dump() for e in direct] == [e.model_dump() for e in via_json]


def test_a_stop_with_thousands_of_transaction_data_samples_keeps_a_bounded_state() -> None:
    """A charger may send any number of samples in one StopTransaction; the state is kept for days and
    written at every flush, so it stays bounded, and the energy still comes from the register's ends."""
    script = charging_session()
    samples = [{"timestamp": iso(10 + n), "sampledValue": [energy(1000 + n)]} for n in range(2000)]
    script.at(2100).status(1, "Finishing")
    script.at(2101).stop(77, omit_meter=True, transaction_data=samples)
    session = only_session(script.run(until=2200))
    assert session.energy_wh == 1999.0 and "transaction_data_truncated" in session.flags
    assert session.sample_count == 500
