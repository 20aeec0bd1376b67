"""The curves and hashes OCMF allows (OCMF spec, table 22 ``SA``), under every spelling seen in the field.

OCMF names algorithms ``ECDSA-<curve>-<hash>``. The spec table spells the Brainpool curves
``brainpool256r1`` / ``brainpool384r1``; NZR meters write ``brainpoolP256r1`` (the RFC 5639 name); the
hash is SHA-256 for every curve, secp384r1 included. Both spellings map to the same curve here; the
names on the right are ``cryptography``'s (``EllipticCurve.name``), with secp192k1 (not in OpenSSL)
verified by the ``ecdsa`` package (:mod:`signed_meter.signature`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

SECP192K1 = "secp192k1"

# OCMF SA curve spellings (lower-cased) -> curve name
CURVE_SPELLINGS: dict[str, str] = {
    "secp192r1": "secp192r1",
    "prime192v1": "secp192r1",
    "nistp192": "secp192r1",
    "secp192k1": SECP192K1,
    "secp256r1": "secp256r1",
    "prime256v1": "secp256r1",
    "nistp256": "secp256r1",
    "secp256k1": "secp256k1",
    "secp384r1": "secp384r1",
    "nistp384": "secp384r1",
    "secp521r1": "secp521r1",
    "nistp521": "secp521r1",
    "brainpool256r1": "brainpoolP256r1",
    "brainpoolp256r1": "brainpoolP256r1",
    "brainpool384r1": "brainpoolP384r1",
    "brainpoolp384r1": "brainpoolP384r1",
}

# curve name -> (cryptography curve class or None for secp192k1, field size in bytes)
CURVES: dict[str, tuple[type[ec.EllipticCurve] | None, int]] = {
    "secp192r1": (ec.SECP192R1, 24),
    SECP192K1: (None, 24),
    "secp256r1": (ec.SECP256R1, 32),
    "secp256k1": (ec.SECP256K1, 32),
    "secp384r1": (ec.SECP384R1, 48),
    "secp521r1": (ec.SECP521R1, 66),
    "brainpoolP256r1": (ec.BrainpoolP256R1, 32),
    "brainpoolP384r1": (ec.BrainpoolP384R1, 48),
}

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

# The default when a record has no SA (OCMF spec: ECDSA-secp256r1-SHA256)
DEFAULT_ALGORITHM = "ECDSA-secp256r1-SHA256"


def parse_algorithm(declared: str) -> tuple[str | None, str | None]:
    """``"ECDSA-brainpoolP256r1-SHA256"`` -> (``"brainpoolP256r1"``, ``"SHA256"``); unknown parts are None.

    Tolerates the case and separator variations seen in the field (``ecdsa-secp256r1-sha256``,
    ``ECDSA-secp256r1-SHA-256``); anything not ECDSA gives (None, None).
    """
    parts = declared.strip().split("-")
    if len(parts) < 3 or parts[0].upper() != "ECDSA":
        return None, None
    curve = CURVE_SPELLINGS.get(parts[1].lower())
    hash_name = "".join(parts[2:]).upper()
    return curve, hash_name if hash_name in HASHES else None


def curve_of(curve: ec.EllipticCurve) -> str:
    """The package's name of a ``cryptography`` curve (``prime256v1`` and ``secp256r1`` are one)."""
    return CURVE_SPELLINGS.get(curve.name.lower(), curve.name)
