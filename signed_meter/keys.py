"""Meter public keys in the shapes they arrive in, decoded into one typed value.

A key reaches the pipeline from a charger's label, a transparency file, an OCPP 2.0.1 ``publicKey`` or
the OCA application note's 1.6 document, and each spells it differently:

=====================================================  ==========================================
shape                                                  seen in
=====================================================  ==========================================
DER SubjectPublicKeyInfo, hex (any case, spaces)       transparency files, most published keys
DER SubjectPublicKeyInfo, base64                       DZG's published keys
base64 of the *hex text* of the DER                    the OCA note's 1.6 example (``MzA1NjMw…``)
SEC1 point, uncompressed ``04‖X‖Y`` or bare ``X‖Y``     labels on chargers
SEC1 compressed point ``02|03‖X``, base32              Alfen's records (field 4)
=====================================================  ==========================================

A point names no curve, so it is decoded against the curve the record declares (``curve_hint``); a
DER key names its own curve, which may then disagree with the record's (a wrong key: ``invalid``).
Decoding tries each reading of the text and keeps the first that is a point on a known curve, so a
base32 key that also happens to be valid base64 still decodes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ecdsa import VerifyingKey, der
from ecdsa.curves import Curve
from ecdsa.ellipticcurve import CurveFp, PointJacobi
from ecdsa.errors import MalformedPointError

from signed_meter.curves import CURVES, SECP192K1, curve_of
from signed_meter.errors import UnusablePublicKey
from signed_meter.limits import DEFAULT_LIMITS

_SECP192K1_OID = (1, 3, 132, 0, 31)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@functools.cache
def secp192k1() -> Curve:
    """secp192k1 for the ``ecdsa`` package (SEC 2 v2.0, 2.2.1): OCMF lists it, OpenSSL does not have it."""
    p = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFEE37
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFE26F2FC170F69466A74DEFD8D
    gx = 0xDB4FF10EC057E9AE26B07D0280B7F4341DA5D1B1EAE06C7D
    gy = 0x9B2F2F6D9C5628A7844163D015BE86344082AA88D95E2F9D
    curve = CurveFp(p, 0, 3, 1)
    return Curve("SECP192k1", curve, PointJacobi(curve, gx, gy, 1, n, generator=True), _SECP192K1_OID)


@dataclass(frozen=True, slots=True)
class MeterKey:
    """A public key on a known curve. Two keys are equal when they are the same point on the same curve,
    however they were spelled."""

    curve: str
    point: bytes  # SEC1 uncompressed, 04‖X‖Y
    der: bytes = field(compare=False, repr=False)  # SubjectPublicKeyInfo
    verifier: Any = field(compare=False, repr=False)  # ec.EllipticCurvePublicKey, or ecdsa.VerifyingKey (secp192k1)

    @property
    def hex(self) -> str:
        """The DER SubjectPublicKeyInfo in upper-case hex: the spelling transparency software reads."""
        return self.der.hex().upper()

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of the SHA-256 of the DER key: short enough for a table, long enough to tell."""
        return hashlib.sha256(self.der).hexdigest()[:16]


def decode_public_key(text: str, curve_hint: str | None = None, *, max_chars: int = DEFAULT_LIMITS.max_key_chars) -> MeterKey:
    """Decode a public key in any of the shapes above; raise :class:`UnusablePublicKey` if none fits.

    ``curve_hint`` (the record's declared curve) is needed for bare points and ignored for DER keys.
    """
    if not isinstance(text, str):
        raise UnusablePublicKey(f"a public key must be text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise UnusablePublicKey(f"public key of {len(text)} characters (at most {max_chars})")
    return _decode_cached(text, curve_hint)


@functools.lru_cache(maxsize=4096)
def _decode_cached(text: str, curve_hint: str | None) -> MeterKey:
    for raw in _readings_of(text):
        key = _load(raw, curve_hint)
        if key is not None:
            return key
    hint = f" (record's curve: {curve_hint})" if curve_hint else ""
    raise UnusablePublicKey(f"not a public key on a known curve{hint}: {text[:40]!r}")


def _readings_of(text: str) -> list[bytes]:
    """Every byte string the text can be read as: hex, base64 (and base64 of hex text), base32."""
    compact = "".join(text.split())
    if compact.lower().startswith("0x"):
        compact = compact[2:]
    out: list[bytes] = []
    if compact and len(compact) % 2 == 0 and set(compact) <= _HEX_DIGITS:
        out.append(bytes.fromhex(compact))
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded:
        out.append(decoded)
        inner = decoded.decode("ascii", "replace")
        if inner.startswith("oca:"):  # OCA note 3.2.2: "oca:<base16|base64>:<asn1|raw>:<key>"
            inner = inner.rsplit(":", 1)[-1]
        inner = "".join(inner.split())
        if inner and len(inner) % 2 == 0 and set(inner) <= _HEX_DIGITS:
            out.append(bytes.fromhex(inner))
    try:
        out.append(base64.b32decode(compact.upper() + "=" * (-len(compact) % 8)))
    except (binascii.Error, ValueError):
        pass
    return out


def _load(raw: bytes, curve_hint: str | None) -> MeterKey | None:
    if raw[:1] == b"\x30":
        # A DER SEQUENCE, or a bare X||Y whose X begins with the byte 0x30 (one key in 256): not DER, read on.
        key = _load_der(raw)
        if key is not None:
            return key
    if curve_hint not in CURVES:
        return None
    size = CURVES[curve_hint][1]
    if len(raw) == 2 * size:
        raw = b"\x04" + raw
    if len(raw) not in (1 + size, 1 + 2 * size) or raw[0] not in (2, 3, 4):
        return None
    return _from_point(curve_hint, raw)


def _load_der(raw: bytes) -> MeterKey | None:
    try:
        key = serialization.load_der_public_key(raw)
    except UnsupportedAlgorithm:
        return _load_der_secp192k1(raw)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or curve_of(key.curve) not in CURVES:
        return None
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return MeterKey(curve_of(key.curve), point, raw, key)


def _load_der_secp192k1(raw: bytes) -> MeterKey | None:
    try:
        spki, _ = der.remove_sequence(raw)
        algorithm, rest = der.remove_sequence(spki)
        _, parameters = der.remove_object(algorithm)
        curve_oid, _ = der.remove_object(parameters)
        point, _ = der.remove_bitstring(rest, 0)
    except (der.UnexpectedDER, ValueError, IndexError):
        return None
    return _from_point(SECP192K1, point) if curve_oid == _SECP192K1_OID else None


def _from_point(curve: str, encoded: bytes) -> MeterKey | None:
    """A SEC1 point (compressed or not) on ``curve``; None when it is not on the curve."""
    cls = CURVES[curve][0]
    if cls is None:
        try:
            verifier = VerifyingKey.from_string(encoded, curve=secp192k1())
        except (MalformedPointError, ValueError, AssertionError):
            return None
        point = verifier.to_string("uncompressed")
        return MeterKey(curve, point, verifier.to_der(), verifier)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(cls(), encoded)
    except ValueError:
        return None
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return MeterKey(curve, point, spki, key)
