"""Size caps applied before any parsing: a charger cannot make a worker parse or hash a megabyte.

The largest real record in ``../shared/ocmf`` is 1.3 kB (OCA's DZG record with its ``U`` array); an OCMF
record with a 250-character tariff text and a few dozen readings stays under 8 kB. The caps leave room
for that four times over and bound the work at a few milliseconds of a core.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignedDataLimits:
    """Caps on what is parsed at all; anything beyond is ``unparsable`` with ``signed_data_too_large``."""

    max_chars: int = 32_768  # the signed value as sent (base64 / JSON wrapping included)
    max_readings: int = 256  # OCMF RD entries (and U extension entries) of one record
    max_key_chars: int = 4_096  # a public key as text (hex DER of P-521 is 316 characters)


DEFAULT_LIMITS = SignedDataLimits()
