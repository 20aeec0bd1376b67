"""Shared base for contract models: frozen, strict about unknown fields, UTC everywhere."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime (ClickHouse hands back naive UTC) or convert an aware one."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch (the gateway clock) to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


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
