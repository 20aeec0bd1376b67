"""Signing OCMF records: a meter's side, for the simulator's signing chargers and for tests and benches.

A :class:`Signer` is a key pair on one of the OCMF curves; :meth:`Signer.sign` returns
``OCMF|{payload}|{signature}`` over the payload text exactly as given (the caller writes the JSON, so
``0.150`` stays ``0.150``). Never used to verify anything.

A signer made from a ``secret`` has the same key pair every time (the simulator derives its meters' keys
from its seed, so a re-run keeps the keys an operator registered); such keys are as secret as the text
they come from: for simulations and tests only.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ecdsa import SigningKey
from ecdsa.util import sigencode_der

from signed_meter.curves import CURVES, SECP192K1
from signed_meter.keys import secp192k1

_HASHES = {
    "SHA256": (hashes.SHA256, hashlib.sha256),
    "SHA384": (hashes.SHA384, hashlib.sha384),
    "SHA512": (hashes.SHA512, hashlib.sha512),
}


class Signer:
    """A meter's key pair on ``curve`` (a name of :data:`signed_meter.curves.CURVES`): random, or derived
    from ``secret`` (the same secret, the same keys)."""

    def __init__(self, curve: str = "secp256r1", secret: bytes | None = None) -> None:
        self.curve = curve
        cls = CURVES[curve][0]
        if cls is None:
            self._ecdsa = (SigningKey.generate(curve=secp192k1()) if secret is None
                           else SigningKey.from_secret_exponent(_private_value(secret, 192), curve=secp192k1()))
            verifying = self._ecdsa.get_verifying_key()
            self.public_key_hex = verifying.to_der().hex()
            self.point = verifying.to_string("uncompressed")
            return
        curve_obj = cls()
        self._key = (ec.generate_private_key(curve_obj) if secret is None
                     else ec.derive_private_key(_private_value(secret, curve_obj.key_size), curve_obj))
        public = self._key.public_key()
        self.public_key_hex = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ).hex()
        self.point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def signature(self, data: bytes, hash_name: str = "SHA256") -> bytes:
        """DER ECDSA signature of ``data``."""
        if self.curve == SECP192K1:
            return self._ecdsa.sign(data, hashfunc=_HASHES[hash_name][1], sigencode=sigencode_der)
        return self._key.sign(data, ec.ECDSA(_HASHES[hash_name][0]()))

    def sign(self, payload: str, sa: str | None = None, hash_name: str = "SHA256", se: str | None = None) -> str:
        """The OCMF record of ``payload`` (JSON text, signed as given); ``sa`` None leaves SA out (P-256)."""
        raw = self.signature(payload.encode("utf-8"), hash_name)
        section: dict[str, str] = {}
        if sa is not None:
            section["SA"] = sa
        if se == "base64":
            section["SE"] = "base64"
            section["SD"] = base64.b64encode(raw).decode("ascii")
        else:
            section["SD"] = raw.hex().upper()
        return f"OCMF|{payload}|{json.dumps(section, separators=(',', ':'))}"


def _private_value(secret: bytes, bits: int) -> int:
    """A private scalar in [1, 2^(bits-1)]: below the group order of every OCMF curve (each order exceeds
    2^(bits-1)), so no rejection loop is needed."""
    digest = hashlib.shake_256(secret).digest((bits + 7) // 8)
    return int.from_bytes(digest, "big") % (1 << (bits - 1)) + 1
