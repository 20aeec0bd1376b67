"""Signed meter values (issue 25) in a frame's meter values, for the normalizers: OCPP 1.6 sampled values with
``format: SignedData`` and 2.0.1 ``signedMeterValue``, read by :mod:`signed_meter.arrival` (which never raises and
keeps what it cannot take apart, to be judged ``unparsable``). Pure; nothing is verified here.

The numbers beside them stay what :mod:`processors.meter` makes of them (a 1.6 ``SignedData`` value is no number:
``signed_data_skipped``; a 2.0.1 ``value`` beside a ``signedMeterValue`` is a register sample like any other).

At most :data:`MAX_SIGNED_PER_FRAME` signed values are taken from one frame (each costs a signature check, about a
millisecond): the rest are dropped, flagged ``signed_values_dropped``, and kept in the frames table as sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value, from_ocpp201_sampled_value

MAX_SIGNED_PER_FRAME = 16
"""A transaction's Begin, End and a few intermediate readings fit many times over; a frame of hundreds is poison."""

Reader = Callable[[Any], SignedValue | None]


def _signed(meter_values: Any, read: Reader) -> tuple[tuple[SignedValue, ...], bool]:
    """The signed values of a ``meterValue`` / ``transactionData`` list, in order, and whether some were dropped."""
    if not isinstance(meter_values, list):
        return (), False
    found: list[SignedValue] = []
    for meter_value in meter_values:
        sampled = meter_value.get("sampledValue") if isinstance(meter_value, dict) else None
        if not isinstance(sampled, list):
            continue
        for sample in sampled:
            value = read(sample)
            if value is None:
                continue
            if len(found) >= MAX_SIGNED_PER_FRAME:
                return tuple(found), True
            found.append(value)
    return tuple(found), False


def signed_values_16(meter_values: Any) -> tuple[tuple[SignedValue, ...], bool]:
    """OCPP 1.6 ``MeterValues.meterValue`` / ``StopTransaction.transactionData``: ``format: SignedData`` values."""
    return _signed(meter_values, from_ocpp16_sampled_value)


def signed_values_201(meter_values: Any) -> tuple[tuple[SignedValue, ...], bool]:
    """OCPP 2.0.1 ``meterValue`` (TransactionEvent, MeterValues): sampled values with a ``signedMeterValue``."""
    return _signed(meter_values, from_ocpp201_sampled_value)
