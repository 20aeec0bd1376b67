"""The energy reducer as a table of (inputs, expected): each rule of DESIGN.md one row."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from processors.energy import EnergyInputs, RegisterReducer, session_energy
from schemas.records import EnergySource


def reduced(*values: float) -> RegisterReducer:
    reducer = RegisterReducer()
    for n, value in enumerate(values):
        reducer.add(value, n * 60_000)
    return reducer


@pytest.mark.parametrize(
    "values, energy, flags",
    [
        ((1000, 1500, 2500), 1500.0, set()),
        ((1000,), None, set()),
        ((), None, set()),
        ((1000, 1000, 1000), 0.0, set()),
        ((5000, 5200, 0, 5300), 300.0, {"meter_dropout"}),
        ((5000, 5200, 0, 100, 300), 500.0, {"meter_reset"}),
        ((5000, 5200, 100), 200.0, {"meter_trailing_drop"}),
        ((0, 400, 0, 0, 500), 900.0, {"meter_reset"}),
    ],
)
def test_register_reducer(values: tuple[float, ...], energy: float | None, flags: set[str]) -> None:
    assert reduced(*values).result() == (energy, flags)


def test_out_of_order_samples_are_not_counted() -> None:
    reducer = RegisterReducer()
    reducer.add(1000, 120_000)
    reducer.add(900, 60_000)  # older than the last: a backlog flushed out of order
    reducer.add(1500, 180_000)
    assert reducer.result() == (500.0, {"meter_sample_out_of_order"})


def test_peak_power_from_register_deltas() -> None:
    assert reduced(0, 100, 500).peak_power_w == 400 * 60  # 400 Wh in a minute = 24 kW


def test_state_round_trip() -> None:
    reducer = reduced(10, 20, 0, 30)
    assert RegisterReducer.from_state(reducer.to_state()) == reducer


@pytest.mark.parametrize(
    "inputs, energy, source, flags",
    [
        (EnergyInputs(1000, 4000, True), 3000.0, EnergySource.METER_STOP, set()),
        (EnergyInputs(0, 0, True), 0.0, EnergySource.METER_STOP, set()),
        (EnergyInputs(1000, 1000.5, True), 0.5, EnergySource.METER_STOP, {"meter_value_not_integer"}),
        (EnergyInputs(1000, -1, True), None, EnergySource.NONE, {"meter_stop_unknown"}),
        (EnergyInputs(1000, None, True), None, EnergySource.NONE, {"meter_stop_missing"}),
        (EnergyInputs(1000, "12", True), None, EnergySource.NONE, {"meter_stop_invalid"}),
        (EnergyInputs(-5, 100, True), None, EnergySource.NONE, {"meter_start_invalid"}),
        (EnergyInputs(4000, 1000, True), None, EnergySource.NONE, {"meter_stop_below_start"}),
        (EnergyInputs(1000, -1, True, transaction_data=[(None, 1500.0), (None, 2500.0)]), 1500.0,
         EnergySource.TRANSACTION_DATA, {"meter_stop_unknown"}),
        (EnergyInputs(1000, -1, True, meter_values=reduced(1200, 1900)), 900.0, EnergySource.METER_VALUES,
         {"meter_stop_unknown"}),
        (EnergyInputs(4000, 1000, True, meter_values=reduced(0, 600)), 600.0, EnergySource.METER_VALUES,
         {"meter_stop_below_start", "meter_reset"}),
        (EnergyInputs(1000, -1, True, transaction_data=[(None, 3000.0)], meter_values=reduced(1200, 1900)), 2000.0,
         EnergySource.TRANSACTION_DATA, {"meter_stop_unknown"}),
        (EnergyInputs(None, None, False, meter_values=reduced(1200, 1900)), 700.0, EnergySource.METER_VALUES, set()),
        (EnergyInputs(0, 10_000_000, True, duration_s=60), 10_000_000.0, EnergySource.METER_STOP, {"implausible_power"}),
    ],
)
def test_session_energy_rules(inputs: EnergyInputs, energy: float | None, source: EnergySource, flags: set[str]) -> None:
    result = session_energy(inputs)
    assert (result.energy_wh, result.source, set(result.flags)) == (energy, source, flags)


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), max_size=40))
def test_reduced_energy_is_never_negative(values: list[float]) -> None:
    energy, _ = reduced(*values).result()
    assert energy is None or energy >= 0


@given(st.one_of(st.none(), st.integers(-5, 10**7), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
       st.one_of(st.none(), st.integers(-5, 10**7), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)))
def test_session_energy_is_never_negative_whatever_the_meters_say(start: object, stop: object) -> None:
    result = session_energy(EnergyInputs(start, stop, True, meter_values=reduced(10, 20)))
    assert result.energy_wh is None or result.energy_wh >= 0
