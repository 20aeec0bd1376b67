"""Session properties against SESSIONS.md, with hypothesis: energy bounds, resends that change nothing,
late stops that lose nothing, content that never raises, replays that give the same rows.

Conversations are plans of timed actions on a :class:`Script` (sorted by time, then rendered), so a late
stop can arrive while later sessions run. ``max_examples`` stay modest: the file runs in seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import Session
from tests.processors.script import T0_MS, Script, energy, iso, newest, sessions
from tests.processors.test_sessions_adversarial import play

HOUR = 3600
WINDOW = 60
MAX_POWER_W = 22_000.0  # an AC charger: the plausibility rule bites on random conversations
CONFIG = CorrelatorConfig.defaults(max_power_w=MAX_POWER_W, max_session_age_ms=6 * HOUR * 1000)
TOLERANCE_WH = 1000.0
TAGS = ["TAG-A", "TAG-B", "04E91C2A", ""]
FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- plans ---------------------------------------------------------------------------------------

class Plan:
    """Timed actions; ``starts`` maps a transaction id to the gateway second of its StartTransaction."""

    def __init__(self) -> None:
        self.actions: list[tuple[float, int, Callable[[Script], Any]]] = []
        self.starts: dict[str, float] = {}

    def add(self, at: float, action: Callable[[Script], Any]) -> None:
        self.actions.append((at, len(self.actions), action))

    def script(self) -> Script:
        script = Script("CP-P")
        for at, _, action in sorted(self.actions, key=lambda a: (a[0], a[1])):
            script.at(at)
            action(script)
        return script

    def __repr__(self) -> str:  # what a failing example sent, frame by frame
        lines = [f"{(e.gateway_ts_ms - T0_MS) / 1000:>9.1f}s {e.direction} {e.frame}" for e in self.script().envelopes]
        return "Plan(\n" + "\n".join(lines) + f"\n starts={self.starts})"

    @property
    def end(self) -> float:
        return max(at for at, _, _ in self.actions)


def _register_text(wh: float, kwh: bool) -> dict[str, Any]:
    return energy(f"{wh / 1000:.1f}", "kWh") if kwh else energy(int(wh))


@st.composite
def conversations(draw: st.DrawFn, *, real_stops: bool = False, glitches: bool = True) -> Plan:
    """Sequential sessions on connectors 1 and 2 of one charger: starts, samples (Wh or kWh, sometimes with
    a dropout, a reset or a dip), endings with or without a stop, late stops, odd meterStops."""
    plan = Plan()
    t = 0.0
    register = float(draw(st.integers(0, 5_000_000)))
    for n in range(draw(st.integers(1, 4))):
        tx = 100 + n
        connector = draw(st.integers(1, 2))
        duration = draw(st.integers(30, 4 * HOUR))
        plausible = MAX_POWER_W * duration / 3600
        delta = float(int(draw(st.one_of(st.floats(0, plausible), st.floats(0, 50 * plausible + 1_000_000)))))
        tag = draw(st.sampled_from(TAGS))
        start, end = t, t + duration
        plan.add(start, lambda s, c=connector: s.status(c, "Preparing"))
        plan.add(start + 1, lambda s, c=connector, tx=tx, m=register, tag=tag: s.start(c, tx, meter_start=m, id_tag=tag, ts=iso(s.now)))
        plan.starts[str(tx)] = start + 1
        plan.add(start + 2, lambda s, c=connector: s.status(c, "Charging"))
        kwh = draw(st.booleans())
        count = draw(st.integers(0, 4))
        for k in range(count):
            frac = (k + 1) / (count + 1)
            value = register + delta * frac
            glitch = draw(st.sampled_from(["none"] * 5 + ["dropout", "reset", "dip"])) if glitches else "none"
            if glitch == "dropout":
                value = 0.0
            elif glitch == "reset":
                value = delta * frac
            elif glitch == "dip":
                value = max(0.0, value - 50)
            at = start + 2 + frac * (duration - 3)
            named = draw(st.booleans()) or real_stops
            plan.add(at, lambda s, c=connector, tx=tx, v=value, kwh=kwh, named=named:
                     s.meter(c, tx if named else None, _register_text(v, kwh)))
        meter_stop: Any = register + delta
        if not real_stops:
            meter_stop = draw(st.sampled_from([meter_stop, meter_stop, -1, 1e12, meter_stop + 0.5, "omit"]))
        skew = draw(st.sampled_from([0, 0, 0, -2 * HOUR, 3 * HOUR]))
        endings = ["status_then_stop", "stop_then_status"] if real_stops else [
            "status_then_stop", "stop_then_status", "available_no_stop", "nothing", "late_stop", "invalid_id_stop"]
        ending = draw(st.sampled_from(endings))

        reason = draw(st.sampled_from([None, "Local", "EVDisconnected", "Remote"]))

        def stop(s: Script, tx: int = tx, m: Any = meter_stop, at: float = end, skew: float = skew,
                 reason: str | None = reason) -> None:
            s.stop(tx, 0 if m == "omit" else m, ts=iso(at + skew), omit_meter=m == "omit", reason=reason)

        if ending == "status_then_stop":
            plan.add(end - 1, lambda s, c=connector: s.status(c, "Finishing"))
            plan.add(end, stop)
        elif ending == "stop_then_status":
            plan.add(end, stop)
            plan.add(end + draw(st.integers(0, 2 * WINDOW)), lambda s, c=connector: s.status(c, "Finishing"))
        elif ending == "available_no_stop":
            plan.add(end, lambda s, c=connector: s.status(c, "Available"))
        elif ending == "late_stop":
            plan.add(end, lambda s, c=connector: s.status(c, "Available"))
            plan.add(end + draw(st.integers(WINDOW + 1, 6 * HOUR)), stop)
        elif ending == "invalid_id_stop":
            plan.add(end - 1, lambda s, c=connector: s.status(c, "Finishing"))
            plan.add(end, lambda s, m=meter_stop, at=end: s.stop(-1, 0 if m == "omit" else m, ts=iso(at)))
        plan.add(end + 5, lambda s, c=connector: s.status(c, "Available"))
        register += delta
        t = end + draw(st.integers(10, 3 * HOUR))
    return plan


def check_rows(events: list, plan: Plan | None = None) -> None:
    """Energy never negative or NaN, never above max power x max(charger, gateway duration) + 1 kWh."""
    for row in sessions(events):
        assert row.energy_wh is None or (math.isfinite(row.energy_wh) and row.energy_wh >= 0), row
        if plan is None or row.energy_wh is None or row.transaction_id not in plan.starts:
            continue
        charger_s = 0.0
        if row.started_at is not None and row.stopped_at is not None:
            charger_s = max(0.0, (row.stopped_at - row.started_at).total_seconds())
        gateway_s = max(0.0, row.received_at.timestamp() - (T0_MS / 1000 + plan.starts[row.transaction_id]))
        # A late stop's revision keeps its first row's received_at; its duration runs to the stop's arrival.
        gateway_s = max(gateway_s, row.duration_s or 0.0)
        bound = MAX_POWER_W * max(charger_s, gateway_s) / 3600 + TOLERANCE_WH
        assert row.energy_wh <= bound, (row.energy_wh, bound, charger_s, gateway_s, row)


@settings(FAST, max_examples=150)
@given(conversations())
def test_energy_is_never_negative_nan_or_beyond_max_power(plan: Plan) -> None:
    """Energy bound (SESSIONS.md, Energy): every emitted revision, whatever the samples and meterStop say."""
    events = play(plan.script(), CONFIG, until=plan.end + 7 * HOUR)
    check_rows(events, plan)


# --- resends -------------------------------------------------------------------------------------

def _again(envelope: FrameEnvelope, message_id: str, at_ms: int | None = None) -> FrameEnvelope:
    frame = json.loads(envelope.frame)
    frame[1] = message_id
    return envelope.model_copy(update={"frame": json.dumps(frame), "message_id": message_id,
                                       "gateway_ts_ms": envelope.gateway_ts_ms if at_ms is None else at_ms})


def _renumbered(envelopes: list[FrameEnvelope]) -> Script:
    script = Script("CP-P")
    script.envelopes = [e.model_copy(update={"seq": n}) for n, e in enumerate(envelopes)]
    return script


def resent_in_place(script: Script, picks: set[int]) -> Script:
    """Each picked IN CALL resent right after itself (a StartTransaction after its answer, and answered
    again with the same transaction id, as the gateway would)."""
    out: list[FrameEnvelope] = []
    waiting: dict[str | None, FrameEnvelope] = {}
    for n, envelope in enumerate(script.envelopes):
        out.append(envelope)
        if envelope.direction == Direction.IN and n in picks:
            if envelope.action == "StartTransaction":
                waiting[envelope.message_id] = envelope
            else:
                out.append(_again(envelope, f"{envelope.message_id}r"))
        elif envelope.direction == Direction.OUT and envelope.message_id in waiting:
            call = waiting.pop(envelope.message_id)
            out.append(_again(call, f"{call.message_id}r", envelope.gateway_ts_ms))
            out.append(_again(envelope, f"{envelope.message_id}r"))
    return _renumbered(out)


def stops_resent_at_the_end(script: Script, picks: set[int], delays: list[int]) -> Script:
    stops = [e for n, e in enumerate(script.envelopes) if e.action == "StopTransaction" and e.direction == Direction.IN and n in picks]
    last = script.envelopes[-1].gateway_ts_ms
    out = list(script.envelopes)
    for n, (envelope, delay) in enumerate(zip(stops, sorted(delays))):
        out.append(_again(envelope, f"resent{n}", last + delay * 1000))
    return _renumbered(out)


def _kept(events: list) -> dict[str, tuple[Any, ...]]:
    return {key: (row.energy_wh, row.stop_reason, row.stopped_at) for key, row in newest(events).items()}


@settings(FAST, max_examples=150)
@given(conversations(real_stops=True), st.sets(st.integers(0, 80)))
def test_frames_resent_in_place_change_no_row(plan: Plan, picks: set[int]) -> None:
    """Resends (SESSIONS.md, Identity: "a duplicate never produces a new version"): any IN frame of a
    finished conversation resent in place leaves every session's newest row as it was."""
    script = plan.script()
    until = plan.end + 2 * WINDOW
    expected = _kept(play(script, CONFIG, until=until))
    assert _kept(play(resent_in_place(script, picks), CONFIG, until=until)) == expected


@FAST
@given(conversations(real_stops=True), st.sets(st.integers(0, 80)), st.lists(st.integers(0, 24 * HOUR), min_size=4, max_size=4))
def test_stops_resent_at_the_end_change_no_row(plan: Plan, picks: set[int], delays: list[int]) -> None:
    """Resends: stops resent after the whole conversation, up to a day later, find their sessions and
    change no newest row."""
    script = plan.script()
    resent = stops_resent_at_the_end(script, picks, delays)
    until = resent.envelopes[-1].gateway_ts_ms / 1000 - T0_MS / 1000 + 2 * WINDOW
    expected = _kept(play(script, CONFIG, until=until))
    assert _kept(play(resent, CONFIG, until=until)) == expected


# --- late stops ----------------------------------------------------------------------------------

@st.composite
def guessed_then_stopped(draw: st.DrawFn) -> tuple[Plan, dict[str, Any]]:
    """One session closed on a guess (Available, the next start on its connector, or age), then its real
    stop, plausible and consistent with its samples, arriving later."""
    plan = Plan()
    connector = draw(st.integers(1, 2))
    tag = draw(st.sampled_from(TAGS))
    meter_start = float(draw(st.integers(0, 10_000_000)))
    duration = draw(st.integers(60, 50 * 60))
    delta = float(int(draw(st.floats(0, 0.8 * MAX_POWER_W * (duration - 2) / 3600))))
    guess = draw(st.sampled_from(["available", "next_transaction", "timeout"]))
    plan.add(0, lambda s: s.status(connector, "Preparing"))
    plan.add(1, lambda s: s.start(connector, 5, meter_start=meter_start, id_tag=tag, ts=iso(1)))
    plan.starts["5"] = 1
    plan.add(2, lambda s: s.status(connector, "Charging"))
    count = draw(st.integers(0, 3))
    for k in range(count):
        frac = (k + 1) / (count + 1)
        at = 1 + frac * (duration - 1)
        plan.add(at, lambda s, v=round(meter_start + delta * frac): s.meter(connector, 5, energy(v)))
    closed_at = {"available": duration + 1, "next_transaction": duration + 30, "timeout": HOUR + 1}[guess]
    if guess == "available":
        plan.add(duration + 1, lambda s: s.status(connector, "Available"))
    elif guess == "next_transaction":
        plan.add(duration + 30, lambda s: s.start(connector, 6, meter_start=meter_start + delta, ts=iso(s.now)))
    arrival = closed_at + WINDOW + draw(st.integers(1, 12 * HOUR))
    plan.add(arrival, lambda s: s.stop(5, meter_start + delta, reason="Remote", ts=iso(duration)))
    return plan, {"connector": connector, "tag": tag, "delta": delta, "guess": guess, "duration": duration}


@FAST
@given(guessed_then_stopped())
def test_a_late_real_stop_never_loses_information(case: tuple[Plan, dict[str, Any]]) -> None:
    """Late stops (SESSIONS.md, Identity): the newest revision has the stop's meterStop energy (plausible and
    consistent with the samples here) and keeps the idTag, connector and start of the guessed row."""
    plan, facts = case
    config = CorrelatorConfig.defaults(max_power_w=MAX_POWER_W, max_session_age_ms=HOUR * 1000)
    events = play(plan.script(), config, until=plan.end + 2 * WINDOW)
    check_rows(events, plan)
    rows = [r for r in sessions(events) if r.transaction_id == "5"]
    guessed = rows[0]
    assert guessed.closed_by == facts["guess"] and Flag.STOP_MISSING in guessed.flags
    assert {r.session_id for r in rows} == {guessed.session_id}
    last = newest(events)[guessed.session_id]
    assert last.closed_by == "stop_transaction" and Flag.LATE_STOP in last.flags
    assert last.energy_wh == facts["delta"], (last, facts)
    assert (last.id_tag, last.connector_id, last.started_at) == (facts["tag"], facts["connector"], guessed.started_at)
    assert last.started_at is not None and last.stop_reason == "Remote"


# --- content -------------------------------------------------------------------------------------

SURROGATES = ["\ud800", "a\udfffb", "\udbff\udc00x"]
ODD_STRINGS = ["²", "١٢", "1e3", "-1", "0", "12", "NaN", "Infinity", "", "10000-01-01T00:00:00Z",
               "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "2025-11-24T16:00:00Z", "2025-11-24T18:00:00", *SURROGATES]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(2**31 - 2, 2**80), st.integers(-(2**80), -(2**31)),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 1e30, 0.5, -0.0]),
    st.text(max_size=8), st.sampled_from(ODD_STRINGS),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=6)
ids = st.one_of(st.sampled_from([1, 2, 5, 77, 100, 101, -1, 0]), json_values)
times = st.one_of(st.sampled_from(ODD_STRINGS), st.integers(0, 4 * HOUR).map(iso), json_values)
sampled_value = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "value": st.one_of(json_values, st.integers(0, 10**7).map(str), st.sampled_from(["12345.6", "0.0", "-5", "1e400"])),
    "unit": st.one_of(st.sampled_from(["Wh", "kWh", "W", "kW", "Percent", ""]), json_values),
    "measurand": st.one_of(st.sampled_from(["Energy.Active.Import.Register", "Power.Active.Import", "SoC", "Voltage"]), json_values),
    "phase": st.one_of(st.sampled_from(["L1", "L2", "L3", "N", "L1-N"]), json_values),
    "context": st.one_of(st.sampled_from(["Sample.Periodic", "Transaction.End", "Transaction.Begin"]), json_values),
    "location": st.one_of(st.sampled_from(["Outlet", "Inlet", "EV"]), json_values),
    "format": st.one_of(st.sampled_from(["Raw", "SignedData"]), json_values),
}))
meter_values = st.one_of(json_values, st.lists(st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "timestamp": times, "sampledValue": st.one_of(json_values, st.lists(sampled_value, max_size=3))})), max_size=3))
KEYS: dict[str, dict[str, Any]] = {
    "StartTransaction": {"connectorId": ids, "idTag": json_values, "meterStart": json_values, "timestamp": times,
                         "reservationId": json_values},
    "StopTransaction": {"transactionId": ids, "idTag": json_values, "meterStop": json_values, "timestamp": times,
                        "reason": json_values, "transactionData": meter_values},
    "MeterValues": {"connectorId": ids, "transactionId": ids, "meterValue": meter_values},
    "StatusNotification": {"connectorId": ids,
                           "errorCode": st.one_of(st.sampled_from(["NoError", "GroundFailure", "Error"]), json_values),
                           "status": st.one_of(st.sampled_from(["Available", "Charging", "Finishing", "Faulted"]), json_values),
                           "timestamp": times, "info": json_values, "vendorId": json_values, "vendorErrorCode": json_values},
    "BootNotification": {"chargePointVendor": json_values, "chargePointModel": json_values, "firmwareVersion": json_values},
}
message_ids = st.sampled_from(["m1", "m2", "m3", "m4", "m5", "f1", "f2"])
calls = st.sampled_from(sorted(KEYS)).flatmap(lambda action: st.tuples(
    st.just(action), message_ids, st.one_of(st.fixed_dictionaries({}, optional=KEYS[action]), json_values)))


def _fuzz_call(item: tuple[str, str, Any]) -> Callable[[Script], Any]:
    action, message_id, payload = item
    return lambda s: s.frame([2, message_id, action, payload], action=action, message_id=message_id)


def _fuzz_answer(item: tuple[str, Any]) -> Callable[[Script], Any]:
    message_id, conf = item
    return lambda s: s.frame([3, message_id, conf], action="StartTransaction", message_type=MessageType.CALL_RESULT,
                             direction=Direction.OUT, message_id=message_id)


fuzz = st.one_of(
    calls.map(_fuzz_call),
    st.tuples(message_ids, st.one_of(st.fixed_dictionaries({"transactionId": ids}), json_values)).map(_fuzz_answer),
    message_ids.map(lambda m: lambda s: s.frame([4, m, "InternalError", "", {}], action="StartTransaction",
                                                message_type=MessageType.CALL_ERROR, direction=Direction.OUT, message_id=m)),
    st.sampled_from(["[2,", "[]", "[2, \"x\"]", "{}", "[2, \"m9\", \"StopTransaction\", 5]"]).map(
        lambda raw: lambda s: s.frame(raw, action="StopTransaction")),
)


@st.composite
def fuzzed(draw: st.DrawFn) -> Plan:
    """A conversation with odd frames of the five actions (and answers) at random times among its frames."""
    plan = draw(conversations())
    for action in draw(st.lists(fuzz, min_size=1, max_size=10)):
        plan.add(draw(st.floats(0, plan.end + 10)), action)
    return plan


@settings(FAST, max_examples=100)
@given(fuzzed())
def test_feed_never_raises_and_every_row_serialises(plan: Plan) -> None:
    """Content (DESIGN.md: transaction messages are never refused for content): random JSON in every field of
    StartTransaction / StopTransaction / MeterValues / StatusNotification / BootNotification never makes
    feed() raise; the state survives JSON between frames; every event serialises."""
    events = play(plan.script(), CONFIG, until=plan.end + 7 * HOUR)
    for event in events:
        json.loads(event.model_dump_json())
    check_rows(events)


# --- replays -------------------------------------------------------------------------------------

@FAST
@given(st.one_of(conversations(), fuzzed()))
def test_a_replay_gives_the_same_rows(plan: Plan) -> None:
    """Identity (SESSIONS.md): session_id is stable across replays: the same frames twice give identical
    records, and so does keeping the state in memory instead of passing it through JSON."""
    script = plan.script()
    until = plan.end + 7 * HOUR
    first = [e.model_dump() for e in script.run(CONFIG, until=until)]
    again = [e.model_dump() for e in script.run(CONFIG, until=until)]
    in_memory = [e.model_dump() for e in script.run(CONFIG, until=until, roundtrip_state=False)]
    assert first == again
    assert first == in_memory
    for row in (r for r in first if "session_id" in r):
        assert Session.model_validate(row).session_id == row["session_id"] and len(row["session_id"]) == 16


def test_a_late_stop_whose_clock_says_before_the_start_keeps_its_energy_over_the_gateway_duration() -> None:
    """Found by the energy property: closed by Available, then the real stop 4 minutes later stamped 2 hours
    before the start. The revision takes meterStop; its duration (and so the energy bound) is the gateway's
    until the stop arrived, not until the first row."""
    script = Script("CP-P")
    script.at(0).status(1, "Preparing").at(1).start(1, 100, id_tag="TAG-A", meter_start=0.0).at(2).status(1, "Charging")
    script.at(30).status(1, "Available").at(35).status(1, "Available")
    script.at(253).stop(100, 1544.0, ts="2025-11-24T14:00:30Z")
    rows = [e for e in play(script, CONFIG, until=253 + 7 * HOUR) if isinstance(e, Session)]
    assert [(r.revision, r.closed_by, r.energy_wh, r.duration_s) for r in rows] == [
        (0, "available", None, 89.0), (1, "stop_transaction", 1544.0, 252.0)]
    assert {"late_stop", "stop_before_start", "duration_from_gateway_clock"} <= set(rows[1].flags)
