"""The numbers of the migrations that records and tables name (a column's ``since``, a codec's ``codec_since``): one
constant each, so a renumbering at merge is one edit. :mod:`schemas.migrations` lists what each one does."""

from __future__ import annotations

EXCLUSION_AUDIT = 6
"""The exclusion audit columns and the read-time exclusion view (issue #22)."""
CODECS_AND_RETENTION = 7
"""Column codecs chosen by measurement (bench/frames_size.py, BENCHMARKS.md); TTLs that drop whole parts (issue #26)."""
ID_TOKEN_TYPE_SINCE = 8
"""``sessions.id_token_type`` (issue #27)."""
METER_KEYS = 9
"""``meter_keys``: the meter public keys operators registered (issue #25, ``ocpp-pipeline keys``)."""
SIGNED_SINCE = 10
"""The sessions' signed meter value columns (issue #25: ``signed_start`` ... ``signature_key``)."""
