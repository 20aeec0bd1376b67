"""The typed correlator state: JSON round trips, and the state the first worker persisted in the
changelog (``data/legacy_state_v1.json``, written by the code before the upgrade) read and continued."""

from __future__ import annotations

import json
from pathlib import Path

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from processors.state import CorrelatorState
from schemas.envelope import Direction, MessageType
from tests.processors.script import Script, only_session, sessions

LEGACY = (Path(__file__).parent / "data" / "legacy_state_v1.json").read_bytes()


def continue_from(state: CorrelatorState, script: Script, until: float | None = None) -> list:
    events = []
    for envelope in script.envelopes:
        correlator = Correlator("CP-LEGACY", CorrelatorConfig.defaults(), state)
        events += correlator.feed(envelope)
        state = state_codec.loads(state_codec.dumps(correlator.state))
    if until is not None:
        events += Correlator("CP-LEGACY", CorrelatorConfig.defaults(), state).advance(script.envelopes[0].gateway_ts_ms + int(until * 1000))
    return events


def test_the_legacy_state_is_read_whole() -> None:
    state = state_codec.loads(LEGACY)
    assert (state.offset, state.partition) == (41, 0)
    (open_session,) = state.sessions.values()
    assert (open_session.transaction_id, open_session.connector, open_session.meter_start) == ("13", 1, 7000.0)
    assert open_session.mv.count == 2 and state.connectors[1].tx == open_session.session_id
    assert {s.transaction_id for s in state.closed.values()} == {"11", "12"}
    assert all(s.session_id == "" for s in state.closed.values())  # their rows were written without one
    assert state.connectors[2].fault is not None and state.connectors[2].fault.error_code == "GroundFailure"
    assert [p.start.id_tag for p in state.pending_starts.values()] == ["PENDING"]


def test_the_typed_state_round_trips_through_json() -> None:
    state = state_codec.loads(LEGACY)
    again = state_codec.loads(state_codec.dumps(state))
    assert again == state and json.loads(state_codec.dumps(again)) == json.loads(state_codec.dumps(state))


def test_a_legacy_open_session_stops_normally_after_the_upgrade() -> None:
    script = Script("CP-LEGACY").at(2000)
    script.status(1, "Finishing").at(2001).stop(13, 9000, reason="EVDisconnected")
    session = only_session(continue_from(state_codec.loads(LEGACY), script))
    assert (session.transaction_id, session.energy_wh, session.stop_reason, session.revision) == ("13", 2000.0, "EVDisconnected", 0)
    assert session.session_id != ""


def test_a_legacy_session_closed_on_a_guess_is_amended_by_its_late_stop() -> None:
    script = Script("CP-LEGACY").at(2000).stop(12, 6500, reason="Local", ts="2025-11-24T16:15:00Z")
    (amended,) = sessions(continue_from(state_codec.loads(LEGACY), script))
    assert (amended.transaction_id, amended.session_id, amended.revision) == ("12", "", 1)
    assert (amended.energy_wh, amended.closed_by) == (1500.0, "stop_transaction")
    assert Flag.LATE_STOP in amended.flags and Flag.STOP_MISSING not in amended.flags


def test_a_legacy_stop_resent_after_the_upgrade_changes_nothing() -> None:
    script = Script("CP-LEGACY").at(2000).stop(11, 5000, reason="Local", ts="2025-11-24T16:10:01Z")
    assert sessions(continue_from(state_codec.loads(LEGACY), script)) == []


# --- a state written before issue #23 (tests/processors/data/state_v2_before_issue23.json, by commit 52481ed) ---------
# CP-V2: connector 2 Faulted (a fault of the seven-field layout); session 41 closed by Available at 900; then, after a
# first connection whose close was never seen, session 42's start flushed from the queue an hour old: the code of
# that commit flagged it clock_skew at its start (issue #23, class 1).

BEFORE_23 = (Path(__file__).parent / "data" / "state_v2_before_issue23.json").read_bytes()  # Script's T0, as here


def test_a_state_written_before_issue_23_is_read_whole_and_round_trips() -> None:
    state = state_codec.loads(BEFORE_23)
    (open_session,) = state.sessions.values()
    assert (open_session.transaction_id, open_session.clock_start, open_session.available_ms) == ("42", None, None)
    fault = state.connectors[2].fault
    assert fault is not None and (fault.error_code, fault.announced, fault.event_id) == ("GroundFailure", True, "")
    assert state.clock.is_empty() and state.naming == [] and state.connectors[2].problems == []
    again = state_codec.loads(state_codec.dumps(state))
    assert again == state


def test_its_queued_session_gets_the_meters_energy_when_its_stop_comes() -> None:
    """The clock_skew its start was flagged with is decided again from the evidence: a queue; energy kept."""
    script = Script("CP-V2").at(5001.4).stop(42, 16_000, ts="2025-11-24T17:22:21Z")  # made a minute before it came
    (row,) = sessions(continue_from(state_codec.loads(BEFORE_23), script))
    assert (row.transaction_id, row.energy_wh, row.duration_s) == ("42", 11_000.0, 3540.0)
    assert Flag.CLOCK_SKEW not in row.flags and Flag.DURATION_FROM_GATEWAY_CLOCK not in row.flags


def test_its_session_closed_by_available_takes_a_backlog_without_reopening() -> None:
    """Samples from before its Available (charger time 800 < 900) amend it; its close stands."""
    script = Script("CP-V2").at(6000).meter(1, 41, {"value": "4000", "measurand": "Energy.Active.Import.Register"},
                                            ts="2025-11-24T16:13:20Z")
    (row,) = sessions(continue_from(state_codec.loads(BEFORE_23), script))
    assert (row.transaction_id, row.closed_by, row.energy_wh, row.revision) == ("41", "available", 3000.0, 1)
    assert Flag.LATE_METER_VALUES in row.flags and Flag.AVAILABLE_THEN_RESUMED not in row.flags


# --- the state the current worker writes (format 2), read by the code that added sessions.id_token_type ---------
# ``data/state_v2_before_id_token_type.json``: written by main at 52481ed (before the token type), CP-V2 with a
# session stopped and remembered (its bay time not known yet), one open, and a 1.6 start waiting for its answer.

STATE_V2 = (Path(__file__).parent / "data" / "state_v2_before_id_token_type.json").read_bytes()


def test_a_state_written_before_the_token_type_is_read_whole_and_round_trips() -> None:
    state = state_codec.loads(STATE_V2)
    (closed,) = state.closed.values()
    (open_session,) = state.sessions.values()
    (pending,) = state.pending_starts.values()
    assert (closed.transaction_id, open_session.transaction_id, pending.start.id_tag) == ("21", "22", "CARD-3")
    assert closed.id_token_type == open_session.id_token_type == pending.start.id_token_type == ""
    again = state_codec.loads(state_codec.dumps(state))
    assert again == state
    (pending,) = json.loads(state_codec.dumps(again))["pending_starts"].values()
    assert "id_token_type" not in pending["start"]  # written only when there is one


def test_a_session_remembered_across_the_upgrade_keeps_its_digest() -> None:
    """Its row is not written again for a column it never had: the bay time is its only new revision."""
    from processors.session_record import record_digest, session_record

    (closed,) = state_codec.loads(STATE_V2).closed.values()
    emitted = closed.emitted
    assert emitted is not None
    record = session_record("CP-V2", CorrelatorConfig.defaults(), closed, emitted.closed_by, revision=emitted.revision,
                            version=emitted.version, received_ms=emitted.received_ms)
    assert record_digest(record) == emitted.digest
    script = Script("CP-V2").at(2000).meter(1, 21, {"value": "4000", "measurand": "Energy.Active.Import.Register"})
    assert sessions(continue_from(state_codec.loads(STATE_V2), script)) == []
    script = Script("CP-V2").at(2000).status(1, "Available")
    (bay,) = sessions(continue_from(state_codec.loads(STATE_V2), script))
    assert (bay.transaction_id, bay.revision, bay.blocked_after_stop_s, bay.id_token_type) == ("21", 1, 1099.0, "")


def test_the_open_and_the_pending_start_of_that_state_finish_with_a_token_type() -> None:
    script = Script("CP-V2").at(2000)
    script._env(Direction.OUT, [3, "m11", {"transactionId": 23, "idTagInfo": {"status": "Accepted"}}],
                MessageType.CALL_RESULT, "StartTransaction", "m11")  # the answer the pending start waited for
    script.at(2100).stop(22, 900, reason="Local").stop(23, 300, reason="Local")
    rows = {s.transaction_id: s for s in sessions(continue_from(state_codec.loads(STATE_V2), script, until=7200))}
    assert {tx: (s.id_tag, s.id_token_type, s.energy_wh) for tx, s in rows.items() if s.revision == 0} == {
        "22": ("CARD-2", "", 400.0), "23": ("CARD-3", "", 300.0)}


def test_a_start_without_a_driver_persists_its_token_type() -> None:
    """A pending start's token type, written only when there is one."""
    script = Script("CP-NEW").at(0)
    script.call("StartTransaction", {"connectorId": 1, "idTag": "", "meterStart": 0, "timestamp": "2025-11-24T16:00:00Z"})
    correlator = Correlator("CP-NEW", CorrelatorConfig.defaults(), None)
    correlator.feed(script.envelopes[0])
    (pending,) = json.loads(state_codec.dumps(correlator.state))["pending_starts"].values()
    assert pending["start"]["id_token_type"] == "NoAuthorization"
    (read,) = state_codec.loads(state_codec.dumps(correlator.state)).pending_starts.values()
    assert read.start.id_token_type == "NoAuthorization"
