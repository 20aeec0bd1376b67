"""Clock skew against offline queues (issue #23, class 1; SESSIONS.md, Clocks): the charger's clock is judged by
what its frames show (processors/clock.py), never by whether the pipeline happened to see a connection close.
A session flushed from the offline queue keeps the charger's own duration and the meter's energy: on a first
connection, after a gateway replica was killed (no ``disconnected``), in data without connection events, with or
without a live timestamp beside it. A clock that is off is flagged ``clock_skew``, and its energy is still the
meter's. Table tests through the correlator, the rule alone, and hypothesis properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings, strategies as st

from processors import clock
from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from schemas.records import EnergySource, Session
from tests.processors.script import Script, energy, iso, newest, only_session
from tests.processors.test_ocpp201 import Station, only, register

HOUR = 3600
LIMIT = 300  # CorrelatorConfig.clock_skew_ms, seconds
SKEW_FLAGS = {Flag.CLOCK_SKEW, Flag.DURATION_FROM_GATEWAY_CLOCK}


def flushed_session(script: Script, at: float, *, started: float, stopped: float, tx: int = 77, meter_start: int = 10_000,
                    meter_stop: int = 21_000, samples: bool = True, offset: float = 0.0) -> Script:
    """A session the charger made while nobody heard it (charger times ``started`` .. ``stopped``, gateway seconds
    of its clock + ``offset``), flushed from its queue at gateway second ``at``: the start, its samples, the stop,
    answered as fast as they come."""
    script.at(at).start(1, tx, meter_start=meter_start, ts=iso(started + offset))
    if samples:
        middle = (started + stopped) / 2
        script.at(at + 0.2).meter(1, tx, energy((meter_start + meter_stop) // 2), ts=iso(middle + offset))
    script.at(at + 0.4).stop(tx, meter_stop, ts=iso(stopped + offset))
    return script


def first_connection(script: Script) -> Script:
    """A charger the pipeline never saw (newly migrated, a new deployment): it connects, boots, says Available (now),
    then flushes the session it made an hour before."""
    script.at(5000).connected("c1").boot().status(1, "Available")
    return flushed_session(script, 5001, started=1000, stopped=4600)


def after_replica_kill(script: Script) -> Script:
    """Its gateway replica is SIGKILLed while it is connected: no ``disconnected`` is ever written. It reconnects to
    another replica an hour later and flushes the session it made meanwhile."""
    script.at(0).connected("c1").status(1, "Available", ts=iso(0))
    script.at(6000).connected("c2").status(1, "Available")
    return flushed_session(script, 6001, started=1000, stopped=4600)


def no_connection_events(script: Script) -> Script:
    """Data without connection events (older than them, or replayed from elsewhere): statuses, then the flush."""
    script.at(5000).status(1, "Available")
    return flushed_session(script, 5001, started=1000, stopped=4600)


def no_live_frame(script: Script) -> Script:
    """Nothing but the queue: the start (an hour old) and the stop (ten minutes old) a second apart."""
    return flushed_session(script, 5200, started=1000, stopped=4600, samples=False)


def queue_on_a_clock_behind(script: Script) -> Script:
    """A clock two hours behind whose statuses say so; the session it flushes is older still."""
    script.at(0).status(1, "Available", ts=iso(-2 * HOUR)).at(60).status(1, "Available", ts=iso(60 - 2 * HOUR))
    return flushed_session(script, 5001, started=1000, stopped=4600, offset=-2 * HOUR)


def queued_2_0_1_without_offline_flag(station: Station) -> Station:
    """A 2.0.1 firmware that does not set ``offline``: Started, Updated and Ended an hour old, flushed at once."""
    station.at(5000).status(1, "Available")
    station.at(5001).event("Started", state="Charging", id_token="T", ts=1000, meter=[register(10_000, "Transaction.Begin")])
    station.at(5001.2).event("Updated", ts=2800, meter=[register(15_500, "Sample.Periodic")])
    station.at(5001.4).event("Ended", state="EVConnected", ts=4600, meter=[register(21_000, "Transaction.End")])
    return station


QUEUES: dict[str, Callable[[Script], Script]] = {
    "first_connection": first_connection,
    "after_a_replica_kill": after_replica_kill,
    "without_connection_events": no_connection_events,
    "without_any_live_frame": no_live_frame,
    "on_a_clock_known_behind": queue_on_a_clock_behind,
}


@pytest.mark.parametrize("story", QUEUES.values(), ids=QUEUES.keys())
def test_a_session_flushed_from_the_offline_queue_keeps_its_energy_and_its_own_duration(story: Callable[[Script], Script]) -> None:
    """An hour of charging (11 kWh, 11 kW) delivered in half a second: the charger's duration is the evidence, the
    meter's energy stands, and a right clock is not called skewed."""
    session = only_session(story(Script()).run(until=20_000))
    assert (session.energy_wh, session.energy_source, session.duration_s) == (11_000.0, EnergySource.METER_STOP, 3600.0)
    assert Flag.ENERGY_IMPLAUSIBLE not in session.flags and Flag.DURATION_FROM_GATEWAY_CLOCK not in session.flags
    if story is queue_on_a_clock_behind:
        assert Flag.CLOCK_SKEW in session.flags  # the clock is off, and the session is still a queue's
    else:
        assert Flag.CLOCK_SKEW not in session.flags


def test_a_2_0_1_queue_without_the_offline_flag_keeps_its_energy() -> None:
    session = only(queued_2_0_1_without_offline_flag(Station()).run(until=20_000))
    assert (session.energy_wh, session.duration_s) == (11_000.0, 3600.0)
    assert not SKEW_FLAGS & set(session.flags) and Flag.ENERGY_IMPLAUSIBLE not in session.flags


# --- a clock that is off ---------------------------------------------------------------------------------


def live_session(offset: float, *, statuses: bool = True, meter_stop: int = 3000) -> Script:
    """A ten-minute session whose every frame is live and stamped by a clock ``offset`` seconds off."""
    script = Script()
    if statuses:
        script.at(0).status(1, "Preparing", ts=iso(offset))
    script.at(1).start(1, 5, meter_start=1000, ts=iso(1 + offset))
    if statuses:
        script.at(2).status(1, "Charging", ts=iso(2 + offset))
        script.at(600).status(1, "Finishing", ts=iso(600 + offset))
    script.at(601).stop(5, meter_stop, ts=iso(601 + offset))
    return script


@pytest.mark.parametrize(("offset", "statuses", "skew"), [
    pytest.param(0, True, False, id="right"),
    pytest.param(-LIMIT + 10, True, False, id="behind_within_the_limit"),
    pytest.param(-3 * HOUR, True, True, id="three_hours_behind"),
    pytest.param(-3 * HOUR, False, True, id="three_hours_behind_start_and_stop_only"),
    pytest.param(5 * HOUR, True, True, id="five_hours_ahead"),
    pytest.param(5 * HOUR, False, True, id="ahead_start_and_stop_only"),
    pytest.param(-30 * 365 * 24 * HOUR, True, True, id="reset_to_the_nineties"),
])
def test_a_clock_that_is_off_is_flagged_and_its_energy_kept(offset: float, statuses: bool, skew: bool) -> None:
    session = only_session(live_session(offset, statuses=statuses).run(until=2000))
    assert (Flag.CLOCK_SKEW in session.flags) is skew
    assert session.energy_wh == 2000.0 and session.duration_s == 600.0
    assert (Flag.DURATION_FROM_GATEWAY_CLOCK in session.flags) is skew  # both frames live: the gateway timed them


@pytest.mark.parametrize(("start_ts", "stop_ts"), [
    pytest.param("1970-01-01T00:00:00Z", None, id="start_from_an_unset_clock"),
    pytest.param(None, "2031-01-01T00:00:00Z", id="stop_years_ahead"),
])
def test_a_timestamp_no_queue_can_explain_makes_the_gateway_time_the_session(start_ts: str | None, stop_ts: str | None) -> None:
    """A start stamped 1970 (an RTC not set yet) or a stop years ahead: the charger's duration is not one clock's,
    so the gateway's is the row's, and a meterStop - meterStart beyond what that allows is not billed."""
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 5, meter_start=1000, ts=start_ts or iso(1))
    script.at(601).stop(5, 3000, ts=stop_ts or iso(601))
    session = only_session(script.run(until=2000))
    assert SKEW_FLAGS <= set(session.flags) and session.duration_s == 600.0 and session.energy_wh == 2000.0


def test_transaction_frames_live_on_a_clock_of_their_own_are_skewed_whatever_the_statuses_say() -> None:
    """The statuses carry the right time; the start and the stop, ten minutes apart, both lag three hours: live
    frames of the clock that stamps transactions (a meter's), not a queue (a queue is flushed in a burst)."""
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 5, ts=iso(1 - 3 * HOUR))
    script.at(601).status(1, "Finishing")
    script.at(602).stop(5, 2000, ts=iso(602 - 3 * HOUR))
    session = only_session(script.run())
    assert SKEW_FLAGS <= set(session.flags) and session.duration_s == 601.0 and session.energy_wh == 1000.0


def test_a_clock_synced_during_the_session_does_not_stretch_it() -> None:
    """Three hours behind at the start (its statuses say so), right at the stop (set from a Heartbeat's time):
    the clock changed under the session; the gateway timed it."""
    script = Script()
    script.at(0).status(1, "Preparing", ts=iso(-3 * HOUR)).at(60).status(1, "Preparing", ts=iso(60 - 3 * HOUR))
    script.at(61).start(1, 5, meter_start=1000, ts=iso(61 - 3 * HOUR))
    script.at(660).status(1, "Finishing").at(661).stop(5, 3000)
    session = only_session(script.run(until=2000))
    assert SKEW_FLAGS <= set(session.flags) and session.duration_s == 600.0 and session.energy_wh == 2000.0


def test_a_boot_forgets_what_the_clock_showed() -> None:
    """Known three hours behind; it reboots and sets its clock from the answer: a session after that is not skewed."""
    script = live_session(-3 * HOUR, meter_stop=1500)
    script.at(700).boot()
    script.at(800).status(1, "Preparing").at(801).start(1, 6, meter_start=1500).at(1400).stop(6, 2500)
    rows = {r.transaction_id: r for r in newest(script.run(until=3000)).values()}
    assert Flag.CLOCK_SKEW in rows["5"].flags and Flag.CLOCK_SKEW not in rows["6"].flags


# --- the rule alone ----------------------------------------------------------------------------------------

LIMIT_MS = LIMIT * 1000


@pytest.mark.parametrize(("frames", "lag"), [
    pytest.param([(0, 0)], 0, id="one_live_frame"),
    pytest.param([(1000_000, 3600_000)], None, id="one_old_frame_is_no_evidence"),
    pytest.param([(0, 3600_000), (60_000, 3600_000)], 3600_000, id="same_lag_a_minute_apart_is_the_clock"),
    pytest.param([(0, 3600_000), (10_000, 3600_000)], None, id="same_lag_seconds_apart_could_be_a_queue"),
    pytest.param([(0, 7200_000), (500, 3600_000), (1000, 60_000)], 60_000, id="a_queue_flushed_then_a_live_frame"),
    pytest.param([(0, 7200_000), (500, 3600_000), (40_000, 1800_000)], None, id="a_queue_whose_lags_shrink"),
    pytest.param([(0, -5 * 3600_000)], -5 * 3600_000, id="ahead_is_never_a_queue"),
    pytest.param([(0, 40 * 24 * 3600_000)], 40 * 24 * 3600_000, id="older_than_any_queue_is_the_clock"),
    pytest.param([(0, 3600_000), (60_000, 3600_000), (70_000, 0)], 0, id="synced_right_again"),
])
def test_what_frames_show_of_the_clock(frames: list[tuple[int, int]], lag: int | None) -> None:
    state = clock.ClockState()
    for gw_ms, frame_lag in frames:
        clock.observe(state, gw_ms, gw_ms - frame_lag, LIMIT_MS)
    assert state.lag_ms == lag


@pytest.mark.parametrize(("start", "stop", "clocks", "expected"), [
    # (charger ms, gateway ms), (charger ms, gateway ms), (clock at start, clock at stop), (duration, gateway?, skew?)
    pytest.param((0, 0), (600_000, 600_000), (None, None), (600.0, False, False), id="live_right"),
    pytest.param((0, 5000_000), (3600_000, 5001_000), (0, 0), (3600.0, False, False), id="queued_right"),
    pytest.param((0, 10_800_000), (600_000, 11_400_000), (10_800_000, 10_800_000), (600.0, True, True), id="live_behind"),
    pytest.param((0, 20_000_000), (3600_000, 20_001_000), (10_800_000, 10_800_000), (3600.0, False, True),
                 id="queued_on_a_clock_behind"),
    pytest.param((0, 0), (11_400_000, 600_000), (0, -10_800_000), (600.0, True, True), id="ahead_at_the_stop"),
    pytest.param((0, 10_800_000), (10_200_000 + 600_000, 600_000 + 10_800_000), (10_800_000, 0), (600.0, True, True),
                 id="synced_between"),
    pytest.param((600_000, 600_000), (0, 601_000), (None, None), (1.0, True, False), id="stop_before_start"),
    pytest.param((0, 10_800_000), (600_000, 11_400_000), (0, 0), (600.0, True, True), id="own_frames_behind_clock_right"),
    pytest.param((0, 10_800_000), (600_000, 10_801_000), (0, 0), (600.0, False, False), id="a_burst_is_a_queue"),
])
def test_how_a_session_is_timed(start: tuple[int, int], stop: tuple[int, int], clocks: tuple[int | None, int | None],
                                expected: tuple[float, bool, bool]) -> None:
    timing = clock.session_timing(start[0], start[1], clocks[0], stop[0], stop[1], clocks[1], stop[1], LIMIT_MS)
    assert (timing.duration_s, timing.from_gateway, timing.skew) == expected


# --- properties --------------------------------------------------------------------------------------------

FAST = settings(max_examples=120, deadline=None, database=None)


@FAST
@given(age=st.integers(0, 20 * 24 * HOUR), length=st.integers(60, 12 * HOUR), power_kw=st.integers(1, 150),
       live=st.sampled_from(["status_before", "status_after", "none", "connected_only"]),
       flush_s=st.floats(0.05, 5.0))
def test_a_queue_of_any_age_and_length_keeps_the_meters_energy(age: int, length: int, power_kw: int, live: str,
                                                                  flush_s: float) -> None:
    """Whatever the queue's age (up to weeks), the session's length and power, and what live frames surround it:
    the energy is meterStop - meterStart and the duration the charger's, never withheld, never skew."""
    meter_start, wh = 5_000_000, power_kw * length * 1000 // 3600
    now = 40 * 24 * HOUR
    script = Script()
    if live == "connected_only":
        script.at(now).connected("c9")
    elif live == "status_before":
        script.at(now).status(1, "Available")
    stopped = now - age
    script.at(now + 1).start(1, 77, meter_start=meter_start, ts=iso(stopped - length))
    script.at(now + 1 + flush_s).stop(77, meter_start + wh, ts=iso(stopped))
    if live == "status_after":
        script.at(now + 2 + flush_s).status(1, "Available")
    session = only_session(script.run(CorrelatorConfig.defaults(max_power_w=200_000), until=now + 10 * HOUR))
    assert (session.energy_wh, session.duration_s) == (float(wh), float(length))
    assert not SKEW_FLAGS & set(session.flags)


@FAST
@given(offset=st.integers(-48 * HOUR, 48 * HOUR), length=st.integers(120, 4 * HOUR), statuses=st.booleans())
def test_a_clock_off_by_anything_keeps_the_meters_energy_and_is_flagged_beyond_the_limit(offset: int, length: int,
                                                                                           statuses: bool) -> None:
    """Every frame live, stamped by a clock ``offset`` seconds off: flagged exactly when beyond the limit; energy and
    duration are the session's either way."""
    script = Script()
    if statuses:
        script.at(0).status(1, "Charging", ts=iso(offset))
    script.at(1).start(1, 5, meter_start=1000, ts=iso(1 + offset))
    script.at(1 + length).stop(5, 1000 + length, ts=iso(1 + length + offset))  # 3.6 kW
    session: Session = only_session(script.run(until=length + 5000))
    assert session.energy_wh == float(length) and session.duration_s == float(length)
    assert (Flag.CLOCK_SKEW in session.flags) is (abs(offset) > LIMIT)
