"""Session energy (DESIGN.md, Processors / Energy), as reducers over meter samples.

Rules, in order; every fallback and every doubt is a flag:

1. ``meterStop - meterStart`` when both are valid numbers (not -1, not negative, stop >= start);
2. otherwise the Energy.Active.Import.Register samples of ``transactionData`` (StopTransaction),
3. otherwise those of MeterValues during the session,
   each series bracketed by the valid meterStart / meterStop, in Wh (kWh converted, phases summed);
4. otherwise no energy (``none``).

A register series is reduced incrementally (:class:`RegisterReducer`: ``add`` per sample, ``result``
at the end), so a session's state stays small however long it runs. A drop in the register is
either a *dropout* (one bad sample: the next one is back at the old level; ignored) or a *reset*
(the meter restarted from 0: what it counted since is added). Both are flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from schemas.records import EnergySource

# Faster than this, on average, is not a charging session (MCS tops out near 3.75 MW; no AC or DC
# charger in the field sustains 1 MW over a session).
DEFAULT_MAX_POWER_W = 1_000_000.0


@dataclass
class RegisterReducer:
    """Energy counted by an energy register, from its samples in arrival order.

    State is plain data (``to_state`` / ``from_state``) so it can live in a changelog-backed table.
    """

    first: float | None = None
    prev: float | None = None
    total: float = 0.0
    suspect: float | None = None  # a drop not yet known to be a dropout or a reset
    last_at_ms: int | None = None
    count: int = 0
    resets: int = 0
    dropouts: int = 0
    out_of_order: int = 0
    peak_power_w: float | None = None

    def add(self, value: float, at_ms: int | None = None) -> None:
        if at_ms is not None and self.last_at_ms is not None and at_ms < self.last_at_ms:
            self.out_of_order += 1  # an older sample after a newer one: never a delta to count
            return
        self.count += 1
        if self.prev is None:
            self.first = self.prev = value
            self.last_at_ms = at_ms
            return
        if self.suspect is not None:
            if value >= self.prev:
                self.dropouts += 1  # back at the old level: the drop was one bad sample
            else:
                self.resets += 1  # still low: the meter restarted; count what it measured since 0
                self.total += max(0.0, self.suspect)
                self.prev = self.suspect
            self.suspect = None
        if value >= self.prev:
            delta = value - self.prev
            if at_ms is not None and self.last_at_ms is not None and at_ms - self.last_at_ms >= 10_000 and delta > 0:
                power = delta * 3_600_000 / (at_ms - self.last_at_ms)
                self.peak_power_w = power if self.peak_power_w is None else max(self.peak_power_w, power)
            self.total += delta
            self.prev = value
        else:
            self.suspect = value
        if at_ms is not None:
            self.last_at_ms = at_ms

    def result(self) -> tuple[float | None, set[str]]:
        """(Wh, flags); ``None`` when fewer than two samples make no difference to measure."""
        flags: set[str] = set()
        if self.resets:
            flags.add("meter_reset")
        if self.dropouts:
            flags.add("meter_dropout")
        if self.suspect is not None:
            flags.add("meter_trailing_drop")  # a last sample below the one before: not counted
        if self.out_of_order:
            flags.add("meter_sample_out_of_order")
        if self.count < 2:
            return None, flags
        return self.total, flags

    def to_state(self) -> list[Any]:
        return [self.first, self.prev, self.total, self.suspect, self.last_at_ms, self.count,
                self.resets, self.dropouts, self.out_of_order, self.peak_power_w]

    @classmethod
    def from_state(cls, state: list[Any] | None) -> "RegisterReducer":
        return cls(*state) if state else cls()


def valid_meter(value: Any) -> float | None:
    """A meterStart / meterStop that can be used: a number >= 0 (-1 means unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None  # Python's JSON reader accepts NaN and Infinity: never a meter reading
    return float(value) if value >= 0 else None


@dataclass(frozen=True)
class EnergyResult:
    energy_wh: float | None
    source: EnergySource
    flags: frozenset[str]
    peak_power_w: float | None


@dataclass
class EnergyInputs:
    meter_start: Any
    meter_stop: Any
    has_stop: bool
    transaction_data: list[tuple[int | None, float]] = field(default_factory=list)
    meter_values: RegisterReducer = field(default_factory=RegisterReducer)
    duration_s: float | None = None
    sampled_peak_power_w: float | None = None


def _series(start: float | None, samples: list[tuple[int | None, float]], stop: float | None) -> RegisterReducer:
    reducer = RegisterReducer()
    if start is not None:
        reducer.add(start)
    for at_ms, value in samples:
        reducer.add(value, at_ms)
    if stop is not None:
        reducer.add(stop)
    return reducer


def session_energy(inputs: EnergyInputs, max_power_w: float = DEFAULT_MAX_POWER_W) -> EnergyResult:
    flags: set[str] = set()
    start = valid_meter(inputs.meter_start)
    stop = valid_meter(inputs.meter_stop)
    if inputs.meter_start is not None and start is None:
        flags.add("meter_start_invalid")
    if inputs.has_stop:
        if inputs.meter_stop == -1:
            flags.add("meter_stop_unknown")
        elif inputs.meter_stop is None:
            flags.add("meter_stop_missing")
        elif stop is None:
            flags.add("meter_stop_invalid")
    for raw in (inputs.meter_start, inputs.meter_stop):
        if isinstance(raw, float) and math.isfinite(raw) and not raw.is_integer():
            flags.add("meter_value_not_integer")

    energy: float | None = None
    source = EnergySource.NONE
    peak = inputs.sampled_peak_power_w
    if start is not None and stop is not None:
        if stop >= start:
            energy, source = stop - start, EnergySource.METER_STOP
        else:
            flags.add("meter_stop_below_start")
            # A meter that resets every session and reports meterStart from the last one: only
            # the samples can tell. Never a negative energy.
            stop = None
    if energy is None:
        td = _series(start, inputs.transaction_data, stop)
        td_energy, td_flags = td.result()
        if td_energy is not None and inputs.transaction_data:
            energy, source = td_energy, EnergySource.TRANSACTION_DATA
            flags |= td_flags
            peak = peak if peak is not None else td.peak_power_w
    if energy is None:
        if inputs.meter_values.count:
            # meterStart, then the MeterValues samples (already reduced), then meterStop.
            mv_energy, mv_flags = _merge(start, inputs.meter_values, stop).result()
        else:
            mv_energy, mv_flags = None, set()
        if mv_energy is not None:
            energy, source = mv_energy, EnergySource.METER_VALUES
            flags |= mv_flags
    if peak is None:
        peak = inputs.meter_values.peak_power_w
    if energy is not None and inputs.duration_s and inputs.duration_s > 0:
        if energy * 3600 / inputs.duration_s > max_power_w:
            flags.add("implausible_power")
    return EnergyResult(energy, source, frozenset(flags), peak)


def _merge(start: float | None, samples: RegisterReducer, stop: float | None) -> RegisterReducer:
    """Bracket an already reduced series with meterStart before it and meterStop after it."""
    merged = RegisterReducer.from_state(samples.to_state())
    if start is not None and samples.first is not None:
        merged.count += 1
        if samples.first >= start:
            merged.total += samples.first - start
        else:
            merged.resets += 1  # first sample below meterStart: the meter restarted at the start
            merged.total += max(0.0, samples.first)
    if stop is not None:
        merged.add(stop)
    return merged
