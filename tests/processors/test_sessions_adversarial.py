"""Adversarial session tests, black-box against the contract in SESSIONS.md: each class below broke the
first correlator. Rows are read the way consumers read them: the newest ``version`` per ``session_id``.

Every run goes through :func:`play`, which also checks what holds for every row of every case: a revision
chain 0, 1, 2, ... with rising versions, one ``received_at``, ``previous_*`` naming the revision before, a
content change per revision, energy never negative or NaN, and a row that serialises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from processors.settings import CorrelatorConfig
from processors.events import Event
from schemas.flags import Flag
from schemas.records import EnergySource, Session
from tests.processors.script import T0, Script, energy, faults, iso, newest, revisions, sessions, statuses

WINDOW = 60  # seconds, the default status window
HOUR = 3600
_BOOKKEEPING = {"version", "revision", "previous_energy_wh", "previous_duration_s"}


def moment(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def play(script: Script, config: CorrelatorConfig | None = None, *, until: float | None = None) -> list[Event]:
    events = script.run(config, until=until)
    for key, rows in revisions(events).items():
        assert len(key) == 16 and all(c in "0123456789abcdef" for c in key), key
        assert [r.revision for r in rows] == list(range(len(rows))), rows
        for before, after in zip(rows, rows[1:]):
            assert after.version > before.version and after.received_at == before.received_at
            assert (after.previous_energy_wh, after.previous_duration_s) == (before.energy_wh, before.duration_s)
            assert after.model_dump(exclude=_BOOKKEEPING) != before.model_dump(exclude=_BOOKKEEPING), "a revision that changes nothing"
        for row in rows:
            assert row.energy_wh is None or (math.isfinite(row.energy_wh) and row.energy_wh >= 0), row
            row.model_dump_json()
    return events


def charging(script: Script, *, connector: int = 1, tx: int = 77, at: float = 0, meter_start: Any = 1000,
             id_tag: str = "TAG") -> Script:
    script.at(at).status(connector, "Preparing")
    script.at(at + 1).start(connector, tx, meter_start=meter_start, id_tag=id_tag)
    script.at(at + 2).status(connector, "Charging")
    return script


def finished(script: Script, *, tx: int, at: float, meter_start: float, meter_stop: float, connector: int = 1,
             length: float = 500) -> Script:
    charging(script, connector=connector, tx=tx, at=at, meter_start=meter_start)
    script.at(at + length).status(connector, "Finishing")
    script.at(at + length + 1).stop(tx, meter_stop, ts=iso(at + length + 1))
    script.at(at + length + 5).status(connector, "Available")
    return script


def rows_of(events: list[Event], tx: int | str) -> list[Session]:
    """The newest row of each session with that transaction id."""
    return [row for row in newest(events).values() if row.transaction_id == str(tx)]


def one(events: list[Event], tx: int | str) -> Session:
    found = rows_of(events, tx)
    assert len(found) == 1, found
    return found[0]


# --- 1. a real stop after a close on a guess -----------------------------------------------------

def _guess_available(script: Script) -> tuple[float | None, float]:
    script.at(1000).status(1, "Available")
    return 1000 + WINDOW + 1, 990  # the guess is out after the window; the charger stopped at 990


def _guess_next_transaction(script: Script) -> tuple[float | None, float]:
    script.at(3000).start(1, 99, meter_start=5000)  # before the 1 h age below
    return None, 2900


def _guess_timeout(script: Script) -> tuple[float | None, float]:
    return HOUR + 2, 3500  # max_session_age 1 h below


GUESSES = {"available": _guess_available, "next_transaction": _guess_next_transaction, "timeout": _guess_timeout}


@pytest.mark.parametrize("closed_by", GUESSES)
def test_a_late_real_stop_amends_the_session_closed_on_a_guess(closed_by: str) -> None:
    """Class 1: the real StopTransaction after a close by available / next_transaction / timeout makes a new
    revision with the stop's energy, reason and time, closed_by stop_transaction, late_stop, no stop_missing."""
    config = CorrelatorConfig.defaults(max_session_age_ms=HOUR * 1000)
    script = charging(Script())
    script.at(100).meter(1, 77, energy(1500))
    script.at(500).meter(1, 77, energy(3000))
    guess_until, stopped = GUESSES[closed_by](script)
    (guess,) = sessions(play(script, config, until=guess_until))
    assert (guess.closed_by, guess.transaction_id, guess.revision) == (closed_by, "77", 0)
    assert Flag.STOP_MISSING in guess.flags
    arrival = script.now + 600 if guess_until is None else guess_until + 600
    script.at(arrival).stop(77, 5000, reason="EVDisconnected", ts=iso(stopped))
    events = play(script, config, until=arrival + WINDOW + 1)
    assert {r.session_id for r in sessions(events) if r.transaction_id == "77"} == {guess.session_id}
    late = newest(events)[guess.session_id]
    assert late.closed_by == "stop_transaction"
    assert (late.energy_wh, late.energy_source, late.meter_stop_wh) == (4000.0, EnergySource.METER_STOP, 5000.0)
    assert (late.stop_reason, late.stopped_at) == ("EVDisconnected", moment(stopped))
    assert Flag.LATE_STOP in late.flags and Flag.STOP_MISSING not in late.flags
    assert late.version > guess.version and late.revision >= 1 and late.received_at == guess.received_at
    assert (late.id_tag, late.connector_id, late.started_at) == (guess.id_tag, guess.connector_id, guess.started_at)
    assert not [r for r in sessions(events) if Flag.STOP_WITHOUT_START in r.flags]
    assert rows_of(events, 99) == []  # the next transaction (if any) is still open: the late stop is not its stop


LATE_SHAPES = {
    # meterStart, register samples 7 s apart, meterStop (max power 22 kW below)
    "steady": (1000, [1050, 1100, 1150], 1170),
    "first_sample_drops_to_zero_and_comes_back": (1544, [0, 1544, 1544], 1544),  # found by test_session_properties
    "meter_stop_minus_one": (1000, [1050, 1100, 1150], -1),
}


@pytest.mark.parametrize("shape", LATE_SHAPES.values(), ids=LATE_SHAPES.keys())
def test_a_late_stop_bills_what_the_same_stop_on_time_bills(shape: tuple[float, list[float], float]) -> None:
    """Class 1: the revision made by a late stop says what the row would have said had the stop come in time
    (energy and its source); and never more than max power x duration + tolerance (SESSIONS.md, Energy)."""
    meter_start, samples, meter_stop = shape
    config = CorrelatorConfig.defaults(max_power_w=22_000)

    def conversation(arrival: float) -> Session:
        script = charging(Script(), meter_start=meter_start)
        for n, value in enumerate(samples):
            script.at(10 + 7 * n).meter(1, 77, energy(value))
        script.at(40).status(1, "Available")
        script.at(arrival).stop(77, meter_stop, ts=iso(30))
        return one(play(script, config, until=arrival + WINDOW + 1), 77)

    on_time, late = conversation(41), conversation(41 + 10 * WINDOW)
    assert Flag.LATE_STOP in late.flags and Flag.LATE_STOP not in on_time.flags
    assert (late.energy_wh, late.energy_source) == (on_time.energy_wh, on_time.energy_source)
    for row in (on_time, late):
        assert row.energy_wh is None or row.energy_wh <= 22_000 * 29 / 3600 + 1000, row


# --- 2. Available mid-session, then the transaction goes on ---------------------------------------

RESUMES: dict[str, Callable[[Script], Any]] = {
    "preparing_then_charging": lambda s: s.at(1020).status(1, "Preparing").at(1030).status(1, "Charging"),
    "charging": lambda s: s.at(1030).status(1, "Charging"),
    "suspended_ev": lambda s: s.at(1030).status(1, "SuspendedEV"),
    "suspended_evse": lambda s: s.at(1030).status(1, "SuspendedEVSE"),
    "meter_values_for_the_transaction": lambda s: s.at(1030).meter(1, 77, energy(2500)),
}


@pytest.mark.parametrize("resume", RESUMES.values(), ids=RESUMES.keys())
def test_available_then_the_transaction_goes_on(resume: Callable[[Script], Any]) -> None:
    """Class 2: Available mid-session cancelled by a status of a transaction going on (or its MeterValues):
    one session, closed by its real stop much later, energy from meterStop, available_then_resumed."""
    script = charging(Script())
    script.at(500).meter(1, 77, energy(2000))
    script.at(1000).status(1, "Available")
    resume(script)
    script.at(3000).meter(1, 77, energy(4000))
    script.at(5000).status(1, "Finishing")
    script.at(5001).stop(77, 6000, reason="Local")
    events = play(script, until=5001 + WINDOW + 1)
    assert not [r for r in sessions(events) if r.closed_by == "available"]
    (row,) = newest(events).values()
    assert (row.transaction_id, row.closed_by) == ("77", "stop_transaction")
    assert (row.energy_wh, row.energy_source) == (5000.0, EnergySource.METER_STOP)
    assert Flag.AVAILABLE_THEN_RESUMED in row.flags and Flag.STOP_MISSING not in row.flags


def test_boot_available_then_meter_values_then_a_stop_much_later() -> None:
    """Class 2: BootNotification, Available, MeterValues for the transaction, and its stop long after the
    window: one session closed by the stop, flagged charger_rebooted and available_then_resumed."""
    script = charging(Script())
    script.at(500).meter(1, 77, energy(2000))
    script.at(995).boot()
    script.at(1000).status(1, "Available")
    script.at(1030).meter(1, 77, energy(2600))
    script.at(3000).meter(1, 77, energy(4000))
    script.at(5001).stop(77, 6000, reason="Local")
    events = play(script, until=5001 + WINDOW + 1)
    assert not [r for r in sessions(events) if r.closed_by == "available"]
    (row,) = newest(events).values()
    assert (row.closed_by, row.energy_wh, row.energy_source) == ("stop_transaction", 5000.0, EnergySource.METER_STOP)
    assert {Flag.AVAILABLE_THEN_RESUMED, Flag.CHARGER_REBOOTED} <= set(row.flags)
    assert Flag.STOP_MISSING not in row.flags


def test_meter_values_after_the_available_window_reopen_the_session() -> None:
    """Class 2 (SESSIONS.md, Closing): the window closed the session (``available``), then MeterValues for the
    transaction come: it is reopened, and its stop much later is a new revision of the same session."""
    script = charging(Script())
    script.at(500).meter(1, 77, energy(2000))
    script.at(1000).status(1, "Available")
    script.at(1000 + 3 * WINDOW).meter(1, 77, energy(2600))
    script.at(3000).meter(1, 77, energy(4000))
    script.at(5001).stop(77, 6000, reason="Local")
    events = play(script, until=5001 + WINDOW + 1)
    ((key, rows),) = revisions(events).items()
    assert rows[0].closed_by == "available" and Flag.STOP_MISSING in rows[0].flags
    last = rows[-1]
    assert (last.closed_by, last.energy_wh, last.energy_source) == ("stop_transaction", 5000.0, EnergySource.METER_STOP)
    assert Flag.AVAILABLE_THEN_RESUMED in last.flags and Flag.STOP_MISSING not in last.flags
    assert last.received_at == rows[0].received_at


# --- 3. registers that drop: rounding, resets, rebases --------------------------------------------

REGISTERS = [
    pytest.param(["12345.6", "12350.0", "12359.9"], (14_000, 14_500), set(), {Flag.METER_RESET, Flag.METER_REBASED},
                 id="kwh_lifetime_register_first_sample_below_meter_start_by_rounding"),
    pytest.param(["12345.7", "12345.6", "12350.0", "12359.9"], (14_000, 14_500), {Flag.METER_DIP_IGNORED},
                 {Flag.METER_RESET, Flag.METER_REBASED}, id="small_dip_between_samples"),
    pytest.param(["12345.7", "12350.0", "0.0", "0.5", "4.0"], (8_200, 8_500), {Flag.METER_RESET}, set(),
                 id="true_reset_to_zero_is_counted"),
    pytest.param(["12345.7", "12350.0", "9000.0", "9001.0", "9004.0"], (8_200, 8_500), {Flag.METER_REBASED},
                 {Flag.METER_RESET}, id="lasting_drop_not_to_zero_is_a_rebase"),
]


@pytest.mark.parametrize(("kwh", "bounds", "wanted", "unwanted"), REGISTERS)
def test_a_lifetime_register_in_kwh_is_never_billed_in_millions(kwh: list[str], bounds: tuple[float, float],
                                                                 wanted: set[str], unwanted: set[str]) -> None:
    """Class 3: meterStart 12345678 Wh, kWh samples, meterStop -1: energy on the 10 kWh scale, never the
    register itself; a drop within the kWh rounding is ignored, a drop to zero is a reset and still counted."""
    script = charging(Script(), meter_start=12345678)
    for n, value in enumerate(kwh):
        script.at(600 + 1200 * n).meter(1, 77, energy(value, "kWh"))
    script.at(7299).status(1, "Finishing")
    script.at(7300).stop(77, -1)
    row = one(play(script, until=7300 + WINDOW + 1), 77)
    low, high = bounds
    assert row.energy_wh is not None and low <= row.energy_wh <= high, row
    assert row.energy_source == EnergySource.METER_VALUES
    assert wanted <= set(row.flags) and not unwanted & set(row.flags), row.flags


# --- 4. transactionId -1 / 0 when the timeline says another connector stopped ----------------------

def _other_just_left_charging(script: Script) -> None:
    script.at(995).status(2, "Finishing")  # connector 1 goes on charging


def _other_still_charging_own_suspended(script: Script) -> None:
    script.at(300).status(1, "SuspendedEV")  # connector 1 paused long before; connector 2 charges


AMBIGUOUS = {"other_connector_just_left_charging": _other_just_left_charging,
             "other_connector_still_charging_own_suspended_long_ago": _other_still_charging_own_suspended}


@pytest.mark.parametrize("bad_id", [-1, 0])
@pytest.mark.parametrize("timeline", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_an_invalid_id_stop_is_not_matched_when_another_connector_stopped(timeline: Callable[[Script], None], bad_id: int) -> None:
    """Class 4: the only open session is on connector 1, but connector 2 (whose StartTransaction got a
    CALLERROR) is the one that stopped: a stop-only session flagged transaction_id_invalid and
    stop_without_start; connector 1's own stop later still closes its session with its energy.

    Read of SESSIONS.md: "a connector that just left Charging, or is still charging, while the open
    session's connector is not" — connector 1 has not just left Charging in either timeline."""
    script = charging(Script(), connector=1, tx=77)
    script.at(10).status(2, "Preparing")
    script.at(11).start(2, None, meter_start=0, answer="error")
    script.at(12).status(2, "Charging")
    timeline(script)
    script.at(1000).stop(bad_id, 8000, reason="Local")
    script.at(1005).status(2, "Available")
    script.at(1500).status(1, "Charging")
    script.at(2000).status(1, "Finishing")
    script.at(2001).stop(77, 5000)
    events = play(script, until=2001 + WINDOW + 1)
    own = one(events, 77)
    assert (own.closed_by, own.energy_wh, own.connector_id) == ("stop_transaction", 4000.0, 1)
    assert Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION not in own.flags and Flag.TRANSACTION_ID_INVALID not in own.flags
    (stop_only,) = [r for r in newest(events).values() if r.transaction_id != "77"]
    assert {Flag.TRANSACTION_ID_INVALID, Flag.STOP_WITHOUT_START} <= set(stop_only.flags)
    assert Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION not in stop_only.flags
    assert stop_only.connector_id == 2 and Flag.CONNECTOR_INFERRED in stop_only.flags


UNAMBIGUOUS: dict[str, Callable[[Script], Any]] = {
    "single_connector": lambda s: None,
    "other_connector_idle": lambda s: s.at(5).status(2, "Available"),
}


@pytest.mark.parametrize("bad_id", [-1, 0])
@pytest.mark.parametrize("others", UNAMBIGUOUS.values(), ids=UNAMBIGUOUS.keys())
def test_an_invalid_id_stop_is_matched_when_unambiguous(others: Callable[[Script], Any], bad_id: int) -> None:
    """Class 4: one open session whose connector just left Charging, nothing else charging: matched."""
    script = charging(Script())
    others(script)
    script.at(995).status(1, "Finishing")
    script.at(1000).stop(bad_id, 5000)
    events = play(script, until=1000 + WINDOW + 1)
    row = one(events, 77)
    assert (row.closed_by, row.energy_wh) == ("stop_transaction", 4000.0)
    assert Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION in row.flags
    assert len(newest(events)) == 1


# --- 5. MeterValues of a closed transaction never count into the connector's new session ------------

def _first_stopped(script: Script) -> None:
    script.at(999).status(1, "Finishing")
    script.at(1000).stop(77, 5000, ts=iso(1000))
    script.at(1010).status(1, "Available")


def _first_never_stopped(script: Script) -> None:
    pass  # closed by the next StartTransaction on connector 1


FIRSTS = {"closed_by_its_stop": _first_stopped, "closed_by_next_transaction": _first_never_stopped}


@pytest.mark.parametrize("first", FIRSTS.values(), ids=FIRSTS.keys())
@pytest.mark.parametrize("stale_tx", [77, 4242], ids=["tagged_with_the_closed_id", "tagged_with_an_unknown_id"])
def test_meter_values_of_another_transaction_stay_out_of_the_new_session(first: Callable[[Script], None], stale_tx: int) -> None:
    """Class 5: a backlog of MeterValues tagged with an already closed (or unknown) transaction id, flushed
    while the connector's next session runs: that session's energy and sample_count are unaffected."""
    script = charging(Script())
    script.at(500).meter(1, 77, energy(3000))
    first(script)
    charging(script, tx=78, at=2000, meter_start=5000)
    script.at(2100).meter(1, stale_tx, energy(4500), ts=iso(900))
    script.at(2101).meter(1, stale_tx, energy(4900), ts=iso(950))
    script.at(2500).meter(1, 78, energy(6000))
    script.at(3000).meter(1, 78, energy(7000))
    script.at(3500).status(1, "Finishing")
    script.at(3501).stop(78, -1)
    events = play(script, until=3501 + WINDOW + 1)
    new = one(events, 78)
    assert (new.energy_wh, new.sample_count, new.energy_source) == (2000.0, 2, EnergySource.METER_VALUES)
    old = one(events, 77)
    if first is _first_stopped:
        # meterStop settled it: no revision changes its energy (the one after Available says how long the bay stayed blocked)
        assert {row.energy_wh for row in revisions(events)[old.session_id]} == {4000.0}
    elif stale_tx == 77:
        # Closed on a guess with energy from samples: its own late samples amend it (SESSIONS.md, revisions).
        assert old.energy_wh == 3900.0 and Flag.LATE_METER_VALUES in old.flags


# --- 6. a stop resent after many later sessions ----------------------------------------------------

@pytest.mark.parametrize("later", [9, 20], ids=["9_later_sessions", "20_later_sessions"])
def test_a_stop_resent_after_many_later_sessions_keeps_the_good_row(later: int) -> None:
    """Class 6: closed transactions are remembered by time, not count: the resent stop finds its session;
    the good row stays the newest and no stop-only session appears."""
    script = finished(Script(), tx=100, at=0, meter_start=1000, meter_stop=5000)
    for n in range(later):
        finished(script, tx=101 + n, at=1000 * (n + 1), meter_start=5000 + n * 1000, meter_stop=5500 + n * 1000)
    resend_at = 1000 * (later + 1) + 100
    before = play(script, until=resend_at - 1)
    good = one(before, 100)
    script.at(resend_at).stop(100, 5000, ts=iso(501))  # the same stop, from a charger's queue after a reconnect
    after = play(script, until=resend_at + WINDOW + 1)
    assert set(newest(after)) == set(newest(before))
    kept = newest(after)[good.session_id]
    assert (kept.energy_wh, kept.stop_reason, kept.stopped_at, kept.closed_by) == (4000.0, "Local", moment(501), "stop_transaction")
    assert kept.revision >= good.revision
    assert kept.model_dump(exclude=_BOOKKEEPING) == good.model_dump(exclude=_BOOKKEEPING)


@pytest.mark.parametrize("later", [9, 20], ids=["9_later_sessions", "20_later_sessions"])
def test_a_stop_resent_after_many_later_sessions_emits_nothing(later: int) -> None:
    """Class 6, strict (SESSIONS.md: "a duplicate never produces a new version"): not one row more."""
    script = finished(Script(), tx=100, at=0, meter_start=1000, meter_stop=5000)
    for n in range(later):
        finished(script, tx=101 + n, at=1000 * (n + 1), meter_start=5000 + n * 1000, meter_stop=5500 + n * 1000)
    resend_at = 1000 * (later + 1) + 100
    before = play(script, until=resend_at - 1)
    script.at(resend_at).stop(100, 5000, ts=iso(501))
    after = play(script, until=resend_at + WINDOW + 1)
    assert [s.model_dump() for s in sessions(after)] == [s.model_dump() for s in sessions(before)]


@pytest.mark.parametrize("later", [9, 20], ids=["9_later_sessions", "20_later_sessions"])
def test_a_different_stop_after_many_later_sessions_is_a_conflict_on_the_right_session(later: int) -> None:
    """Class 6 and OCPP-QUIRKS (steve #1293): a second, different stop found after 20 sessions: the first
    stands, duplicate_stop_conflict on a new revision of that session, nothing else."""
    script = finished(Script(), tx=100, at=0, meter_start=1000, meter_stop=5000)
    for n in range(later):
        finished(script, tx=101 + n, at=1000 * (n + 1), meter_start=5000 + n * 1000, meter_stop=5500 + n * 1000)
    resend_at = 1000 * (later + 1) + 100
    before = play(script, until=resend_at - 1)
    good = one(before, 100)
    script.at(resend_at).stop(100, 5200, ts=iso(530))
    after = play(script, until=resend_at + WINDOW + 1)
    assert set(newest(after)) == set(newest(before))
    assert len(revisions(after)[good.session_id]) == len(revisions(before)[good.session_id]) + 1
    kept = newest(after)[good.session_id]
    assert (kept.energy_wh, kept.stopped_at, kept.meter_stop_wh) == (4000.0, moment(501), 5000.0)
    assert Flag.DUPLICATE_STOP_CONFLICT in kept.flags


# --- 7. a reused transaction id --------------------------------------------------------------------

def test_a_reused_transaction_id_is_a_second_session() -> None:
    """Class 7: the same id given to a second, different start after the first stopped: two rows with two
    session_ids, each with its own energy; the second flagged transaction_id_reused."""
    script = finished(Script(), tx=5, at=0, meter_start=1000, meter_stop=3000)
    finished(script, tx=5, at=5000, meter_start=3000, meter_stop=7000)
    events = play(script, until=6000)
    first, second = sorted(rows_of(events, 5), key=lambda r: r.started_at)
    assert first.session_id != second.session_id
    assert (first.energy_wh, first.started_at, first.closed_by) == (2000.0, moment(1), "stop_transaction")
    assert (second.energy_wh, second.started_at, second.closed_by) == (4000.0, moment(5001), "stop_transaction")
    assert Flag.TRANSACTION_ID_REUSED in second.flags
    assert Flag.DUPLICATE_STOP_CONFLICT not in first.flags + second.flags
    assert Flag.DUPLICATE_START not in first.flags + second.flags


def _old_closed_by_next_transaction(script: Script) -> float:
    return 4000  # the reusing start on connector 1 closes the old session


def _old_closed_by_available(script: Script) -> float:
    script.at(1000).status(1, "Available")
    return 2000


REUSES = {"old_closed_by_next_transaction": _old_closed_by_next_transaction, "old_closed_by_available": _old_closed_by_available}


@pytest.mark.parametrize("close_old", REUSES.values(), ids=REUSES.keys())
def test_a_late_stop_of_the_old_session_beside_a_reused_id_amends_the_old_one(close_old: Callable[[Script], float]) -> None:
    """Class 7: the old session (closed on a guess) gets its late stop after its id was reused; the stop's
    timestamp is before the new start, so it amends the old session, and the new one keeps its own stop."""
    script = charging(Script(), tx=5, meter_start=1000)
    new_start = close_old(script)
    charging(script, tx=5, at=new_start - 1, meter_start=4000)
    script.at(new_start + 100).stop(5, 3500, reason="EVDisconnected", ts=iso(900))  # the old session's, from a backlog
    script.at(new_start + 2000).status(1, "Finishing")
    script.at(new_start + 2001).stop(5, 6000, ts=iso(new_start + 2001))
    events = play(script, until=new_start + 2001 + WINDOW + 1)
    old, new = sorted(rows_of(events, 5), key=lambda r: r.started_at)
    assert old.session_id != new.session_id
    assert (old.started_at, old.closed_by, old.energy_wh, old.stopped_at) == (moment(1), "stop_transaction", 2500.0, moment(900))
    assert Flag.LATE_STOP in old.flags and Flag.STOP_MISSING not in old.flags
    assert (new.started_at, new.stopped_at) == (moment(new_start), moment(new_start + 2001))
    assert (new.closed_by, new.energy_wh) == ("stop_transaction", 2000.0)
    assert not {Flag.LATE_STOP, Flag.DUPLICATE_STOP_CONFLICT, Flag.STOP_MISSING} & set(new.flags)
    assert len(newest(events)) == 2


# --- 8. content the gateway lets through ----------------------------------------------------------

BAD_IDS = ["²", "١٢", "1e3", 1.5, True, None, 2**70, -7]
BAD_TIMES = ["10000-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "", 5]
BAD_METER_STOPS = ["NaN", "nan", "Infinity", "-Infinity", float("nan"), float("inf"), 1e308, -1e308]
BAD_METER_STARTS = ["²", "abc", True, -5, 2**70, 1e308, "NaN"]
NOT_USED = {Flag.METER_STOP_INVALID, Flag.ENERGY_IMPLAUSIBLE, Flag.METER_STOP_BELOW_START}
START_NOT_USED = {Flag.METER_START_INVALID, Flag.METER_STOP_BELOW_START, Flag.ENERGY_IMPLAUSIBLE, Flag.ENERGY_MISMATCH}


def _case(field: str, value: Any, flags: set[str], where: str = "session") -> Any:
    return pytest.param(field, value, flags, where, id=f"{field}={value!r}")


CONTENT = [
    *[_case("stop_transaction_id", v, {Flag.TRANSACTION_ID_INVALID}) for v in BAD_IDS],
    *[_case("meter_transaction_id", v, set()) for v in BAD_IDS],
    *[_case("start_connector_id", v, {Flag.CONNECTOR_ID_INVALID}) for v in BAD_IDS],
    *[_case("meter_connector_id", v, set()) for v in BAD_IDS],
    *[_case("status_connector_id", v, set()) for v in BAD_IDS],
    *[_case("start_ts", v, {Flag.TIMESTAMP_UNREADABLE}) for v in BAD_TIMES],
    *[_case("stop_ts", v, {Flag.TIMESTAMP_UNREADABLE}) for v in BAD_TIMES],
    *[_case("meter_ts", v, {Flag.TIMESTAMP_UNREADABLE}) for v in BAD_TIMES],
    *[_case("status_ts", v, {Flag.TIMESTAMP_UNREADABLE}, "status") for v in BAD_TIMES],
    *[_case("meter_stop", v, NOT_USED) for v in BAD_METER_STOPS],
    *[_case("meter_start", v, START_NOT_USED) for v in BAD_METER_STARTS],
    *[_case("id_tag", v, set()) for v in ["\ud800", "a\udfffb", 5, None, {"x": [1]}]],
    *[_case("reason", v, set()) for v in [5, "\udfff", ["Local"]]],
    *[_case("transaction_data", v, {Flag.METER_VALUES_UNREADABLE}) for v in ["x", 5, [1, "a"], {"a": 1}]],
]


def _conversation(field: str, value: Any) -> Script:
    """One ordinary session (tx 77 on connector 1, 1000 -> 5000 Wh, samples 1500 and 3000) with ``value`` in ``field``."""
    bad = {field: value}
    script = Script()
    script.at(0).status(1, "Preparing")
    script.at(1).start(bad.get("start_connector_id", 1), 77, id_tag=bad.get("id_tag", "TAG"),
                       meter_start=bad.get("meter_start", 1000), ts=bad.get("start_ts"))
    script.at(2).status(1, "Charging")
    script.at(50).status(bad.get("status_connector_id", 2), "Available")
    script.at(100).meter(bad.get("meter_connector_id", 1), bad.get("meter_transaction_id", 77), energy(1500), ts=bad.get("meter_ts"))
    script.at(500).meter(1, 77, energy(3000))
    script.at(999).status(1, "Finishing", ts=bad.get("status_ts"))
    script.at(1000).stop(bad.get("stop_transaction_id", 77), bad.get("meter_stop", 5000), ts=bad.get("stop_ts"),
                         reason=bad.get("reason", "Local"), transaction_data=bad.get("transaction_data"))
    script.at(1010).status(1, "Available")
    return script


@pytest.mark.parametrize(("field", "value", "flags", "where"), CONTENT)
def test_content_the_gateway_lets_through_never_raises(field: str, value: Any, flags: set[str], where: str) -> None:
    """Class 8: odd identifiers, timestamps and meter values: feed() never raises, the session is still
    emitted, and a flag says what was not usable."""
    events = play(_conversation(field, value), until=1000 + WINDOW + 10)
    row = one(events, 77)
    assert row.closed_by == "stop_transaction", row
    for event in events:
        event.model_dump_json()
    row.id_tag.encode("utf-8"), row.stop_reason.encode("utf-8")  # no lone surrogate reaches a row
    if where == "status":
        (finishing,) = [s for s in statuses(events) if s.status == "Finishing"]
        assert flags & set(finishing.flags), finishing.flags
    elif flags:
        assert flags & set(row.flags), row.flags
    if field == "meter_stop":
        assert row.energy_wh == 2000.0 and row.energy_source == EnergySource.METER_VALUES, row  # the samples
    if field == "meter_start":
        assert row.energy_wh is None or row.energy_wh <= 4000.0, row


# --- 9. meterStart 0 beside a lifetime register ---------------------------------------------------

@pytest.mark.parametrize("hours", [1, 14], ids=["1h_where_meter_stop_is_also_implausible", "14h_where_only_the_samples_disagree"])
@pytest.mark.parametrize("source", [EnergySource.METER_VALUES, EnergySource.TRANSACTION_DATA])
def test_meter_start_zero_beside_a_lifetime_register_bills_the_samples(source: EnergySource, hours: int) -> None:
    """Class 9: meterStart 0, a lifetime register at 12.3 MWh that moves 14 kWh, meterStop at the register.
    SESSIONS.md, Energy: meterStop - meterStart (12.3 MWh) disagrees with the samples beyond rounding and
    the uncovered time, so the samples win (14 kWh) and energy_mismatch says so."""
    end = hours * HOUR
    register = [(60, 12_300_000), (end // 2, 12_307_000), (end - 60, 12_314_000)]
    script = charging(Script(), meter_start=0)
    data = None
    if source == EnergySource.METER_VALUES:
        for at, wh in register:
            script.at(at).meter(1, 77, energy(wh))
    else:
        data = [{"timestamp": iso(at), "sampledValue": [energy(wh)]} for at, wh in register]
    script.at(end).status(1, "Finishing")
    script.at(end + 1).stop(77, 12_314_000, transaction_data=data)
    row = one(play(script, until=end + 1 + WINDOW + 1), 77)
    assert row.energy_wh == pytest.approx(14_000, abs=1) and row.energy_source == source
    assert Flag.ENERGY_MISMATCH in row.flags


# --- 10. StatusNotification without errorCode; a register only on L1 -------------------------------

@pytest.mark.parametrize("status", ["Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Unavailable"])
@pytest.mark.parametrize("missing", ["absent", None, ""], ids=["absent", "null", "empty"])
def test_a_status_without_error_code_is_no_fault(status: str, missing: Any) -> None:
    """Class 10: a StatusNotification without errorCode reads as NoError: no fault event, flagged."""
    payload = {"connectorId": 1, "status": status, "timestamp": iso(0)}
    if missing != "absent":
        payload["errorCode"] = missing
    script = Script()
    script.at(0).call("StatusNotification", payload)
    events = play(script)
    assert faults(events) == []
    (change,) = statuses(events)
    assert change.error_code == "NoError" and Flag.ERROR_CODE_MISSING in change.flags


@pytest.mark.parametrize("missing", ["absent", None, ""], ids=["absent", "null", "empty"])
def test_faulted_without_error_code_never_makes_a_fault_with_an_empty_code(missing: Any) -> None:
    """Class 10: whatever a Faulted without errorCode becomes, no fault event has an empty error code."""
    payload = {"connectorId": 1, "status": "Faulted", "timestamp": iso(0)}
    if missing != "absent":
        payload["errorCode"] = missing
    script = Script()
    script.at(0).call("StatusNotification", payload)
    script.at(30).status(1, "Available")
    assert all(f.error_code for f in faults(play(script)))


@pytest.mark.parametrize("where", ["meter_values", "transaction_data"])
@pytest.mark.parametrize("unit", ["Wh", "kWh"])
def test_a_single_phase_register_on_l1_gives_energy(where: str, unit: str) -> None:
    """Class 10: a register reported only on L1 (a single-phase charger) is taken as the total."""
    scale = 1000 if unit == "kWh" else 1
    samples = [(100, 1000), (900, 3000)]
    script = charging(Script())
    data = None
    if where == "meter_values":
        for at, wh in samples:
            script.at(at).meter(1, 77, energy(wh / scale, unit, phase="L1"))
    else:
        data = [{"timestamp": iso(at), "sampledValue": [energy(wh / scale, unit, phase="L1")]} for at, wh in samples]
    script.at(1000).status(1, "Finishing")
    script.at(1001).stop(77, -1, transaction_data=data)
    row = one(play(script, until=1001 + WINDOW + 1), 77)
    assert row.energy_wh == pytest.approx(2000.0)
    assert Flag.ENERGY_FROM_SINGLE_PHASE in row.flags and Flag.INCOMPLETE_PHASES not in row.flags


# --- 11. implausible meterStop --------------------------------------------------------------------

@pytest.mark.parametrize("meter_stop", [1e30, 10**30], ids=["float_1e30", "int_10_pow_30"])
@pytest.mark.parametrize("with_samples", [True, False], ids=["with_samples", "without_samples"])
def test_an_implausible_meter_stop_is_not_billed(meter_stop: float, with_samples: bool) -> None:
    """Class 11: meterStop 1e30 is beyond max power x duration: not used (energy_implausible); the energy
    comes from the samples, or there is none."""
    script = charging(Script())
    if with_samples:
        script.at(100).meter(1, 77, energy(1500))
        script.at(500).meter(1, 77, energy(3000))
    script.at(999).status(1, "Finishing")
    script.at(1000).stop(77, meter_stop)
    row = one(play(script, until=1000 + WINDOW + 1), 77)
    assert Flag.ENERGY_IMPLAUSIBLE in row.flags
    if with_samples:
        assert (row.energy_wh, row.energy_source) == (2000.0, EnergySource.METER_VALUES)
    else:
        assert (row.energy_wh, row.energy_source) == (None, EnergySource.NONE)


def test_an_ordinary_ten_second_session_is_plausible() -> None:
    """Class 11: 20 Wh in 10 seconds (7.2 kW) is no implausible energy."""
    script = charging(Script())
    script.at(10).status(1, "Finishing")
    script.at(11).stop(77, 1020, ts=iso(11))
    row = one(play(script, until=11 + WINDOW + 1), 77)
    assert (row.energy_wh, row.energy_source, row.duration_s) == (20.0, EnergySource.METER_STOP, 10.0)
    assert Flag.ENERGY_IMPLAUSIBLE not in row.flags


# --- 12. a stop for a transaction the pipeline never saw start ------------------------------------

def _hint_from_meter_values(script: Script) -> str:
    script.at(100).meter(2, 555, energy(2000))
    script.at(200).meter(2, 555, energy(3000))
    return Flag.CONNECTOR_FROM_METER_VALUES


def _hint_from_status_timeline(script: Script) -> str:
    script.at(50).status(2, "Charging")
    script.at(295).status(2, "Finishing")
    return Flag.CONNECTOR_INFERRED


HINTS = {"meter_values_named_it": _hint_from_meter_values, "status_timeline": _hint_from_status_timeline}


@pytest.mark.parametrize("hint", HINTS.values(), ids=HINTS.keys())
def test_a_stop_for_an_unknown_transaction_keeps_what_the_frames_say(hint: Callable[[Script], str]) -> None:
    """Class 12: the start came before the pipeline saw the charger: a stop-only session, its connector
    from that transaction's MeterValues (else the status timeline), its idTag from the stop; the open
    session on connector 1 is not touched."""
    script = charging(Script())  # an unrelated open session on connector 1
    flag = hint(script)
    script.at(300).call("StopTransaction", {"transactionId": 555, "idTag": "RFID-9", "meterStop": 3500,
                                            "timestamp": iso(300), "reason": "EVDisconnected"})
    events = play(script, until=300 + WINDOW + 1)
    row = one(events, 555)
    assert (row.connector_id, row.id_tag, row.stop_reason, row.stopped_at) == (2, "RFID-9", "EVDisconnected", moment(300))
    assert {Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_UNKNOWN, flag} <= set(row.flags)
    assert row.started_at is None and row.closed_by == "stop_transaction"
    assert rows_of(events, 77) == []


# --- OCPP-QUIRKS.md, "Transaction ids": resends and duplicates --------------------------------------

def test_a_start_resent_while_open_is_one_session() -> None:
    """Duplicates (steve #1294): the same StartTransaction, answered again with the same id: one session."""
    script = charging(Script())
    script.at(5).start(1, 77, meter_start=1000, ts=iso(1))
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3000)
    events = play(script, until=200)
    (row,) = newest(events).values()
    assert Flag.DUPLICATE_START in row.flags and row.energy_wh == 2000.0 and row.started_at == moment(1)
    assert Flag.TRANSACTION_ID_REUSED not in row.flags


def test_a_start_resent_after_its_session_closed_makes_nothing_new() -> None:
    """Duplicates: the same start (same content, same id) replayed after the session closed: nothing new."""
    script = finished(Script(), tx=77, at=0, meter_start=1000, meter_stop=3000)
    before = play(script, until=700)
    script.at(800).start(1, 77, meter_start=1000, ts=iso(1))
    # A wrongly opened session would be closed by age (1 h here) and show up.
    after = play(script, CorrelatorConfig.defaults(max_session_age_ms=HOUR * 1000), until=800 + 3 * HOUR)
    assert [s.model_dump() for s in sessions(after)] == [s.model_dump() for s in sessions(before)]


RESENT_STOPS: dict[str, Callable[[Script], Any]] = {
    "within_the_window_before_the_status": lambda s: s.at(101).stop(77, 3000, ts=iso(100)).at(110).stop(77, 3000, ts=iso(100))
    .at(120).status(1, "Finishing"),
    "after_emission": lambda s: s.at(100).status(1, "Finishing").at(101).stop(77, 3000, ts=iso(101))
    .at(130).stop(77, 3000, ts=iso(101)),
    "after_emission_with_id_minus_one": lambda s: s.at(100).status(1, "Finishing").at(101).stop(-1, 3000, ts=iso(101))
    .at(130).stop(-1, 3000, ts=iso(101)),
    "after_a_day": lambda s: s.at(100).status(1, "Finishing").at(101).stop(77, 3000, ts=iso(101))
    .at(24 * HOUR).stop(77, 3000, ts=iso(101)),
}


@pytest.mark.parametrize("stops", RESENT_STOPS.values(), ids=RESENT_STOPS.keys())
def test_the_same_stop_resent_changes_nothing(stops: Callable[[Script], Any]) -> None:
    """Duplicates (steve #955): the same StopTransaction resent after a reconnect: one row, one version."""
    script = charging(Script())
    stops(script)
    events = play(script, until=script.now + WINDOW + 1)
    (row,) = sessions(events)
    assert (row.transaction_id, row.energy_wh, row.closed_by) == ("77", 2000.0, "stop_transaction")
    assert Flag.DUPLICATE_STOP_CONFLICT not in row.flags


MV_RESENDS = {
    # max power, meterStart, register samples 7 s apart, meterStop; every sample is resent right after itself
    "ordinary": (1_000_000.0, 1000, [1500, 2500], -1),
    "a_dropout_to_zero": (1_000_000.0, 1000, [1500, 0, 2500], -1),
    "one_sample_beside_an_implausible_meter_stop": (22_000.0, 0, [101], 203),  # found by test_session_properties
}


@pytest.mark.parametrize("shape", MV_RESENDS.values(), ids=MV_RESENDS.keys())
def test_the_same_meter_values_resent_change_nothing(shape: tuple[float, float, list[float], float]) -> None:
    """Duplicates (SESSIONS.md: "a resend of ... the same samples changes nothing"): MeterValues resent by a
    charger whose answer was lost (the durability rule makes that common) leave the row as it was."""
    power, meter_start, samples, meter_stop = shape

    def conversation(resend: bool) -> Session:
        script = charging(Script(), meter_start=meter_start)
        for n, value in enumerate(samples):
            script.at(15 + 7 * n).meter(1, 77, energy(value), ts=iso(15 + 7 * n))
            if resend:
                script.at(15 + 7 * n + 0.5).meter(1, 77, energy(value), ts=iso(15 + 7 * n))
        script.at(29).status(1, "Finishing")
        script.at(30).stop(77, meter_stop, ts=iso(30))
        return one(play(script, CorrelatorConfig.defaults(max_power_w=power), until=30 + WINDOW + 1), 77)

    resent, once = conversation(resend=True), conversation(resend=False)
    assert (resent.energy_wh, resent.energy_source) == (once.energy_wh, once.energy_source)
    assert resent.model_dump() == once.model_dump()  # sample_count and flags too


def test_a_second_different_stop_is_flagged_once() -> None:
    """Duplicates (steve #1293): a second, different stop: the first stands; duplicate_stop_conflict on one
    new revision; a third different stop adds nothing."""
    script = charging(Script())
    script.at(100).status(1, "Finishing")
    script.at(101).stop(77, 3000, ts=iso(101))
    script.at(130).stop(77, 3500, ts=iso(129))
    script.at(160).stop(77, 3900, ts=iso(159))
    events = play(script, until=1000)
    (rows,) = revisions(events).values()
    assert len(rows) == 2
    first, conflict = rows
    assert Flag.DUPLICATE_STOP_CONFLICT not in first.flags and Flag.DUPLICATE_STOP_CONFLICT in conflict.flags
    assert (conflict.energy_wh, conflict.stopped_at, conflict.meter_stop_wh) == (2000.0, moment(101), 3000.0)
