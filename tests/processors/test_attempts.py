"""Charge attempts and the sessions' time columns (KPIS.md, Attempts; Blocked and idle time): driver
conversations through the correlator, table-driven, and properties of what any conversation gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.attempts import AUTHORIZES_KEPT, PLUGINS_KEPT
from schemas.attempt_failure import snake, transaction_failure
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.records import AttemptKind, ChargeAttempt
from tests.processors.script import T0, Script, attempts, newest, only_session, revisions

WINDOW_S = 300


def only_attempt(events) -> ChargeAttempt:
    found = attempts(events)
    assert len(found) == 1, found
    return next(iter(found.values()))


def started_s(attempt: ChargeAttempt) -> float:
    return (attempt.started_at - T0).total_seconds()


def driver_session(script: Script, *, reason: str | None = None, into: str = "Finishing") -> Script:
    """Plug-in at 0, card at 10, start at 20, Charging at 25, stop at 1000, unplugged at 1300."""
    script.at(0).status(1, "Preparing").at(10).authorize("TAG").at(20).start(1, 77, meter_start=1000)
    script.at(25).status(1, "Charging").at(500).meter(1, 77)
    script.at(999).status(1, into, "GroundFailure" if into == "Faulted" else "NoError")
    script.at(1000).stop(77, 5000, reason=reason)
    script.at(1300).status(1, "Available")
    return script


def test_a_driver_who_plugs_in_badges_and_charges_is_one_successful_attempt() -> None:
    attempt = only_attempt(driver_session(Script()).run(until=2000))
    assert (attempt.kind, attempt.transaction_id, attempt.connector_id, attempt.id_tag) == (
        AttemptKind.START_TRANSACTION, "77", 1, "TAG")
    assert (started_s(attempt), attempt.delivered, attempt.ended_ok, attempt.failure) == (0, True, True, "")
    assert attempt.start_delay_s == 25.0


@pytest.mark.parametrize(("reason", "into", "failure"), [
    (None, "Finishing", ""), ("Remote", "Finishing", ""), ("EVDisconnected", "Available", ""),
    ("EmergencyStop", "Finishing", "stop_emergency_stop"), ("PowerLoss", "Available", "stop_power_loss"),
    ("Local", "Faulted", "faulted"), ("DeAuthorized", "Finishing", "stop_de_authorized"),
])
def test_how_a_transaction_ended_is_its_failure(reason: str | None, into: str, failure: str) -> None:
    attempt = only_attempt(driver_session(Script(), reason=reason, into=into).run(until=2000))
    assert (attempt.failure, attempt.ended_ok, attempt.delivered) == (failure, failure == "", True)


def test_a_transaction_that_never_charged_delivered_nothing() -> None:
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77, meter_start=1000)
    script.at(60).status(1, "Finishing").at(61).stop(77, 1000).at(62).status(1, "Available")
    attempt = only_attempt(script.run(until=200))
    assert (attempt.delivered, attempt.ended_ok, attempt.failure, attempt.start_delay_s) == (False, False, "no_energy", None)


def test_a_transaction_never_stopped_is_stop_missing() -> None:
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77).at(25).status(1, "Charging")
    attempt = only_attempt(script.run(CorrelatorConfig.defaults(max_session_age_ms=3_600_000), until=4000))
    assert (attempt.delivered, attempt.failure) == (True, "stop_missing")


def test_an_authorize_without_a_start_is_an_attempt_once_its_window_passed() -> None:
    script = Script().at(0).status(1, "Available").at(100).authorize("CARD", "Accepted")
    assert attempts(script.run(until=100 + WINDOW_S - 1)) == {}
    attempt = only_attempt(script.run(until=100 + WINDOW_S + 1))
    assert (attempt.kind, attempt.connector_id, attempt.id_tag, attempt.failure) == (
        AttemptKind.AUTHORIZE_WITHOUT_START, 0, "CARD", "authorize_no_start")
    assert started_s(attempt) == 100 and attempt.delivered is False and attempt.transaction_id == ""


@pytest.mark.parametrize(("status", "failure"), [("Invalid", "authorize_rejected"), ("Blocked", "authorize_rejected"),
                                                 ("Accepted", "authorize_no_start"), (None, "authorize_no_start")])
def test_a_refused_card_is_authorize_rejected(status: str | None, failure: str) -> None:
    script = Script().at(100).authorize("CARD", status)
    assert only_attempt(script.run(until=1000)).failure == failure


def test_an_authorize_followed_by_its_start_is_part_of_the_transactions_attempt() -> None:
    script = Script().at(0).authorize("TAG").at(200).status(1, "Preparing").at(250).start(1, 77, id_tag="TAG")
    script.at(260).status(1, "Charging").at(900).status(1, "Finishing").stop(77, 5000)
    attempt = only_attempt(script.run(until=2000))
    assert (attempt.kind, started_s(attempt), attempt.start_delay_s) == (AttemptKind.START_TRANSACTION, 0, 260.0)


def test_an_authorize_of_another_card_or_too_early_is_an_attempt_of_its_own() -> None:
    script = Script().at(0).authorize("OTHER").authorize("TAG").at(400).start(1, 77, id_tag="TAG")
    script.at(410).status(1, "Charging").at(900).status(1, "Finishing").stop(77, 5000)
    kinds = sorted((str(a.kind), a.id_tag) for a in attempts(script.run(until=2000)).values())
    assert kinds == [("authorize_without_start", "OTHER"), ("authorize_without_start", "TAG"), ("start_transaction", "TAG")]


def test_a_plug_in_without_a_start_is_an_attempt() -> None:
    script = Script().at(0).status(1, "Available").at(50).status(1, "Preparing").at(90).status(1, "Available")
    attempt = only_attempt(script.run(until=1000))
    assert (attempt.kind, attempt.connector_id, started_s(attempt), attempt.failure) == (
        AttemptKind.PLUGIN_WITHOUT_START, 1, 50, "plugin_no_start")


@pytest.mark.parametrize(("answer", "failure"), [("Invalid", "authorize_rejected"), ("Accepted", "plugin_no_start")])
def test_a_card_shown_while_plugged_in_is_the_same_driver(answer: str, failure: str) -> None:
    """Plug in, badge (refused, or accepted and the start never came), unplug: one attempt, not two."""
    script = Script().at(0).status(1, "Available").at(50).status(1, "Preparing").at(60).authorize("CARD", answer)
    script.at(90).status(1, "Available")
    attempt = only_attempt(script.run(until=1000))
    assert (attempt.kind, attempt.id_tag, attempt.failure, started_s(attempt)) == (
        AttemptKind.PLUGIN_WITHOUT_START, "CARD", failure, 50)


def test_a_card_shown_long_before_an_unplug_still_joins_the_plug_in() -> None:
    script = Script().at(50).status(1, "Preparing").at(60).authorize("CARD", "Invalid").at(1000).status(1, "Available")
    attempt = only_attempt(script.run(until=2000))
    assert (attempt.kind, attempt.failure) == (AttemptKind.PLUGIN_WITHOUT_START, "authorize_rejected")


def test_preparing_after_a_stop_before_the_car_left_is_no_new_plug_in() -> None:
    script = driver_session(Script())
    script.envelopes.pop()  # no Available at 1300
    script.at(1100).status(1, "Preparing").at(1300).status(1, "Available")
    assert len(attempts(script.run(until=2000))) == 1


def test_the_attempt_is_written_with_its_session_and_again_only_when_it_changes() -> None:
    events = driver_session(Script()).run(until=2000)
    rows = next(iter(revisions(events).values()))
    (attempt,) = [e for e in events if isinstance(e, ChargeAttempt)]  # the bay-time revision changes no attempt
    assert (attempt.attempt_id, attempt.version) == (rows[0].session_id, rows[0].version) and len(rows) == 2
    # A revision that changes it (the stop went into a fault after the first row): rewritten at its version.
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77).at(25).status(1, "Charging")
    script.at(100).status(1, "Finishing").at(101).stop(77, 5000).at(104).status(1, "Faulted", "GroundFailure")
    events = script.run(until=2000)
    written = [e for e in events if isinstance(e, ChargeAttempt)]
    assert [a.failure for a in written] == ["", "faulted"]
    assert written[-1].version == newest(events)[written[-1].attempt_id].version


# --- the sessions' time columns ----------------------------------------------------------------------

def test_charging_and_suspended_time_and_the_bay_blocked_after_the_stop() -> None:
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77).at(30).status(1, "Charging")
    script.at(90).status(1, "SuspendedEV").at(120).status(1, "Charging").at(150).status(1, "SuspendedEVSE")
    script.at(160).status(1, "Charging").at(200).status(1, "Finishing").at(201).stop(77, 5000)
    script.at(500).status(1, "Available")
    events = script.run(until=1000)
    rows = next(iter(revisions(events).values()))
    assert rows[0].blocked_after_stop_s is None  # written at the stop: the car is still there
    final = rows[-1]
    assert (final.charging_s, final.suspended_ev_s, final.suspended_evse_s) == (60 + 30 + 40, 30.0, 10.0)
    assert final.blocked_after_stop_s == 299.0 and final.revision == 1
    assert (final.energy_wh, final.stop_status) == (rows[0].energy_wh, rows[0].stop_status)


def test_available_before_the_stop_blocks_nothing_and_needs_no_revision() -> None:
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77).at(30).status(1, "Charging")
    script.at(100).status(1, "Available").at(101).stop(77, 5000, reason="EVDisconnected")
    events = script.run(until=1000)
    assert [r.revision for r in next(iter(revisions(events).values()))] == [0]
    assert only_session(events).blocked_after_stop_s == 0.0 and only_session(events).charging_s == 70.0


def test_a_new_driver_before_available_leaves_the_last_bay_time_unknown() -> None:
    script = Script().at(0).status(1, "Preparing").at(20).start(1, 77).at(30).status(1, "Charging")
    script.at(100).status(1, "Finishing").at(101).stop(77, 5000)
    script.at(300).start(1, 78).at(310).status(1, "Charging").at(400).status(1, "Finishing").at(401).stop(78, 6000)
    script.at(450).status(1, "Available")
    by_tx = {s.transaction_id: s for s in newest(script.run(until=1000)).values()}
    assert by_tx["77"].blocked_after_stop_s is None and by_tx["78"].blocked_after_stop_s == 49.0


def test_a_session_without_any_status_has_unknown_times() -> None:
    script = Script().at(20).start(1, 77).at(100).stop(77, 5000)
    session = only_session(script.run(until=1000))
    assert (session.charging_s, session.suspended_ev_s, session.suspended_evse_s) == (None, None, None)


# --- properties ------------------------------------------------------------------------------------

EVENTS = ["Preparing", "Charging", "SuspendedEV", "Finishing", "Available", "start", "stop", "authorize", "meter"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from(EVENTS)), max_size=30))
def test_any_conversation_gives_attempts_that_hold_together(steps: list[tuple[int, str]]) -> None:
    """Every attempt: its failure agrees with its flags (ok == no failure, never ok without delivering), its
    start no later than its transaction's; a session's phase times fit within it and the bay time is >= 0;
    a transaction is one attempt; the same frames give the same rows."""
    script = Script()
    t = script.play(steps)
    events = script.run(until=t + 3 * WINDOW_S)
    assert events == script.run(until=t + 3 * WINDOW_S, roundtrip_state=False)
    found = attempts(events)
    sessions = newest(events)
    for attempt in found.values():
        assert attempt.ended_ok == (attempt.failure == "") and (attempt.delivered or not attempt.ended_ok)
        assert attempt.start_delay_s is None or attempt.start_delay_s >= 0
        if attempt.kind == AttemptKind.START_TRANSACTION:
            session = sessions[attempt.attempt_id]
            assert attempt.transaction_id == session.transaction_id
        else:
            assert attempt.transaction_id == "" and not attempt.delivered
    assert {a.attempt_id for a in found.values() if a.kind == AttemptKind.START_TRANSACTION} == set(sessions)
    for session in sessions.values():
        times = [x for x in (session.charging_s, session.suspended_ev_s, session.suspended_evse_s) if x is not None]
        assert all(x >= 0 for x in times)
        if session.started_at is not None and session.stopped_at is not None and times:
            assert sum(times) <= (session.stopped_at - session.started_at).total_seconds() + 0.001
        assert session.blocked_after_stop_s is None or session.blocked_after_stop_s >= 0


@pytest.mark.parametrize(("name", "code"), [("EmergencyStop", "emergency_stop"), ("EVDisconnected", "ev_disconnected"),
                                            ("PowerLoss", "power_loss"), ("Other", "other"), ("SOCLimitReached", "soc_limit_reached")])
def test_stop_reasons_become_snake_case_codes(name: str, code: str) -> None:
    assert snake(name) == code
    assert transaction_failure(delivered=True, into_faulted=False, stopped=True, reason=name) in ("", "stop_" + code)


def test_a_card_shown_before_the_plug_in_starts_the_plug_ins_attempt() -> None:
    script = Script().at(0).authorize("CARD").at(100).status(1, "Preparing").at(600).status(1, "Available")
    attempt = only_attempt(script.run(until=2000))
    assert (attempt.kind, attempt.id_tag, started_s(attempt)) == (AttemptKind.PLUGIN_WITHOUT_START, "CARD", 0)


def test_a_charger_inventing_connector_ids_does_not_grow_its_state_forever() -> None:
    script = Script()
    for n in range(1, 500):
        script.at(n).status(n, "Preparing")
    for n in range(100):
        script.at(600 + n).authorize(f"CARD-{n}", None)
    correlator = Correlator("CP-1", CorrelatorConfig.defaults())
    for envelope in script.envelopes:
        correlator.feed(envelope)
    assert len(correlator.state.attempts.plugins) == PLUGINS_KEPT
    assert len(correlator.state.attempts.authorizes) == AUTHORIZES_KEPT
