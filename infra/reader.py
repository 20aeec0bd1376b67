"""Read-only ClickHouse sessions: one per query, never the ingest client's (SECURITY.md, Read path).

Embedded (chDB): each query opens a connection of its own to the engine that holds the folder. chDB keeps
settings per connection, and the connection string applies them at connect time, limits first and
``readonly=1`` last: the query can then change none of them (readonly mode refuses every setting), and a
refused query leaves nothing behind (the connection is closed). The ingest client's session is never touched:
a refused query once left it readonly and stopped the worker. chDB has no users or settings profiles (every
connection is ``default``, ``CREATE USER`` is refused), so per-connection settings are the isolation there is.

Server: the read DSN's user, which must be read-only (checked before each query); its settings profile bounds
the query (the analysts' profile of the deployment).

Either way the text runs only after :func:`checked_statement` accepted the engine's own parse of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from infra import sql_check
from infra.errors import QueryRefused, ReadUnavailable
from infra.settings import SqlSettings

Run = Callable[[str, Mapping[str, str]], dict[str, Any]]
"""Runs one statement with bound string parameters and returns the JSONCompact answer, decoded."""

_NO_JSON_FORM = "(BAD_ARGUMENTS)"  # parseQueryToJSON: a statement that has no JSON form (DESCRIBE)
_UNKNOWN_FUNCTION = "(UNKNOWN_FUNCTION)"  # an older server without parseQueryToJSON


@dataclass(frozen=True)
class ReadLimits:
    """What one read query may use; ClickHouse enforces each (the ``*_overflow_mode``: throw, one-line error)."""

    max_execution_s: float
    max_memory_bytes: int
    max_result_rows: int
    max_result_bytes: int
    max_threads: int

    @classmethod
    def of(cls, settings: SqlSettings) -> ReadLimits:
        return cls(settings.max_execution_s, settings.max_memory_mb * 2**20, settings.max_result_rows,
                   settings.max_result_mb * 2**20, settings.max_threads)

    def engine_settings(self) -> dict[str, str]:
        """The session's settings, in the order they are applied: ``readonly`` last, so nothing after it (the
        query's own SETTINGS included) can change them."""
        return {
            "max_execution_time": f"{self.max_execution_s:g}", "timeout_overflow_mode": "throw",
            "max_memory_usage": str(self.max_memory_bytes), "max_threads": str(self.max_threads),
            "max_result_rows": str(self.max_result_rows), "max_result_bytes": str(self.max_result_bytes),
            "result_overflow_mode": "throw",
            # Output as JSON consumers want it: numbers as numbers, times ISO 8601 with their zone.
            "output_format_json_quote_64bit_integers": "0", "date_time_output_format": "iso",
            "readonly": "1",
        }


@dataclass(frozen=True)
class ReadResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


def one_line(error: BaseException | str) -> str:
    """The engine's message on one line: without the ``Code: N. DB::Exception:`` prefixes, the version trailer,
    and the wrapping of our own parse call (``In scope SELECT parseQueryToJSON(...)``)."""
    text = " ".join(str(error).split())
    for marker in (" (version ", "Stack trace", ". : In scope SELECT parseQueryToJSON(",
                   ". : In scope SELECT formatQuerySingleLine("):
        if marker in text:
            name = text[text.rindex(" ("):] if marker.startswith(". : In scope") and text.endswith(")") else ""
            text = text[: text.index(marker)] + ("." + name if name else "")
    while text.startswith("Code: ") and ". DB::Exception: " in text:
        text = text.split(". DB::Exception: ", 1)[1]
    return text[:600] or repr(error)


def checked_statement(run: Run, text: str, fallback: Run | None = None) -> str:
    """The statement to execute for ``text``, once the engine's parse of it passed :mod:`infra.sql_check`; else
    :class:`~infra.errors.QueryRefused`. ``fallback`` parses when ``run``'s engine has no ``parseQueryToJSON``
    (an older server)."""
    if not text.strip():
        raise QueryRefused("refused: no query")
    try:
        ast = run("SELECT parseQueryToJSON({q:String})", {"q": text})["data"][0][0]
    except QueryRefused as exc:
        if _NO_JSON_FORM in str(exc):
            canonical = run("SELECT formatQuerySingleLine({q:String})", {"q": text})["data"][0][0]
            tree = run(f"EXPLAIN AST {canonical}", {})["data"]
            sql_check.check_tree("\n".join(str(row[0]) for row in tree))
            return str(canonical)
        if _UNKNOWN_FUNCTION in str(exc) and fallback is not None:
            return checked_statement(fallback, text)
        raise
    sql_check.check_ast(json.loads(ast))
    return text


def decode(answer: Mapping[str, Any]) -> ReadResult:
    """A JSONCompact answer as columns, types and rows (64-bit integers a server quotes become numbers)."""
    meta = answer.get("meta", [])
    types = [str(m["type"]) for m in meta]
    wide = [i for i, t in enumerate(types) if _is_wide_integer(t)]
    rows = [list(r) for r in answer.get("data", [])]
    for row in rows:
        for i in wide:
            if isinstance(row[i], str):
                row[i] = int(row[i])
    return ReadResult([str(m["name"]) for m in meta], types, rows)


def _is_wide_integer(type_name: str) -> bool:
    bare = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    return bare.lstrip("U").startswith("Int") and bare[-3:] in ("t64", "128", "256")


# --- embedded -----------------------------------------------------------------------------------------------


def engine_path(folder: Path) -> str:
    """The folder as chDB compares it (clickhouse-connect opens it by its real path: so must every reader)."""
    return os.path.realpath(folder)


def read_embedded(folder: Path, text: str, limits: ReadLimits, *, database: str | None = None) -> ReadResult:
    """Run ``text`` on a read-only connection of its own to the engine of ``folder``. With ``database``, the
    folder must hold that pipeline database, migrated (else :class:`~infra.errors.ReadUnavailable`)."""
    import chdb

    try:
        connection = chdb.connect(f"{engine_path(folder)}?{urlencode(limits.engine_settings())}")
    except Exception as exc:  # chDB raises RuntimeError for a folder another process holds
        message = one_line(exc)
        if "lock" in message.lower():
            raise ReadUnavailable(f"{folder} is held by another process (one process per chDB folder) and no worker "
                                  "publishes a read endpoint in it") from None
        raise ReadUnavailable(f"cannot open {folder} for reading: {message}") from None

    def run(sql: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            answer = connection.query(sql, "JSONCompact", params=dict(params))
        except Exception as exc:  # chDB raises its own error types for every engine error
            raise QueryRefused(one_line(exc)) from None
        return json.loads(answer.bytes() or b"{}")

    try:
        if database is not None:
            require_migrated(run, folder, database)
        statement = checked_statement(run, text)
        return decode(run(statement, {}))
    finally:
        connection.close()


def require_migrated(run: Run, where: object, database: str) -> None:
    found = run("SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
                {"db": database})["data"][0][0]
    if not int(found):
        raise ReadUnavailable(f"database {database} in {where} was never migrated: start the worker or run "
                              "`ocpp-pipeline db migrate`")


def parse_locally(sql: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The in-process engine's parser, for a server too old to parse for itself (a process that holds no chDB
    folder: the ``sql`` command in server mode)."""
    import chdb

    connection = chdb.connect(":memory:?readonly=1")
    try:
        return json.loads(connection.query(sql, "JSONCompact", params=dict(params)).bytes() or b"{}")
    except Exception as exc:
        raise QueryRefused(one_line(exc)) from None
    finally:
        connection.close()


# --- server ------------------------------------------------------------------------------------------------


def read_server(read_dsn: str, text: str, limits: ReadLimits, *, database: str | None = None) -> ReadResult:
    """Run ``text`` as the read DSN's user, which must be read-only. Its settings profile bounds the query; a
    ``readonly=2`` profile also takes ``limits`` (its constraints still cap them), a ``readonly=1`` one refuses any
    setting sent, so none are."""
    import clickhouse_connect

    try:
        client = clickhouse_connect.get_client(dsn=read_dsn)
    except Exception as exc:
        raise ReadUnavailable(f"cannot reach ClickHouse with the read DSN: {one_line(exc)}") from None

    sent: dict[str, str] = {}

    def run(sql: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            return json.loads(client.raw_query(sql, parameters=dict(params), settings=sent, fmt="JSONCompact") or b"{}")
        except Exception as exc:
            raise QueryRefused(one_line(exc)) from None

    try:
        readonly = int(run("SELECT getSetting('readonly')", {})["data"][0][0])
        if readonly == 2:
            sent.update({k: v for k, v in limits.engine_settings().items() if k != "readonly"})
        if not readonly:
            raise ReadUnavailable("the read DSN's user may write (readonly = 0): give OCPP_CLICKHOUSE_READ_DSN a user "
                                  "with a readonly settings profile (the analysts'), never the ingest user")
        if database is not None:
            require_migrated(run, "the server", database)
        statement = checked_statement(run, text, fallback=parse_locally)
        return decode(run(statement, {}))
    finally:
        client.close()
