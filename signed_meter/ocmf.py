"""Reading an OCMF record (S.A.F.E. e.V., Open Charge Metering Format 1.0): ``OCMF|{payload}|{signature}``.

The signature covers the payload section exactly as sent: the characters between ``OCMF|`` and the
``|`` before the signature section, UTF-8, never trimmed or re-serialised (``"RV":0.00`` stays
``0.00``; spaces around ``:`` stay). The sections are cut here, from the right, because a ``|`` may
stand inside a payload string (a tariff text, an id) and pyocmf 0.6 cuts at the first ones (measured:
such a record is unparsable there). A fourth section after the signature is a public key some tools
append (the Transparenzsoftware's QR codes); it is kept as the record's ``embedded_public_key``.

The payload and signature sections are read with pyocmf's models (readings with the OCMF inheritance
of TM/TX/RI/RU/ST, values as :class:`~decimal.Decimal` from the JSON literal, the SA/SE defaults).
Its spec warnings are caught per call, not raised: a record the Transparenzsoftware accepts is read.
When the payload is valid JSON but its readings do not fit pyocmf's model (an unreadable TM, say),
the record still parses: the signature is checked over the same bytes, and the readings are left
empty (``payload_readable`` False, flag ``signed_payload_nonconforming``).
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyocmf

from signed_meter.curves import DEFAULT_ALGORITHM, parse_algorithm
from signed_meter.errors import UnparsableSignedData
from signed_meter.limits import DEFAULT_LIMITS, SignedDataLimits
from signed_meter.model import ENERGY_UNITS_WH, SignedFlag, SignedFormat, SignedReading, SignedRecord, SigningMethod

PREFIX = "OCMF|"
# Readings values beyond this many Wh are not a meter's (a petawatt-hour): no energy is derived from them.
_MAX_REGISTER_WH = Decimal(10) ** 15
# OCMF ST: G = good; every other status is an error the meter reports (N, T, D, R, M, X, I, O, S, E, F)
_GOOD_STATUS = "G"
_INHERITED = ("TM", "TX")


def parse_ocmf(text: str, limits: SignedDataLimits = DEFAULT_LIMITS) -> SignedRecord:
    """Read an OCMF record; raise :class:`UnparsableSignedData` for anything that is not one."""
    if not text.startswith(PREFIX):
        raise UnparsableSignedData("not an OCMF record (no 'OCMF|' header)")
    payload_text, signature_text, embedded_key = _sections(text)
    signature_obj = _json_object(signature_text, "signature section")
    payload_obj = _json_object(payload_text, "payload section")
    entries = payload_obj.get("RD")
    extension = payload_obj.get("U")
    count = (len(entries) if isinstance(entries, list) else 0) + (len(extension) if isinstance(extension, list) else 0)
    if count > limits.max_readings:
        raise UnparsableSignedData(f"{count} readings (at most {limits.max_readings})", SignedFlag.DATA_TOO_LARGE)

    signature = _model(pyocmf.Signature, signature_obj)
    if signature is None:
        raise UnparsableSignedData("signature section is not an OCMF signature (no SD)", SignedFlag.SIGNATURE_MALFORMED)
    declared = signature.SA if isinstance(signature.SA, str) and signature.SA else DEFAULT_ALGORITHM
    curve, hash_name = parse_algorithm(str(declared))
    signature_bytes = _signature_bytes(signature.SD, signature.SE)

    payload = _model(pyocmf.Payload, payload_obj)
    readings = _readings(payload, entries) if payload is not None else ()
    return SignedRecord(
        format=SignedFormat.OCMF,
        signed_data=text,
        signed_bytes=payload_text.encode("utf-8", "surrogatepass"),
        signature=signature_bytes,
        method=SigningMethod(str(declared), curve, hash_name),
        readings=readings,
        meter_serial=_text(payload_obj.get("MS")),
        gateway_serial=_text(payload_obj.get("GS")),
        pagination=_text(payload_obj.get("PG")),
        identification=_text(payload_obj.get("ID")),
        embedded_public_key=embedded_key,
        payload_readable=payload is not None,
        meter_error=any(r.status not in (None, _GOOD_STATUS) or r.error_flags for r in readings),
    )


def _sections(text: str) -> tuple[str, str, str | None]:
    """(payload, signature, appended key): cut from the right, the signature section is a JSON object."""
    last = text.rfind("|")
    if last < len(PREFIX):
        raise UnparsableSignedData("OCMF record without a signature section (truncated?)")
    tail = text[last + 1 :]
    if not tail.lstrip().startswith("{"):  # OCMF|payload|signature|key
        before = text.rfind("|", 0, last)
        if before < len(PREFIX):
            raise UnparsableSignedData("OCMF record without a signature section (truncated?)")
        return text[len(PREFIX) : before], text[before + 1 : last], "".join(tail.split()) or None
    return text[len(PREFIX) : last], tail, None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may pick different values of a repeated key; a signed record must mean one thing.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key repeated in a JSON object")
    return obj


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:  # nesting is bounded by the size cap and json's own recursion guard (RecursionError)
        obj = json.loads(text, parse_float=Decimal, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise UnparsableSignedData(f"{what} is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise UnparsableSignedData(f"{what} is not a JSON object")
    return obj


def _model(cls: Any, obj: Mapping[str, Any]) -> Any:
    """pyocmf's model of a section, or None when the section does not fit it.

    pyocmf reports spec deviations the Transparenzsoftware tolerates as ``SpecWarning``; they are
    recorded and dropped here (``catch_warnings`` is process-wide: call from one thread at a time, as
    the worker's event loop does). Its validators raise more than ValidationError on odd input (a
    phone-number library, Decimal arithmetic), so any exception means "does not fit".
    """
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            return cls.model_validate(obj)
        except Exception:  # third-party validators: every failure is "not this model"
            return None


def _signature_bytes(sd: Any, se: Any) -> bytes:
    if not isinstance(sd, str):
        raise UnparsableSignedData("SD is not a string", SignedFlag.SIGNATURE_MALFORMED)
    encoding = str(se).lower() if se is not None else "hex"
    try:
        if encoding == "hex":
            return bytes.fromhex(sd)
        if encoding == "base64":
            return base64.b64decode(sd, validate=True)
    except (ValueError, binascii.Error) as e:
        raise UnparsableSignedData(f"SD is not {encoding}: {e}", SignedFlag.SIGNATURE_MALFORMED) from e
    raise UnparsableSignedData(f"SE {se!r} is not an OCMF signature encoding", SignedFlag.SIGNATURE_MALFORMED)


def _readings(payload: Any, entries: Any) -> tuple[SignedReading, ...]:
    """The payload's RD entries as typed readings; TM as signed (inherited like pyocmf inherits it)."""
    times: list[str | None] = []
    last: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            last.update({k: entry[k] for k in _INHERITED if k in entry})
        times.append(_text(last.get("TM")))
    out = []
    for reading, time_text in zip(payload.RD, times, strict=False):
        value = reading.RV if isinstance(reading.RV, Decimal) and reading.RV.is_finite() else None
        unit = None if reading.RU is None else str(reading.RU)
        value_wh, resolution_wh = energy_wh(value, unit)
        out.append(
            SignedReading(
                tx=None if reading.TX is None else str(reading.TX),
                value=value,
                unit=unit,
                obis=None if reading.RI is None else str(reading.RI),
                time=time_text,
                at=reading.TM.timestamp if reading.TM.timestamp.tzinfo is not None else None,
                status=None if reading.ST is None else str(reading.ST),
                error_flags=reading.EF or "",
                value_wh=value_wh,
                resolution_wh=resolution_wh,
            )
        )
    return tuple(out)


def energy_wh(value: Decimal | None, unit: str | None) -> tuple[Decimal | None, Decimal | None]:
    """(value in Wh, step of its last digit in Wh) for an energy unit; (None, None) otherwise."""
    factor = ENERGY_UNITS_WH.get(unit or "")
    if value is None or factor is None or abs(value) * factor > _MAX_REGISTER_WH:
        return None, None
    exponent = value.as_tuple().exponent
    step = Decimal(1).scaleb(exponent) * factor if isinstance(exponent, int) else None
    return value * factor, step


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
