"""Reading OCPP 1.6 ``MeterValue`` / ``SampledValue`` (OCPP 1.6, 7.31 / 7.45) the way real chargers
send them: values as strings or numbers, ``Wh`` or ``kWh``, totals and per-phase values side by
side, ``Outlet`` and ``Inlet`` locations, signed data, unknown measurands. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from processors.timestamps import parse_charger_time

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SOC = "SoC"

_ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0}
_POWER_UNITS = {"W": 1.0, "kW": 1000.0}
# Phases whose sum is the total: L1..L3, or the line-to-neutral forms some meters use.
_PHASE_GROUPS = ({"L1", "L2", "L3"}, {"L1-N", "L2-N", "L3-N"})


@dataclass(frozen=True, slots=True)
class Reading:
    """One register, power or SoC reading at one moment, in base units (Wh, W, %)."""

    at_ms: int | None  # charger clock, ms; None if the timestamp was unreadable
    measurand: str
    value: float
    context: str


@dataclass(frozen=True, slots=True)
class MeterReport:
    readings: tuple[Reading, ...]
    flags: frozenset[str]


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def read_meter_values(meter_values: Any) -> MeterReport:
    """Readings of the energy register, power and SoC from a ``meterValue`` / ``transactionData`` list."""
    readings: list[Reading] = []
    flags: set[str] = set()
    if not isinstance(meter_values, list):
        return MeterReport((), frozenset({"meter_values_unreadable"} if meter_values is not None else ()))
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            flags.add("meter_values_unreadable")
            continue
        at_ms, time_flags = parse_charger_time(meter_value.get("timestamp"))
        flags |= time_flags
        sampled = meter_value.get("sampledValue")
        if not isinstance(sampled, list):
            flags.add("meter_values_unreadable")
            continue
        readings.extend(_readings_at(at_ms, sampled, flags))
    return MeterReport(tuple(readings), frozenset(flags))


def _readings_at(at_ms: int | None, sampled: list[Any], flags: set[str]) -> Iterable[Reading]:
    # Group by measurand and location; within a group prefer the total over summed phases.
    groups: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}
    for sample in sampled:
        if not isinstance(sample, dict):
            flags.add("meter_values_unreadable")
            continue
        measurand = sample.get("measurand") or ENERGY_REGISTER  # the spec's default measurand
        if measurand not in (ENERGY_REGISTER, POWER, SOC):
            continue  # other measurands (voltage, current, temperature, vendor ones) are not needed here
        if sample.get("format") == "SignedData":
            flags.add("signed_data_skipped")
            continue
        value = _number(sample.get("value"))
        if value is None:
            flags.add("sample_value_unreadable")
            continue
        if not isinstance(sample.get("value"), str):
            flags.add("sample_value_not_string")
        unit = sample.get("unit")
        if measurand == ENERGY_REGISTER:
            factor = _ENERGY_UNITS.get(unit or "Wh")
        elif measurand == POWER:
            factor = _POWER_UNITS.get(unit or "W")
        else:
            factor = 1.0
        if factor is None:
            flags.add("sample_unit_unknown")
            continue
        if measurand == ENERGY_REGISTER and value < 0:
            flags.add("sample_value_negative")  # a register never reads below zero
            continue
        location = sample.get("location") or "Outlet"  # the spec's default location
        if location not in ("Outlet", "Inlet"):
            continue  # "EV", "Body", "Cable": not what the charger delivered
        phase = sample.get("phase") or ""
        context = sample.get("context") or "Sample.Periodic"
        groups.setdefault((measurand, location), {})[phase] = (value * factor, context)
    for measurand in (ENERGY_REGISTER, POWER, SOC):
        # Outlet is what was delivered to the car; Inlet (grid side) only when no Outlet value exists.
        group = groups.get((measurand, "Outlet")) or groups.get((measurand, "Inlet"))
        if not group:
            continue
        if "" in group:
            value, context = group[""]
        else:
            phases = next((p for p in _PHASE_GROUPS if p <= group.keys()), None)
            if phases is None:
                flags.add("incomplete_phases")
                continue
            value = sum(group[p][0] for p in phases)
            context = group[next(iter(phases))][1]
            flags.add("energy_summed_from_phases" if measurand == ENERGY_REGISTER else "power_summed_from_phases")
        yield Reading(at_ms, measurand, value, context)
