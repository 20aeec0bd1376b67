"""A record's fields are its table's columns: the ClickHouse facts each field carries, and the columns derived from them.

A field's Python type says most of its column type; what it does not say is written beside it:

- ``X | None`` is ``Nullable(X)``, ``list[X]`` is ``Array(X)``;
- ``str`` is ``String``, ``float`` ``Float64``, ``bool`` ``Bool``, ``datetime`` ``DateTime64(3, 'UTC')``, ``date``
  ``Date``, a ``StrEnum`` ``LowCardinality(String)``;
- an ``int`` names its width (:data:`UInt8`, :data:`UInt32`, :data:`UInt64`), a string stored as a dictionary says
  so (:data:`LowCardinality`): aliases of ``int`` / ``str`` carrying a :class:`Storage`;
- :class:`Col` in the field's ``Annotated`` metadata: the column's comment, the migration that added it (``since``),
  its codec and the migration that gave it (``codec_since``), and a ``DEFAULT`` expression (``default``) where the
  type's own default is not what rows written before the column read as.

:func:`columns_of` turns a record model into its table's :class:`Column` values, in field order: the DDL
(:mod:`schemas.ddl`), the insert column order, the coercers of :mod:`schemas.storable` and the record's JSON on a
topic all come from the one model.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel

from schemas.errors import ColumnTypeError


@dataclass(frozen=True)
class Column:
    """A ClickHouse column as the DDL renders it."""

    name: str
    type: str
    comment: str = ""
    since: int = 1  # the migration version that added the column
    codec: str = ""  # CODEC(...) arguments; "" = the server's default (LZ4)
    codec_since: int = 0  # the migration that gave the column its codec (its ``since`` if it came with one)
    default: str = ""  # a DEFAULT expression (SQL) when the type's own default is not what old rows mean

    def codec_at(self, version: int) -> str:
        """The codec the column had once migration ``version`` was applied ("" = the default)."""
        return self.codec if self.codec and version >= max(self.codec_since, self.since) else ""


@dataclass(frozen=True)
class Storage:
    """The ClickHouse type of a scalar whose Python type does not settle it (an ``int``'s width, a dictionary-encoded
    string)."""

    type: str


@dataclass(frozen=True)
class Col:
    """A field's column facts besides its type (``Annotated[T, Col(...)]``)."""

    comment: str = ""
    since: int | None = None  # None: with its table (the migration that created it)
    codec: str = ""
    codec_since: int = 0
    default: str = ""  # the column's DEFAULT expression (SQL): what rows written before it was added read as


TS = "DateTime64(3, 'UTC')"
UInt8 = Annotated[int, Storage("UInt8")]
UInt32 = Annotated[int, Storage("UInt32")]
UInt64 = Annotated[int, Storage("UInt64")]
LowCardinality = Annotated[str, Storage("LowCardinality(String)")]

_SCALARS: dict[type, str] = {str: "String", float: "Float64", bool: "Bool", datetime: TS, date: "Date"}


def clickhouse_type(annotation: Any, *, where: str = "") -> str:
    """The ClickHouse column type of a field annotation (``Annotated`` metadata included)."""
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        storage = [m for m in metadata if isinstance(m, Storage)]
        if not storage:
            return clickhouse_type(inner, where=where)
        if inner not in (int, str):
            raise ColumnTypeError(f"{where}: a Storage type names a scalar (int, str), not {inner!r}")
        return storage[-1].type
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise ColumnTypeError(f"{where}: a column holds one type or NULL, not {annotation}")
        return f"Nullable({clickhouse_type(rest[0], where=where)})"
    if typing.get_origin(annotation) in (list, tuple) and args and (len(args) == 1 or args[1] is Ellipsis):
        return f"Array({clickhouse_type(args[0], where=where)})"
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return "LowCardinality(String)"
    if annotation is int:
        raise ColumnTypeError(f"{where}: an int column names its width (UInt8, UInt32, UInt64 from schemas.columns)")
    if isinstance(annotation, type) and annotation in _SCALARS:
        return _SCALARS[annotation]
    raise ColumnTypeError(f"{where}: no ClickHouse column type for {annotation!r}")


def columns_of(record: type[BaseModel], *, since: int = 1, codec: str = "", codec_since: int = 0) -> tuple[Column, ...]:
    """``record``'s fields as columns, in field order. ``since``: the migration of a column that names none (its
    table's); ``codec`` (from migration ``codec_since``) is the default of every column that names none of its own;
    a column added later gets it when it arrives."""
    columns = []
    for name, field in record.model_fields.items():
        # pydantic has resolved the annotation (forward references included) and keeps its outer Annotated
        # metadata apart: put them back together.
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        facts = [m for m in field.metadata if isinstance(m, Col)]
        col = facts[-1] if facts else Col()
        column = Column(name, clickhouse_type(annotation, where=f"{record.__name__}.{name}"), col.comment,
                        since if col.since is None else col.since, col.codec, col.codec_since, col.default)
        if codec and not column.codec:
            column = replace(column, codec=codec, codec_since=codec_since)
        columns.append(column)
    return tuple(columns)
