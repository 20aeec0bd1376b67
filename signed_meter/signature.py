"""Checking one record's ECDSA signature with one key: the only place that calls the crypto libraries.

OCMF signs the payload section as sent with ECDSA over SHA-256 (``SD`` a DER ``SEQUENCE{r, s}``);
Alfen signs its 82-byte data set with ECDSA secp192r1 / SHA-256 (raw ``r‖s``). ``cryptography``
(OpenSSL) verifies every curve but secp192k1, which the ``ecdsa`` package verifies.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from ecdsa import BadSignatureError
from ecdsa.util import sigdecode_der

from signed_meter.curves import CURVES, HASHES
from signed_meter.keys import MeterKey
from signed_meter.model import SignedFormat, SignedRecord

_HASHLIB = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


class Outcome(StrEnum):
    HOLDS = "holds"
    FAILS = "fails"  # a well-formed signature that does not match the data with this key
    CURVE_MISMATCH = "curve_mismatch"  # the key is not on the curve the record declares
    MALFORMED = "malformed"  # not a DER signature / not r‖s of the curve's size / r or s out of range
    UNSUPPORTED = "unsupported"  # an algorithm this package does not verify


def der_signature(record: SignedRecord) -> bytes | None:
    """The record's signature as DER, or None when it is not a well-formed signature for its curve."""
    curve = record.method.curve
    if record.format is SignedFormat.ALFEN:
        size = CURVES["secp192r1"][1]
        if len(record.signature) != 2 * size:
            return None
        r = int.from_bytes(record.signature[:size], "big")
        s = int.from_bytes(record.signature[size:], "big")
        return encode_dss_signature(r, s) if r and s else None
    try:
        r, s = decode_dss_signature(record.signature)
    except ValueError:
        return None
    if r <= 0 or s <= 0 or (curve in CURVES and max(r, s).bit_length() > 8 * CURVES[curve][1] + 8):
        return None
    return record.signature


def check(record: SignedRecord, key: MeterKey) -> Outcome:
    """Does ``record``'s signature hold for its signed bytes with ``key``? Never raises."""
    curve, hash_name = record.method.curve, record.method.hash_name
    if curve is None or hash_name is None:
        return Outcome.UNSUPPORTED
    if key.curve != curve:
        return Outcome.CURVE_MISMATCH
    signature = der_signature(record)
    if signature is None:
        return Outcome.MALFORMED
    if isinstance(key.verifier, ec.EllipticCurvePublicKey):
        try:
            key.verifier.verify(signature, record.signed_bytes, ec.ECDSA(HASHES[hash_name]()))
        except InvalidSignature:
            return Outcome.FAILS
        return Outcome.HOLDS
    try:  # secp192k1, through the ecdsa package
        key.verifier.verify(signature, record.signed_bytes, hashfunc=_HASHLIB[hash_name], sigdecode=sigdecode_der)
    except BadSignatureError:
        return Outcome.FAILS
    except Exception:  # ecdsa reports a malformed DER signature as one of several exception types
        return Outcome.MALFORMED
    return Outcome.HOLDS
