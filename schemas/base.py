"""Shared base for contract models: frozen, strict about unknown fields, UTC everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime (ClickHouse hands back naive UTC) or convert an aware one."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch (the gateway clock) to an aware UTC datetime, exactly (no float on the way: a
    float divided by 1000 is off by a microsecond after about 2200, a millisecond once truncated); raises
    ``OverflowError`` beyond what a datetime holds."""
    return EPOCH + ms * _MS


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (exact inverse of :func:`ms_to_datetime`; below a
    millisecond is floored)."""
    return (value - EPOCH) // _MS


class Record(BaseModel):
    """A row of a contract: immutable, no unknown fields, every datetime in UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value)
        return value

    def row(self) -> list[Any]:
        """Values in field order, for a columnar insert."""
        return [getattr(self, name) for name in type(self).model_fields]
