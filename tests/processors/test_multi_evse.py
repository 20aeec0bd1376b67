"""OCPP 2.0.1 stations with several EVSEs (issue #23, classes 5, 7, 8 and 9; SESSIONS.md, OCPP 2.0.1): a
transaction is its id and its EVSE (stations that number transactions per EVSE have "1" open on two EVSEs at
once); later events that omit ``evse`` belong to the one open transaction with that id; seqNo gaps are found per
transaction where the station counts so, however the EVSEs interleave; a session known only from its Ended
starts where the Ended's meter series says; resends and replays after the Ended change nothing and are flagged.
Table tests and hypothesis properties (a station of 1-3 EVSEs, per-EVSE or unique ids, interleaved)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from schemas.records import EnergySource, Session
from tests.processors.script import T0_MS, iso
from tests.processors.test_ocpp201 import Station, newest, only, register

WRONG = {Flag.METER_RESET, Flag.METER_REBASED, Flag.DUPLICATE_STOP_CONFLICT, Flag.ENERGY_MISMATCH, Flag.TRANSACTION_ID_REUSED,
         Flag.SEQ_NO_GAP, Flag.SEQ_NO_REPEATED, Flag.DUPLICATE_START, Flag.METER_DROPOUT}


def rows_by_evse(events: list[Any]) -> dict[tuple[int | None, str], Session]:
    return {(r.connector_id, r.transaction_id): r for r in newest(events).values()}


# --- class 5: the same id on two EVSEs ---------------------------------------------------------------------------


def two_evses_both_numbering_from_one(station: Station, *, evse_in_every_event: bool = True) -> Station:
    """EVSE 1 (lifetime register 40 MWh) and EVSE 2 (28 MWh) each open their transaction "1", interleaved."""
    later = None if not evse_in_every_event else 1
    later2 = None if not evse_in_every_event else 2
    station.at(0).event("Started", "1", evse=1, state="Charging", id_token="ALICE", seq_no=0,
                        meter=[register(40_000_000, "Transaction.Begin")])
    station.at(60).event("Started", "1", evse=2, state="Charging", id_token="BOB", seq_no=0,
                         meter=[register(28_000_000, "Transaction.Begin")])
    station.at(900).event("Updated", "1", evse=later, seq_no=1, meter=[register(40_002_000, "Sample.Periodic")])
    station.at(960).event("Updated", "1", evse=later2, seq_no=1, meter=[register(28_003_000, "Sample.Periodic")])
    station.at(1800).event("Ended", "1", evse=later, state="EVConnected", reason="Local", seq_no=2,
                           meter=[register(40_005_500, "Transaction.End")])
    station.at(2400).event("Ended", "1", evse=later2, state="EVConnected", reason="EVDisconnected", seq_no=2,
                           meter=[register(28_007_000, "Transaction.End")])
    return station


def test_the_same_transaction_id_on_two_evses_is_two_sessions() -> None:
    """The issue's 68 kWh bill for a 5.5 kWh session: never one session with both EVSEs' registers."""
    rows = rows_by_evse(two_evses_both_numbering_from_one(Station()).run(until=3000))
    assert set(rows) == {(1, "1"), (2, "1")}
    one, two = rows[(1, "1")], rows[(2, "1")]
    assert (one.energy_wh, one.id_tag, one.stop_reason) == (5500.0, "ALICE", "Local")
    assert (two.energy_wh, two.id_tag, two.stop_reason) == (7000.0, "BOB", "EVDisconnected")
    assert not WRONG & set(one.flags + two.flags), (one.flags, two.flags)
    assert one.session_id != two.session_id


def test_events_after_the_first_may_omit_the_evse_when_the_id_is_open_once() -> None:
    """E01.FR.16: the Updated and Ended name no EVSE; EVSE 2's "1" began after EVSE 1's ended."""
    station = Station()
    station.at(0).event("Started", "1", evse=1, state="Charging", id_token="A", seq_no=0, meter=[register(100, "Transaction.Begin")])
    station.at(900).event("Updated", "1", evse=None, seq_no=1, meter=[register(2100, "Sample.Periodic")])
    station.at(1800).event("Ended", "1", evse=None, state="EVConnected", seq_no=2, meter=[register(4100, "Transaction.End")])
    station.at(2000).event("Started", "1", evse=2, state="Charging", id_token="B", seq_no=0, meter=[register(900, "Transaction.Begin")])
    station.at(2900).event("Ended", "1", evse=None, state="EVConnected", seq_no=1, meter=[register(1900, "Transaction.End")])
    rows = rows_by_evse(station.run(until=4000))
    assert (rows[(1, "1")].energy_wh, rows[(2, "1")].energy_wh) == (4000.0, 1000.0)
    assert not WRONG & set(rows[(1, "1")].flags + rows[(2, "1")].flags)


def test_an_event_without_evse_while_the_id_is_open_on_two_is_the_oldests_and_flagged() -> None:
    rows = rows_by_evse(two_evses_both_numbering_from_one(Station(), evse_in_every_event=False).run(until=3000))
    assert rows[(1, "1")].energy_wh == 5500.0
    assert Flag.TRANSACTION_EVSE_AMBIGUOUS in rows[(1, "1")].flags


def test_the_same_evse_reusing_its_id_is_still_a_reused_id() -> None:
    station = Station()
    station.charge(evse=1, tx="1", start=0, end=1000, start_wh=0, end_wh=3000)
    station.charge(evse=1, tx="1", start=2000, end=3000, start_wh=3000, end_wh=5000)
    rows = sorted(newest(station.run(until=4000)).values(), key=lambda r: r.started_at)
    assert [r.energy_wh for r in rows] == [3000.0, 2000.0] and Flag.TRANSACTION_ID_REUSED in rows[1].flags


# --- class 7: seqNo per transaction, EVSEs interleaved -----------------------------------------------------------


@pytest.mark.parametrize(("missing", "gap_on"), [(None, set()), ("A", {"A"}), ("B", {"B"})],
                         ids=["none_missing", "one_of_A_missing", "one_of_B_missing"])
def test_a_seq_no_gap_is_found_per_transaction_when_the_station_counts_so(missing: str | None, gap_on: set[str]) -> None:
    """Each transaction counts from 0; EVSE 2's events come between EVSE 1's. A lost event is its own
    transaction's gap, whatever came between."""
    station = Station()
    seq = {"A": 0, "B": 0}

    def send(tx: str, kind: str, at: float, wh: float, **kw: Any) -> None:
        number = seq[tx]
        seq[tx] += 1
        if missing == tx and number == 2:
            return  # lost
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(kind, "Sample.Periodic")
        station.at(at).event(kind, tx, evse=1 if tx == "A" else 2, seq_no=number, meter=[register(wh, context)], **kw)

    send("A", "Started", 0, 0, state="Charging", id_token="T")
    send("B", "Started", 10, 0, state="Charging", id_token="U")
    for n in range(1, 5):
        send("A", "Updated", 300 * n, 1000 * n)
        send("B", "Updated", 300 * n + 10, 500 * n)
    send("A", "Ended", 1800, 6000, state="EVConnected")
    send("B", "Ended", 1810, 3000, state="EVConnected")
    rows = {r.transaction_id: r for r in newest(station.run(until=2000)).values()}
    assert {tx for tx, r in rows.items() if Flag.SEQ_NO_GAP in r.flags} == gap_on
    assert (rows["A"].energy_wh, rows["B"].energy_wh) == (6000.0, 3000.0)


# --- class 8: a session known only from its Ended ----------------------------------------------------------------


def ended_only(series: list[dict[str, Any]]) -> Session:
    station = Station()
    station.at(4000).call("TransactionEvent", {
        "eventType": "Ended", "timestamp": iso(3600), "seqNo": 7, "triggerReason": "AbnormalCondition", "offline": True,
        "transactionInfo": {"transactionId": "T-9", "stoppedReason": "PowerLoss"}, "evse": {"id": 1, "connectorId": 1},
        "meterValue": series})
    return only(station.run(until=5000))


@pytest.mark.parametrize(("series", "meter_start", "energy"), [
    pytest.param([{"timestamp": iso(3600), "sampledValue": [register(10_000, "Transaction.Begin"),
                                                            register(20_000, "Transaction.End")]}],
                 10_000.0, 10_000.0, id="begin_and_end_in_one_meter_value"),
    pytest.param([{"timestamp": iso(0), "sampledValue": [register(10_000, "Transaction.Begin")]},
                  {"timestamp": iso(1800), "sampledValue": [register(15_000, "Sample.Periodic")]},
                  {"timestamp": iso(3600), "sampledValue": [register(20_000, "Transaction.End")]}],
                 10_000.0, 10_000.0, id="begin_periodic_end"),
    pytest.param([{"timestamp": iso(0), "sampledValue": [register(12_000, "Sample.Periodic")]},
                  {"timestamp": iso(3600), "sampledValue": [register(20_000, "Transaction.End")]}],
                 12_000.0, 8_000.0, id="no_begin_value_the_first_sample_starts_it"),
    pytest.param([{"timestamp": iso(3600), "sampledValue": [register(20_000, "Transaction.End")]}],
                 None, None, id="only_the_end_value"),
])
def test_a_session_known_only_from_its_ended_starts_where_its_series_says(series: list[dict[str, Any]],
                                                                           meter_start: float | None,
                                                                           energy: float | None) -> None:
    row = ended_only(series)
    assert (row.meter_start_wh, row.meter_stop_wh, row.energy_wh) == (meter_start, 20_000.0, energy)
    assert {Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_UNKNOWN} <= set(row.flags)
    if energy is not None:
        assert row.energy_source in (EnergySource.METER_STOP, EnergySource.TRANSACTION_DATA)


def test_a_started_without_begin_register_takes_the_start_from_its_ended() -> None:
    station = Station()
    station.at(0).event("Started", state="Charging", id_token="T")
    station.at(3600).event("Ended", state="EVConnected", meter=[register(10_000, "Transaction.Begin"),
                                                                 register(17_000, "Transaction.End")])
    row = only(station.run(until=4000))
    assert (row.meter_start_wh, row.energy_wh, row.energy_source) == (10_000.0, 7000.0, EnergySource.METER_STOP)


# --- class 9: resends and replays after the Ended ----------------------------------------------------------------


@pytest.mark.parametrize("rebuilt", [
    pytest.param({}, id="identical"),
    pytest.param({"triggerReason": "EVCommunicationLost"}, id="rebuilt_trigger"),
    pytest.param({"timestamp": iso(3605)}, id="rebuilt_timestamp"),
    pytest.param({"meterValue": [{"timestamp": iso(3600), "sampledValue": [register(24_500, "Transaction.End")]}]},
                 id="rebuilt_register"),
])
@pytest.mark.parametrize("after", [10, 600], ids=["within_the_window", "after_it_was_written"])
def test_an_ended_resent_with_its_seq_no_changes_nothing_and_is_flagged(rebuilt: dict[str, Any], after: float) -> None:
    station = Station().charge()
    ended = station.envelopes[-1]
    frame = json.loads(ended.frame)
    frame[3] = frame[3] | rebuilt
    frame[1] = "resent"
    station.envelopes.append(ended.model_copy(update={"frame": json.dumps(frame), "message_id": "resent",
                                                      "seq": 99, "gateway_ts_ms": T0_MS + int((3600 + after) * 1000)}))
    row = only(station.run(until=5000))
    assert (row.energy_wh, row.meter_stop_wh, row.stop_reason) == (14_300.0, 24_300.0, "Local")
    assert Flag.SEQ_NO_REPEATED in row.flags and Flag.DUPLICATE_STOP_CONFLICT not in row.flags


@pytest.mark.parametrize("seq_no", [2, 7], ids=["its_old_number", "a_new_number"])
def test_an_updated_replayed_after_the_ended_changes_nothing_and_is_flagged(seq_no: int) -> None:
    station = Station().charge()
    station.at(3700).event("Updated", state="Charging", offline=True, ts=1800, seq_no=seq_no,
                           meter=[register(17_150, "Sample.Periodic")])
    row = only(station.run(until=5000))
    assert (row.energy_wh, row.closed_by, row.stop_status) == (14_300.0, "stop_transaction", "EVConnected")
    assert (Flag.SEQ_NO_REPEATED if seq_no == 2 else Flag.EVENT_AFTER_ENDED) in row.flags


# --- properties: a station of EVSEs, interleaved -----------------------------------------------------------------


@dataclass
class Plan:
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)  # (evse, tx, kind, extra)
    energy: dict[tuple[int, str], float] = field(default_factory=dict)
    resent: set[int] = field(default_factory=set)  # events sent twice (the answer lost: the same frame again, 10 s on)


@st.composite
def stations(draw: st.DrawFn) -> tuple[Plan, list[int], str, bool]:
    """1-3 EVSEs, each 1-3 sessions in turn with per-EVSE ids ("1", "2", ...: the same ids on every EVSE) or
    unique ones; 0-3 periodic samples each; the EVSEs' events interleaved in any order."""
    evses = draw(st.integers(1, 3))
    per_evse = draw(st.booleans())
    queues: dict[int, list[tuple[int, str, str, dict[str, Any]]]] = {}
    plan = Plan()
    for evse in range(1, evses + 1):
        register_wh = draw(st.integers(0, 50_000_000))
        queue = queues[evse] = []
        for n in range(1, draw(st.integers(1, 3)) + 1):
            tx = str(n) if per_evse else f"E{evse}-{n}"
            start_wh = register_wh
            queue.append((evse, tx, "Started", {"wh": register_wh, "token": f"TOKEN-{evse}-{n}"}))
            for _ in range(draw(st.integers(0, 3))):
                register_wh += draw(st.integers(0, 300))  # events come >= 30 s apart: <= 36 kW
                queue.append((evse, tx, "Updated", {"wh": register_wh}))
            register_wh += draw(st.integers(0, 300))
            queue.append((evse, tx, "Ended", {"wh": register_wh}))
            plan.energy[(evse, tx)] = float(register_wh - start_wh)
    order = draw(st.lists(st.sampled_from(sorted(queues)), min_size=sum(map(len, queues.values())),
                          max_size=sum(map(len, queues.values()))))
    pending = {evse: list(q) for evse, q in queues.items()}
    for evse in order + sorted(queues) * 20:
        if pending[evse]:
            plan.events.append(pending[evse].pop(0))
    counting = draw(st.sampled_from(["transaction", "station"]))
    omit = draw(st.booleans())
    dropped = draw(st.lists(st.integers(0, len(plan.events) - 1), max_size=1))
    plan.resent = set(draw(st.lists(st.integers(0, len(plan.events) - 1), max_size=3)))
    return plan, dropped, counting, omit


def play(plan: Plan, dropped: list[int], counting: str, omit: bool) -> tuple[list[Any], set[str]]:
    """The plan as frames, 30 s apart; returns the events and the transactions that lost an Updated."""
    station = Station()
    seq: dict[tuple[int, str], int] = {}
    station_seq = 0
    open_ids: dict[str, set[int]] = {}
    lost: set[str] = set()
    for k, (evse, tx, kind, extra) in enumerate(plan.events):
        number = seq.get((evse, tx), 0) if counting == "transaction" else station_seq
        seq[(evse, tx)] = number + 1
        station_seq += 1
        if kind == "Started":
            open_ids.setdefault(tx, set()).add(evse)
        named = evse if kind == "Started" or not omit or open_ids.get(tx, set()) != {evse} else None
        if kind == "Ended":
            open_ids[tx].discard(evse)
        if k in dropped and kind == "Updated":
            lost.add(f"{evse}/{tx}")
            continue
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(kind, "Sample.Periodic")
        station.at(30 * k).event(kind, tx, evse=named, seq_no=number, state="Charging" if kind == "Started" else None,
                                 id_token=extra.get("token"), meter=[register(extra["wh"], context)])
        if k in plan.resent:
            again = station.envelopes[-1]
            station.envelopes.append(again.model_copy(update={"seq": len(station.envelopes),
                                                              "gateway_ts_ms": again.gateway_ts_ms + 10_000}))
    return station.run(CorrelatorConfig.defaults(), until=30 * len(plan.events) + 3600), lost


@settings(max_examples=int(os.environ.get("EVSE_EXAMPLES", "150")), deadline=None, database=None)
@given(stations())
def test_every_evse_keeps_its_own_sessions_however_they_interleave(drawn: tuple[Plan, list[int], str, bool]) -> None:
    """One row per (EVSE, transaction), its energy its own register's, never a flag that says two were merged;
    a lost event is a gap only of its own transaction, and only flagged where the count shows it; a resent event
    changes nothing but its flags."""
    plan, dropped, counting, omit = drawn
    events, lost = play(plan, dropped, counting, omit)
    rows = rows_by_evse(events)
    assert set(rows) == set(plan.energy), (sorted(rows), sorted(plan.energy))
    for key, row in rows.items():
        assert row.energy_wh == plan.energy[key], (key, row)
        assert row.id_tag == f"TOKEN-{key[0]}-{key[1].split('-')[-1]}"
        resends = {Flag.SEQ_NO_REPEATED, Flag.DUPLICATE_START} if plan.resent else set()
        assert not (WRONG - {Flag.SEQ_NO_GAP} - resends) & set(row.flags), (key, row.flags)
        if counting == "transaction" or not lost:
            # Counted per station, a lost number may be any transaction's: it is only never invented.
            assert (Flag.SEQ_NO_GAP in row.flags) is (f"{key[0]}/{key[1]}" in lost), (key, row.flags, lost)


def test_the_property_plays_what_it_means() -> None:
    """The property's station, once by hand: per-EVSE ids on two EVSEs, interleaved, one Updated lost."""
    plan = Plan()
    plan.events = [(1, "1", "Started", {"wh": 100, "token": "TOKEN-1-1"}), (2, "1", "Started", {"wh": 900, "token": "TOKEN-2-1"}),
                   (1, "1", "Updated", {"wh": 600}), (2, "1", "Updated", {"wh": 1900}), (1, "1", "Updated", {"wh": 700}),
                   (1, "1", "Ended", {"wh": 1100}), (2, "1", "Ended", {"wh": 2900})]
    plan.energy = {(1, "1"): 1000.0, (2, "1"): 2000.0}
    events, lost = play(plan, [2], "transaction", omit=False)
    rows = rows_by_evse(events)
    assert lost == {"1/1"} and Flag.SEQ_NO_GAP in rows[(1, "1")].flags and Flag.SEQ_NO_GAP not in rows[(2, "1")].flags
    assert (rows[(1, "1")].energy_wh, rows[(2, "1")].energy_wh) == (1000.0, 2000.0)
