"""One entry point from signed text to a typed record: which format it is, and the size cap before all.

The text is tried as it is (``OCMF|…``, ``AP;…``); chargers also wrap it once more (hex of the OCMF
string, which pyocmf and the Transparenzsoftware accept; base64 of it, which 1.6 chargers copying the
2.0.1 habit send), so a text that is neither is decoded once from hex or base64 and tried again.
"""

from __future__ import annotations

import base64
import binascii

from signed_meter import alfen, ocmf
from signed_meter.errors import UnparsableSignedData
from signed_meter.limits import DEFAULT_LIMITS, SignedDataLimits
from signed_meter.model import SignedFlag, SignedFormat, SignedRecord


def detect_format(text: str) -> SignedFormat:
    """The format a signed text claims by its header (no parsing, no decoding)."""
    stripped = text.lstrip()
    if stripped.startswith(ocmf.PREFIX):
        return SignedFormat.OCMF
    if stripped.startswith(alfen.PREFIX):
        return SignedFormat.ALFEN
    return SignedFormat.UNKNOWN


def read_record(text: str, limits: SignedDataLimits = DEFAULT_LIMITS) -> SignedRecord:
    """Read a signed record; raise :class:`~signed_meter.errors.SignedMeterError` if it cannot be read.

    Leading and trailing white space around the whole record is not signed data and is dropped (an
    XML container or a log line adds it); the sections inside are kept byte for byte.
    """
    if len(text) > limits.max_chars:
        raise UnparsableSignedData(f"{len(text)} characters (at most {limits.max_chars})", SignedFlag.DATA_TOO_LARGE)
    text = text.strip()
    record = _read_plain(text, limits)
    if record is not None:
        return record
    unwrapped = _unwrap(text)
    if unwrapped is not None:
        record = _read_plain(unwrapped.strip(), limits)
        if record is not None:
            return record
    raise UnparsableSignedData(f"neither OCMF nor Alfen: {text[:24]!r}")


def _read_plain(text: str, limits: SignedDataLimits) -> SignedRecord | None:
    if text.startswith(ocmf.PREFIX):
        return ocmf.parse_ocmf(text, limits)
    if text.startswith(alfen.PREFIX):
        return alfen.parse_alfen(text)
    return None


def _unwrap(text: str) -> str | None:
    """The text under one layer of hex or base64, if that is what it is."""
    raw: bytes | None = None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
