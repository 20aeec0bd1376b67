"""Report periods: ``[from, to)`` in UTC, from dates (``report uptime|success``) or a quarter (EV-ChART)."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from kpi.errors import InvalidPeriod
from kpi.intervals import Span

_QUARTER = re.compile(r"(\d{4})\s*-?\s*Q([1-4])", re.IGNORECASE)


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def parse_date(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidPeriod(f"{flag} {text!r} is not a date (YYYY-MM-DD, UTC)") from None


def period_of_dates(start: date, end: date) -> Span:
    """``[start, end)`` at UTC midnight; ``end`` exclusive and after ``start``."""
    if end <= start:
        raise InvalidPeriod(f"--to {end.isoformat()} must be after --from {start.isoformat()} (--to is exclusive)")
    return Span(day_start_ms(start), day_start_ms(end))


def quarter_dates(text: str) -> tuple[date, date, str]:
    """``2026Q3`` -> (2026-07-01, 2026-10-01, ``"2026Q3"``)."""
    match = _QUARTER.fullmatch(text.strip())
    if not match:
        raise InvalidPeriod(f"quarter {text!r} is not like 2026Q3")
    year, quarter = int(match.group(1)), int(match.group(2))
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return start, end, f"{year}Q{quarter}"


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (28 February for a 29th that does not exist)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)
