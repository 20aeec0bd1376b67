"""Test-only signer: OCMF records signed with fresh keys on every curve, so rules are tested beyond the
real records (which fix one curve per meter)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ecdsa import SigningKey
from ecdsa.util import sigencode_der

from signed_meter.curves import CURVES, SECP192K1
from signed_meter.keys import secp192k1

_HASHES = {"SHA256": (hashes.SHA256, hashlib.sha256), "SHA384": (hashes.SHA384, hashlib.sha384),
           "SHA512": (hashes.SHA512, hashlib.sha512)}


class Signer:
    """A meter: a key pair on ``curve``; ``sign`` returns an OCMF record over the payload text as given."""

    def __init__(self, curve: str = "secp256r1", seed: int | None = None) -> None:
        self.curve = curve
        cls = CURVES[curve][0]
        if cls is None:
            self._ecdsa = SigningKey.generate(curve=secp192k1())
            self.public_key_hex = self._ecdsa.get_verifying_key().to_der().hex()
            self.point = self._ecdsa.get_verifying_key().to_string("uncompressed")
        else:
            self._key = ec.derive_private_key(seed, cls()) if seed else ec.generate_private_key(cls())
            pub = self._key.public_key()
            self.public_key_hex = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()
            self.point = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def signature(self, data: bytes, hash_name: str = "SHA256") -> bytes:
        if self.curve == SECP192K1:
            return self._ecdsa.sign(data, hashfunc=_HASHES[hash_name][1], sigencode=sigencode_der)
        return self._key.sign(data, ec.ECDSA(_HASHES[hash_name][0]()))

    def sign(self, payload: str | dict[str, Any], sa: str | None = None, hash_name: str = "SHA256",
             se: str | None = None) -> str:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        raw = self.signature(text.encode("utf-8"), hash_name)
        section: dict[str, str] = {}
        if sa is not None:
            section["SA"] = sa
        if se == "base64":
            import base64
            section["SE"] = "base64"
            section["SD"] = base64.b64encode(raw).decode()
        else:
            section["SD"] = raw.hex().upper()
        return f"OCMF|{text}|{json.dumps(section, separators=(',', ':'))}"


def payload(pg: int, *readings: tuple[str, str, str], ms: str = "M1", unit: str = "kWh",
            ri: str = "1-b:1.8.0") -> str:
    """An OCMF payload's text: readings as (TX, RV as a JSON literal, TM), written exactly as given."""
    rd = ",".join(
        f'{{"TM":"{tm}","TX":"{tx}","RV":{rv},"RI":"{ri}","RU":"{unit}","ST":"G"}}' for tx, rv, tm in readings
    )
    return f'{{"FV":"1.0","GI":"TEST","GS":"G1","PG":"T{pg}","MS":"{ms}","IS":false,"RD":[{rd}]}}'


TM1 = "2024-03-01T10:00:00,000+0000 S"
TM2 = "2024-03-01T11:00:00,000+0000 S"
