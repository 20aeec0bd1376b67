"""Reliability KPIs (KPIS.md: outages, attempts, blocked / phase times) under adversarial yet realistic OCPP
sequences: resends after reconnects, offline backlogs, reboots, replica switches, odd Authorize flows, 2.0.1.

Each test states what KPIS.md says the rows must be; most were written failing, and the code fixed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.events import Event
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import AttemptKind, ChargeAttempt, PortOutage
from tests.processors.script import T0, T0_MS, Script, attempts, newest, only_session, outages
from tests.processors.test_ocpp201 import Station, register

WINDOW_S = 300


# --- helpers ---------------------------------------------------------------------------------------

def spans(rows: dict[str, PortOutage], port: int | None = None) -> list[tuple[int, float, float | None, str, str]]:
    """(port, start s, end s or None, cause, error code) of each outage, by port then start."""
    out = []
    for row in rows.values():
        if port is not None and row.connector_id != port:
            continue
        end = (row.ended_at - T0).total_seconds() if row.ended_at is not None else None
        out.append((row.connector_id, (row.started_at - T0).total_seconds(), end, str(row.cause), row.error_code))
    return sorted(out, key=lambda s: (s[0], s[1]))


def s_of(attempt: ChargeAttempt) -> float:
    return (attempt.started_at - T0).total_seconds()


def kinds(events: list[Event]) -> list[tuple[str, str, str]]:
    """(kind, id tag, failure) of each attempt (newest row), sorted."""
    return sorted((str(a.kind), a.id_tag, a.failure) for a in attempts(events).values())


def index_of(script: Script, action: str, direction: Direction = Direction.IN) -> int:
    """The last envelope of ``action`` in ``direction``."""
    return max(i for i, e in enumerate(script.envelopes) if e.action == action and e.direction == direction)


def event_at(script: Script, event: str, connection_id: str, at: float, gateway_id: str = "gw") -> Script:
    """A connection event with an explicit gateway (replica) and time."""
    from schemas.envelope import ConnectionEvent
    script.envelopes.append(FrameEnvelope(
        charge_point_id=script.charge_point_id, direction=Direction.IN, gateway_ts_ms=T0_MS + int(at * 1000), frame="",
        ocpp_version="ocpp1.6", gateway_id=gateway_id, connection_id=connection_id, seq=len(script.envelopes),
        event=ConnectionEvent(event), close_code=1006 if event == "disconnected" else None))
    return script


def start_answered(script: Script, connector: int, tx: int, *, id_tag: str, request_at: float, answer_at: float,
                   status: str = "Accepted") -> Script:
    """A StartTransaction whose answer (``transactionId`` tx, idTagInfo ``status``) comes ``answer_at``."""
    script.at(request_at)
    message_id = script.call("StartTransaction", {"connectorId": connector, "idTag": id_tag, "meterStart": 1000,
                                                  "timestamp": f"{(T0 + timedelta(seconds=request_at)).isoformat()}"})
    script.at(answer_at)
    script._env(Direction.OUT, [3, message_id, {"transactionId": tx, "idTagInfo": {"status": status}}],
                MessageType.CALL_RESULT, "StartTransaction", message_id)
    return script


def authorize_error(script: Script, id_tag: str) -> Script:
    """An Authorize answered with a CALLERROR."""
    message_id = script.call("Authorize", {"idTag": id_tag})
    script._env(Direction.OUT, [4, message_id, "InternalError", "", {}], MessageType.CALL_ERROR, "Authorize", message_id)
    return script


def check_invariants(events: list[Event]) -> None:
    """Outages of a port never overlap, durations >= 0, ended_at >= started_at; one attempt per transaction."""
    rows = outages(events)
    for row in rows.values():
        if row.ended_at is not None:
            assert row.ended_at >= row.started_at, row
            assert row.duration_s is not None and row.duration_s >= 0, row
    by_port: dict[int, list[PortOutage]] = {}
    for row in rows.values():
        by_port.setdefault(row.connector_id, []).append(row)
    far = T0 + timedelta(days=365)
    for port_rows in by_port.values():
        port_rows.sort(key=lambda r: r.started_at)
        for a, b in zip(port_rows, port_rows[1:]):
            assert (a.ended_at or far) <= b.started_at, (a, b)
    found = attempts(events)
    sessions = newest(events)
    tx_attempts = [a for a in found.values() if a.kind == AttemptKind.START_TRANSACTION]
    assert {a.attempt_id for a in tx_attempts} == set(sessions)


# === duplicates resent after a reconnect (same message id) ===========================================

def test_a_status_notification_resent_after_a_reconnect_changes_no_outage() -> None:
    """Faulted (answer lost), reconnect, the same Faulted resent, then Available: one outage, 10 .. 60."""
    script = Script().at(0).connected("c1").status(1, "Available").at(10).status(1, "Faulted", "GroundFailure")
    faulted = index_of(script, "StatusNotification")
    script.at(20).disconnected().at(30).connected("c2")
    script.at(30.5).resend(faulted).at(60).status(1, "Available")
    events = script.run()
    assert spans(outages(events)) == [(1, 10, 60, "faulted", "GroundFailure")]
    check_invariants(events)


def test_a_start_transaction_resent_after_a_reconnect_is_one_attempt() -> None:
    """StartTransaction m (answered 77), reconnect, m resent and answered 77 again: one session, one attempt."""
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    req, ans = index_of(script, "StartTransaction"), index_of(script, "StartTransaction", Direction.OUT)
    script.at(15).status(1, "Charging").at(20).disconnected().at(30).connected("c2")
    script.at(30.1).resend(req)
    script.at(30.2).resend(ans)
    script.at(500).status(1, "Finishing").stop(77, 5000).at(600).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "TAG", "")]
    assert s_of(next(iter(attempts(events).values()))) == 0
    check_invariants(events)


def test_a_start_resent_and_given_another_id_by_another_replica_is_one_attempt() -> None:
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    req = index_of(script, "StartTransaction")
    script.at(15).status(1, "Charging").at(20).connected("c2")
    script.at(20.1).resend(req)
    script._env(Direction.OUT, [3, script.envelopes[req].message_id, {"transactionId": 78, "idTagInfo": {"status": "Accepted"}}],
                MessageType.CALL_RESULT, "StartTransaction", script.envelopes[req].message_id or "")
    script.at(500).status(1, "Finishing").stop(78, 5000).at(600).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "TAG", "")]
    check_invariants(events)


def test_a_stop_transaction_resent_after_a_reconnect_changes_nothing() -> None:
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    script.at(15).status(1, "Charging").at(500).status(1, "Finishing").stop(77, 5000)
    stop = index_of(script, "StopTransaction")
    script.at(510).disconnected().at(520).connected("c2")
    script.at(520.1).resend(stop).at(600).status(1, "Available")
    events = script.run(until=2000)
    session = only_session(events)
    assert (session.blocked_after_stop_s, session.charging_s) == (100.0, 485.0)
    assert kinds(events) == [("start_transaction", "TAG", "")]
    check_invariants(events)


def test_an_authorize_resent_after_a_reconnect_is_one_attempt() -> None:
    """Authorize m (no answer: the socket died), reconnect, m resent and answered: one driver, one tap, one
    attempt (a replay of the same frames is one attempt; a resend changes nothing)."""
    script = Script().at(0).connected("c1").at(10).authorize("CARD", None)
    req = index_of(script, "Authorize")
    script.at(12).disconnected().at(20).connected("c2")
    script.at(20.1).resend(req)
    mid = script.envelopes[req].message_id or ""
    script._env(Direction.OUT, [3, mid, {"idTagInfo": {"status": "Accepted"}}], MessageType.CALL_RESULT, "Authorize", mid)
    events = script.run(until=1000)
    assert kinds(events) == [("authorize_without_start", "CARD", "authorize_no_start")]


# === offline backlog flushed on reconnect ===========================================================

def test_an_offline_backlog_after_connected_closes_the_outage_at_connected_and_the_session_once() -> None:
    """Charging, offline 100 .. 1000; on reconnect: StopTransaction (charger ts 200), Finishing, Available
    with old charger timestamps. Outage: offline 100 .. 1000 (gateway clock). Session: stopped at the
    backlog's gateway time, bay time from the stop to Available on the gateway clock (~0)."""
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    script.at(15).status(1, "Charging").at(100).disconnected()
    script.at(1000).connected("c2").at(1000.1).stop(77, 5000, ts=(T0 + timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    script.at(1000.2).status(1, "Finishing", ts=(T0 + timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    script.at(1000.3).status(1, "Available", ts=(T0 + timedelta(seconds=210)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    events = script.run(until=3000)
    assert spans(outages(events)) == [(1, 100, 1000, "offline", "")]
    session = only_session(events)
    assert session.blocked_after_stop_s == pytest.approx(0.2)
    assert kinds(events) == [("start_transaction", "TAG", "")]
    check_invariants(events)


def test_a_backlog_of_status_notifications_with_old_timestamps_counts_on_the_gateway_clock() -> None:
    """Faulted at charger time 50 arriving after reconnect at 1000: outage offline 100 .. then faulted joins
    at 1000 (rejoin within 1 s of the offline end), ends at Available 1000.5."""
    script = Script().at(0).connected("c1").status(1, "Available").at(100).disconnected()
    old = (T0 + timedelta(seconds=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script.at(1000).connected("c2").at(1000.2).status(1, "Faulted", "GroundFailure", ts=old)
    script.at(1000.5).status(1, "Available")
    events = script.run()
    assert spans(outages(events)) == [(1, 100, 1000.5, "offline", "GroundFailure")]
    check_invariants(events)


# === BootNotification in the middle ==================================================================

def test_a_reboot_in_the_middle_of_an_outage_changes_nothing() -> None:
    script = Script().at(0).connected("c1").status(1, "Available").at(10).status(1, "Faulted", "OtherError")
    script.at(20).disconnected().at(30).connected("c2").boot().status(1, "Faulted", "OtherError")
    script.at(90).status(1, "Available")
    events = script.run()
    assert spans(outages(events)) == [(1, 10, 90, "faulted", "OtherError")]
    check_invariants(events)


def test_a_reboot_in_the_middle_of_a_session_keeps_one_attempt() -> None:
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    script.at(15).status(1, "Charging").at(100).disconnected().at(110).connected("c2").boot()
    script.at(111).status(1, "Charging").at(500).status(1, "Finishing").stop(77, 5000).at(520).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "TAG", "")]
    assert spans(outages(events)) == [(1, 100, 110, "offline", "")]
    check_invariants(events)


# === ports reported only via MeterValues ============================================================

def test_a_port_known_only_from_meter_values_goes_down_with_its_charger() -> None:
    script = Script().at(0).connected("c1").meter(2, None, {"value": "10", "measurand": "Energy.Active.Import.Register"})
    script.at(50).disconnected().at(80).connected("c2")
    events = script.run()
    assert spans(outages(events)) == [(2, 50, 80, "offline", "")]


def test_a_port_known_only_from_meter_values_goes_down_with_its_station() -> None:
    script = Script().at(0).connected("c1").meter(3, None, {"value": "10", "measurand": "Energy.Active.Import.Register"})
    script.at(10).status(0, "Faulted", "OtherError").at(40).status(0, "Available")
    assert spans(outages(script.run())) == [(3, 10, 40, "station_faulted", "OtherError")]


def test_meter_values_of_connector_0_name_no_port() -> None:
    script = Script().at(0).connected("c1").meter(0, None, {"value": "10", "measurand": "Energy.Active.Import.Register"})
    script.at(50).disconnected().at(80).connected("c2")
    assert outages(script.run()) == {}


# === station (connector 0) and port causes ending in either order =====================================

@pytest.mark.parametrize(("first", "second", "end_first", "cause", "code"), [
    ((0, "Unavailable", "NoError"), (1, "Faulted", "GroundFailure"), 0, "station_unavailable", "GroundFailure"),
    ((0, "Unavailable", "NoError"), (1, "Faulted", "GroundFailure"), 1, "station_unavailable", "GroundFailure"),
    ((1, "Faulted", "GroundFailure"), (0, "Unavailable", "NoError"), 0, "faulted", "GroundFailure"),
    ((1, "Faulted", "GroundFailure"), (0, "Unavailable", "NoError"), 1, "faulted", "GroundFailure"),
    ((1, "Unavailable", "NoError"), (0, "Faulted", "PowerMeterFailure"), 1, "unavailable", "PowerMeterFailure"),
])
def test_station_and_port_causes_overlapping_are_one_outage(first, second, end_first, cause, code) -> None:
    """Two causes overlap (10 .. 40 and 20 .. 60, ended in either order): one outage 10 .. 60, named by
    the first cause, the error code of the first fault that began or joined it."""
    script = Script().at(0).connected("c1").status(1, "Available").status(0, "Available")
    script.at(10).status(*first[:2], first[2]).at(20).status(*second[:2], second[2])
    a, b = (first, second) if end_first == 0 else (second, first)
    script.at(40).status(a[0], "Available").at(60).status(b[0], "Available")
    events = script.run()
    assert spans(outages(events)) == [(1, 10, 60, cause, code)]
    check_invariants(events)


# === replica switch and interleaved gateways ==========================================================

def test_a_late_disconnect_of_the_old_replica_after_the_new_connected_is_no_outage() -> None:
    script = Script().at(0).connected("a1").status(1, "Available")
    event_at(script, "connected", "b1", 100, "gw-b")
    script.connection = "b1"
    script.at(101).status(1, "Available")
    event_at(script, "disconnected", "a1", 130, "gw-a")
    script.at(200).status(1, "Available")
    event_at(script, "disconnected", "b1", 300, "gw-b")
    event_at(script, "connected", "b2", 330, "gw-b")
    events = script.run()
    assert spans(outages(events)) == [(1, 300, 330, "offline", "")]
    check_invariants(events)


def test_two_replicas_events_interleaved_never_give_a_negative_outage() -> None:
    """Gateway A notices a1's death at 130 and writes it first; gateway B had accepted the reconnect b1 at 100
    (its write reaches the topic later). KPIS.md: online from b1's connected (100), a disconnect of an older
    connection does not make it offline: no outage, and never one with a negative duration."""
    script = Script().at(0).connected("a1").status(1, "Available")
    event_at(script, "disconnected", "a1", 130, "gw-a")
    event_at(script, "connected", "b1", 100, "gw-b")
    script.connection = "b1"
    script.at(140).status(1, "Available")
    events = script.run()
    check_invariants(events)


def test_interleaved_frames_of_an_old_connection_keep_the_charger_online() -> None:
    script = Script().at(0).connected("a1").status(1, "Available")
    event_at(script, "connected", "b1", 100, "gw-b")
    script.connection = "a1"
    script.at(105).status(1, "Available")  # a late frame of the old socket, written by gw-a
    script.connection = "b1"
    event_at(script, "disconnected", "b1", 110, "gw-b")
    event_at(script, "disconnected", "a1", 150, "gw-a")
    events = script.run()
    assert spans(outages(events)) == [(1, 150, None, "offline", "")]
    check_invariants(events)


# === Authorize flows ==============================================================================

@pytest.mark.parametrize(("answer", "failure"), [("error", "authorize_no_start"), ("none", "authorize_no_start"),
                                                 ("Invalid", "authorize_rejected")])
def test_an_authorize_answered_with_a_callerror_or_never_counts_as_accepted(answer: str, failure: str) -> None:
    script = Script().at(0).connected("c1").at(10)
    if answer == "error":
        authorize_error(script, "CARD")
    else:
        script.authorize("CARD", None if answer == "none" else answer)
    events = script.run(until=1000)
    assert kinds(events) == [("authorize_without_start", "CARD", failure)]
    assert s_of(next(iter(attempts(events).values()))) == 10


def test_an_authorize_for_one_tag_then_a_start_with_another_without_plug_in_is_two_attempts() -> None:
    """KPIS.md: an Authorize followed by no start *with that idTag* within 300 s is an attempt of its own."""
    script = Script().at(0).connected("c1").at(10).authorize("A").at(20).start(1, 77, id_tag="B")
    script.at(25).status(1, "Charging").at(500).status(1, "Finishing").stop(77, 5000).at(510).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("authorize_without_start", "A", "authorize_no_start"), ("start_transaction", "B", "")]
    check_invariants(events)


def test_a_refused_card_then_another_card_that_starts_while_plugged_in_is_one_attempt() -> None:
    """Plug in at 0, card A refused at 10, card B accepted at 20, start with B at 30: KPIS.md 'An Authorize
    made while a connector is plugged in without a transaction ... is the plug-in's driver: it joins that
    attempt', and the plug-in's attempt is the transaction's ('one attempt even when an Authorize or a
    plug-in came first'). One attempt."""
    script = Script().at(0).connected("c1").status(1, "Available").at(5).status(1, "Preparing")
    script.at(10).authorize("A", "Invalid").at(20).authorize("B").at(30).start(1, 77, id_tag="B")
    script.at(35).status(1, "Charging").at(500).status(1, "Finishing").stop(77, 5000).at(510).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "B", "")]


def test_two_authorizes_for_the_same_tag_then_its_start_is_one_attempt() -> None:
    script = Script().at(0).connected("c1").at(10).authorize("A").at(100).authorize("A").at(200).start(1, 77, id_tag="A")
    script.at(205).status(1, "Charging").at(500).status(1, "Finishing").stop(77, 5000).at(510).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "A", "")]
    assert s_of(next(iter(attempts(events).values()))) == 10


def test_a_start_requested_within_the_window_but_answered_after_it_claims_the_authorize() -> None:
    """Authorize A at 0; StartTransaction(A) requested at 299 (within 300 s), answered at 301 (a slow
    backend). KPIS.md: the Authorize was followed by a start with that idTag within 300 s: one attempt."""
    script = Script().at(0).connected("c1").authorize("A")
    start_answered(script, 1, 77, id_tag="A", request_at=299, answer_at=301)
    script.at(305).status(1, "Charging").at(900).status(1, "Finishing").stop(77, 5000).at(910).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "A", "")]
    assert s_of(next(iter(attempts(events).values()))) == 0


def test_a_start_never_answered_holds_its_authorize_only_for_its_own_window() -> None:
    """A gateway crash loses the StartTransaction's answer (requested at 100): the Authorize of that card (0)
    waits for it until 100 + 300 s, then is an attempt of its own; a later tap of the same card is not held."""
    script = Script().at(0).connected("c1").authorize("A").at(100).start(1, 77, id_tag="A", answer="none")
    script.at(1000).authorize("A")
    events = script.run(until=5000)
    rows = sorted(attempts(events).values(), key=s_of)
    assert [(str(a.kind), s_of(a), a.version) for a in rows] == [
        ("authorize_without_start", 0.0, T0_MS + 400_000), ("authorize_without_start", 1000.0, T0_MS + 1_300_000)]


def test_a_card_shown_to_stop_the_transaction_is_no_failed_attempt() -> None:
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).authorize("A").at(11).start(1, 77, id_tag="A")
    script.at(15).status(1, "Charging").at(500).authorize("A").at(501).stop(77, 5000, reason="Local")
    script.at(502).status(1, "Finishing").at(600).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "A", "")]


def test_preparing_faulted_available_without_a_start_is_one_plug_in_attempt() -> None:
    script = Script().at(0).connected("c1").status(1, "Available").at(10).status(1, "Preparing")
    script.at(20).status(1, "Faulted", "OtherError").at(60).status(1, "Available")
    events = script.run(until=1000)
    assert kinds(events) == [("plugin_without_start", "", "plugin_no_start")]
    assert s_of(next(iter(attempts(events).values()))) == 10
    assert spans(outages(events)) == [(1, 20, 60, "faulted", "OtherError")]


@pytest.mark.parametrize("energy", [0, 4000])
def test_a_rejected_start_then_a_deauthorized_stop(energy: int) -> None:
    """StartTransaction answered with idTagInfo Invalid; the charger stops with DeAuthorized. KPIS.md: every
    transaction is a start_transaction attempt; no energy -> no_energy, else stop_de_authorized."""
    script = Script().at(0).connected("c1").status(1, "Preparing")
    start_answered(script, 1, 77, id_tag="BAD", request_at=10, answer_at=10.1, status="Invalid")
    if energy:
        script.at(12).status(1, "Charging")
    script.at(15).status(1, "Finishing").stop(77, 1000 + energy, reason="DeAuthorized").at(30).status(1, "Available")
    events = script.run(until=2000)
    failure = "stop_de_authorized" if energy else "no_energy"
    assert kinds(events) == [("start_transaction", "BAD", failure)]
    (attempt,) = attempts(events).values()
    assert (attempt.delivered, attempt.ended_ok) == (bool(energy), False)


# === OCPP 2.0.1 ==================================================================================

TX2 = "7f0d1c2e-0000-4000-8000-000000000002"


def test_201_occupied_started_charging_ended_available() -> None:
    station = Station().at(0).status(1, "Available").at(5).status(1, "Occupied")
    station.at(10).event("Started", state="EVConnected", id_token="T", meter=[register(1000, "Transaction.Begin")])
    station.at(20).event("Updated", state="Charging").at(80).event("Updated", state="SuspendedEV")
    station.at(100).event("Ended", state="EVConnected", reason="Local", meter=[register(5000, "Transaction.End")])
    station.at(130).status(1, "Available")
    events = station.run(until=2000)
    session = only_session(events)
    assert (session.charging_s, session.suspended_ev_s, session.blocked_after_stop_s) == (60.0, 20.0, 30.0)
    (attempt,) = attempts(events).values()
    assert (s_of(attempt), attempt.delivered, attempt.failure, attempt.start_delay_s) == (5, True, "", 15.0)


def test_201_a_stale_charging_state_of_the_last_transaction_does_not_deliver_the_next() -> None:
    """tx1 charges and ends without a chargingState (it is optional); tx2 starts without one, never charges
    (0 Wh, no chargingState at all). KPIS.md: delivered = energy > 0 or the connector reported Charging
    *during it*: tx2 delivered nothing; its phase times are NULL (no status came during it)."""
    station = Station().at(0).status(1, "Occupied")
    station.at(1).event("Started", state="Charging", id_token="T", meter=[register(1000, "Transaction.Begin")])
    station.at(100).event("Ended", reason="Local", meter=[register(5000, "Transaction.End")])
    station.at(110).status(1, "Available").at(200).status(1, "Occupied")
    station.at(201).event("Started", TX2, id_token="U", meter=[register(5000, "Transaction.Begin")])
    station.at(300).event("Ended", TX2, reason="Local", meter=[register(5000, "Transaction.End")])
    station.at(310).status(1, "Available")
    events = station.run(until=2000)
    tx2 = next(a for a in attempts(events).values() if a.transaction_id == TX2)
    assert (tx2.delivered, tx2.failure, tx2.start_delay_s) == (False, "no_energy", None)
    s2 = next(s for s in newest(events).values() if s.transaction_id == TX2)
    assert s2.charging_s in (None, 0.0)


def test_201_occupied_then_available_without_a_start_is_a_plug_in_attempt_and_evse_faulted_is_an_outage() -> None:
    station = Station().at(0).status(1, "Available").at(5).status(1, "Occupied").at(20).status(1, "Faulted")
    station.at(50).status(1, "Available")
    events = station.run(until=1000)
    assert kinds(events) == [("plugin_without_start", "", "plugin_no_start")]
    assert spans(outages(events)) == [(1, 20, 50, "faulted", "")]


def test_201_a_resent_ended_and_a_replayed_updated_are_one_attempt() -> None:
    station = Station().charge(start=0, end=1000).at(1010).status(1, "Available")
    ended = max(i for i, e in enumerate(station.envelopes) if e.action == "TransactionEvent")
    station.envelopes.append(station.envelopes[ended].model_copy(update={
        "gateway_ts_ms": T0_MS + 1_020_000, "seq": len(station.envelopes)}))
    station.at(1030).event("Updated", state="Charging", seq_no=2)
    events = station.run(until=3000)
    assert kinds(events) == [("start_transaction", "TOKEN-1", "")]
    session = only_session(events)
    assert session.blocked_after_stop_s == 10.0


def test_201_an_authorize_after_a_started_at_plug_in_is_the_same_attempt() -> None:
    station = Station().at(0).status(1, "Occupied")
    station.at(1).event("Started", state="EVConnected", trigger="CablePluggedIn", meter=[register(1000, "Transaction.Begin")])
    station.at(10).call("Authorize", {"idToken": {"idToken": "CARD", "type": "ISO14443"}})
    station.at(11).event("Updated", state="Charging", trigger="Authorized", id_token="CARD")
    station.at(500).event("Ended", state="EVConnected", reason="Local", meter=[register(5000, "Transaction.End")])
    station.at(510).status(1, "Available")
    events = station.run(until=2000)
    assert [a.kind for a in attempts(events).values()] == [AttemptKind.START_TRANSACTION]


def test_201_status_on_evse_0_is_taken_as_the_station() -> None:
    """Documents: a 2.0.1 StatusNotification on evseId 0 (OCPP-QUIRKS.md) takes every EVSE down as
    station_unavailable, although KPIS.md lists no 2.0.1 station cause ('—')."""
    station = Station().at(0).status(1, "Available").at(10).status(0, "Unavailable").at(40).status(0, "Available")
    assert spans(outages(station.run())) == [(1, 10, 40, "station_unavailable", "")]


# === determinism and invariants ===================================================================

def busy_day() -> Script:
    script = Script().at(0).connected("c1").status(0, "Available").status(1, "Available").status(2, "Available")
    script.at(5).status(1, "Preparing").at(10).authorize("A").at(12).start(1, 77, id_tag="A").at(15).status(1, "Charging")
    script.at(30).status(2, "Faulted", "GroundFailure").at(40).disconnected().at(60).connected("c2").boot()
    script.at(61).status(2, "Faulted", "GroundFailure").at(62).status(1, "Charging").at(100).authorize("X", "Invalid")
    script.at(200).status(1, "Finishing").stop(77, 9000).at(220).status(1, "Available").at(230).status(2, "Available")
    script.at(240).status(0, "Unavailable").at(260).status(0, "Available").at(300).status(2, "Preparing")
    script.at(330).status(2, "Available")
    return script


def test_a_replay_of_the_same_frames_gives_the_same_rows_and_ids() -> None:
    first = busy_day().run(until=2000)
    again = busy_day().run(until=2000)
    no_roundtrip = busy_day().run(until=2000, roundtrip_state=False)
    assert first == again == no_roundtrip
    assert set(attempts(first)) == set(attempts(again))
    assert set(outages(first)) == set(outages(again))
    check_invariants(first)


ACTIONS = ["Available", "Preparing", "Charging", "Finishing", "Faulted", "Unavailable", "st0_Unavailable",
           "st0_Available", "st0_Faulted", "disconnect", "connect", "boot", "authorize", "authorize_bad", "start",
           "stop", "resend_last", "meter2"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(ACTIONS)), max_size=40))
def test_any_sequence_keeps_the_invariants_and_replays_identically(steps: list[tuple[int, str]]) -> None:
    """Whatever a charger (with one gateway, gateway clock monotonic) sends: outages of a port never overlap,
    durations >= 0, ended_at >= started_at; one attempt per transaction; a replay writes the same rows."""
    script = Script().at(0).connected("c0")
    t = script.play(steps)
    events = script.run(until=t + 3 * WINDOW_S)
    assert events == script.run(until=t + 3 * WINDOW_S, roundtrip_state=False)
    check_invariants(events)
    for session in newest(events).values():
        assert session.blocked_after_stop_s is None or session.blocked_after_stop_s >= 0
        for x in (session.charging_s, session.suspended_ev_s, session.suspended_evse_s):
            assert x is None or x >= 0
    for attempt in attempts(events).values():
        assert attempt.start_delay_s is None or attempt.start_delay_s >= 0
        assert attempt.ended_ok == (attempt.failure == "")


# === more Authorize / plug-in / backlog interactions =================================================

def test_an_authorize_before_the_plug_in_then_a_start_with_another_tag_is_one_attempt() -> None:
    script = Script().at(0).connected("c1").status(1, "Available").at(10).authorize("PHONE-APP", "Invalid")
    script.at(100).status(1, "Preparing").at(150).start(1, 77, id_tag="CARD").at(155).status(1, "Charging")
    script.at(500).status(1, "Finishing").stop(77, 5000).at(510).status(1, "Available")
    events = script.run(until=2000)
    assert kinds(events) == [("start_transaction", "CARD", "")]


def test_a_refused_card_while_plugged_in_joins_the_transaction_whenever_it_starts() -> None:
    """The same driver (plug in, refused card, another card) is one attempt whether the start comes more than
    300 s after the refused card or sooner."""
    def run(start_at: float) -> list[tuple[str, str, str]]:
        script = Script().at(0).connected("c1").status(1, "Available").at(5).status(1, "Preparing")
        script.at(10).authorize("A", "Invalid").at(start_at).start(1, 77, id_tag="B").at(start_at + 5).status(1, "Charging")
        script.at(start_at + 500).status(1, "Finishing").stop(77, 5000).at(start_at + 510).status(1, "Available")
        return kinds(script.run(until=start_at + 2000))
    assert run(400) == run(30) == [("start_transaction", "B", "")]


def test_available_before_a_late_stop_blocks_nothing() -> None:
    """Charging, the cable pulled (Available at 500), the StopTransaction only at 600 (an offline queue, a
    slow backlog flush): KPIS.md 'Available before the stop (the cable pulled first) is 0'."""
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="TAG")
    script.at(15).status(1, "Charging").at(500).status(1, "Available").at(600).stop(77, 5000)
    events = script.run(until=2000)
    session = only_session(events)
    assert session.closed_by == "stop_transaction"
    assert session.blocked_after_stop_s == 0.0


def test_a_fresh_available_before_a_backlogged_start_gives_a_plug_in_attempt_too() -> None:
    """Documents: plug-in at 10, offline at 20, the charger starts and stops offline; on reconnect it reports
    Available first, then flushes StartTransaction / StopTransaction. The plug-in is decided at Available
    (no start seen yet): plugin_no_start, beside the transaction's attempt (two attempts for one driver;
    KPIS.md's letter - 'back to Available without a start' - allows it, its intent does not)."""
    script = Script().at(0).connected("c1").status(1, "Available").at(10).status(1, "Preparing").at(20).disconnected()
    script.at(1000).connected("c2").status(1, "Available")
    old = lambda s: (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    script.at(1000.5).start(1, 77, id_tag="TAG", ts=old(30)).at(1001).stop(77, 5000, ts=old(900))
    events = script.run(until=3000)
    assert sorted(str(a.kind) for a in attempts(events).values()) == ["plugin_without_start", "start_transaction"]


def old_ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_transaction_made_offline_and_flushed_on_reconnect_delivered_its_energy() -> None:
    """Offline 20 .. 1000; the charger starts at 30 and stops at 900 on its own (correct) clock; on reconnect it
    flushes StartTransaction (ts 30, meterStart 1000) and StopTransaction (ts 900, meterStop 5000). KPIS.md:
    delivered = the session's energy > 0 (4000 Wh over 870 s: 16.6 kW, plausible); stopped Local: ended_ok."""
    script = Script().at(0).connected("c1").status(1, "Available").at(20).disconnected()
    script.at(1000).connected("c2").at(1000.5).start(1, 77, id_tag="TAG", ts=old_ts(30))
    script.at(1001).stop(77, 5000, ts=old_ts(900))
    events = script.run(until=3000)
    (attempt,) = attempts(events).values()
    assert only_session(events).energy_wh == 4000
    assert (attempt.delivered, attempt.failure) == (True, "")


def test_16_a_charger_that_skips_finishing_carries_charging_into_the_next_transaction() -> None:
    """Documents (1.6): the last reported status of the connector is Charging when a second transaction
    starts (no Finishing / Available in between); that transaction never charges (0 Wh, no status) yet
    is counted delivered from the stale status, with charging_s over its whole duration."""
    script = Script().at(0).connected("c1").status(1, "Preparing").at(10).start(1, 77, id_tag="A")
    script.at(15).status(1, "Charging").at(100).stop(77, 5000).at(120).start(1, 78, id_tag="B", meter_start=5000)
    script.at(200).stop(78, 5000)
    events = script.run(until=2000)
    b = next(a for a in attempts(events).values() if a.transaction_id == "78")
    assert (b.delivered, b.failure) == (True, "")
    s2 = next(s for s in newest(events).values() if s.transaction_id == "78")
    assert s2.charging_s == 80.0


# === a connection kept "alive" by what the gateway sent ============================================

def test_a_call_sent_by_a_dying_replica_on_the_old_socket_does_not_keep_the_charger_online() -> None:
    script = Script().at(0).connected("a1").status(1, "Available")
    event_at(script, "connected", "b1", 100, "gw-b")
    script.connection = "a1"  # gw-a, unaware its socket is dead, sends a CSMS call on it; then gw-a is killed
    script.at(150).frame([2, "cs-1", "TriggerMessage", {"requestedMessage": "StatusNotification"}],
                         action="TriggerMessage", direction=Direction.OUT, message_id="cs-1")
    script.connection = "b1"
    script.at(160).status(1, "Available")
    event_at(script, "disconnected", "b1", 200, "gw-b")
    events = script.run()
    assert spans(outages(events)) == [(1, 200, None, "offline", "")]


# === outages against a plain model: statuses, station statuses and connections =======================

def model_outages(steps: list[tuple[int, str]], end: int) -> list[tuple[float, float]]:
    t, online, port, station, seen = 0, True, "", "", None
    marks: list[tuple[int, bool]] = []
    for gap, what in steps:
        t += gap
        if what == "disconnect":
            online = False
        elif what == "connect":
            online = True
        elif what.startswith("st0_"):
            station = what[4:]
        else:
            port = what
            seen = t if seen is None else seen
        if seen is not None:
            marks.append((t, (not online) or port in ("Faulted", "Unavailable") or station in ("Faulted", "Unavailable")))
    intervals: list[tuple[float, float]] = []
    since = None
    for at, down in marks:
        if down and since is None:
            since = at
        elif not down and since is not None:
            intervals.append((since, at))
            since = None
    if since is not None:
        intervals.append((since, end))
    merged: list[tuple[float, float]] = []
    for a, b in intervals:
        if merged and a - merged[-1][1] <= 1:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return [(float(a), float(b)) for a, b in merged if b > a or not merged]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(
    ["Available", "Faulted", "Unavailable", "Charging", "st0_Available", "st0_Faulted", "st0_Unavailable",
     "disconnect", "connect"])), max_size=30))
def test_outages_are_the_union_of_every_cause_including_offline(steps: list[tuple[int, str]]) -> None:
    kept: list[tuple[int, str]] = []  # the steps that do something: the model reads these
    online, pending_gap = True, 0
    for gap, what in steps:
        pending_gap += gap
        if what == "disconnect" and not online or what == "connect" and online:
            continue
        if not online and what != "connect":
            continue  # a charger offline sends nothing
        kept.append((pending_gap, what))
        pending_gap = 0
        online = {"disconnect": False, "connect": True}.get(what, online)
    script = Script().at(0).connected("c0")
    t = script.play(kept)
    end = t + 10
    events = script.run()
    check_invariants(events)
    got = sorted(((r.started_at - T0).total_seconds(), ((r.ended_at or T0 + timedelta(seconds=end)) - T0).total_seconds())
                 for r in outages(events).values() if r.connector_id == 1)
    merged: list[tuple[float, float]] = []
    for a, b in got:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    assert [m for m in merged if m[1] > m[0]] == [m for m in model_outages(kept, end) if m[1] > m[0]]


def test_two_taps_of_the_same_card_without_a_start_are_two_attempts() -> None:
    """Documents: KPIS.md counts each Authorize followed by no start as an attempt; two taps of one card 60 s
    apart (distinct message ids) with no plug-in are two authorize_no_start attempts."""
    script = Script().at(0).connected("c1").at(10).authorize("A").at(70).authorize("A")
    assert kinds(script.run(until=1000)) == [("authorize_without_start", "A", "authorize_no_start")] * 2
