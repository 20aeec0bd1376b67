"""Port outages from connection events and statuses (KPIS.md, Outages): table-driven conversations
through the correlator, and properties of the tracker against a plain model of "down"."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.settings import CorrelatorConfig
from processors.outages import REJOIN_MS, outage_id
from schemas.records import OutageCause, PortOutage
from tests.processors.script import T0, T0_MS, Script, outages


def spans(rows: dict[str, PortOutage]) -> list[tuple[int, float, float | None, str, str]]:
    """(port, start s, end s or None, cause, error code) of each outage, in order."""
    out = []
    for row in rows.values():
        end = (row.ended_at - T0).total_seconds() if row.ended_at is not None else None
        out.append((row.connector_id, (row.started_at - T0).total_seconds(), end, str(row.cause), row.error_code))
    return sorted(out, key=lambda s: (s[0], s[1]))


def online(script: Script) -> Script:
    return script.at(0).connected("c1").status(1, "Available").status(2, "Available")


def test_a_charger_offline_takes_every_port_down_until_it_reconnects() -> None:
    script = online(Script())
    script.at(100).disconnected(close_code=1006)
    script.at(160).connected("c2").status(1, "Available")
    rows = outages(script.run())
    assert spans(rows) == [(1, 100, 160, "offline", ""), (2, 100, 160, "offline", "")]
    assert {row.duration_s for row in rows.values()} == {60.0}


def test_an_outage_is_open_until_it_ends_then_rewritten_with_a_newer_version() -> None:
    script = online(Script()).at(100).disconnected()
    events = script.run()
    (first,) = [e for e in events if isinstance(e, PortOutage) and e.connector_id == 1]
    assert (first.ended_at, first.duration_s, first.version) == (None, None, T0_MS + 100_000)
    script.at(130).connected("c2")
    (ended,) = [r for r in outages(script.run()).values() if r.connector_id == 1]
    assert ended.outage_id == first.outage_id == outage_id("CP-1", 1, T0_MS + 100_000)
    assert ended.version > first.version and ended.duration_s == 30.0


def test_a_faulted_port_is_down_with_its_error_code_until_another_status() -> None:
    script = online(Script())
    script.at(10).status(1, "Faulted", "GroundFailure", vendorErrorCode="E7")
    script.at(70).status(1, "Available")
    script.at(80).status(2, "Unavailable").at(95).status(2, "Available")
    rows = outages(script.run())
    assert spans(rows) == [(1, 10, 70, "faulted", "GroundFailure"), (2, 80, 95, "unavailable", "")]
    assert next(r for r in rows.values() if r.connector_id == 1).vendor_error_code == "E7"


def test_overlapping_causes_are_one_outage_named_by_the_first() -> None:
    script = online(Script())
    script.at(10).status(1, "Faulted", "GroundFailure")
    script.at(20).disconnected().at(30).connected("c2")
    script.at(40).status(1, "Available")
    assert [s for s in spans(outages(script.run())) if s[0] == 1] == [(1, 10, 40, "faulted", "GroundFailure")]


def test_a_fault_that_joins_an_offline_outage_gives_it_its_error_code() -> None:
    script = online(Script()).at(10).disconnected()
    script.at(20).connected("c2").status(1, "Faulted", "PowerMeterFailure")  # queued while offline
    script.at(50).status(1, "Available")
    port1 = [s for s in spans(outages(script.run())) if s[0] == 1]
    assert port1 == [(1, 10, 50, "offline", "PowerMeterFailure")]


def test_the_station_down_takes_every_port_down() -> None:
    script = online(Script())
    script.at(10).status(0, "Unavailable").at(40).status(0, "Available")
    script.at(50).status(0, "Faulted", "OtherError").at(55).status(0, "Available")
    assert spans(outages(script.run())) == [
        (1, 10, 40, "station_unavailable", ""), (1, 50, 55, "station_faulted", "OtherError"),
        (2, 10, 40, "station_unavailable", ""), (2, 50, 55, "station_faulted", "OtherError")]


def test_a_port_first_reported_while_its_station_is_down_joins_from_its_first_report() -> None:
    script = Script().at(0).connected("c1").status(1, "Available")
    script.at(10).status(0, "Faulted", "OtherError").at(20).status(2, "Available").at(30).status(0, "Available")
    assert spans(outages(script.run())) == [(1, 10, 30, "station_faulted", "OtherError"),
                                            (2, 20, 30, "station_faulted", "OtherError")]


def test_a_reconnect_to_another_replica_before_the_old_socket_closes_is_no_outage() -> None:
    script = online(Script())
    script.at(50).connected("c2").status(1, "Available")
    script.at(55).disconnected("c1", close_code=1006)  # the old replica notices its socket died
    assert outages(script.run()) == {}


def test_a_gateway_killed_without_a_disconnect_leaves_a_silent_connection_that_does_not_count() -> None:
    script = online(Script())  # c1's gateway is killed: no disconnected ever comes for it
    script.at(50).connected("c2").status(1, "Available")
    script.at(100).disconnected("c2")
    assert [s[:3] for s in spans(outages(script.run()))] == [(1, 100, None), (2, 100, None)]


def test_an_older_connection_that_still_carries_frames_keeps_the_charger_online() -> None:
    script = online(Script())
    script.at(50).connected("c2")
    script.connection = "c1"
    script.at(60).status(1, "Available")  # c1 is alive: two sockets, for a while
    script.at(100).disconnected("c2")
    assert outages(script.run()) == {}


def test_data_without_connection_events_is_never_offline() -> None:
    script = Script().at(0).status(1, "Available")
    script.connection = "c2"
    script.at(3600).status(1, "Available")  # a reconnect the data does not say
    script.at(4000).status(1, "Unavailable").at(4100).status(1, "Available")
    assert spans(outages(script.run())) == [(1, 4000, 4100, "unavailable", "")]


def test_ports_come_from_transactions_and_meter_values_too() -> None:
    script = Script().at(0).connected("c1").start(3, 77).at(10).meter(4, None)
    script.at(20).disconnected()
    assert [s[0] for s in spans(outages(script.run()))] == [3, 4]


def test_an_absurd_connector_id_does_not_grow_the_ports_forever() -> None:
    script = Script().at(0).connected("c1")
    for n in range(1, 200):
        script.status(n, "Available")
    script.at(10).disconnected()
    assert len(outages(script.run())) == 64


def test_the_same_frames_give_the_same_rows() -> None:
    script = online(Script())
    script.at(10).status(1, "Faulted", "GroundFailure").at(20).disconnected().at(30).connected("c2")
    script.at(40).status(1, "Available")
    assert script.run() == script.run(roundtrip_state=False)


# --- properties ------------------------------------------------------------------------------------

STATUSES = ["Available", "Charging", "Faulted", "Unavailable", "Preparing"]
Step = tuple[int, int, str]  # (seconds after the last step, connector 0-2, status)


def model_down(steps: list[Step], port: int, end_s: int) -> list[tuple[int, int]]:
    """The port's down intervals by the rule, from the statuses alone (the port counts from its first report)."""
    t, status = 0, {0: "", port: ""}
    seen_at: int | None = None
    marks: list[tuple[int, bool]] = []
    for gap, connector, value in steps:
        t += gap
        if connector not in (0, port):
            continue
        status[connector] = value
        if connector == port and seen_at is None:
            seen_at = t
        if seen_at is not None:
            marks.append((t, status[port] in ("Faulted", "Unavailable") or status[0] in ("Faulted", "Unavailable")))
    intervals, since = [], None
    for at, down in marks:
        if down and since is None:
            since = at
        elif not down and since is not None:
            if at > since:
                intervals.append((since, at))
            since = None
    if since is not None and end_s > since:
        intervals.append((since, end_s))
    rejoined: list[tuple[int, int]] = []
    for start, stop in intervals:  # a cause within REJOIN_MS of the last outage's end continues it
        if rejoined and start - rejoined[-1][1] <= REJOIN_MS / 1000:
            rejoined[-1] = (rejoined[-1][0], stop)
        else:
            rejoined.append((start, stop))
    return rejoined


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2), st.sampled_from(STATUSES)), max_size=40))
def test_outages_are_exactly_the_union_of_the_down_statuses(steps: list[Step]) -> None:
    """Whatever the order of port and station statuses: a port's outages never overlap, and together they
    cover exactly the time the rule says it was down (a minute never counted twice, none missed; a cause
    that begins within REJOIN_MS of an outage's end continues it)."""
    script = Script().at(0).connected("c1")
    t = 0
    for gap, connector, status in steps:
        t += gap
        script.at(t).status(connector, status, "OtherError" if status == "Faulted" else "NoError")
    rows = outages(script.run())
    end_s = t + 1
    for port in (1, 2):
        got = sorted(((r.started_at - T0).total_seconds(), ((r.ended_at or T0 + timedelta(seconds=end_s)) - T0).total_seconds())
                     for r in rows.values() if r.connector_id == port)
        merged: list[tuple[float, float]] = []
        for start, stop in got:
            assert not merged or start >= merged[-1][1], f"overlapping outages on port {port}: {got}"
            if merged and start == merged[-1][1]:
                merged[-1] = (merged[-1][0], stop)  # back to back: the same minutes as one
            else:
                merged.append((start, stop))
        want = [(float(a), float(b)) for a, b in model_down(steps, port, end_s)]
        assert [m for m in merged if m[1] > m[0]] == want
        for r in rows.values():
            assert r.cause in set(OutageCause) and (r.duration_s is None or r.duration_s >= 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 50), st.integers(1, 50)), min_size=1, max_size=10))  # up > REJOIN_MS
def test_offline_time_is_the_time_between_a_close_and_the_next_open(periods: list[tuple[int, int]]) -> None:
    """A charger that reconnects again and again: its ports are down exactly while no connection is open."""
    script = Script().at(0).connected("c0").status(1, "Available")
    t, want = 0, []
    for n, (up, down) in enumerate(periods, start=1):
        t += up
        script.at(t).disconnected()
        want.append((1, t, t + down, "offline", ""))
        t += down
        script.at(t).connected(f"c{n}")
    assert spans(outages(script.run(CorrelatorConfig.defaults()))) == want
