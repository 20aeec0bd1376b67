"""Shared base for contract models: frozen, strict about unknown fields, UTC everywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

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


_set = object.__setattr__  # what pydantic's own constructors use on a frozen model
# Per record class: each field and how to fill it when a trusted constructor is not given it (None: required).
_FILL: dict[type[BaseModel], tuple[tuple[str, Callable[[], Any] | None], ...]] = {}


def validation_summary(exc: ValidationError, limit: int | None = None) -> str:
    """What pydantic refused, one ``field.path: message`` per error (the first ``limit``), for an error or a log line."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:limit])


def _fill_plan(cls: type[BaseModel]) -> tuple[tuple[str, Callable[[], Any] | None], ...]:
    if cls.__private_attributes__:  # pragma: no cover - no record has any; trusted() would leave them unset
        raise TypeError(f"{cls.__name__} has private attributes: build it with the validating constructor")
    plan: list[tuple[str, Callable[[], Any] | None]] = []
    for name, info in cls.model_fields.items():
        if info.default_factory is not None:
            if info.default_factory_takes_validated_data:  # pragma: no cover - no record's does
                raise TypeError(f"{cls.__name__}.{name}: a default made from the data: use the validating constructor")
            plan.append((name, info.default_factory))  # type: ignore[arg-type]  # takes no data: checked above
        elif info.is_required():
            plan.append((name, None))
        elif isinstance(info.default, (list, dict, set, bytearray)):  # pragma: no cover - pydantic copies these
            raise TypeError(f"{cls.__name__}.{name}: a mutable default: give it a default_factory")
        else:  # immutable ("", None, 0, a str enum member): shared, as pydantic shares it
            plan.append((name, (lambda value: lambda: value)(info.default)))
    _FILL[cls] = made = tuple(plan)
    return made


def _filled(cls: type[BaseModel], name: str, fill: Callable[[], Any] | None) -> Any:
    if fill is None:
        raise TypeError(f"{cls.__name__}.trusted: {name} is required")
    return fill()


class Record(BaseModel):
    """A row of a contract: immutable, no unknown fields, every datetime in UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value)
        return value

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """The record of values the pipeline made itself, already of their fields' types (datetimes aware in UTC,
        enum members, lists, ints and floats as declared): the same record as the validating constructor gives,
        without validating again (a session's row: ~15 -> ~6 us). Anything decoded from outside (a topic, a state,
        a file) goes through the validating constructor; the processors' rows still pass the sink's storable check.
        ``tests/processors/test_trusted_records.py`` builds every record of the recorded corpus both ways."""
        plan = _FILL.get(cls) or _fill_plan(cls)
        if len(values) == len(plan):  # every field given (the processors' habit): no default to fill
            try:
                fields = {name: values[name] for name, _ in plan}  # in field order: what serializers and row() read
            except KeyError as missing:
                raise TypeError(f"{cls.__name__}.trusted: {missing} is required") from None
        else:
            fields = {name: values[name] if name in values else _filled(cls, name, fill) for name, fill in plan}
            if not values.keys() <= fields.keys():
                raise TypeError(f"{cls.__name__}.trusted: no field {sorted(values.keys() - fields.keys())}")
        made = cls.__new__(cls)
        _set(made, "__dict__", fields)
        _set(made, "__pydantic_fields_set__", set(values))
        _set(made, "__pydantic_extra__", None)
        _set(made, "__pydantic_private__", None)
        return made

    def row(self) -> list[Any]:
        """Values in field order, for a columnar insert. Read from the instance's dict, which holds the fields and
        nothing else, in field order, however the record was made (validated, :meth:`trusted`, ``model_copy``;
        ``tests/processors/test_trusted_records.py``): a getattr per field cost twice as much."""
        return list(self.__dict__.values())
