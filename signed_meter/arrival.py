"""Signed values as they arrive in OCPP frames, before anything is verified.

OCPP 1.6 (7.45 SampledValue): ``format: "SignedData"`` and the signed record in ``value``, as text
(``OCMF|…``, ``AP;…``), or, in the OCA application note *Signed Meter Values in OCPP* (2025) §5.2, a
JSON document ``{"signedMeterData": base64, "encodingMethod": "OCMF", "publicKey": base64}``.

OCPP 2.0.1 (2.48 SignedMeterValueType): ``sampledValue.signedMeterValue`` with ``signedMeterData``
(base64 of the record), ``signingMethod``, ``encodingMethod`` and ``publicKey`` (base64, or ``""``
when the key is configured not to travel). Chargers that put the plain record in ``signedMeterData``
are read as well.

The functions take the sampled value as decoded JSON (any shape: a charger may send anything) and
never raise; what they cannot take apart is kept as sent and judged ``unparsable`` later.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signed_meter.limits import DEFAULT_LIMITS, SignedDataLimits
from signed_meter.model import SignedFlag

OCPP16 = "1.6"
OCPP201 = "2.0.1"
SIGNED_DATA_FORMAT = "SignedData"


@dataclass(frozen=True, slots=True)
class SignedValue:
    """A signed value as a frame carried it.

    ``raw`` is the frame's text exactly (1.6 ``value``, 2.0.1 ``signedMeterData``); ``signed_data`` is
    the record under the OCPP transport (base64 taken off), the text a transparency application
    verifies. ``public_key`` is the key the frame carried, as sent (None when absent or empty).
    ``problem`` is set when the transport itself could not be taken apart; a value over the size cap
    keeps its text in ``raw`` only (``signed_data`` empty), so it is never parsed or stored again.
    """

    signed_data: str
    raw: str
    ocpp_version: str
    context: str | None = None  # sampledValue.context: Transaction.Begin, Transaction.End, Sample.Periodic, …
    encoding_method: str | None = None  # 2.0.1 / OCA encodingMethod: "OCMF", "EDL", a vendor name
    signing_method: str | None = None  # 2.0.1 signingMethod, as sent
    public_key: str | None = None
    problem: SignedFlag | None = None


def from_ocpp16_sampled_value(sampled_value: Any, limits: SignedDataLimits = DEFAULT_LIMITS) -> SignedValue | None:
    """The signed value of an OCPP 1.6 sampled value, or None when it is not ``format: SignedData``."""
    if not isinstance(sampled_value, Mapping) or sampled_value.get("format") != SIGNED_DATA_FORMAT:
        return None
    context = _text(sampled_value.get("context"))
    value = sampled_value.get("value")
    if not isinstance(value, str):
        raw = json.dumps(value, default=str)[: limits.max_chars]
        return SignedValue(raw, raw, OCPP16, context, problem=SignedFlag.DATA_UNPARSABLE)
    if len(value) > limits.max_chars:  # kept in ``raw`` only: never parsed, never copied into a session
        return SignedValue("", value, OCPP16, context, problem=SignedFlag.DATA_TOO_LARGE)
    if value.lstrip().startswith("{"):
        return _from_oca_document(value, context)
    return SignedValue(value, value, OCPP16, context)


def from_ocpp201_sampled_value(sampled_value: Any, limits: SignedDataLimits = DEFAULT_LIMITS) -> SignedValue | None:
    """The signed value of an OCPP 2.0.1 sampled value, or None when it has no ``signedMeterValue``."""
    if not isinstance(sampled_value, Mapping):
        return None
    signed = sampled_value.get("signedMeterValue")
    if signed is None:
        return None
    context = _text(sampled_value.get("context"))
    if not isinstance(signed, Mapping):
        raw = json.dumps(signed, default=str)[: limits.max_chars]
        return SignedValue(raw, raw, OCPP201, context, problem=SignedFlag.DATA_UNPARSABLE)
    data = signed.get("signedMeterData")
    encoding, method = _text(signed.get("encodingMethod")), _text(signed.get("signingMethod"))
    key = _text(signed.get("publicKey")) or None
    if not isinstance(data, str):
        raw = json.dumps(data, default=str)[: limits.max_chars]
        return SignedValue(raw, raw, OCPP201, context, encoding, method, key, SignedFlag.DATA_UNPARSABLE)
    if len(data) > limits.max_chars:
        return SignedValue("", data, OCPP201, context, encoding, method, key, SignedFlag.DATA_TOO_LARGE)
    return SignedValue(_base64_text(data) or data, data, OCPP201, context, encoding, method, key)


def _from_oca_document(value: str, context: str | None) -> SignedValue:
    """``{"signedMeterData": …, "encodingMethod": …, "publicKey": …}`` in a 1.6 value (OCA note §5.2)."""
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return SignedValue(value, value, OCPP16, context, problem=SignedFlag.DATA_UNPARSABLE)
    data = document.get("signedMeterData") if isinstance(document, dict) else None
    signed_data = _base64_text(data) if isinstance(data, str) else None
    if signed_data is None:
        return SignedValue(value, value, OCPP16, context, problem=SignedFlag.DATA_UNPARSABLE)
    return SignedValue(
        signed_data,
        value,
        OCPP16,
        context,
        encoding_method=_text(document.get("encodingMethod")),
        signing_method=_text(document.get("signingMethod")),
        public_key=_text(document.get("publicKey")) or None,
    )


def _base64_text(data: str) -> str | None:
    try:
        return base64.b64decode("".join(data.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
