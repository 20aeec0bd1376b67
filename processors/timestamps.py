"""Charger timestamps as chargers send them: RFC 3339 with ``Z`` or an offset, fractional
seconds or none, and (a common quirk) no zone at all, read as UTC and flagged. A time outside what
the tables' ``DateTime64(3)`` holds (1900 … 2299) is unreadable: it could never be stored."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from schemas.flags import Flag

_EMPTY: frozenset[str] = frozenset()
MIN_MS = int(datetime(1900, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
MAX_MS = int(datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc).timestamp() * 1000)
_MISSING = frozenset({Flag.TIMESTAMP_MISSING})
_UNREADABLE = frozenset({Flag.TIMESTAMP_UNREADABLE})


def parse_charger_time(raw: Any) -> tuple[int | None, frozenset[str]]:
    """``(milliseconds since the epoch, flags)``; ``None`` with a flag when it cannot be read."""
    if raw is None:
        return None, _MISSING
    if not isinstance(raw, str) or len(raw) > 64:
        return None, _UNREADABLE
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None, _UNREADABLE
    flags = _EMPTY
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
        flags = frozenset({Flag.TIMESTAMP_WITHOUT_ZONE})
    try:
        ms = int(parsed.timestamp() * 1000)  # year 9999 at -05:00 is year 10000 in UTC
    except (OverflowError, ValueError):
        return None, _UNREADABLE
    if not MIN_MS <= ms <= MAX_MS:
        return None, _UNREADABLE
    return ms, flags
