"""Faults of OCPP 2.0.1 EVSEs and stations (issue #23, class 6; KPIS.md, SESSIONS.md): a Faulted status is a
fault, named by the NotifyEvent problem that comes beside it in either order (its began event waits a moment for
the name), or unnamed when none comes; a problem that outlives the Faulted status, or a status that outlives the
problem, holds the fault; a station-level problem (an emergency stop: component ChargingStation, no EVSE) is a
fault on connector 0, takes every port down, and names the faults of the EVSEs it takes down. Table tests and a
hypothesis property against a plain model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from processors.evse_faults import NAMING_MS
from schemas.flags import Flag
from schemas.records import FaultEvent, FaultEventKind
from tests.processors.script import T0, iso, outages
from tests.processors.test_ocpp201 import Station
from tests.processors.test_outages import spans

BEGAN, CLEARED = FaultEventKind.BEGAN, FaultEventKind.CLEARED
WAIT_S = NAMING_MS / 1000


def fault_list(events: list[Any]) -> list[tuple[int, str, str, float, float | None]]:
    """(connector, began | cleared, code, occurred s, duration s) of each fault event, in order."""
    return [(f.connector_id, str(f.event), f.error_code, (f.occurred_at - T0).total_seconds(), f.duration_s)
            for f in events if isinstance(f, FaultEvent)]


def station_problem(station: Station, active: bool, *, value: str | None = None, cleared: bool = False) -> Station:
    """An emergency stop as a station says it: component ChargingStation (no EVSE), variable Problem."""
    data: dict[str, Any] = {"eventId": len(station.envelopes), "timestamp": iso(station.now), "trigger": "Alerting",
                            "actualValue": value if value is not None else ("true" if active else "false"),
                            "eventNotificationType": "HardWiredNotification", "techCode": "EmergencyStop",
                            "component": {"name": "ChargingStation"}, "variable": {"name": "Problem"}}
    if cleared:
        data["cleared"] = True
    return station.call("NotifyEvent", {"generatedAt": iso(station.now), "seqNo": 0, "eventData": [data]})


def station_state(station: Station, state: str) -> Station:
    """The station's AvailabilityState (2.0.1 has no StatusNotification for the station as a whole)."""
    return station.call("NotifyEvent", {"generatedAt": iso(station.now), "seqNo": 0, "eventData": [
        {"eventId": len(station.envelopes), "timestamp": iso(station.now), "trigger": "Delta", "actualValue": state,
         "eventNotificationType": "HardWiredNotification", "component": {"name": "ChargingStation"},
         "variable": {"name": "AvailabilityState"}}]})


def online(station: Station) -> Station:
    return station.at(0).status(1, "Available").status(2, "Available")


CASES = {
    "faulted_never_named": (
        lambda s: s.at(10).status(1, "Faulted").at(100).status(1, "Available"),
        [(1, "began", "", 10.0, None), (1, "cleared", "", 100.0, 90.0)]),
    "faulted_then_named": (
        lambda s: s.at(10).status(1, "Faulted").at(11).problem(1, "RCD", True).at(99).problem(1, "RCD", False)
        .at(100).status(1, "Available"),
        [(1, "began", "RCD/Problem", 10.0, None), (1, "cleared", "RCD/Problem", 100.0, 90.0)]),
    "named_then_faulted": (
        lambda s: s.at(10).problem(1, "RCD", True).at(11).status(1, "Faulted").at(99).problem(1, "RCD", False)
        .at(100).status(1, "Available"),
        [(1, "began", "RCD/Problem", 10.0, None), (1, "cleared", "RCD/Problem", 100.0, 90.0)]),
    "named_after_the_wait": (
        lambda s: s.at(10).status(1, "Faulted").at(60).problem(1, "RCD", True).at(100).status(1, "Available")
        .at(101).problem(1, "RCD", False),
        [(1, "began", "", 10.0, None), (1, "cleared", "RCD/Problem", 101.0, 91.0)]),
    "problem_outlives_the_status": (
        lambda s: s.at(10).status(1, "Faulted").at(11).problem(1, "RCD", True).at(50).status(1, "Available")
        .at(80).problem(1, "RCD", False),
        [(1, "began", "RCD/Problem", 10.0, None), (1, "cleared", "RCD/Problem", 80.0, 70.0)]),
    "faulted_and_back_within_the_wait": (
        lambda s: s.at(10).status(1, "Faulted").at(12).status(1, "Available"),
        [(1, "began", "", 10.0, None), (1, "cleared", "", 12.0, 2.0)]),
    "emergency_stop": (
        lambda s: emergency_stop(s, evses_first=False),
        [(0, "began", "ChargingStation/Problem", 10.0, None), (1, "began", "ChargingStation/Problem", 11.0, None),
         (2, "began", "ChargingStation/Problem", 11.0, None), (1, "cleared", "ChargingStation/Problem", 200.0, 189.0),
         (2, "cleared", "ChargingStation/Problem", 200.0, 189.0), (0, "cleared", "ChargingStation/Problem", 201.0, 191.0)]),
    "emergency_stop_after_the_evses_went_faulted": (
        lambda s: emergency_stop(s, evses_first=True),
        [(0, "began", "ChargingStation/Problem", 11.0, None), (1, "began", "ChargingStation/Problem", 10.0, None),
         (2, "began", "ChargingStation/Problem", 10.0, None), (0, "cleared", "ChargingStation/Problem", 200.0, 189.0),
         (1, "cleared", "ChargingStation/Problem", 201.0, 191.0), (2, "cleared", "ChargingStation/Problem", 201.0, 191.0)]),
    "a_code_as_the_value_and_cleared_by_the_monitor": (
        lambda s: station_problem(station_problem(s.at(10), True, value="EmergencyStop").at(60), False,
                                  value="EmergencyStop", cleared=True),
        [(0, "began", "ChargingStation/Problem", 10.0, None), (0, "cleared", "ChargingStation/Problem", 60.0, 50.0)]),
}


def emergency_stop(station: Station, *, evses_first: bool) -> Station:
    """The button: the station's problem and both EVSEs Faulted (in either order); released: both Available."""
    if evses_first:
        station.at(10).status(1, "Faulted").status(2, "Faulted")
        station_problem(station.at(11), True)
        station_problem(station.at(200), False)
        return station.at(201).status(1, "Available").status(2, "Available")
    station_problem(station.at(10), True)
    station.at(11).status(1, "Faulted").status(2, "Faulted").at(200).status(1, "Available").status(2, "Available")
    return station_problem(station.at(201), False)


@pytest.mark.parametrize(("story", "expected"), CASES.values(), ids=CASES.keys())
def test_2_0_1_faults_from_statuses_and_problems(story: Any, expected: list[tuple[int, str, str, float, float | None]]) -> None:
    events = story(online(Station())).run(until=1000)
    assert fault_list(events) == expected


def test_an_unnamed_fault_goes_out_when_its_wait_ends_and_is_flagged() -> None:
    station = online(Station()).at(10).status(1, "Faulted")
    assert fault_list(station.run(until=10 + WAIT_S - 1)) == []
    (began,) = [e for e in station.run(until=10 + WAIT_S + 1) if isinstance(e, FaultEvent)]
    assert (began.event, began.error_code, began.status) == (BEGAN, "", "Faulted")
    assert Flag.ERROR_CODE_UNKNOWN in began.flags


def test_an_emergency_stop_takes_every_port_down_as_the_station() -> None:
    station = online(Station())
    station_problem(station.at(10), True).at(200)
    station_problem(station, False)
    assert spans(outages(station.run(until=1000))) == [(1, 10, 200, "station_faulted", "ChargingStation/Problem"),
                                                      (2, 10, 200, "station_faulted", "ChargingStation/Problem")]


def test_the_stations_availability_state_is_connector_0s_status() -> None:
    station = online(Station())
    station_state(station.at(10), "Unavailable").at(100)
    station_state(station, "Available")
    assert spans(outages(station.run(until=1000))) == [(1, 10, 100, "station_unavailable", ""),
                                                      (2, 10, 100, "station_unavailable", "")]


def test_a_fault_whose_wait_is_pending_survives_the_state_round_trip() -> None:
    """The wait is in the state: a worker restarted between the status and its name names it all the same."""
    station = online(Station()).at(10).status(1, "Faulted").at(12).problem(1, "RCD", True)
    assert [f[:3] for f in fault_list(station.run(until=20))] == [(1, "began", "RCD/Problem")]


# --- property -----------------------------------------------------------------------------------------------

STEPS = st.sampled_from(["Available", "Occupied", "Faulted", "Unavailable", "rcd_on", "rcd_off", "lock_on", "lock_off",
                         "estop_on", "estop_off"])


@settings(max_examples=250, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from([0.5, 2, 10, 60]), STEPS), max_size=25))
def test_faults_follow_what_the_evse_says(steps: list[tuple[float, str]]) -> None:
    """Whatever the order of statuses and problems: per connector, began and cleared alternate (a code change is
    a cleared then a began); once the naming wait has passed, a connector is in fault exactly while it says Faulted
    or a problem of its own is active; an EVSE's fault that a problem named carries that problem's code."""
    station = online(Station())
    t, status, problems, station_on = 0.0, "Available", [], False
    for gap, what in steps:
        t += gap
        station.at(t)
        if what.endswith("_on") or what.endswith("_off"):
            name, on = what.rsplit("_", 1)
            if name == "estop":
                station_problem(station, on == "on")
                station_on = on == "on"
            else:
                station.problem(1, {"rcd": "RCD", "lock": "ConnectorPlugRetentionLock"}[name], on == "on")
                code = {"rcd": "RCD/Problem", "lock": "ConnectorPlugRetentionLock/Problem"}[name]
                problems = [p for p in problems if p != code] + ([code] if on == "on" else [])
        else:
            station.status(1, what)
            status = what
    events = station.run(until=t + WAIT_S + 1)
    faults = [f for f in events if isinstance(f, FaultEvent)]
    for connector in (0, 1):
        kinds = [f.event for f in faults if f.connector_id == connector]
        for before, after in zip(kinds, kinds[1:]):
            assert before != after, kinds
        assert not kinds or kinds[0] == BEGAN, kinds
    evse = [f for f in faults if f.connector_id == 1]
    assert (bool(evse) and evse[-1].event == BEGAN) is (status == "Faulted" or bool(problems)), (evse, status, problems)
    station_faults = [f for f in faults if f.connector_id == 0]
    assert (bool(station_faults) and station_faults[-1].event == BEGAN) is station_on
    for began in (f for f in evse if f.event == BEGAN):
        assert began.error_code in ("", "RCD/Problem", "ConnectorPlugRetentionLock/Problem", "ChargingStation/Problem")
