"""Session energy (SESSIONS.md, Energy; DESIGN.md, Processors / Energy), as reducers over meter samples.

Every fallback and every doubt is a flag. Registers are in Wh (``processors.meter`` converts kWh and
sums phases) and each sample carries its *resolution*, the step of its last digit; the *tolerance*
of a series is ``max(2 × resolution, 10 Wh)`` (resolution capped at 1 kWh, an integer-kWh register):
what rounding can explain. The *power bound* is 2 × the highest power seen (sampled
Power.Active.Import, or register deltas), at least 50 kW, capped at ``max_power_w``; ``max_power_w`` if
none is known.

Rules, in order:

1. meterStart / meterStop are used when they are numbers >= 0 (-1 is "unknown"); a stop below the start
   gives no ``meterStop - meterStart`` (``meter_stop_below_start``).
2. A register series is reduced sample by sample (:class:`RegisterReducer`): a rise is counted; a drop
   within the tolerance is rounding (``meter_dip_ignored``: nothing counted, the higher level kept); a
   drop is decided by the first sample that leaves its level: back at the old level, or higher above the
   drop than the power bound allows in the time between, it was a bad reading, however many samples
   repeated it (``meter_dropout``); otherwise the drop lasts, and is a *reset*
   (``meter_reset``: what the meter counted since 0 is added) only on evidence — the new value is nearer
   zero than the old level and the power bound could have counted it in the time that passed — and
   otherwise a *rebase* (``meter_rebased``: counting goes on from the new level, nothing across the
   jump). A drop still undecided at the end is not counted (``meter_trailing_drop``); a sample older
   than the last one is not counted (``meter_sample_out_of_order``). Across a break in metering (a sample
   marked ``Interruption.Begin``, then the next, ``Interruption.End``: a meter swapped, the power cut) nothing is
   counted, up or down: the energy is what was counted before it plus what was counted after it
   (``meter_interruption`` when the register moved across it; then meterStop - meterStart, read on two meters,
   is not used).
3. meterStart before and meterStop after the samples follow the same rules, with the time the samples
   do not cover (start to first sample, last sample to stop, charger clock; the session's duration when
   a time is missing); a rise beyond what the power bound allows in that time is not bracketed
   (``energy_mismatch``): meterStart 0 before a lifetime register of 12.3 MWh is not 12.3 MWh of charging.
4. A candidate energy above ``max_power_w`` × duration + tolerance is not used (``energy_implausible``):
   the next source is tried. The duration is the longest known of the charger-clock and gateway-clock
   durations, else ``max_duration_s`` (the session's maximum age).
5. Sources, in order: ``meterStop - meterStart`` (``meter_stop``), then the samples of ``transactionData``
   (``transaction_data``), then those of MeterValues (``meter_values``), each bracketed per rule 3; else
   none (``none``).
6. ``meterStop - meterStart`` is cross-checked against the first plausible sample series with at least
   two samples: it may exceed their energy by what the power bound allows in the time they do not cover
   (samples can miss the beginning and the end of a session) and fall below it only by the tolerance.
   Beyond that the samples win (``energy_mismatch``): a register read all through the session is harder to
   get wrong than two numbers at its ends, which chargers send as 0, in kWh, or from the last session.
7. Energy is never negative, never NaN or infinite, never above ``max_power_w`` × duration + tolerance.

A series is reduced incrementally (``add`` per sample, ``result`` at the end), so a session's state stays
small however long it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from processors.meter import BREAK_BEGINS, BREAK_ENDS
from schemas.flags import Flag
from schemas.records import EnergySource

# Faster than this, on average, is not a charging session (MCS tops out near 3.75 MW; no AC or DC
# charger in the field sustains 1 MW over a session): the register reducer's bound, and the default of the
# setting that bounds a session's energy (processors.settings, OCPP_WORKER_MAX_POWER_KW).
MAX_CHARGER_POWER_W = 1_000_000.0
MIN_TOLERANCE_WH = 10.0
# The coarsest register seen in the field counts whole kWh; a coarser "resolution" (a value sent as
# "1E+6") must not widen the tolerance to megawatt-hours.
MAX_RESOLUTION_WH = 1000.0
# The power bound never goes below this: a DC charger ramps to far more than twice what a few slow
# samples show, and a bound too tight would call a true meterStop a mismatch and under-bill.
MIN_POWER_BOUND_W = 50_000.0
# Register deltas over shorter intervals say more about timestamp jitter than about power.
_MIN_POWER_INTERVAL_MS = 10_000


def tolerance_wh(resolution: float) -> float:
    """What rounding can explain in the difference of two readings of a register of this resolution."""
    return max(2 * min(resolution, MAX_RESOLUTION_WH), MIN_TOLERANCE_WH)


def power_bound_w(peak_power_w: float | None, max_power_w: float) -> float:
    """2 × the highest power seen (a car's draw varies), at least :data:`MIN_POWER_BOUND_W`, capped at
    ``max_power_w``; that cap if none is known."""
    if peak_power_w is None or not peak_power_w > 0:
        return max_power_w
    return min(max(2 * peak_power_w, MIN_POWER_BOUND_W), max_power_w)


def _reachable_wh(power_w: float, seconds: float) -> float:
    return power_w * seconds / 3600


def _is_reset(level: float, value: float, elapsed_s: float, power_w: float, tolerance: float) -> bool:
    """A drop from ``level`` to ``value`` is a restart at 0 only on evidence: ``value`` is nearer zero than
    ``level``, and no more than ``power_w`` could count in ``elapsed_s``. (A register of 14.3 kWh that
    reads 14.0 kWh an hour later did not restart and count 14 kWh again.)"""
    return value < level - value and value <= _reachable_wh(power_w, elapsed_s) + tolerance


@dataclass
class RegisterReducer:
    """Energy counted by an energy register, from its samples in arrival order (module rule 2).

    It knows no session: its power bound is 2 × its own peak, capped at :data:`MAX_CHARGER_POWER_W`.
    Plain data, so it lives in the correlator's state (:mod:`processors.state_codec` writes it by field name).
    """

    first: float | None = None
    prev: float | None = None  # the level counted up to
    total: float = 0.0
    suspect: float | None = None  # a drop not yet known to be a dropout or lasting
    last_at_ms: int | None = None
    count: int = 0
    resets: int = 0
    dropouts: int = 0
    out_of_order: int = 0
    peak_power_w: float | None = None
    # Appended after the first ten (states persisted before hold only those).
    first_at_ms: int | None = None
    resolution: float = 0.0  # the coarsest resolution seen, Wh
    suspect_reset: bool = False  # the pending drop is a reset if it lasts (else a rebase)
    rebases: int = 0
    dips: int = 0
    # Appended after the fifteen above: a break in metering (processors.meter.BREAK_MARKS).
    in_break: bool = False  # the last sample began a break: the next one is across it
    breaks: int = 0  # steps across a break beyond the tolerance, not counted

    def add(self, value: float, at_ms: int | None = None, resolution: float = 0.0, mark: int = 0) -> None:
        """Count one sample: a register reading (Wh, finite, >= 0), its charger time, its resolution (Wh), and where
        it stands to a break in metering (``mark``: :data:`~processors.meter.BREAK_BEGINS` after it,
        :data:`~processors.meter.BREAK_ENDS` with it; module rule 2)."""
        across = self.in_break or mark == BREAK_ENDS
        if at_ms is not None and self.last_at_ms is not None and at_ms <= self.last_at_ms:
            if at_ms < self.last_at_ms:
                self.out_of_order += 1  # an older sample after a newer one: never a delta to count
                return
            if not across:
                return  # the same moment again: MeterValues resent after a lost answer count once
        self.count += 1
        self.resolution = max(self.resolution, resolution)
        if self.prev is None:
            self.first = self.prev = value
            self.first_at_ms = self.last_at_ms = at_ms
            self.in_break = mark == BREAK_BEGINS
            return
        tolerance = tolerance_wh(self.resolution)
        if across:
            self._across_break(value, tolerance)
        elif self.suspect is None or abs(value - self.suspect) > tolerance:
            # (Still at a pending drop's level, nothing is decided: a dropout may repeat its bad reading.)
            self._step(value, at_ms, tolerance)
        if at_ms is not None:
            self.last_at_ms = at_ms
        self.in_break = mark == BREAK_BEGINS

    def _across_break(self, value: float, tolerance: float) -> None:
        """The first sample after a break (a meter swapped): nothing is counted from the level before it; a drop
        still pending before the break is decided by what came before it (it lasted until the break)."""
        assert self.prev is not None
        if self.suspect is not None:
            self._settle(self.suspect, False, tolerance)
        if abs(value - self.prev) > tolerance:
            self.breaks += 1
        self.prev = value

    def _step(self, value: float, at_ms: int | None, tolerance: float) -> None:
        assert self.prev is not None
        power_w = power_bound_w(self.peak_power_w, MAX_CHARGER_POWER_W)
        elapsed_s = _elapsed_s(self.last_at_ms, at_ms)
        if self.suspect is not None:
            self._settle(value, value - self.suspect > _reachable_wh(power_w, elapsed_s) + tolerance, tolerance)
        if value >= self.prev:
            self._rise(value, at_ms)
        elif value >= self.prev - tolerance:
            self.dips += 1
        else:
            self.suspect = value
            self.suspect_reset = _is_reset(self.prev, value, elapsed_s, power_w, tolerance)

    def _settle(self, value: float, unreachable: bool, tolerance: float) -> None:
        """Decide the pending drop, now that ``value`` follows it."""
        assert self.prev is not None and self.suspect is not None
        if value >= self.prev - tolerance or unreachable:
            self.dropouts += 1  # back at the old level, or too far above the drop to have been counted since
        elif self.suspect_reset:
            self.resets += 1
            self.total += self.suspect  # the meter restarted at 0 and had counted this much
            self.prev = self.suspect
        else:
            self.rebases += 1
            self.prev = self.suspect
        self.suspect = None

    def _rise(self, value: float, at_ms: int | None) -> None:
        assert self.prev is not None
        delta = value - self.prev
        if at_ms is not None and self.last_at_ms is not None and at_ms - self.last_at_ms >= _MIN_POWER_INTERVAL_MS and delta > 0:
            power = delta * 3_600_000 / (at_ms - self.last_at_ms)
            self.peak_power_w = power if self.peak_power_w is None else max(self.peak_power_w, power)
        self.total += delta
        self.prev = value

    def result(self) -> tuple[float | None, set[str]]:
        """(Wh, flags); ``None`` when fewer than two samples make no difference to measure."""
        counters = ((Flag.METER_RESET, self.resets), (Flag.METER_REBASED, self.rebases),
                    (Flag.METER_DROPOUT, self.dropouts), (Flag.METER_DIP_IGNORED, self.dips),
                    (Flag.METER_SAMPLE_OUT_OF_ORDER, self.out_of_order), (Flag.METER_INTERRUPTION, self.breaks))
        flags: set[str] = {flag for flag, n in counters if n}
        if self.suspect is not None:
            flags.add(Flag.METER_TRAILING_DROP)  # a drop still undecided at the end: not counted
        return (self.total if self.count >= 2 else None), flags


class RegisterSample(NamedTuple):
    """One register sample kept as it came (a stop's transactionData, replayed when the session's row is made)."""

    at_ms: int | None  # charger clock
    value: float  # Wh
    resolution: float = 0.0  # Wh; 0: not known (states written before resolutions)
    mark: int = 0  # where it stands to a break in metering (:data:`~processors.meter.BREAK_MARKS`)


def _elapsed_s(earlier_ms: int | None, later_ms: int | None) -> float:
    """Seconds between two samples; 0 when a time is missing: nothing is taken to be counted in an unknown time."""
    return (later_ms - earlier_ms) / 1000 if earlier_ms is not None and later_ms is not None else 0.0


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
    transaction_data: Sequence[RegisterSample] = ()
    meter_values: RegisterReducer = field(default_factory=RegisterReducer)
    duration_s: float | None = None  # charger clock, when trusted
    gateway_duration_s: float | None = None
    started_ms: int | None = None  # charger clock: with the samples' times, the time they do not cover
    stopped_ms: int | None = None
    sampled_peak_power_w: float | None = None


@dataclass(frozen=True)
class _Span:
    """What the session says about the time around its samples (module rule 3)."""

    started_ms: int | None
    stopped_ms: int | None
    duration_s: float  # the longest known duration, else the maximum session age
    power_w: float  # the power bound

    def gap_s(self, earlier_ms: int | None, later_ms: int | None) -> float:
        """Seconds between two charger times, within the session's duration; all of it when one is missing."""
        if earlier_ms is None or later_ms is None:
            return self.duration_s
        return min(max(0.0, (later_ms - earlier_ms) / 1000), self.duration_s)

    def head_tail_s(self, samples: RegisterReducer) -> tuple[float, float]:
        return self.gap_s(self.started_ms, samples.first_at_ms), self.gap_s(samples.last_at_ms, self.stopped_ms)


def _bracketed(samples: RegisterReducer, start: float | None, stop: float | None, span: _Span) -> tuple[float | None, set[str]]:
    """The samples' energy with meterStart before them and meterStop after them (module rule 3)."""
    merged = replace(samples)  # a copy: the bracket adds to it
    flags: set[str] = set()
    head_s, tail_s = span.head_tail_s(samples)
    tolerance = tolerance_wh(samples.resolution)
    if start is not None and samples.first is not None:
        step = samples.first - start
        if step >= -tolerance:
            if step <= _reachable_wh(span.power_w, head_s) + tolerance:
                merged.count += 1
                merged.total += step  # below meterStart by rounding: take off what the samples counted below it
                if step < 0:
                    merged.dips += 1
            else:
                flags.add(Flag.ENERGY_MISMATCH)
        elif _is_reset(start, samples.first, head_s, span.power_w, tolerance):
            merged.count += 1
            merged.resets += 1
            merged.total += samples.first
        else:
            merged.rebases += 1  # meterStart is another register's (or another session's): not a point
    if stop is not None and samples.prev is not None:
        if stop - samples.prev <= _reachable_wh(span.power_w, tail_s) + tolerance:
            merged.add(stop, None, 1.0)  # no time: the stop bracket makes no peak power
        else:
            flags.add(Flag.ENERGY_MISMATCH)
    energy, merged_flags = merged.result()
    return (max(0.0, energy) if energy is not None else None), flags | merged_flags


def _agrees(metered: float, samples: RegisterReducer, span: _Span) -> bool | None:
    """Whether ``meterStop - meterStart`` fits the samples (module rule 6); ``None`` if fewer than two."""
    energy, _ = samples.result()
    if energy is None:
        return None
    head_s, tail_s = span.head_tail_s(samples)
    tolerance = tolerance_wh(samples.resolution)
    uncovered_s = min(head_s + tail_s, span.duration_s)
    return energy - tolerance <= metered <= energy + _reachable_wh(span.power_w, uncovered_s) + tolerance


def _replay(transaction_data: Sequence[RegisterSample]) -> RegisterReducer:
    reducer = RegisterReducer()
    for sample in transaction_data:
        reducer.add(sample.value, sample.at_ms, sample.resolution, sample.mark)
    return reducer


def _meter_flags(inputs: EnergyInputs, start: float | None, stop: float | None) -> set[str]:
    flags: set[str] = set()
    if inputs.meter_start is not None and start is None:
        flags.add(Flag.METER_START_INVALID)
    if inputs.has_stop:
        if inputs.meter_stop == -1:
            flags.add(Flag.METER_STOP_UNKNOWN)
        elif inputs.meter_stop is None:
            flags.add(Flag.METER_STOP_MISSING)
        elif stop is None:
            flags.add(Flag.METER_STOP_INVALID)
    for raw in (inputs.meter_start, inputs.meter_stop):
        if isinstance(raw, float) and math.isfinite(raw) and not raw.is_integer():
            flags.add(Flag.METER_VALUE_NOT_INTEGER)
    return flags


def _highest(*powers: float | None) -> float | None:
    known = [p for p in powers if p is not None and math.isfinite(p)]
    return max(known, default=None)


def session_energy(inputs: EnergyInputs, max_power_w: float, max_duration_s: float) -> EnergyResult:
    """The session's energy by the module's rules, in order: ``max_power_w`` bounds its average power,
    ``max_duration_s`` (the longest a session lasts) stands in for a duration nothing tells."""
    start = valid_meter(inputs.meter_start)
    stop = valid_meter(inputs.meter_stop)
    flags = _meter_flags(inputs, start, stop)
    td = _replay(inputs.transaction_data)
    mv = inputs.meter_values
    durations = [d for d in (inputs.duration_s, inputs.gateway_duration_s) if d is not None and 0 <= d < math.inf]
    duration_s = max(durations, default=max_duration_s)
    span = _Span(inputs.started_ms, inputs.stopped_ms, duration_s,
                 power_bound_w(_highest(inputs.sampled_peak_power_w, td.peak_power_w, mv.peak_power_w), max_power_w))
    peak = next((p for p in (inputs.sampled_peak_power_w, td.peak_power_w, mv.peak_power_w) if p is not None), None)

    def plausible(energy: float, resolution: float) -> bool:
        return math.isfinite(energy) and energy <= _reachable_wh(max_power_w, duration_s) + tolerance_wh(resolution)

    metered: float | None = None
    if start is not None and stop is not None:
        if stop < start:
            # A meter that resets every session and reports meterStart from the last one: only the
            # samples can tell. Never a negative energy.
            flags.add(Flag.METER_STOP_BELOW_START)
        elif td.breaks or mv.breaks:
            pass  # the meter was swapped between meterStart and meterStop (rule 2): their difference spans two meters
        elif plausible(stop - start, 1.0):
            metered = stop - start
        else:
            flags.add(Flag.ENERGY_IMPLAUSIBLE)
    for source, samples in ((EnergySource.TRANSACTION_DATA, td), (EnergySource.METER_VALUES, mv)):
        if not samples.count:
            continue
        energy, sample_flags = _bracketed(samples, start, stop, span)
        if energy is None:
            continue
        if not plausible(energy, samples.resolution):
            flags.add(Flag.ENERGY_IMPLAUSIBLE)
            continue
        if metered is None:
            return EnergyResult(energy, source, frozenset(flags | sample_flags), peak)
        agrees = _agrees(metered, samples, span)
        if agrees is None:
            continue  # one sample cannot check meterStop - meterStart; the next source may
        if not agrees:
            return EnergyResult(energy, source, frozenset(flags | sample_flags | {Flag.ENERGY_MISMATCH}), peak)
        break
    if metered is not None:
        return EnergyResult(metered, EnergySource.METER_STOP, frozenset(flags), peak)
    return EnergyResult(None, EnergySource.NONE, frozenset(flags), peak)
