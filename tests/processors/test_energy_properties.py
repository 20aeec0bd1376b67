"""Properties of the energy rules (processors/energy.py) over generated sessions and register series."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import assume, given, settings, strategies as st

from processors import state_codec
from processors.energy import EnergyInputs, RegisterReducer, tolerance_wh
from schemas.flags import Flag
from tests.processors.energy_inputs import DEFAULT_MAX_DURATION_S, energy_of, make_inputs


RESOLUTIONS = st.sampled_from([0.0, 1.0, 10.0, 100.0, 1000.0])
Sample = tuple[int | None, float, float]


@st.composite
def series(draw: st.DrawFn, max_size: int = 30) -> list[Sample]:
    """Register samples as the correlator keeps them: mostly rising in time, any value, some without a time."""
    at_ms = draw(st.integers(0, 10**9))
    samples: list[Sample] = []
    for _ in range(draw(st.integers(0, max_size))):
        at_ms += draw(st.integers(-60_000, 3_600_000))
        timed = draw(st.booleans()) or draw(st.booleans())
        samples.append((at_ms if timed else None, draw(st.floats(0, 2e7)), draw(RESOLUTIONS)))
    return samples


@st.composite
def rounded_register(draw: st.DrawFn) -> tuple[list[Sample], float]:
    """A register that only rises, read with rounding (to nearest or down, sample by sample): (samples, resolution)."""
    resolution = draw(st.sampled_from([1.0, 10.0, 100.0, 1000.0]))
    true_wh = draw(st.floats(0, 1e8))
    at_ms = draw(st.integers(0, 10**9))
    samples: list[Sample] = []
    for _ in range(draw(st.integers(2, 30))):
        at_ms += draw(st.integers(10_000, 900_000))
        true_wh += draw(st.one_of(st.just(0.0), st.floats(0, 50_000)))
        steps = round(true_wh / resolution) if draw(st.booleans()) else math.floor(true_wh / resolution)
        samples.append((at_ms, steps * resolution, resolution))
    return samples, resolution


def reduce(samples: list[Sample], reducer: RegisterReducer | None = None) -> RegisterReducer:
    reducer = reducer if reducer is not None else RegisterReducer()
    for at_ms, value, resolution in samples:
        reducer.add(value, at_ms, resolution)
    return reducer


METERS = st.one_of(st.none(), st.integers(-5, 2 * 10**7), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([-1, 0, 1e30, "12"]))
DURATIONS = st.one_of(st.none(), st.floats(0, 10 * 24 * 3600), st.sampled_from([0.0, math.nan, math.inf, -5.0]))
TIMES = st.one_of(st.none(), st.integers(0, 2 * 10**9))


@st.composite
def sessions(draw: st.DrawFn) -> tuple[EnergyInputs, float]:
    """Any session the correlator could describe, and a max power."""
    transaction_data, meter_values = draw(series()), draw(series())
    inputs = make_inputs(
        draw(METERS), draw(METERS), draw(st.booleans()),
        transaction_data=transaction_data, meter_values=reduce(meter_values),
        duration_s=draw(DURATIONS), gateway_duration_s=draw(DURATIONS),
        started_ms=draw(TIMES), stopped_ms=draw(TIMES),
        sampled_peak_power_w=draw(st.one_of(st.none(), st.floats(0, 1e7))),
    )
    return inputs, draw(st.sampled_from([7_400.0, 22_000.0, 350_000.0, 1e6]))


def coarsest(inputs: EnergyInputs) -> float:
    return max([s.resolution for s in inputs.transaction_data] + [inputs.meter_values.resolution, 1.0])


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_energy_is_never_negative_nor_nan(session: tuple[EnergyInputs, float]) -> None:
    inputs, max_power_w = session
    energy = energy_of(inputs, max_power_w).energy_wh
    assert energy is None or (math.isfinite(energy) and energy >= 0)


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_energy_is_never_above_max_power_for_the_longest_duration(session: tuple[EnergyInputs, float]) -> None:
    inputs, max_power_w = session
    durations = [d for d in (inputs.duration_s, inputs.gateway_duration_s) if d is not None and 0 <= d < math.inf]
    duration_s = max(durations, default=DEFAULT_MAX_DURATION_S)
    result = energy_of(inputs, max_power_w)
    assert result.energy_wh is None or result.energy_wh <= max_power_w * duration_s / 3600 + tolerance_wh(coarsest(inputs))


@settings(max_examples=200, deadline=None)
@given(rounded_register())
def test_a_rounded_rising_register_is_never_a_reset(register: tuple[list[Sample], float]) -> None:
    samples, resolution = register
    energy, flags = reduce(samples).result()
    assert energy is not None and energy <= samples[-1][1] - samples[0][1] + tolerance_wh(resolution)
    assert not flags & {Flag.METER_RESET, Flag.METER_REBASED, Flag.METER_DROPOUT, Flag.METER_TRAILING_DROP}
    session = energy_of(make_inputs(None, -1, True, transaction_data=samples))
    assert session.energy_wh == energy


@settings(max_examples=200, deadline=None)
@given(st.one_of(rounded_register().map(lambda register: register[0]), series().filter(lambda s: len(s) >= 2)),
       st.data())
def test_a_rounding_dip_never_adds_energy(samples: list[Sample], data: st.DataObject) -> None:
    energy, _ = reduce(samples).result()
    assume(energy is not None)  # fewer than two samples in order: nothing measured to compare with
    after = data.draw(st.integers(0, len(samples) - 1), label="after sample")
    prefix = reduce(samples[: after + 1])
    # A drop pending there: a sample back near the old level would be a dropout, not a dip.
    assume(prefix.suspect is None and prefix.prev is not None)
    depth = data.draw(st.floats(0, tolerance_wh(prefix.resolution)), label="depth")
    at_ms, _, resolution = samples[after]
    dipped = [*samples[: after + 1], (at_ms, max(0.0, prefix.prev - depth), resolution), *samples[after + 1:]]
    dipped_energy, _ = reduce(dipped).result()
    assert dipped_energy is not None and energy is not None and dipped_energy <= energy
    inputs: dict[str, Any] = {"meter_start": samples[0][1], "meter_stop": -1, "has_stop": True}
    with_dip = energy_of(make_inputs(**inputs, transaction_data=dipped)).energy_wh
    without = energy_of(make_inputs(**inputs, transaction_data=samples)).energy_wh
    assert with_dip == without if without is None else with_dip is not None and with_dip <= without


@settings(max_examples=200, deadline=None)
@given(series(), st.data())
def test_state_round_trip_mid_series_changes_nothing(samples: list[Sample], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(samples)), label="cut")
    resumed = state_codec.reducer_from_dict(json.loads(json.dumps(state_codec.reducer_to_dict(reduce(samples[:cut])))))
    resumed = reduce(samples[cut:], resumed)
    uninterrupted = reduce(samples)
    assert resumed.result() == uninterrupted.result() and resumed == uninterrupted


@st.composite
def swapped_meters(draw: st.DrawFn) -> tuple[list[tuple[int, float, float, int]], float]:
    """A session whose meter is swapped once or more (Interruption.Begin on the old one's last reading,
    Interruption.End on the new one's first): each meter starts anywhere and only rises. (samples, true Wh)."""
    at_ms, samples, total = 0, [], 0.0
    for meter in range(draw(st.integers(1, 4))):
        value = draw(st.floats(0, 1e8))
        readings = draw(st.integers(1, 6))
        for n in range(readings):
            if n:
                step = draw(st.floats(0, 3000))
                value += step
                total += step
            at_ms += draw(st.integers(60_000, 600_000))
            mark = 2 if n == 0 and meter else (1 if n == readings - 1 else 0)
            samples.append((at_ms, value, 1.0, mark))
    return samples, total


@settings(max_examples=300, deadline=None)
@given(swapped_meters(), st.booleans())
def test_energy_across_meter_swaps_is_what_each_meter_counted(drawn: tuple[list[tuple[int, float, float, int]], float],
                                                              as_transaction_data: bool) -> None:
    """Before + after every break, nothing across: whatever each meter reads, one source or the other, and
    meterStart / meterStop read on the first and last meter never override it."""
    samples, total = drawn
    reducer = RegisterReducer()
    for at_ms, value, resolution, mark in samples:
        reducer.add(value, at_ms, resolution, mark)
    energy, _ = reducer.result()
    assert energy is None or math.isclose(energy, total, abs_tol=1e-6 * max(1.0, total))
    # A new meter reading within the rounding of the old one is no swap to see: meterStop - meterStart may stand,
    # off by that rounding at most, per break.
    rounding = tolerance_wh(1.0) * sum(1 for *_, mark in samples if mark == 2)
    inputs = make_inputs(samples[0][1], samples[-1][1], True, duration_s=(samples[-1][0] - samples[0][0]) / 1000 + 60,
                          **({"transaction_data": samples} if as_transaction_data else {"meter_values": reducer}))
    result = energy_of(inputs)
    if len(samples) >= 2:
        assert result.energy_wh is not None
        assert math.isclose(result.energy_wh, total, abs_tol=1e-6 * max(1.0, total) + rounding + 1e-6), result
