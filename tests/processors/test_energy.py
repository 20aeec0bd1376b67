"""The energy reducer as tables of (inputs, expected): each rule of processors/energy.py one named row."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from processors import legacy_state, state_codec
from processors.energy import EnergyInputs, RegisterReducer
from schemas.flags import Flag
from schemas.records import EnergySource
from tests.processors.energy_inputs import energy_of, make_inputs


MIN = 60_000  # ms


def reduced(*values: float) -> RegisterReducer:
    """Wh samples a minute apart, resolution unknown."""
    reducer = RegisterReducer()
    for n, value in enumerate(values):
        reducer.add(value, n * MIN)
    return reducer


def kwh(*texts: str, first_ms: int = MIN, every_ms: int = MIN) -> list[tuple[int, float, float]]:
    """Register samples sent in kWh as text, a minute apart, read the way processors.meter reads them:
    (charger ms, Wh, resolution Wh)."""
    samples = []
    for n, text in enumerate(texts):
        exact = Decimal(text)
        samples.append((first_ms + n * every_ms, float(exact * 1000), float(Decimal(1).scaleb(exact.as_tuple().exponent) * 1000)))
    return samples


def kwh_reduced(*texts: str, first_ms: int = MIN, every_ms: int = MIN) -> RegisterReducer:
    reducer = RegisterReducer()
    for at_ms, value, resolution in kwh(*texts, first_ms=first_ms, every_ms=every_ms):
        reducer.add(value, at_ms, resolution)
    return reducer


# --- the register series (rule 2) -----------------------------------------------------------------

@pytest.mark.parametrize(
    "values, energy, flags",
    [
        pytest.param((1000, 1500, 2500), 1500.0, set(), id="rises are counted"),
        pytest.param((1000,), None, set(), id="one sample measures nothing"),
        pytest.param((), None, set(), id="no sample"),
        pytest.param((1000, 1000, 1000), 0.0, set(), id="flat"),
        pytest.param((5000, 5200, 5195, 5300), 300.0, {Flag.METER_DIP_IGNORED}, id="dip within rounding ignored"),
        pytest.param((5000, 5200, 0, 5300), 300.0, {Flag.METER_DROPOUT}, id="dropout to 0 comes back"),
        pytest.param((5000, 5200, 0, 5150, 5300), 300.0, {Flag.METER_DROPOUT},
                     id="dropout to 0, then a value the power bound could not reach from 0"),
        pytest.param((5000, 5200, 0, 0, 5300), 300.0, {Flag.METER_DROPOUT}, id="dropout to 0 for two samples"),
        pytest.param((5000, 5200, 0, 100, 300), 500.0, {Flag.METER_RESET}, id="reset to 0 (ABB Terra AC)"),
        pytest.param((0, 400, 0, 0, 500), 500.0, {Flag.METER_DROPOUT}, id="two samples at 0, then above the old level"),
        pytest.param((0, 400, 0, 0, 100, 300), 700.0, {Flag.METER_RESET}, id="reset to 0, flat, then charging from 0"),
        pytest.param((5000, 5200, 100), 200.0, {Flag.METER_TRAILING_DROP}, id="trailing drop not counted"),
        pytest.param((14000, 14300, 9000, 9100, 9300), 600.0, {Flag.METER_REBASED},
                     id="lasting drop not near zero is a rebase"),
        pytest.param((14000, 14300, 6000, 6100), 400.0, {Flag.METER_REBASED},
                     id="near zero but more than the power bound could count in a minute: rebase"),
    ],
)
def test_register_reducer(values: tuple[float, ...], energy: float | None, flags: set[str]) -> None:
    assert reduced(*values).result() == (energy, flags)


@pytest.mark.parametrize(
    "texts, energy, flags",
    [
        pytest.param(("12345.6", "12346.0", "12345.9", "12347.0"), 1400.0, {Flag.METER_DIP_IGNORED},
                     id="kWh dip of one digit mid-series"),
        pytest.param(("12345.6", "12345.5", "12345.5", "12345.9"), 300.0, {Flag.METER_DIP_IGNORED},
                     id="kWh dip that lasts a while keeps the higher level"),
        pytest.param(("12345.6", "12000.0", "12001.0", "12002.0"), 2000.0, {Flag.METER_REBASED},
                     id="lifetime register jumps down and stays: nothing counted across"),
    ],
)
def test_register_reducer_in_kwh(texts: tuple[str, ...], energy: float, flags: set[str]) -> None:
    total, result_flags = kwh_reduced(*texts).result()
    assert (total, result_flags) == (pytest.approx(energy), flags)


def test_out_of_order_samples_are_not_counted() -> None:
    reducer = RegisterReducer()
    reducer.add(1000, 120_000)
    reducer.add(900, 60_000)  # older than the last: a backlog flushed out of order
    reducer.add(1500, 180_000)
    assert reducer.result() == (500.0, {Flag.METER_SAMPLE_OUT_OF_ORDER})


def test_peak_power_from_register_deltas() -> None:
    assert reduced(0, 100, 500).peak_power_w == 400 * 60  # 400 Wh in a minute = 24 kW


def test_state_round_trip() -> None:
    reducer = reduced(10, 20, 0, 30)
    assert state_codec.reducer_from_dict(json.loads(json.dumps(state_codec.reducer_to_dict(reducer)))) == reducer


@pytest.mark.parametrize(
    "old_state, then, energy, flags",
    [
        # [first, prev, total, suspect, last_at_ms, count, resets, dropouts, out_of_order, peak_power_w]
        pytest.param([1000.0, 1500.0, 500.0, None, 120_000, 2, 0, 0, 0, 30_000.0], (2000.0, 180_000), 1000.0, set(),
                     id="old state, no drop pending"),
        pytest.param([5000.0, 5200.0, 200.0, 0.0, 120_000, 3, 0, 0, 0, 12_000.0], (5300.0, 180_000), 300.0,
                     {Flag.METER_DROPOUT}, id="old state with a drop pending that comes back"),
        pytest.param([5000.0, 5200.0, 200.0, 0.0, 120_000, 3, 1, 0, 0, 12_000.0], (100.0, 180_000), 300.0,
                     {Flag.METER_RESET, Flag.METER_REBASED}, id="old state with a drop pending that lasts"),
    ],
)
def test_reducer_reads_the_old_ten_element_state(old_state: list, then: tuple[float, int], energy: float,
                                                 flags: set[str]) -> None:
    reducer = legacy_state.reducer(old_state)
    reducer.add(*then)
    assert reducer.result() == (energy, flags)


# --- session energy (rules 1, 3 to 7) -------------------------------------------------------------

HOUR = 3600.0
LIFETIME = kwh("12345.6", "12350.1", "12355.0", "12359.9")  # 4 samples a minute apart: 14.3 kWh of ~12.3 MWh
ABB_REBOOT = [(MIN, 5000.0, 1.0), (2 * MIN, 5200.0, 1.0), (3 * MIN, 150.0, 1.0), (4 * MIN, 300.0, 1.0)]


def lifetime_session(meter_start: object, meter_stop: object, has_stop: bool = True, **kwargs: object) -> EnergyInputs:
    """Samples from minute 1 to minute 4 of a session of 5 minutes (charger clock)."""
    defaults: dict = {"started_ms": 0, "stopped_ms": 5 * MIN, "duration_s": 300.0, "transaction_data": LIFETIME}
    return make_inputs(meter_start, meter_stop, has_stop, **{**defaults, **kwargs})


@pytest.mark.parametrize(
    "inputs, energy, source, flags",
    [
        # rule 1: meterStart / meterStop
        pytest.param(make_inputs(1000, 4000, True), 3000.0, EnergySource.METER_STOP, set(), id="meter stop"),
        pytest.param(make_inputs(0, 0, True), 0.0, EnergySource.METER_STOP, set(), id="zero"),
        pytest.param(make_inputs(1000, 1000.5, True), 0.5, EnergySource.METER_STOP, {Flag.METER_VALUE_NOT_INTEGER},
                     id="float meter stop"),
        pytest.param(make_inputs(1000, -1, True), None, EnergySource.NONE, {Flag.METER_STOP_UNKNOWN},
                     id="meter stop -1, no samples"),
        pytest.param(make_inputs(1000, None, True), None, EnergySource.NONE, {Flag.METER_STOP_MISSING},
                     id="meter stop missing"),
        pytest.param(make_inputs(1000, "12", True), None, EnergySource.NONE, {Flag.METER_STOP_INVALID},
                     id="meter stop not a number"),
        pytest.param(make_inputs(-5, 100, True), None, EnergySource.NONE, {Flag.METER_START_INVALID},
                     id="meter start negative"),
        pytest.param(make_inputs(4000, 1000, True), None, EnergySource.NONE, {Flag.METER_STOP_BELOW_START},
                     id="meter stop below start, no samples"),
        # rule 5: the samples, bracketed (rule 3)
        pytest.param(make_inputs(1000, -1, True, transaction_data=[(None, 1500.0), (None, 2500.0)]), 1500.0,
                     EnergySource.TRANSACTION_DATA, {Flag.METER_STOP_UNKNOWN}, id="transaction data, old pairs"),
        pytest.param(make_inputs(1000, -1, True, transaction_data=[[MIN, 1500.0], [2 * MIN, 2500.0]]), 1500.0,
                     EnergySource.TRANSACTION_DATA, {Flag.METER_STOP_UNKNOWN}, id="transaction data, old lists"),
        pytest.param(make_inputs(1000, -1, True, meter_values=reduced(1200, 1900)), 900.0, EnergySource.METER_VALUES,
                     {Flag.METER_STOP_UNKNOWN}, id="meter values bracketed by meter start"),
        pytest.param(make_inputs(1000, -1, True, transaction_data=[(None, 3000.0, 1.0)],
                                  meter_values=reduced(1200, 1900)), 2000.0,
                     EnergySource.TRANSACTION_DATA, {Flag.METER_STOP_UNKNOWN}, id="one transaction-data sample and meter start"),
        pytest.param(make_inputs(None, None, False, meter_values=reduced(1200, 1900)), 700.0, EnergySource.METER_VALUES,
                     set(), id="never stopped: meter values"),
        pytest.param(lifetime_session(12345678, -1), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.METER_STOP_UNKNOWN, Flag.METER_DIP_IGNORED}, id="meter stop -1 with samples"),
        # rule 2 through the session: rounding, resets, dropouts
        pytest.param(lifetime_session(12345678, 12359878), 14200.0, EnergySource.METER_STOP, set(),
                     id="kWh samples a few Wh below a Wh meter start: rounding, meter stop agrees"),
        pytest.param(lifetime_session(12345678, 12359878, transaction_data=[], meter_values=kwh_reduced(
                     "12345.6", "12350.1", "12350.0", "12359.9")), 14200.0, EnergySource.METER_STOP, set(),
                     id="small dip mid-series: meter stop agrees"),
        pytest.param(lifetime_session(12345678, None, has_stop=False), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.METER_DIP_IGNORED}, id="kWh samples below a Wh meter start, never stopped: no reset"),
        pytest.param(make_inputs(4000, 1000, True, meter_values=reduced(0, 600)), 1000.0, EnergySource.METER_VALUES,
                     {Flag.METER_STOP_BELOW_START, Flag.METER_RESET}, id="reset every session, meter stop brackets"),
        pytest.param(make_inputs(9000, 4000, True, started_ms=0, stopped_ms=5 * MIN, duration_s=300.0,
                                  transaction_data=[(MIN, 150.0, 1.0), (2 * MIN, 1100.0, 1.0), (4 * MIN, 3900.0, 1.0)]),
                     4000.0, EnergySource.TRANSACTION_DATA, {Flag.METER_STOP_BELOW_START, Flag.METER_RESET},
                     id="reset every session: meter start is the last session's"),
        pytest.param(make_inputs(4800, 460, True, started_ms=0, stopped_ms=5 * MIN, duration_s=300.0,
                                  transaction_data=ABB_REBOOT), 860.0, EnergySource.TRANSACTION_DATA,
                     {Flag.METER_STOP_BELOW_START, Flag.METER_RESET}, id="true reset mid-session (ABB reboot)"),
        pytest.param(make_inputs(5000, -1, True, started_ms=0, stopped_ms=5 * MIN, duration_s=300.0,
                                  meter_values=reduced(5000, 5200, 0, 5400)), 400.0, EnergySource.METER_VALUES,
                     {Flag.METER_STOP_UNKNOWN, Flag.METER_DROPOUT}, id="dropout to 0 for one sample"),
        # rule 6: meterStop - meterStart against the samples
        pytest.param(lifetime_session(0, 12359978, duration_s=None), 14378.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_MISMATCH}, id="meter start 0, lifetime samples: samples and meter stop win"),
        pytest.param(lifetime_session(0, -1), 14300.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_MISMATCH, Flag.METER_STOP_UNKNOWN}, id="meter start 0, lifetime samples, stop -1"),
        pytest.param(lifetime_session(0, 12359978, duration_s=HOUR, stopped_ms=HOUR * 1000), 14378.0,
                     EnergySource.TRANSACTION_DATA, {Flag.ENERGY_IMPLAUSIBLE, Flag.ENERGY_MISMATCH},
                     id="meter start 0, 12.4 MWh in an hour: implausible, samples win"),
        pytest.param(lifetime_session(12345, 12359978, duration_s=None), 14378.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_MISMATCH}, id="meter start in kWh: samples and meter stop win"),
        pytest.param(lifetime_session(12345678, 12360), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.METER_STOP_BELOW_START, Flag.METER_DIP_IGNORED, Flag.METER_TRAILING_DROP},
                     id="meter stop in kWh while start is Wh"),
        pytest.param(lifetime_session(12345678, 12361300, stopped_ms=15 * MIN, duration_s=900.0), 15622.0,
                     EnergySource.METER_STOP, set(), id="samples miss the end: meter stop above them, time allows"),
        pytest.param(lifetime_session(12345678, 12400000), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_MISMATCH, Flag.METER_DIP_IGNORED},
                     id="meter stop far above the samples: only meter start brackets"),
        pytest.param(lifetime_session(12345678, 12350000), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_MISMATCH, Flag.METER_DIP_IGNORED, Flag.METER_TRAILING_DROP},
                     id="meter stop below the samples' energy: samples win"),
        pytest.param(lifetime_session(12345678, 12359878, transaction_data=LIFETIME[:1]), 14200.0,
                     EnergySource.METER_STOP, set(), id="one sample cannot check meter stop"),
        # rule 4: plausibility
        pytest.param(make_inputs(1000, 1e30, True), None, EnergySource.NONE, {Flag.ENERGY_IMPLAUSIBLE},
                     id="meter stop 1e30"),
        pytest.param(lifetime_session(12345678, 1e30), 14222.0, EnergySource.TRANSACTION_DATA,
                     {Flag.ENERGY_IMPLAUSIBLE, Flag.ENERGY_MISMATCH, Flag.METER_DIP_IGNORED},
                     id="meter stop 1e30 with samples"),
        pytest.param(make_inputs(0, 10_000_000, True, duration_s=60), None, EnergySource.NONE,
                     {Flag.ENERGY_IMPLAUSIBLE}, id="10 MWh in a minute"),
        pytest.param(make_inputs(1000, 1040, True, duration_s=10), 40.0, EnergySource.METER_STOP, set(),
                     id="10-second session of 40 Wh"),
        pytest.param(make_inputs(None, None, False, duration_s=10, transaction_data=kwh("12345.60", "12345.64", every_ms=10_000)),
                     40.0, EnergySource.TRANSACTION_DATA, set(), id="10-second session of 40 Wh in kWh samples"),
        pytest.param(make_inputs(1000, 1000 + 500_000, True, duration_s=60, gateway_duration_s=HOUR), 500_000.0,
                     EnergySource.METER_STOP, set(), id="the longest known duration decides"),
        pytest.param(make_inputs(0, 80_000_000, True), None, EnergySource.NONE, {Flag.ENERGY_IMPLAUSIBLE},
                     id="no duration: more than max power for the maximum session age"),
        pytest.param(make_inputs(1000, -1, True, duration_s=60, transaction_data=[(None, 1500.0), (None, 9e7)],
                                  meter_values=reduced(1200, 1900)), 900.0, EnergySource.METER_VALUES,
                     {Flag.METER_STOP_UNKNOWN, Flag.ENERGY_IMPLAUSIBLE}, id="implausible transaction data: meter values"),
    ],
)
def test_session_energy_rules(inputs: EnergyInputs, energy: float | None, source: EnergySource, flags: set[str]) -> None:
    result = energy_of(inputs)
    assert (result.energy_wh, result.source, set(result.flags)) == (pytest.approx(energy), source, flags)


def test_the_maximum_session_age_bounds_a_session_without_duration() -> None:
    inputs = make_inputs(0, 50_000, True)
    assert energy_of(inputs, max_power_w=1000, max_duration_s=HOUR).flags == {Flag.ENERGY_IMPLAUSIBLE}
    assert energy_of(inputs, max_power_w=1000, max_duration_s=60 * HOUR).energy_wh == 50_000


def test_peak_power_prefers_the_sampled_one() -> None:
    assert energy_of(make_inputs(0, 500, True, meter_values=reduced(0, 100, 500))).peak_power_w == 24_000
    sampled = make_inputs(0, 500, True, meter_values=reduced(0, 100, 500), sampled_peak_power_w=11_000)
    assert energy_of(sampled).peak_power_w == 11_000


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), max_size=40))
def test_reduced_energy_is_never_negative(values: list[float]) -> None:
    energy, _ = reduced(*values).result()
    assert energy is None or energy >= 0


@given(st.one_of(st.none(), st.integers(-5, 10**7), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
       st.one_of(st.none(), st.integers(-5, 10**7), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)))
def test_session_energy_is_never_negative_whatever_the_meters_say(start: object, stop: object) -> None:
    result = energy_of(make_inputs(start, stop, True, meter_values=reduced(10, 20)))
    assert result.energy_wh is None or result.energy_wh >= 0


# --- a break in metering: Interruption.Begin / .End (issue #23, class 10) ------------------------------------------

BEGINS, ENDS = 1, 2  # processors.meter.BREAK_BEGINS / BREAK_ENDS


def marked(*samples: tuple[float, int]) -> RegisterReducer:
    """(Wh, mark) samples a minute apart."""
    reducer = RegisterReducer()
    for n, (value, mark) in enumerate(samples):
        reducer.add(value, n * MIN, 0.0, mark)
    return reducer


@pytest.mark.parametrize(("samples", "energy", "flags"), [
    pytest.param(((50_000, 0), (52_000, BEGINS), (120, ENDS), (1_120, 0)), 3000.0, {Flag.METER_INTERRUPTION},
                 id="meter swapped for a new one at 120 Wh"),
    pytest.param(((50_000, 0), (52_000, BEGINS), (80_000, ENDS), (81_000, 0)), 3000.0, {Flag.METER_INTERRUPTION},
                 id="meter swapped for one reading higher"),
    pytest.param(((50_000, 0), (52_000, BEGINS), (52_000, ENDS), (53_000, 0)), 3000.0, set(),
                 id="a power cut: the same meter, nothing moved"),
    pytest.param(((50_000, 0), (52_000, BEGINS), (9_000, 0), (10_000, 0)), 3000.0, {Flag.METER_INTERRUPTION},
                 id="the end of the break not marked: the first sample after it is across it"),
    pytest.param(((50_000, 0), (40_000, BEGINS), (700, ENDS), (900, 0)), 200.0,
                 {Flag.METER_INTERRUPTION, Flag.METER_REBASED}, id="a drop pending before the break lasted until it"),
])
def test_nothing_is_counted_across_a_break_in_metering(samples: tuple[tuple[float, int], ...], energy: float,
                                                       flags: set[str]) -> None:
    assert marked(*samples).result() == (energy, flags)


def test_a_break_at_one_moment_is_no_resend() -> None:
    """The old meter's last reading and the new meter's first, stamped with the same second."""
    reducer = RegisterReducer()
    for at_ms, value, mark in ((0, 50_000, 0), (MIN, 52_000, BEGINS), (MIN, 300, ENDS), (2 * MIN, 800, 0)):
        reducer.add(value, at_ms, 0.0, mark)
    assert reducer.result() == (2500.0, {Flag.METER_INTERRUPTION})


def test_meter_stop_minus_meter_start_across_a_swap_is_not_used() -> None:
    """meterStart was read on the old meter, meterStop on the new one: only the samples can tell the energy."""
    result = energy_of(make_inputs(50_000, 1_120, True, meter_values=marked(
        (50_000, 0), (52_000, BEGINS), (120, ENDS), (1_120, 0)), duration_s=3 * 60.0))
    assert (result.energy_wh, result.source) == (3000.0, EnergySource.METER_VALUES)
    assert Flag.METER_STOP_BELOW_START in result.flags and Flag.METER_INTERRUPTION in result.flags


def test_a_swap_to_a_higher_meter_never_bills_the_difference() -> None:
    result = energy_of(make_inputs(50_000, 81_000, True, transaction_data=[
        (0, 50_000, 1.0), (MIN, 52_000, 1.0, BEGINS), (2 * MIN, 80_000, 1.0, ENDS), (3 * MIN, 81_000, 1.0)],
        duration_s=3 * 60.0))
    assert (result.energy_wh, result.source) == (3000.0, EnergySource.TRANSACTION_DATA)


def test_reducer_states_persisted_before_breaks_are_read() -> None:
    old = [1000.0, 2000.0, 1000.0, None, 2 * MIN, 2, 0, 0, 0, None, 0, 1.0, False, 0, 0]  # fifteen fields
    reducer = legacy_state.reducer(old)
    reducer.add(2500.0, 3 * MIN)
    assert reducer.result() == (1500.0, set()) and not reducer.in_break


@pytest.mark.parametrize("new_meter_wh", [150, 900_000], ids=["new_meter_lower", "new_meter_higher"])
def test_a_meter_swap_inside_a_session_through_the_correlator(new_meter_wh: int) -> None:
    """OCPP 1.6 MeterValues with the Interruption contexts around a meter swap, meterStop read on the new meter."""
    from tests.processors.script import Script, energy as register, only_session

    script = Script()
    script.at(0).status(1, "Charging").at(1).start(1, 5, meter_start=50_000)
    script.at(600).meter(1, 5, register(52_000))
    script.at(1200).meter(1, 5, register(53_000, context="Interruption.Begin"))
    script.at(1500).meter(1, 5, register(new_meter_wh, context="Interruption.End"))
    script.at(2100).meter(1, 5, register(new_meter_wh + 2000))
    script.at(2400).status(1, "Finishing").at(2401).stop(5, new_meter_wh + 2500)
    session = only_session(script.run(until=3000))
    assert session.energy_wh == 5500.0 and Flag.METER_INTERRUPTION in session.flags
