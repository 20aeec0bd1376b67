"""Charge success: rates from counts, and the report from a migrated database per port, charger, fleet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi.intervals import Span
from kpi.source import ClientSource
from kpi.success import AttemptCounts, Grouping, SuccessRates, columns, success_report
from tests.kpi.helpers import attempt, insert_attempts, ms


@pytest.mark.parametrize("counts, rates", [
    ((10, 8, 6), (80.0, 75.0, 60.0)),
    ((3, 0, 0), (0.0, None, 0.0)),  # nothing delivered: no charge-end rate, not 0 and not 100
    ((0, 0, 0), (None, None, None)),
    ((3, 3, 3), (100.0, 100.0, 100.0)),
    ((3, 2, 1), (66.67, 50.0, 33.33)),
])
def test_rates(counts: tuple[int, int, int], rates: tuple) -> None:
    got = SuccessRates.of(AttemptCounts(*counts, None, None))
    assert (got.charge_start_success_pct, got.charge_end_success_pct, got.session_success_pct) == rates


@given(st.integers(0, 1000).flatmap(lambda a: st.tuples(st.just(a), st.integers(0, a))).flatmap(
    lambda ad: st.tuples(st.just(ad[0]), st.just(ad[1]), st.integers(0, ad[1]))))
def test_rates_are_percentages_and_session_is_start_times_end(counts: tuple[int, int, int]) -> None:
    r = SuccessRates.of(AttemptCounts(*counts, None, None))
    for value in (r.charge_start_success_pct, r.charge_end_success_pct, r.session_success_pct):
        assert value is None or 0 <= value <= 100
    if r.charge_end_success_pct is not None and r.charge_start_success_pct is not None:
        assert r.session_success_pct == pytest.approx(r.charge_start_success_pct * r.charge_end_success_pct / 100,
                                                      abs=0.02)


DAY = Span(ms(0), ms(1440))


@pytest.fixture
def attempts_db(chdb_client, database: str) -> str:
    insert_attempts(chdb_client, database, [
        attempt("CP-1", 1, 10, delivered=True, ended_ok=True, delay_s=10),
        attempt("CP-1", 1, 20, delivered=True, ended_ok=False, delay_s=30, failure="stop_emergency_stop"),
        attempt("CP-1", 1, 30, delivered=False, ended_ok=False, failure="no_energy"),
        attempt("CP-1", 2, 40, delivered=True, ended_ok=True, delay_s=20),
        attempt("CP-1", 0, 50, delivered=False, ended_ok=False, failure="authorize_no_start"),
        attempt("CP-2", 1, 60, delivered=False, ended_ok=False, failure="plugin_no_start", attempt_id="x", version=1),
        attempt("CP-2", 1, 60, delivered=True, ended_ok=True, delay_s=5, attempt_id="x", version=2),  # newest wins
        attempt("CP-2", 1, 2000, delivered=True, ended_ok=True, delay_s=5),  # after the period
    ])
    return database


def test_report_by_port(chdb_client, attempts_db: str) -> None:
    rows = [r.as_dict(Grouping.PORT) for r in success_report(ClientSource(chdb_client), attempts_db, DAY, Grouping.PORT)]
    assert list(rows[0]) == columns(Grouping.PORT)
    assert [(r["charge_point_id"], r["connector_id"], r["attempts"], r["deliveries"], r["ok_stops"]) for r in rows] == [
        ("CP-1", 0, 1, 0, 0), ("CP-1", 1, 3, 2, 1), ("CP-1", 2, 1, 1, 1), ("CP-2", 1, 1, 1, 1)]
    port1 = rows[1]
    assert (port1["charge_start_success_pct"], port1["charge_end_success_pct"], port1["session_success_pct"]) == (
        66.67, 50.0, 33.33)
    assert rows[0]["start_delay_p50_s"] is None  # never charged: no delay
    assert port1["start_delay_p50_s"] in (10.0, 30.0) and port1["start_delay_p90_s"] == 30.0


def test_report_by_charger_and_fleet(chdb_client, attempts_db: str) -> None:
    source = ClientSource(chdb_client)
    chargers = [r.as_dict(Grouping.CHARGER) for r in success_report(source, attempts_db, DAY, Grouping.CHARGER)]
    assert [(r["charge_point_id"], r["attempts"], r["ok_stops"]) for r in chargers] == [("CP-1", 5, 2), ("CP-2", 1, 1)]
    (fleet,) = [r.as_dict(Grouping.FLEET) for r in success_report(source, attempts_db, DAY, Grouping.FLEET)]
    assert (fleet["attempts"], fleet["deliveries"], fleet["ok_stops"], fleet["session_success_pct"]) == (6, 4, 3, 50.0)
    assert "charge_point_id" not in fleet


def test_an_empty_period_is_a_fleet_row_of_zeros(chdb_client, database: str) -> None:
    (fleet,) = success_report(ClientSource(chdb_client), database, DAY, Grouping.FLEET)
    assert fleet.counts.attempts == 0 and fleet.rates.session_success_pct is None
    assert success_report(ClientSource(chdb_client), database, DAY, Grouping.PORT) == []
