"""Reading MeterValue / SampledValue as chargers send them: each rule of processors/meter.py one named row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.flags import Flag
from processors.meter import ENERGY_REGISTER, POWER, Reading, _any_number, _number, read_meter_values
from schemas.records import EnergySource
from tests.processors.energy_inputs import energy_of, make_inputs


AT = "2024-05-01T10:00:00Z"
AT_MS = 1_714_557_600_000


def at(*sampled: dict[str, Any], timestamp: str = AT) -> list[dict[str, Any]]:
    return [{"timestamp": timestamp, "sampledValue": list(sampled)}]


def register(value: Any, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    sample = {"value": value, "measurand": ENERGY_REGISTER, **extra}
    return {**sample, "unit": unit} if unit else sample


@pytest.mark.parametrize(
    "meter_values, readings, flags",
    [
        pytest.param(at(register("12345.6", "kWh")), [(ENERGY_REGISTER, 12_345_600.0, 100.0)], set(),
                     id="kWh with one decimal: 100 Wh resolution"),
        pytest.param(at(register("14300", "Wh")), [(ENERGY_REGISTER, 14_300.0, 1.0)], set(), id="Wh integer: 1 Wh"),
        pytest.param(at(register("14.30", "kWh")), [(ENERGY_REGISTER, 14_300.0, 10.0)], set(),
                     id="trailing zero is a digit: 10 Wh"),
        pytest.param(at(register("1.43E+4")), [(ENERGY_REGISTER, 14_300.0, 100.0)], set(), id="exponent: 100 Wh"),
        pytest.param(at(register(12345.6, "kWh")), [(ENERGY_REGISTER, 12_345_600.0, 100.0)],
                     {Flag.SAMPLE_VALUE_NOT_STRING}, id="JSON float: decimals of its repr"),
        pytest.param(at(register(14, "kWh")), [(ENERGY_REGISTER, 14_000.0, 1000.0)], {Flag.SAMPLE_VALUE_NOT_STRING},
                     id="JSON integer in kWh: 1 kWh"),
        pytest.param(at(register(10**400)), [], {Flag.SAMPLE_VALUE_UNREADABLE},
                     id="JSON integer beyond a float"),
        pytest.param(at(register("1e400")), [], {Flag.SAMPLE_VALUE_UNREADABLE}, id="text beyond a float"),
        pytest.param(at(register("NaN")), [], {Flag.SAMPLE_VALUE_UNREADABLE}, id="NaN"),
        pytest.param(at(register("12,5")), [], {Flag.SAMPLE_VALUE_UNREADABLE}, id="decimal comma"),
        pytest.param(at(register("-3")), [], {Flag.SAMPLE_VALUE_NEGATIVE}, id="negative register"),
        pytest.param(at(register("3", "MWh")), [], {Flag.SAMPLE_UNIT_UNKNOWN}, id="unknown unit"),
        pytest.param(at({"value": "7.4", "measurand": POWER, "unit": "kW"}), [(POWER, 7400.0, 100.0)], set(),
                     id="power in kW"),
        pytest.param(at(register("4.1", "kWh", phase="L1")), [(ENERGY_REGISTER, 4100.0, 100.0)],
                     {Flag.ENERGY_FROM_SINGLE_PHASE}, id="single-phase register on L1 only"),
        pytest.param(at(register("4100", phase="L1-N")), [(ENERGY_REGISTER, 4100.0, 1.0)],
                     {Flag.ENERGY_FROM_SINGLE_PHASE}, id="single-phase register on L1-N only"),
        pytest.param(at(register("4100", phase="L1"), register("4000", phase="L2")), [], {Flag.INCOMPLETE_PHASES},
                     id="two phases: a phase dropped from the sample, no reading"),
        pytest.param(at(register("4100", phase="L2")), [], {Flag.INCOMPLETE_PHASES}, id="L2 alone"),
        pytest.param(at({"value": "7400", "measurand": POWER, "phase": "L1"}), [], {Flag.INCOMPLETE_PHASES},
                     id="power on L1 only: not a register, no reading"),
        pytest.param(at(register("1.0", "kWh", phase="L1"), register("2.00", "kWh", phase="L2"),
                        register("3", "kWh", phase="L3")), [(ENERGY_REGISTER, 6000.0, 1110.0)],
                     {Flag.ENERGY_SUMMED_FROM_PHASES}, id="three phases summed, their resolutions too"),
        pytest.param(at(register("9000"), register("4100", phase="L1")), [(ENERGY_REGISTER, 9000.0, 1.0)], set(),
                     id="total wins over phases"),
        pytest.param(at(register("5", location="Inlet"), register("4", location="Outlet")),
                     [(ENERGY_REGISTER, 4.0, 1.0)], set(), id="outlet wins over inlet"),
    ],
)
def test_read_meter_values(meter_values: list[dict[str, Any]], readings: list[tuple[str, float, float]],
                           flags: set[str]) -> None:
    report = read_meter_values(meter_values)
    assert [(r.measurand, r.value, r.resolution) for r in report.readings] == readings
    assert report.flags == flags


def test_a_reading_keeps_time_and_context() -> None:
    report = read_meter_values(at(register("12.5", "kWh", context="Transaction.End")))
    assert report.readings == (Reading(AT_MS, ENERGY_REGISTER, 12_500.0, "Transaction.End", 100.0),)


def test_a_single_phase_charger_bills_from_its_l1_register() -> None:
    samples = [r for ts, value in (("2024-05-01T10:01:00Z", "4.1"), ("2024-05-01T10:31:00Z", "7.6"))
               for r in read_meter_values(at(register(value, "kWh", phase="L1"), timestamp=ts)).readings]
    result = energy_of(make_inputs(None, -1, True, transaction_data=[(r.at_ms, r.value, r.resolution) for r in samples]))
    assert (result.energy_wh, result.source) == (pytest.approx(3500.0), EnergySource.TRANSACTION_DATA)


_NUMBERISH = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,18}(\.[0-9]{0,18})?\Z"),
    st.text(alphabet="0123456789.-+eE \u0663", max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(str),
)


@settings(max_examples=500, deadline=None)
@given(_NUMBERISH)
def test_the_plain_decimal_shortcut_reads_every_string_as_the_general_path(raw: str) -> None:
    assert _number(raw) == _any_number(raw)
