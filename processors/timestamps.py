"""Charger timestamps as chargers send them: RFC 3339 with ``Z`` or an offset, fractional
seconds or none, and (a common quirk) no zone at all, read as UTC and flagged."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

_EMPTY: frozenset[str] = frozenset()


def parse_charger_time(raw: Any) -> tuple[int | None, frozenset[str]]:
    """``(milliseconds since the epoch, flags)``; ``None`` with a flag when it cannot be read."""
    if raw is None:
        return None, frozenset({"timestamp_missing"})
    if not isinstance(raw, str):
        return None, frozenset({"timestamp_unreadable"})
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None, frozenset({"timestamp_unreadable"})
    flags = _EMPTY
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
        flags = frozenset({"timestamp_without_zone"})
    return int(parsed.timestamp() * 1000), flags
