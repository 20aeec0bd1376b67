"""Every value storable at the row boundary: a row of a :class:`~schemas.tables.Table` made insertable.

The correlator keeps what chargers said, and chargers say anything: a ``connectorId`` of 4294967296, a
``meterStop`` of 1e400, a timestamp in the year 9999, a lone surrogate from ``"\\ud800"`` in a JSON string.
One such value in a batch makes the whole insert fail (clickhouse-connect raises ``DataError`` /
``UnicodeEncodeError`` / ``OverflowError``), and a batch that can never land stops every charger. So each
row is checked against its table's column types before it leaves the processors:

- integers (``UInt8`` ... ``Int64``) outside the type's range: NULL if the column is Nullable, else clamped;
- floats that are not finite: NULL if Nullable, else 0;
- ``DateTime64(3, 'UTC')`` outside 1900-01-01 ... 2299-12-31 23:59:59.999 and ``Date`` outside
  1970-01-01 ... 2149-06-06: NULL if Nullable, else clamped;
- strings with lone surrogates: each replaced by U+FFFD;
- a value of the wrong kind (``None`` in a non-Nullable column, text in a number column): NULL or the
  type's zero.

A row that needed any of this gets :attr:`~schemas.flags.Flag.VALUE_NOT_STORABLE` in its ``flags``
column, so nothing is changed silently. A value that is fine costs one type check and one comparison.

Each column type string of :mod:`schemas.tables` maps to one coercer, built once per table
(:func:`row_coercer`). A coercer returns its argument itself when the value is fine and a new value
otherwise; the row is copied only when something changed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

from schemas.base import Record
from schemas.flags import Flag
from schemas.tables import Table

VALUE_NOT_STORABLE: str = Flag.VALUE_NOT_STORABLE.value  # the plain code, as the other flags of a row

Coercer = Callable[[Any], Any]

_INT_RANGES = {
    "UInt8": (0, 2**8 - 1), "UInt16": (0, 2**16 - 1), "UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1),
    "Int8": (-(2**7), 2**7 - 1), "Int16": (-(2**15), 2**15 - 1), "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
}
# DateTime64's documented range (ClickHouse: [1900-01-01 00:00:00, 2299-12-31 23:59:59.99999999]), at ms.
TS_MIN = datetime(1900, 1, 1, tzinfo=timezone.utc)
TS_MAX = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
DATE_MIN, DATE_MAX = date(1970, 1, 1), date(2149, 6, 6)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SURROGATE = re.compile("[\ud800-\udfff]")
_WRAPPER = re.compile(r"^(Nullable|LowCardinality|Array)\((.*)\)$")


class UnsupportedColumnType(ValueError):
    """A column type this module has no coercer for (add one beside the others)."""


def storable_str(value: str) -> str:
    """``value`` itself when it encodes to UTF-8, else a copy with each lone surrogate replaced."""
    if value.isascii() or not _SURROGATE.search(value):
        return value
    return _SURROGATE.sub("\ufffd", value)


def _int_coercer(lo: int, hi: int, nullable: bool) -> Coercer:
    fallback = None if nullable else 0

    def coerce(value: Any) -> Any:
        if type(value) is int and lo <= value <= hi:
            return value
        if value is None:
            return fallback if nullable else max(lo, min(hi, 0))
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                return fallback
            value = int(value)
        elif not isinstance(value, int):
            try:
                value = int(str(value).strip(), 10)
            except ValueError:
                return fallback
        if lo <= value <= hi:
            return value
        return None if nullable else max(lo, min(hi, value))

    return coerce


def _float_coercer(nullable: bool) -> Coercer:
    fallback = None if nullable else 0.0

    def coerce(value: Any) -> Any:
        if type(value) is float:
            return value if value - value == 0.0 else fallback  # inf - inf and nan - nan are nan
        if value is None:
            return value if nullable else 0.0
        if isinstance(value, int):  # bool too
            if -1e308 < value < 1e308:
                return value
            return fallback
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return fallback
        return number if math.isfinite(number) else fallback

    return coerce


def _datetime_coercer(nullable: bool) -> Coercer:
    naive_min, naive_max = TS_MIN.replace(tzinfo=None), TS_MAX.replace(tzinfo=None)

    def coerce(value: Any) -> Any:
        if type(value) is datetime:
            if value.tzinfo is None:
                if naive_min <= value <= naive_max:
                    return value
                low = value < naive_min
            else:
                try:
                    if TS_MIN <= value <= TS_MAX:
                        return value
                    low = value < TS_MIN
                except OverflowError:  # an offset that pushes year 1 or 9999 out of datetime's range
                    low = value.year < 1000
            return None if nullable else (TS_MIN if low else TS_MAX)
        if value is None:
            return None if nullable else _EPOCH
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # epoch seconds, as the driver reads them
            if isinstance(value, float) and not math.isfinite(value):
                return None if nullable else _EPOCH
            try:
                return coerce(_EPOCH + timedelta(seconds=value))
            except OverflowError:
                return None if nullable else (TS_MIN if value < 0 else TS_MAX)
        if isinstance(value, date):  # a date (or a datetime subclass)
            return coerce(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
        return None if nullable else _EPOCH

    return coerce


def _date_coercer(nullable: bool) -> Coercer:
    def coerce(value: Any) -> Any:
        if type(value) is date:
            if DATE_MIN <= value <= DATE_MAX:
                return value
            return None if nullable else (DATE_MIN if value < DATE_MIN else DATE_MAX)
        if isinstance(value, datetime):
            return coerce(value.date())
        if isinstance(value, date):
            return coerce(date(value.year, value.month, value.day))
        return None if nullable else DATE_MIN

    return coerce


def _string_coercer(nullable: bool) -> Coercer:
    def coerce(value: Any) -> Any:
        if isinstance(value, str):  # a StrEnum member too: kept as it is when fine
            return storable_str(value)
        if value is None:
            return None if nullable else ""
        if isinstance(value, (bytes, bytearray)):
            return value
        return storable_str(str(value))

    return coerce


def _bool_coercer(nullable: bool) -> Coercer:
    def coerce(value: Any) -> Any:
        if type(value) is bool:
            return value
        if value is None:
            return None if nullable else False
        return bool(value)

    return coerce


def _array_coercer(element: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
            changed = True
        else:
            changed = False
        out = None
        for n, item in enumerate(value):
            fixed = element(item)
            if fixed is not item:
                if out is None:
                    out = list(value)
                out[n] = fixed
        if out is not None:
            return out
        return list(value) if changed else value

    return coerce


def column_coercer(type_name: str, *, nullable: bool = False) -> Coercer:
    """The coercer of one ClickHouse column type string (as written in :mod:`schemas.tables`)."""
    type_name = type_name.strip()
    wrapped = _WRAPPER.match(type_name)
    if wrapped:
        kind, inner = wrapped.groups()
        if kind == "Nullable":
            return column_coercer(inner, nullable=True)
        if kind == "LowCardinality":
            return column_coercer(inner, nullable=nullable)
        return _array_coercer(column_coercer(inner))
    if type_name in _INT_RANGES:
        return _int_coercer(*_INT_RANGES[type_name], nullable)
    if type_name in ("Float64", "Float32"):
        return _float_coercer(nullable)
    if type_name == "String":
        return _string_coercer(nullable)
    if type_name == "Date":
        return _date_coercer(nullable)
    if type_name == "Bool":
        return _bool_coercer(nullable)
    if type_name.startswith("DateTime64(") or type_name.startswith("DateTime("):
        return _datetime_coercer(nullable)
    raise UnsupportedColumnType(f"no coercer for column type {type_name!r}")


R = TypeVar("R", bound=Record)


def _fine_expression(type_name: str, v: str, *, nullable: bool = False) -> str | None:
    """A Python expression true only when ``v`` is storable in the column as it is (the fast path;
    None: no fast path for this type, the coercer decides). It must never be true for a value the
    coercer would change: the property test in ``tests/test_storable.py`` holds it to that."""
    wrapped = _WRAPPER.match(type_name.strip())
    if wrapped:
        kind, inner = wrapped.groups()
        if kind == "Nullable":
            expression = _fine_expression(inner, v, nullable=True)
            return None if expression is None else f"({v} is None or {expression})"
        if kind == "LowCardinality":
            return _fine_expression(inner, v, nullable=nullable)
        element = _fine_expression(inner, "x")
        return None if element is None else f"(type({v}) is list and (not {v} or all({element} for x in {v})))"
    if type_name in _INT_RANGES:
        lo, hi = _INT_RANGES[type_name]
        return f"(type({v}) is int and {lo} <= {v} <= {hi})"
    if type_name in ("Float64", "Float32"):
        return f"(type({v}) is float and {v} - {v} == 0.0)"
    if type_name == "String":
        return f"(isinstance({v}, str) and ({v}.isascii() or not _surrogate({v})))"
    if type_name.startswith("DateTime64(") or type_name.startswith("DateTime("):
        return f"(type({v}) is datetime and {v}.tzinfo is _utc and _ts_min <= {v} <= _ts_max)"
    return None


def _fast_check(table: Table) -> Callable[[list[Any]], bool]:
    """One function per table that tells, without a call per column, that a row needs nothing."""
    names = [f"v{n}" for n in range(len(table.columns))]
    checks = [_fine_expression(c.type, name) or "False" for c, name in zip(table.columns, names)]
    source = f"def fine(row):\n    {', '.join(names)}, = row\n    return " + " and ".join(checks) + "\n"
    scope: dict[str, Any] = {"datetime": datetime, "_utc": timezone.utc, "_ts_min": TS_MIN, "_ts_max": TS_MAX,
                             "_surrogate": _SURROGATE.search}
    exec(compile(source, f"<storable check of {table.name}>", "exec"), scope)  # noqa: S102 (source built from column types)
    fine: Callable[[list[Any]], bool] = scope["fine"]
    return fine


class RowCoercer:
    """Makes rows of one table storable (build with :func:`row_coercer`, once per table)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._coercers = tuple(column_coercer(c.type) for c in table.columns)
        self._fine = _fast_check(table)
        names = table.column_names
        self._flags = names.index("flags") if "flags" in names else None

    def __call__(self, row: list[Any]) -> list[Any]:
        """``row`` itself when every value is storable; else a storable copy, flagged."""
        try:
            if self._fine(row):
                return row
        except (ValueError, TypeError, OverflowError):  # a row of another length; a datetime beyond compare
            pass
        out: list[Any] | None = None
        for n, (coerce, value) in enumerate(zip(self._coercers, row)):
            fixed = coerce(value)
            if fixed is not value:
                if out is None:
                    out = list(row)
                out[n] = fixed
        if out is None:
            return row
        if self._flags is not None and self._flags < len(out):
            flags = out[self._flags]
            if VALUE_NOT_STORABLE not in flags:
                out[self._flags] = [*flags, VALUE_NOT_STORABLE]  # a new list: the old one may be a record's
        return out


_COERCERS: dict[int, RowCoercer] = {}


def row_coercer(table: Table) -> RowCoercer:
    """The coercer of ``table``, built once. Looked up by identity: hashing a frozen ``Table`` (every
    column) on each row cost more than the check itself."""
    coercer = _COERCERS.get(id(table))
    if coercer is None or coercer.table is not table:
        coercer = _COERCERS[id(table)] = RowCoercer(table)
    return coercer


def storable_row(table: Table, row: list[Any]) -> list[Any]:
    """``row`` (in ``table``'s column order) with every value insertable; see the module docstring."""
    return row_coercer(table)(row)


def storable_record(table: Table, record: R) -> tuple[R, list[Any]]:
    """A record (its fields in ``table``'s column order) and its row, both storable: ``record`` itself
    when nothing needed changing, else a copy holding the storable values (the topic record then says
    what the row says, and its ``model_dump_json`` cannot fail on a lone surrogate or a non-finite float)."""
    row = record.row()
    fixed = row_coercer(table)(row)
    if fixed is row:
        return record, row
    names = list(type(record).model_fields)
    return record.model_copy(update=dict(zip(names, fixed))), fixed
