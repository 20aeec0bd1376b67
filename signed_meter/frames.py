"""The signed values of one transaction in stored OCPP frames (the ``frames`` table's ``raw``), for ``verify``.

What the normalizers read as they go (issue 25 part 2), read here again from the frames a session left: 1.6
``MeterValues`` (``transactionId``), ``StopTransaction.transactionData``; 2.0.1 ``TransactionEvent`` meter values
(``transactionInfo.transactionId``). Frames of other transactions, calls of other kinds, text that is not an OCPP
call: nothing. Never raises.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from signed_meter.arrival import SignedValue, from_ocpp16_sampled_value, from_ocpp201_sampled_value

CALL = 2


def signed_values_in_frame(raw: str, transaction_id: str) -> list[SignedValue]:
    """The signed values a charger's call ``raw`` carries for ``transaction_id`` (1.6 or 2.0.1, told by the action)."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    if not (isinstance(message, list) and len(message) >= 4 and message[0] == CALL and isinstance(message[3], Mapping)):
        return []
    action, payload = message[2], message[3]
    if action == "MeterValues" and _same(payload.get("transactionId"), transaction_id):
        return _values(payload.get("meterValue"), from_ocpp16_sampled_value)
    if action == "StopTransaction" and _same(payload.get("transactionId"), transaction_id):
        return _values(payload.get("transactionData"), from_ocpp16_sampled_value)
    if action == "TransactionEvent":
        info = payload.get("transactionInfo")
        if isinstance(info, Mapping) and _same(info.get("transactionId"), transaction_id):
            return _values(payload.get("meterValue"), from_ocpp201_sampled_value)
    return []


def signed_values_in_frames(raws: Iterable[str], transaction_id: str) -> list[SignedValue]:
    return [value for raw in raws for value in signed_values_in_frame(raw, transaction_id)]


def _same(value: Any, transaction_id: str) -> bool:
    return value is not None and not isinstance(value, bool) and str(value) == transaction_id


def _values(meter_values: Any, read: Any) -> list[SignedValue]:
    out: list[SignedValue] = []
    if not isinstance(meter_values, list):
        return out
    for meter_value in meter_values:
        sampled = meter_value.get("sampledValue") if isinstance(meter_value, Mapping) else None
        for item in sampled if isinstance(sampled, list) else ():
            value = read(item)
            if value is not None:
                out.append(value)
    return out
