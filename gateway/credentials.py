"""Per-charger Basic-auth secrets (security profiles 1 and 2), stored as salted hashes.

File format (JSON, one entry per charge point)::

    {"CP-0001": "sha256$<salt hex>$<hex of sha256(salt + password)>"}

``ocpp-pipeline credentials add <id> --file F`` adds an entry (``set`` adds or replaces one), reading
the password from standard input and holding it to :mod:`gateway.password_policy` first. The hash
covers the secret's octets as the charger sends them: a UTF-8 password (2.0.1 ``BasicAuthPassword``)
or the raw octets of a 1.6 ``AuthorizationKey`` (``--authorization-key``); entries written before
either existed hashed the UTF-8 text, the same octets. Secrets never reach a log: :class:`Credentials`
has no repr of its content.
A plain salted SHA-256 (not a slow KDF) on purpose: AuthorizationKeys are 16+ random bytes chosen
by the operator, not human passwords, and 10k chargers reconnecting at once must not stall the
gateway on key stretching.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from enum import Enum
from pathlib import Path

SCHEME = "sha256"
_DECOY_SALT, _DECOY_DIGEST = bytes(16), "0" * 64  # hashed against when there is nothing to compare with


def _octets(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def hash_secret(secret: str | bytes, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.sha256(salt + _octets(secret)).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


class Verdict(Enum):
    ACCEPTED = "accepted"
    UNKNOWN_CHARGE_POINT = "unknown_charge_point"
    WRONG_PASSWORD = "wrong_password"


class Credentials:
    """Verifies a charge point's password against its stored hash in constant time."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hashes = dict(hashes)

    def __repr__(self) -> str:
        return f"<Credentials for {len(self._hashes)} charge points>"

    @classmethod
    def load(cls, path: Path | None) -> "Credentials":
        if path is None:
            return cls({})
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) and v.startswith(SCHEME + "$") for v in data.values()):
            raise ValueError(f"{path}: expected a JSON object of charge point id -> '{SCHEME}$salt$digest'")
        return cls(data)

    def check(self, charge_point_id: str, secret: str | bytes) -> Verdict:
        """The same work whether the id is known or not (one hash, one constant-time compare), so
        timing does not tell which ids exist; the verdict is for metrics, never for the client."""
        stored = self._hashes.get(charge_point_id)
        if stored is None:
            self.decoy(secret)
            return Verdict.UNKNOWN_CHARGE_POINT
        salt_hex, expected = stored.split("$")[1:]
        actual = hashlib.sha256(bytes.fromhex(salt_hex) + _octets(secret)).hexdigest()
        return Verdict.ACCEPTED if hmac.compare_digest(actual, expected) else Verdict.WRONG_PASSWORD

    def verify(self, charge_point_id: str, secret: str | bytes) -> bool:
        return self.check(charge_point_id, secret) is Verdict.ACCEPTED

    @staticmethod
    def decoy(secret: str | bytes) -> None:
        """The work of a check, compared with nothing: a throttled attempt or an unknown id takes as long
        as a real check and never tests the secret against a stored one."""
        hmac.compare_digest(hashlib.sha256(_DECOY_SALT + _octets(secret)).hexdigest(), _DECOY_DIGEST)

    @staticmethod
    def has_entry(path: Path, charge_point_id: str) -> bool:
        return path.exists() and charge_point_id in json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def set_entry(path: Path, charge_point_id: str, secret: str | bytes) -> None:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data[charge_point_id] = hash_secret(secret)
        tmp = path.with_suffix(path.suffix + ".tmp")
        # Owner-only from its creation (not chmod after writing: no moment where others may read it).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o600)  # a tmp file left by an older version keeps its mode through O_TRUNC
        tmp.replace(path)
