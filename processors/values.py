"""Reading JSON values that chargers send into typed values, without ever raising.

The gateway lets transaction messages through whatever their content (DESIGN.md: never refused for
content), so anything JSON can hold reaches these functions: ``"²"`` (``str.isdigit`` says yes,
``int`` says no), ``True`` (an ``int`` to Python), ``1e308``, integers of hundreds of digits, strings
with lone surrogates. Each function returns ``None`` for what it cannot read; the caller flags it.
"""

from __future__ import annotations

import math
import re
from typing import Any

_DECIMAL = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: "²" and "١٢" are not integers here
INT32_MAX = 2**31 - 1


def integer(value: Any) -> int | None:
    """A JSON integer, an integral float, or a string of ASCII decimal digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and len(value) <= 40 and _DECIMAL.fullmatch(value.strip()):
        return int(value.strip())
    return None


def number(value: Any) -> float | None:
    """A finite JSON number (or a decimal string): meter readings, meterStart / meterStop."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:  # an integer beyond what a float holds
            return None
    elif isinstance(value, str) and len(value) <= 64:
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def text(value: Any) -> str:
    """A string field as text: ``None`` is empty, other types their JSON-ish form, lone surrogates
    (which JSON escapes can carry and UTF-8 cannot) replaced."""
    if value is None:
        return ""
    string = value if isinstance(value, str) else str(value)
    if string.isascii():
        return string  # the common case, without an encode
    try:
        string.encode("utf-8")
    except UnicodeEncodeError:
        string = string.encode("utf-8", "replace").decode("utf-8")
    return string


def in_range(value: int | None, low: int, high: int) -> int | None:
    return value if value is not None and low <= value <= high else None
