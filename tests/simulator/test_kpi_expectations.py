"""The KPI ground truth and its checker (simulator.incidents, simulator.kpi_expectations): what a
charger did becomes outages by KPIS.md's rule, rows that say the same pass, rows that do not are
named; attempt outcomes follow the contract's precedence; the rates and the uptime add up."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from simulator import incidents
from simulator import kpi_expectations as kpi
from simulator.incidents import (AttemptKind, Behaviours, ExpectedAttempt, ExpectedConnection, ExpectedDown, ExpectedPort,
                                 IdleEnd)
from simulator.expectations import MismatchKind
from simulator.kpi_expectations import Tolerance, Truth
from simulator.settings import SimulatorSettings

T = 1_764_000_000_000  # ms
S = 1000


def truth(*, connections=(), downs=(), ports=((1, 0),), attempts=(), cp="CP") -> Truth:
    return Truth(connections=[ExpectedConnection(cp, *c) for c in connections],
                 downs=[ExpectedDown(cp, *d) for d in downs],
                 ports=[ExpectedPort(cp, n, T + at) for n, at in ports], attempts=list(attempts))


def row(start: int, end: int | None, cause: str, connector: int = 1, error_code: str = "", cp: str = "CP") -> dict:
    iso = lambda ms: None if ms is None else kpi._iso(T + ms).replace("T", " ").removesuffix("Z")  # noqa: E731 (ClickHouse text)
    return {"charge_point_id": cp, "connector_id": connector, "started_at": iso(start), "ended_at": iso(end), "cause": cause,
            "error_code": error_code}


# --- outages by the rule --------------------------------------------------------------------------------

CASES = [
    # (what the charger did, the outages of port 1: (start s, end s | None, causes))
    ("online all along", dict(connections=[(T, None)]), []),
    ("a drop, then a reconnect", dict(connections=[(T, T + 10 * S, "dropped"), (T + 40 * S, None)]),
     [(10, 40, {"offline"})]),
    ("the run ends: offline until further notice", dict(connections=[(T, T + 10 * S, "run_end")]), [(10, None, {"offline"})]),
    ("a fault", dict(connections=[(T, None)], downs=[(1, "Faulted", T + 5 * S, T + 9 * S, "GroundFailure")]),
     [(5, 9, {"faulted"})]),
    ("another port's fault is not this one's", dict(connections=[(T, None)], downs=[(2, "Faulted", T + 5 * S, T + 9 * S)]), []),
    ("the station's maintenance is every port's", dict(connections=[(T, None)], downs=[(0, "Unavailable", T + 5 * S, T + 9 * S)]),
     [(5, 9, {"station_unavailable"})]),
    ("overlapping causes make one outage, named by the first",
     dict(connections=[(T, T + 20 * S, "closed"), (T + 30 * S, None)], downs=[(1, "Unavailable", T + 5 * S, T + 25 * S)]),
     [(5, 30, {"unavailable"})]),
    ("a status queued offline, sent a few ms after the reconnect, joins the outage",
     dict(connections=[(T, T + 20 * S, "closed"), (T + 30 * S, None)], downs=[(1, "Faulted", T + 30 * S + 5, T + 40 * S)]),
     [(20, 40, {"offline"})]),
    ("causes beginning together may carry either name",
     dict(connections=[(T, None)], downs=[(1, "Faulted", T + 5 * S, T + 9 * S), (0, "Faulted", T + 5 * S + 100, T + 8 * S)]),
     [(5, 9, {"faulted", "station_faulted"})]),
    ("a port counts from its first report", dict(connections=[(T, T + 10 * S, "dropped"), (T + 40 * S, None)],
                                                 ports=[(1, 20 * S)]), [(20, 40, {"offline"})]),
    ("what ended before the first report is not the port's",
     dict(connections=[(T, None)], downs=[(0, "Faulted", T, T + 50)], ports=[(1, 1 * S)]), []),
    ("still Faulted at the end", dict(connections=[(T, None)], downs=[(1, "Faulted", T + 5 * S, None)]), [(5, None, {"faulted"})]),
]


@pytest.mark.parametrize("did,outages", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_outages_follow_the_rule(did: dict, outages: list) -> None:
    got = [o for o in kpi.expected_outages(truth(**did)) if o.connector_id == 1]
    assert [((o.start_ms - T) / S, None if o.end_ms is None else (o.end_ms - T) / S, set(o.causes)) for o in got] == outages


def test_the_fault_that_began_the_outage_names_its_error_code_in_16_only() -> None:
    down = dict(connections=[(T, None)], downs=[(1, "Faulted", T + 5 * S, T + 9 * S, "GroundFailure", "G-1")])
    assert [o.error_code for o in kpi.expected_outages(truth(**down))] == ["GroundFailure"]
    t = truth(**down)
    t.downs[0].ocpp_version = "ocpp2.0.1"
    assert [o.error_code for o in kpi.expected_outages(t)] == [""]


def test_rows_that_say_what_happened_pass_and_every_difference_is_named() -> None:
    did = truth(connections=[(T, T + 10 * S, "dropped"), (T + 40 * S, T + 90 * S, "run_end")],
                downs=[(1, "Faulted", T + 50 * S, T + 60 * S, "GroundFailure")])
    good = [row(10 * S + 300, 40 * S - 200, "offline"), row(50 * S + 10, 60 * S, "faulted", error_code="GroundFailure"),
            row(90 * S, None, "offline")]
    assert kpi.outage_mismatches(did, good) == []
    # Split in two rows a few ms apart: still the same outage.
    split = good[:2] + [row(90 * S, 95 * S, "offline"), row(95 * S + 20, None, "offline")]
    assert kpi.outage_mismatches(did, split) == []
    bad = [row(10 * S, 45 * S, "offline"), row(50 * S, 60 * S, "unavailable", error_code=""), row(70 * S, 71 * S, "faulted")]
    problems = kpi.outage_mismatches(did, bad)
    assert [(p.kind, p.key.split("@")[0]) for p in problems] == [
        (MismatchKind.DIFFERS, "CP/1"), (MismatchKind.DIFFERS, "CP/1"), (MismatchKind.MISSING, "CP/1"),
        (MismatchKind.UNEXPECTED, "CP/1")]
    assert "ended_at" in problems[0].detail and "cause 'unavailable'" in problems[1].detail
    assert "error_code" in problems[1].detail and str(problems[2]).startswith("port_outages: missing CP/1@")


@pytest.mark.parametrize("truth_gap_ms,rows_gap_ms,passes", [
    (998, 1006, True),  # the simulator saw 0.998 s (one outage), the gateway 1.006 s (two): either is right
    (1003, 995, True),  # ... and the other way round
    (600, 600, True),
    (1400, 1400, True),
    (300, 2500, False),  # far from the limit: one outage is not two
    (2500, 300, False),
])
def test_a_gap_near_the_merge_limit_may_fall_either_side_of_it(truth_gap_ms: int, rows_gap_ms: int, passes: bool) -> None:
    """A Faulted that ends, then a drop about a second later: two outages, or one, by which clock."""
    assert (_fault_then_drop_mismatches(truth_gap_ms, rows_gap_ms) == []) is passes


def _fault_then_drop_mismatches(truth_gap_ms: int, rows_gap_ms: int) -> list:
    did = truth(connections=[(T, T + 5 * S + truth_gap_ms, "dropped"), (T + 20 * S, None)],
                downs=[(1, "Faulted", T + 3 * S, T + 5 * S, "GroundFailure")])
    if rows_gap_ms <= 1000:  # the worker's rejoin rule (REJOIN_MS): the offline continues the outage
        rows = [row(3 * S, 20 * S, "faulted", error_code="GroundFailure")]
    else:
        rows = [row(3 * S, 5 * S, "faulted", error_code="GroundFailure"), row(5 * S + rows_gap_ms, 20 * S, "offline")]
    return kpi.outage_mismatches(did, rows)


@given(st.integers(0, 4000), st.integers(-300, 300))
def test_rows_by_the_rejoin_rule_pass_whatever_the_two_clocks_make_of_a_gap(truth_gap_ms: int, skew_ms: int) -> None:
    """The worker's rule applied to the gap as the gateway measured it (a few hundred ms off at most)."""
    assert _fault_then_drop_mismatches(truth_gap_ms, max(0, truth_gap_ms + skew_ms)) == []


@st.composite
def charger_lives(draw):
    """A charger's connections (one socket at a time) and its ports' down intervals, in whole seconds."""
    cuts = sorted(draw(st.lists(st.integers(1, 500), min_size=0, max_size=8, unique=True)))
    if len(cuts) % 2:
        cuts.append(cuts[-1] + draw(st.integers(1, 50)))
    bounds = [0, *cuts]
    connections = [(T + bounds[i] * S, T + bounds[i + 1] * S, "dropped") for i in range(0, len(bounds) - 1, 2)]
    connections.append((T + bounds[-1] * S, None) if len(bounds) % 2 else (T + 600 * S, None))
    downs = []
    for connector in (0, 1, 2):
        t = 0
        for start, length in draw(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), max_size=4)):
            t += start
            status = draw(st.sampled_from(("Faulted", "Unavailable")))
            downs.append((connector, status, T + t * S, T + (t + length) * S))
            t += length
    return truth(connections=connections, downs=downs, ports=[(1, 0), (2, 0)])


def _measure(intervals: list[tuple[int, int]]) -> int:
    covered, end = 0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            covered += b - a
            end = b
        elif b > end:
            covered += b - end
            end = b
    return covered


@given(charger_lives())
def test_outages_are_disjoint_cover_every_cause_and_their_own_rows_pass(did: Truth) -> None:
    horizon = T + 2000 * S
    outages = kpi.expected_outages(did, Tolerance(merge_gap_s=0))
    for port in (1, 2):
        mine = sorted((o for o in outages if o.connector_id == port), key=lambda o: o.start_ms)
        assert all(a.end_ms is not None and a.end_ms < b.start_ms for a, b in zip(mine, mine[1:]))  # disjoint, ordered
        spans = [(s.start_ms, s.end_ms or horizon) for s in kpi.offline_spans(did.connections)]
        spans += [(d.started_ms, d.ended_ms or horizon) for d in did.downs if d.connector_id in (0, port)]
        assert sum((o.end_ms or horizon) - o.start_ms for o in mine) == _measure(spans)  # a minute is never counted twice
    rows = [row(o.start_ms - T, None if o.end_ms is None else o.end_ms - T, min(o.causes, key=kpi.CAUSE_ORDER.index),
                o.connector_id, o.error_code) for o in outages]
    assert kpi.outage_mismatches(did, rows, Tolerance(merge_gap_s=0)) == []


# --- attempts ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delivered,stopped,reason,faulted,failure", [
    (True, True, "Local", False, ""),
    (True, True, "", False, ""),  # a missing reason is Local
    (True, True, "Remote", False, ""),
    (True, True, "EVDisconnected", False, ""),
    (True, True, "StoppedByEV", False, ""),
    (True, True, "EmergencyStop", False, "stop_emergency_stop"),
    (True, True, "PowerLoss", False, "stop_power_loss"),
    (True, True, "Other", True, "faulted"),
    (True, False, "", False, "stop_missing"),
    (False, True, "Local", False, "no_energy"),
    (False, True, "Other", True, "no_energy"),
])
def test_transaction_failures_in_the_contracts_order(delivered: bool, stopped: bool, reason: str, faulted: bool,
                                                      failure: str) -> None:
    assert incidents.transaction_failure(delivered=delivered, stopped=stopped, reason=reason, into_faulted=faulted) == failure


@given(st.booleans(), st.booleans(), st.sampled_from(["", "Local", "Remote", "EVDisconnected", "StoppedByEV", "EmergencyStop",
                                                       "PowerLoss", "Other", "DeAuthorized", "SOCLimitReached"]), st.booleans())
def test_a_transaction_ends_ok_only_when_it_delivered_stopped_well_and_did_not_fault(delivered, stopped, reason, faulted) -> None:
    failure = incidents.transaction_failure(delivered=delivered, stopped=stopped, reason=reason, into_faulted=faulted)
    ok = delivered and stopped and not faulted and (reason or "Local") in incidents.OK_STOP_REASONS
    assert (failure == "") == ok
    assert failure in ("", "no_energy", "faulted", "stop_missing") or (failure.startswith("stop_") and stopped)
    assert failure == failure.lower() and " " not in failure


def attempt(kind=AttemptKind.START_TRANSACTION, at=0, **fields) -> ExpectedAttempt:
    base = dict(connector_id=1, transaction_id="7" if kind == AttemptKind.START_TRANSACTION else "", delivered=True,
                ended_ok=True, first_charging_ms=T + at + 10 * S, stopped_ms=T + at + 60 * S, available_ms=T + at + 90 * S,
                closed=True)
    if kind != AttemptKind.START_TRANSACTION:
        base |= dict(delivered=False, ended_ok=False, first_charging_ms=None, stopped_ms=None, available_ms=None,
                     failure="plugin_no_start" if kind == AttemptKind.PLUGIN_WITHOUT_START else "authorize_no_start",
                     connector_id=1 if kind == AttemptKind.PLUGIN_WITHOUT_START else 0)
    return ExpectedAttempt("CP", kind=kind, started_ms=T + at, **(base | fields))


def attempt_row(a: ExpectedAttempt, **changes) -> dict:
    return {"charge_point_id": a.charge_point_id, "connector_id": a.connector_id, "kind": str(a.kind),
            "transaction_id": a.transaction_id, "id_tag": a.id_tag, "started_at": kpi._iso(a.started_ms + 150),
            "delivered": "true" if a.delivered else "false", "ended_ok": a.ended_ok, "failure": a.failure,
            "start_delay_s": a.start_delay_s} | changes


def test_attempt_rows_are_held_against_what_drivers_did() -> None:
    did = [attempt(), attempt(AttemptKind.PLUGIN_WITHOUT_START, 200 * S),
           attempt(AttemptKind.AUTHORIZE_WITHOUT_START, 600 * S, id_tag="TAG1"),
           attempt(AttemptKind.AUTHORIZE_WITHOUT_START, 1200 * S, id_tag="TAG2")]
    as_of = T + 1300 * S  # the second Authorize is still within its 300 s
    rows = [attempt_row(a) for a in did[:3]]
    assert kpi.attempt_mismatches(Truth(attempts=did), rows, as_of_ms=as_of) == []
    assert kpi.attempt_mismatches(Truth(attempts=did), rows + [attempt_row(did[3])], as_of_ms=as_of) == []  # early is fine
    assert [p.kind for p in kpi.attempt_mismatches(Truth(attempts=did), rows, as_of_ms=as_of + 300 * S)] == [MismatchKind.MISSING]
    wrong = [attempt_row(did[0], ended_ok=False, failure="stop_local", start_delay_s=None), rows[1],
             attempt_row(did[2], started_at=kpi._iso(did[2].started_ms + 5 * S)), attempt_row(did[1], transaction_id="8",
                                                                                              kind="start_transaction")]
    problems = kpi.attempt_mismatches(Truth(attempts=did), wrong, as_of_ms=as_of)
    assert [p.kind for p in problems] == [MismatchKind.DIFFERS, MismatchKind.MISSING, MismatchKind.UNEXPECTED,
                                          MismatchKind.UNEXPECTED]
    assert "ended_ok" in problems[0].detail and "failure" in problems[0].detail and "start_delay_s" in problems[0].detail


def test_an_authorize_near_a_plug_in_may_be_that_drivers_card() -> None:
    """KPIS.md, one driver, one attempt: a card shown within the window of a plug-in of the charger may be taken as
    that driver's (no attempt of its own); one far from any plug-in is still missing when it has no row."""
    did = [attempt(AttemptKind.PLUGIN_WITHOUT_START, 200 * S), attempt(AttemptKind.AUTHORIZE_WITHOUT_START, 150 * S),
           attempt(AttemptKind.AUTHORIZE_WITHOUT_START, 2000 * S)]
    rows = [attempt_row(did[0])]
    problems = kpi.attempt_mismatches(Truth(attempts=did), rows, as_of_ms=T + 5000 * S)
    assert [(p.kind, p.key.split("@")[1][:19]) for p in problems] == [(MismatchKind.MISSING, kpi._iso(T + 2000 * S)[:19])]


@pytest.mark.parametrize("stopped,available,blocked", [(60, 90, 30.0), (60, 50, 0.0), (60, None, None), (None, 90, None)])
def test_blocked_time_runs_from_the_stop_to_available(stopped, available, blocked) -> None:
    a = attempt(stopped_ms=None if stopped is None else T + stopped * S,
                available_ms=None if available is None else T + available * S)
    assert kpi.expected_blocked_s(a) == blocked
    rows = [{"charge_point_id": "CP", "transaction_id": "7", "blocked_after_stop_s": blocked}]
    assert kpi.blocked_mismatches(Truth(attempts=[a]), rows) == []
    if stopped is not None:
        off = [{"charge_point_id": "CP", "transaction_id": "7", "blocked_after_stop_s": (blocked or 0) + 10}]
        assert [p.kind for p in kpi.blocked_mismatches(Truth(attempts=[a]), off)] == [MismatchKind.DIFFERS]


def test_rates_and_uptime_add_up() -> None:
    did = [attempt(), attempt(ended_ok=False, failure="stop_power_loss"), attempt(AttemptKind.PLUGIN_WITHOUT_START)]
    rates = kpi.success_rates(did)
    assert (rates.attempts, rates.delivered, rates.ended_ok) == (3, 2, 1)
    assert rates.charge_start_pct == pytest.approx(200 / 3) and rates.charge_end_pct == 50 and rates.session_pct == pytest.approx(100 / 3)
    assert kpi.success_rates([attempt_row(a) for a in did]) == rates
    assert kpi.success_rates([]).session_pct is None
    down = truth(connections=[(T, T + 60 * S, "dropped"), (T + 120 * S, None)], ports=[(1, 0), (2, 30 * S)])
    up = kpi.uptime(down, T - 3600 * S, T + 600 * S)
    assert up[("CP", 1)].period_s == 600 and up[("CP", 1)].outage_s == 60 and up[("CP", 1)].uptime_pct == 90
    assert up[("CP", 2)].period_s == 570 and up[("CP", 2)].uptime_pct == pytest.approx(510 / 570 * 100)


def test_the_truth_survives_its_file(tmp_path) -> None:
    did = [attempt(), attempt(AttemptKind.AUTHORIZE_WITHOUT_START, id_tag="X")]
    t = truth(connections=[(T, T + S, "closed")], downs=[(1, "Faulted", T, T + S, "E")], attempts=did)
    from simulator.charger import Ledger
    ledger = Ledger(connections=t.connections, downs=t.downs, ports=t.ports, attempts=t.attempts)
    import json
    path = tmp_path / "expected.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ledger.expectation_rows()))
    assert kpi.load_truth(path) == t


# --- behaviours -------------------------------------------------------------------------------------------

def test_idle_periods_end_as_the_shares_say() -> None:
    b = Behaviours(idle_fault_share=0.1, maintenance_share=0.2, authorize_only_share=0.1, plugin_only_share=0.1)
    rng = random.Random(4)
    ends = [incidents.plan_idle(rng, b) for _ in range(20_000)]
    for end, share in ((IdleEnd.FAULT, 0.1), (IdleEnd.MAINTENANCE, 0.2), (IdleEnd.AUTHORIZE_ONLY, 0.1),
                       (IdleEnd.PLUGIN_ONLY, 0.1), (IdleEnd.SESSION, 0.5)):
        assert abs(ends.count(end) / len(ends) - share) < 0.015, end
    assert {incidents.plan_idle(rng, Behaviours(idle_fault_share=0)) for _ in range(100)} == {IdleEnd.SESSION}


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**32))
def test_every_idle_draw_is_one_of_the_ends_and_off_means_never(fault, maintenance, authorize, plugin, seed) -> None:
    shares = dict(idle_fault_share=fault, maintenance_share=maintenance, authorize_only_share=authorize, plugin_only_share=plugin)
    if sum(shares.values()) > 1:
        with pytest.raises(ValueError):
            Behaviours(**shares)
        return
    b = Behaviours(**shares)
    rng = random.Random(seed)
    off = {IdleEnd.FAULT: fault, IdleEnd.MAINTENANCE: maintenance, IdleEnd.AUTHORIZE_ONLY: authorize, IdleEnd.PLUGIN_ONLY: plugin}
    for _ in range(50):
        end = incidents.plan_idle(rng, b)
        assert off.get(end, 1) > 0


def test_incidents_are_off_unless_asked_for_and_durations_spread_round_the_mean() -> None:
    rng = random.Random(1)
    assert incidents.plan_offline(rng, Behaviours()) is None and incidents.plan_station_outage(rng, Behaviours()) is None
    assert incidents.blocked_s(rng, Behaviours()) is None
    b = Behaviours(offline_every_s=3600, offline_s=600, offline_drop_share=0.5, station_every_s=7200, blocked_share=1,
                   blocked_s=1000)
    plans = [incidents.plan_offline(rng, b) for _ in range(2000)]
    assert {p.how for p in plans} == {incidents.OfflineHow.CLOSED, incidents.OfflineHow.DROPPED}
    assert all(300 <= p.lasts_s <= 900 for p in plans) and 3000 < sum(p.after_s for p in plans) / len(plans) < 4200
    assert {incidents.plan_station_outage(rng, b).status for _ in range(200)} == {"Unavailable", "Faulted"}
    assert all(500 <= incidents.blocked_s(rng, b) <= 1500 for _ in range(100))


def test_settings_carry_the_behaviours_and_refuse_impossible_shares(monkeypatch) -> None:
    assert SimulatorSettings().behaviours() == Behaviours()  # a plain fleet behaves as before
    monkeypatch.setenv("OCPP_SIMULATOR_OFFLINE_EVERY_S", "7200")
    monkeypatch.setenv("OCPP_SIMULATOR_PLUGIN_ONLY_SHARE", "0.2")
    assert SimulatorSettings().behaviours() == Behaviours(offline_every_s=7200, plugin_only_share=0.2)
    with pytest.raises(ValidationError, match="add up"):
        SimulatorSettings(maintenance_share=0.6, authorize_only_share=0.5)
    with pytest.raises(ValidationError):
        SimulatorSettings(blocked_share=1.5)


@pytest.mark.parametrize("name,snake", [("EmergencyStop", "emergency_stop"), ("PowerLoss", "power_loss"), ("Other", "other"),
                                        ("EVDisconnected", "ev_disconnected"), ("SOCLimitReached", "soc_limit_reached")])
def test_reason_codes(name: str, snake: str) -> None:
    assert incidents.snake(name) == snake


def test_make_run_shows_some_of_each_misbehaviour_within_three_minutes() -> None:
    """``dev``'s defaults (so ``make run``): the expected count of each kind in three real minutes."""
    from ocpp_pipeline.dev import DEV_SIMULATOR_DEFAULTS

    settings = SimulatorSettings(**DEV_SIMULATOR_DEFAULTS)
    b, simulated_s = settings.behaviours(), 180 * settings.time_scale
    connectors = settings.chargers * sum(settings.connector_range()) / 2
    idle_periods = connectors * simulated_s / (settings.idle_mean_s + 4000)  # a session takes ~4000 simulated s
    assert settings.chargers * simulated_s / b.offline_every_s >= 10  # offline periods
    assert settings.chargers / 2 * simulated_s / b.station_every_s >= 3  # station outages (the 1.6 half)
    for share in (b.idle_fault_share, b.maintenance_share, b.authorize_only_share, b.plugin_only_share, b.blocked_share):
        assert idle_periods * share >= 2
