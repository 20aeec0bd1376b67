"""Per-charger Basic-auth secrets (security profiles 1 and 2), stored as salted hashes.

File format (JSON, one entry per charge point)::

    {"CP-0001": "sha256$<salt hex>$<hex of sha256(salt + password)>"}

``ocpp-pipeline credentials set <id> --file F`` adds or replaces an entry, reading the password
from standard input. Secrets never reach a log: :class:`Credentials` has no repr of its content.
A plain salted SHA-256 (not a slow KDF) on purpose: AuthorizationKeys are 16+ random bytes chosen
by the operator, not human passwords, and 10k chargers reconnecting at once must not stall the
gateway on key stretching.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

SCHEME = "sha256"


def hash_secret(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.sha256(salt + password.encode("utf-8")).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


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

    def verify(self, charge_point_id: str, password: str) -> bool:
        stored = self._hashes.get(charge_point_id)
        # Hash even for an unknown id, so timing does not tell which ids exist.
        salt_hex, expected = stored.split("$")[1:] if stored else ("00" * 16, "0" * 64)
        actual = hashlib.sha256(bytes.fromhex(salt_hex) + password.encode("utf-8")).hexdigest()
        return hmac.compare_digest(actual, expected) and stored is not None

    @staticmethod
    def set_entry(path: Path, charge_point_id: str, password: str) -> None:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data[charge_point_id] = hash_secret(password)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
