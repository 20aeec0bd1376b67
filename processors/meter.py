"""Reading OCPP 1.6 ``MeterValue`` / ``SampledValue`` (OCPP 1.6, 7.31 / 7.45) the way real chargers
send them: values as strings or numbers, ``Wh`` or ``kWh``, totals and per-phase values side by
side, ``Outlet`` and ``Inlet`` locations, signed data, unknown measurands. Pure functions.

Rules, per ``MeterValue``, context and measurand (one ``MeterValue`` may carry a register's Transaction.Begin and
Transaction.End values side by side: OCPP 2.0.1 TxEndedMeasurands; each is a reading of its own, in the order sent):

1. Only the register, power and SoC are read. ``SignedData``, unreadable values, values in an unknown
   unit and negative registers are skipped, each with a flag.
2. The ``Outlet`` location is what the car got; ``Inlet`` is used only when there is no ``Outlet`` value.
3. A total (no ``phase``) wins over phases. Without a total, all three phases (``L1..L3`` or
   ``L1-N..L3-N``) are summed (``energy_summed_from_phases`` / ``power_summed_from_phases``).
4. A register reported only on ``L1`` (or ``L1-N``) is a single-phase meter: that phase is the total
   (``energy_from_single_phase``). Any other incomplete set, two phases included, gives no reading
   (``incomplete_phases``): a three-phase meter that sent two of its phases dropped one from this
   sample, and their sum would read as a drop in the register, then a jump back.
5. Every reading carries its ``resolution``: the step of its last digit in base units, from the
   decimals as sent (``"12345.6"`` kWh: 100 Wh; ``"14300"`` Wh: 1 Wh; ``"14.30"`` kWh: 10 Wh; a JSON
   number from its shortest ``repr``, an integer: 1 unit). A sum of phases carries the sum of their
   resolutions (their rounding adds up). :mod:`processors.energy` tells rounding from real drops by it.
6. ``Interruption.Begin`` / ``Interruption.End`` readings bracket a break in metering (a meter swapped, the power
   cut): :data:`BREAK_MARKS` tells the energy reducer, which counts nothing across it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.flags import Flag
from processors.timestamps import parse_charger_time

ENERGY_REGISTER = "Energy.Active.Import.Register"
INTERRUPTION_BEGIN, INTERRUPTION_END = "Interruption.Begin", "Interruption.End"  # ReadingContext
BREAK_BEGINS, BREAK_ENDS = 1, 2  # processors.energy.RegisterReducer.add's ``mark``
# Where a reading stands to a break in metering: BREAK_BEGINS after it, BREAK_ENDS with it (other contexts: 0).
BREAK_MARKS = {INTERRUPTION_BEGIN: BREAK_BEGINS, INTERRUPTION_END: BREAK_ENDS}
POWER = "Power.Active.Import"
SOC = "SoC"

_ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0}
_POWER_UNITS = {"W": 1.0, "kW": 1000.0}
# Phases whose sum is the total: L1..L3, or the line-to-neutral forms some meters use.
_PHASE_GROUPS = ({"L1", "L2", "L3"}, {"L1-N", "L2-N", "L3-N"})
_SINGLE_PHASES = ({"L1"}, {"L1-N"})
# A last digit worth more than 10^15 units says nothing (and 10.0 ** 400 would overflow): "0e400".
_MAX_EXPONENT = 15


@dataclass(frozen=True, slots=True)
class Reading:
    """One register, power or SoC reading at one moment, in base units (Wh, W, %)."""

    at_ms: int | None  # charger clock, ms; None if the timestamp was unreadable
    measurand: str
    value: float
    context: str
    resolution: float = 0.0  # the step of the value's last digit, in base units; 0: not known


@dataclass(frozen=True, slots=True)
class MeterReport:
    readings: tuple[Reading, ...]
    flags: frozenset[str]


# What nearly every charger sends ("14300", "12345.6"): read without Decimal (half the time); the same
# result as the general path below, which a property test holds it to.
_PLAIN_DECIMAL = re.compile(r"-?\d{1,15}(?:\.(\d{1,15}))?", re.ASCII)


def _number(raw: Any) -> tuple[float, float] | None:
    """``(value, step of its last digit)`` in the unit as sent, or ``None`` if it is not a finite number."""
    if type(raw) is str:
        plain = _PLAIN_DECIMAL.fullmatch(raw)
        if plain is not None:
            decimals = plain.group(1)
            return float(raw), 10.0 ** -len(decimals) if decimals else 1.0
    return _any_number(raw)


def _any_number(raw: Any) -> tuple[float, float] | None:
    """:func:`_number` for whatever a charger sends: JSON numbers of any size, exponents, spaces, NaN."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        exact = Decimal(raw)  # never float(raw): a 400-digit JSON integer would raise OverflowError
    elif isinstance(raw, float):
        exact = Decimal(repr(raw))  # the shortest form that reads back: the decimals the sender wrote
    elif isinstance(raw, str):
        try:
            exact = Decimal(raw.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not exact.is_finite():
        return None  # NaN, sNaN, Infinity: never a reading
    value = float(exact)
    if not math.isfinite(value):
        return None  # beyond what a float holds ("1e400")
    exponent = int(exact.as_tuple().exponent)  # an int for every finite Decimal
    return value, 10.0 ** min(exponent, _MAX_EXPONENT)


def read_meter_values(meter_values: Any) -> MeterReport:
    """Readings of the energy register, power and SoC from a ``meterValue`` / ``transactionData`` list."""
    readings: list[Reading] = []
    flags: set[str] = set()
    if not isinstance(meter_values, list):
        return MeterReport((), frozenset({Flag.METER_VALUES_UNREADABLE} if meter_values is not None else ()))
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            flags.add(Flag.METER_VALUES_UNREADABLE)
            continue
        at_ms, time_flags = parse_charger_time(meter_value.get("timestamp"))
        flags |= time_flags
        sampled = meter_value.get("sampledValue")
        if not isinstance(sampled, list):
            flags.add(Flag.METER_VALUES_UNREADABLE)
            continue
        readings.extend(_readings_at(at_ms, sampled, flags))
    return MeterReport(tuple(readings), frozenset(flags))


def _readings_at(at_ms: int | None, sampled: list[Any], flags: set[str]) -> Iterable[Reading]:
    # Group by measurand, location and context (a Transaction.Begin and a Transaction.End value of one register
    # may share a meterValue: OCPP 2.0.1 TxEndedMeasurands); within a group prefer the total over phases.
    groups: dict[tuple[str, str, str], dict[str, tuple[float, float]]] = {}
    contexts: list[str] = []  # in the order first seen (nearly always one)
    for sample in sampled:
        if not isinstance(sample, dict):
            flags.add(Flag.METER_VALUES_UNREADABLE)
            continue
        measurand = sample.get("measurand") or ENERGY_REGISTER  # the spec's default measurand
        if measurand not in (ENERGY_REGISTER, POWER, SOC):
            continue  # other measurands (voltage, current, temperature, vendor ones) are not needed here
        if sample.get("format") == "SignedData":
            flags.add(Flag.SIGNED_DATA_SKIPPED)
            continue
        number = _number(sample.get("value"))
        if number is None:
            flags.add(Flag.SAMPLE_VALUE_UNREADABLE)
            continue
        value, step = number
        if not isinstance(sample.get("value"), str):
            flags.add(Flag.SAMPLE_VALUE_NOT_STRING)
        unit = sample.get("unit")
        if measurand == ENERGY_REGISTER:
            factor = _ENERGY_UNITS.get(unit or "Wh")
        elif measurand == POWER:
            factor = _POWER_UNITS.get(unit or "W")
        else:
            factor = 1.0
        if factor is None:
            flags.add(Flag.SAMPLE_UNIT_UNKNOWN)
            continue
        if measurand == ENERGY_REGISTER and value < 0:
            flags.add(Flag.SAMPLE_VALUE_NEGATIVE)  # a register never reads below zero
            continue
        location = sample.get("location") or "Outlet"  # the spec's default location
        if location not in ("Outlet", "Inlet"):
            continue  # "EV", "Body", "Cable": not what the charger delivered
        phase = sample.get("phase") or ""
        context = sample.get("context") or "Sample.Periodic"
        if not isinstance(phase, str) or not isinstance(context, str):
            flags.add(Flag.METER_VALUES_UNREADABLE)  # a list or an object where the spec wants an enum's string
            continue
        if not contexts or (context != contexts[0] and context not in contexts):
            contexts.append(context)
        groups.setdefault((measurand, location, context), {})[phase] = (value * factor, step * factor)
    for context in contexts:
        for measurand in (ENERGY_REGISTER, POWER, SOC):
            # Outlet is what was delivered to the car; Inlet (grid side) only when no Outlet value exists.
            group = groups.get((measurand, "Outlet", context)) or groups.get((measurand, "Inlet", context))
            if not group:
                continue
            if "" in group:
                value, resolution = group[""]
            elif measurand == ENERGY_REGISTER and group.keys() in _SINGLE_PHASES:
                value, resolution = next(iter(group.values()))
                flags.add(Flag.ENERGY_FROM_SINGLE_PHASE)
            else:
                phases = next((p for p in _PHASE_GROUPS if p <= group.keys()), None)
                if phases is None:
                    flags.add(Flag.INCOMPLETE_PHASES)
                    continue
                value = sum(group[p][0] for p in phases)
                resolution = sum(group[p][1] for p in phases)
                flags.add(Flag.ENERGY_SUMMED_FROM_PHASES if measurand == ENERGY_REGISTER else Flag.POWER_SUMMED_FROM_PHASES)
            yield Reading(at_ms, measurand, value, context, resolution)

