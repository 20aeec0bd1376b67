"""What comes late, from a backlog or a queue, and where it belongs (issue #23, classes 2, 3 and 4; SESSIONS.md):
samples older than the Available that closed a session amend it and keep its close; a -1 / 0 stop is never
matched to a session that began after it, nor to one whose connector goes on while another connector charges a
transaction nobody knows; a late stop of a session closed by age keeps the status the connector went to from
Charging. Table tests through the correlator (every run checked by :func:`play`) and hypothesis properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings, strategies as st

from schemas.flags import Flag
from tests.processors.script import Script, energy, iso, newest
from tests.processors.test_sessions_adversarial import HOUR, WINDOW, charging, one, play

# --- class 2: backlogged samples after an Available ------------------------------------------------------------


def cable_pulled_while_offline(script: Script) -> Script:
    """Charging from 0 (meterStart 1000); its samples at 600 and 1200 went out; those of 1800..3000 waited in the
    queue while the link was down; the car left at 3300 (Available, sent live on the reconnect at 5000). The
    charger never sends StopTransaction for this session."""
    charging(script)
    script.at(600).meter(1, 77, energy(3000), ts=iso(600)).at(1200).meter(1, 77, energy(5000), ts=iso(1200))
    script.at(5000).status(1, "Available", ts=iso(3300))
    return script


def flush_backlog(script: Script, at: float) -> Script:
    for n, value in enumerate((7000, 9000, 11000)):
        script.at(at + n * 0.1).meter(1, 77, energy(value), ts=iso(1800 + 600 * n))
    return script


@pytest.mark.parametrize("flushed_at", [5000.5, 5000 + WINDOW + 30], ids=["within_the_window", "after_the_close"])
def test_backlogged_samples_from_before_the_available_amend_the_session_and_keep_its_close(flushed_at: float) -> None:
    script = flush_backlog(cable_pulled_while_offline(Script()), flushed_at)
    events = play(script, until=flushed_at + 80 * HOUR)
    row = one(events, 77)
    assert (row.closed_by, row.energy_wh, row.stop_status) == ("available", 10_000.0, "Available")
    assert Flag.AVAILABLE_THEN_RESUMED not in row.flags and row.duration_s is not None and row.duration_s < 2 * HOUR
    if flushed_at > 5000 + WINDOW:
        assert Flag.LATE_METER_VALUES in row.flags and row.revision >= 1


def test_samples_metered_after_the_available_still_show_the_transaction_went_on() -> None:
    """The control: the charger meters the transaction after its Available (a reboot that reported Available)."""
    script = cable_pulled_while_offline(Script())
    script.at(5100).meter(1, 77, energy(12_000), ts=iso(5100))
    script.at(6000).status(1, "Finishing").at(6001).stop(77, 13_000, ts=iso(6001))
    row = one(play(script, until=8000), 77)
    assert (row.closed_by, row.energy_wh) == ("stop_transaction", 12_000.0)
    assert Flag.AVAILABLE_THEN_RESUMED in row.flags


def test_a_backlogged_charging_status_from_before_the_available_does_not_resume_it() -> None:
    script = cable_pulled_while_offline(Script())
    script.at(5000.5).status(1, "Charging", ts=iso(2000)).at(5000.6).status(1, "Available", ts=iso(3300))
    row = one(play(script, until=80 * HOUR), 77)
    assert row.closed_by == "available" and Flag.AVAILABLE_THEN_RESUMED not in row.flags


# --- class 3: -1 / 0 stops and time -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [-1, 0])
def test_an_invalid_id_stop_from_before_the_only_open_session_is_not_its_stop(bad_id: int) -> None:
    """An older transaction's stop (its start made offline, never seen) arrives while a newer one charges: a
    stop-only session; the open one keeps its own stop, energy and reason, without a conflict."""
    script = charging(Script(), meter_start=1000)
    script.at(100).stop(bad_id, 300, reason="EVDisconnected", ts=iso(-500))
    script.at(600).status(1, "Finishing").at(601).stop(77, 6000, reason="Local")
    events = play(script, until=2000)
    own = one(events, 77)
    assert (own.energy_wh, own.stop_reason, own.closed_by) == (5000.0, "Local", "stop_transaction")
    assert not {Flag.DUPLICATE_STOP_CONFLICT, Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION} & set(own.flags)
    (other,) = [r for r in newest(events).values() if r.transaction_id != "77"]
    assert {Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_INVALID} <= set(other.flags)
    assert other.stop_reason == "EVDisconnected"


@pytest.mark.parametrize("own_state", ["SuspendedEV", "SuspendedEVSE"])
def test_an_invalid_id_stop_is_not_matched_when_another_connector_charges_a_transaction_nobody_knows(own_state: str) -> None:
    """Connector 2 charges a transaction whose start got no id; connector 1's car just went to a suspended state
    (its transaction goes on): a -1 stop now is as likely connector 2's, so it is matched to neither."""
    script = charging(Script(), connector=1, tx=77)
    script.at(10).status(2, "Preparing").at(11).start(2, None, meter_start=0, answer="error").at(12).status(2, "Charging")
    script.at(990).status(1, own_state)
    script.at(1000).stop(-1, 8000, reason="Local")
    script.at(1500).status(1, "Charging").at(2000).status(1, "Finishing").at(2001).stop(77, 5000)
    events = play(script, until=2001 + WINDOW + 1)
    own = one(events, 77)
    assert (own.closed_by, own.energy_wh) == ("stop_transaction", 4000.0)
    assert Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION not in own.flags


def test_an_invalid_id_stop_after_its_session_started_is_still_matched() -> None:
    """The control: the stop's timestamp is after the open session began, its connector just left Charging."""
    script = charging(Script(), meter_start=1000)
    script.at(600).status(1, "Finishing").at(601).stop(-1, 6000, ts=iso(601))
    row = one(play(script, until=2000), 77)
    assert (row.energy_wh, row.closed_by) == (5000.0, "stop_transaction")
    assert Flag.TRANSACTION_ID_MATCHED_OPEN_SESSION in row.flags


# --- class 4: a late stop of a session closed by age ------------------------------------------------------------

LATE: dict[str, Callable[[Script, float], Script]] = {
    "status_then_stop": lambda s, at: s.at(at).status(1, "Finishing", ts=iso(3600)).at(at + 1).stop(77, 9000, ts=iso(3601)),
    "stop_then_status": lambda s, at: s.at(at).stop(77, 9000, ts=iso(3601)).at(at + 5).status(1, "Finishing", ts=iso(3600)),
}


@pytest.mark.parametrize("late", LATE.values(), ids=LATE.keys())
def test_a_late_stop_of_a_session_closed_by_age_keeps_the_status_out_of_charging(late: Callable[[Script, float], Script]) -> None:
    """Offline for four days: the session was closed by age (72 h); on the reconnect the charger flushes the move
    out of Charging and the stop, in its firmware's order. The revision has the stop and the status."""
    script = charging(Script())
    reconnect = 80 * HOUR
    late(script, reconnect)
    row = one(play(script, until=reconnect + 2 * WINDOW), 77)
    assert (row.closed_by, row.stop_status, row.energy_wh) == ("stop_transaction", "Finishing", 8000.0)
    assert Flag.LATE_STOP in row.flags and Flag.STOP_MISSING not in row.flags


def test_a_late_stop_takes_no_status_of_a_later_session_on_its_connector() -> None:
    """Closed by the next start on its connector; that session's own move out of Charging is not the old one's."""
    script = charging(Script(), tx=77)
    charging(script, tx=78, at=500, meter_start=3000)
    script.at(900).status(1, "SuspendedEV")
    script.at(950).stop(77, 3000, ts=iso(499))  # the old session's stop, late
    rows = {r.transaction_id: r for r in newest(play(script, until=1100)).values()}
    assert rows["77"].closed_by == "stop_transaction" and rows["77"].stop_status == ""


# --- properties -----------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, database=None)
@given(n=st.integers(1, 5), step_wh=st.integers(10, 3000), delay=st.integers(1, 10 * HOUR),
       window_wait=st.integers(0, 3 * WINDOW))
def test_samples_from_before_the_available_never_reopen_or_lose_the_close(n: int, step_wh: int, delay: int,
                                                                          window_wait: int) -> None:
    """However many backlogged samples, however late: the session closed by its Available stays closed by it, its
    energy is what the samples show (all metered before the Available), and it is never timed out."""
    script = charging(Script(), meter_start=1000)
    script.at(3300).status(1, "Available", ts=iso(3300))
    flush = 3300 + window_wait + delay
    for k in range(n):
        script.at(flush + k * 0.05).meter(1, 77, energy(1000 + step_wh * (k + 1)), ts=iso(600 * (k + 1)))  # <= 18 kW
    row = one(play(script, until=flush + 80 * HOUR), 77)
    assert row.closed_by == "available" and Flag.AVAILABLE_THEN_RESUMED not in row.flags
    assert row.energy_wh == float(step_wh * n)
