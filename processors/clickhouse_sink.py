"""Writes batches of rows to ClickHouse: one insert per table per flush, retried with backoff
while the cause can pass, each with an insert-deduplication token so a retried batch lands once.

ClickHouse wants large, infrequent inserts (thousands of rows, about one a second): the worker
flushes on size or time (``OCPP_WORKER_FLUSH_ROWS`` / ``_INTERVAL_S``). Calls block, so they run
on a thread; while ClickHouse fails, the worker stops taking new frames (backpressure: Kafka holds
them) and nothing is lost.

Not every failure passes. :func:`classify` tells them apart (checked on clickhouse-connect 1.12 with
chDB: a value out of its column's range raises ``DataError`` caused by a ``struct.error``, a lone
surrogate ``UnicodeEncodeError``, a huge int in a Float64 column ``OverflowError``, ``None`` in a
non-Nullable column ``TypeError``, an unknown column ``ProgrammingError``, an unknown table
``DatabaseError`` with code 60):

- retriable: the server unreachable or unavailable, timeouts, overload (``OperationalError``, ``OSError``,
  server codes not listed below): back off and try the same batch again, forever;
- not retriable: the data or the schema is wrong, or the credentials are refused: retrying the same
  batch can only fail again, so :meth:`ClickHouseSink.write` raises :class:`~infra.errors.InsertFailed`
  with ``retriable`` False and the shell stops with the reason (the rows of
  :class:`~processors.pipeline.FrameProcessor` are made storable first, so this means a bug or a
  schema out of step, not a charger's bad value).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver import exceptions as driver
from clickhouse_connect.driver.client import Client

from infra.errors import InsertFailed
from schemas.tables import ALL_TABLES, OPERATOR_TABLES

log = logging.getLogger(__name__)

COLUMNS = {t.name: list(t.column_names) for t in ALL_TABLES + OPERATOR_TABLES}
# The columns' ClickHouse types, as the schema declares them (the worker migrates its tables to this schema before
# its first insert): given to the driver, they spare it a DESCRIBE of the table before every insert.
COLUMN_TYPES = {t.name: [c.type for c in t.columns] for t in ALL_TABLES + OPERATOR_TABLES}
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

# ClickHouse server error codes that say the data, the schema or the credentials are wrong.
FATAL_SERVER_CODES: dict[int, str] = {
    6: "CANNOT_PARSE_TEXT", 8: "THERE_IS_NO_COLUMN", 10: "NOT_FOUND_COLUMN_IN_BLOCK", 16: "NO_SUCH_COLUMN_IN_TABLE",
    20: "NUMBER_OF_COLUMNS_DOESNT_MATCH", 26: "CANNOT_PARSE_QUOTED_STRING", 27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    36: "BAD_ARGUMENTS", 38: "CANNOT_PARSE_DATE", 41: "CANNOT_PARSE_DATETIME", 43: "ILLEGAL_TYPE_OF_ARGUMENT",
    44: "ILLEGAL_COLUMN", 47: "UNKNOWN_IDENTIFIER", 53: "TYPE_MISMATCH", 60: "UNKNOWN_TABLE", 62: "SYNTAX_ERROR",
    69: "ARGUMENT_OUT_OF_BOUND", 70: "CANNOT_CONVERT_TYPE", 72: "CANNOT_PARSE_NUMBER", 81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING", 117: "INCORRECT_DATA", 164: "READONLY", 192: "UNKNOWN_USER", 193: "WRONG_PASSWORD",
    194: "REQUIRED_PASSWORD", 195: "IP_ADDRESS_NOT_ALLOWED", 321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", 497: "ACCESS_DENIED", 516: "AUTHENTICATION_FAILED",
}
_FATAL_SERVER_NAMES = frozenset(FATAL_SERVER_CODES.values())
# Raised by the driver while it serializes a batch: the batch holds a value its column cannot take.
_FATAL_LOCAL = (driver.DataError, driver.ProgrammingError, driver.NotSupportedError, TypeError, ValueError,
                OverflowError, struct.error, LookupError, AttributeError)


def classify(exc: BaseException) -> tuple[bool, str]:
    """(retriable, why) for an exception an insert raised."""
    if isinstance(exc, driver.Error):
        name = exc.name or (FATAL_SERVER_CODES.get(exc.code) if exc.code is not None else None)
        if name in _FATAL_SERVER_NAMES or (exc.code is not None and exc.code in FATAL_SERVER_CODES):
            return False, f"ClickHouse refused it ({name or exc.code}): the data, the schema or the credentials are wrong"
        if "authentication failed" in str(exc).lower():
            return False, "ClickHouse refused the credentials"
    if isinstance(exc, (driver.OperationalError, OSError)):
        return True, "ClickHouse unreachable, unavailable or slow"
    if isinstance(exc, _FATAL_LOCAL):
        return False, "the batch holds a value its column cannot take, or the table does not match the code"
    return True, "not known to be permanent"


def describe(exc: BaseException) -> str:
    """The exception and what caused it, on one line (the driver wraps the useful part)."""
    parts: list[str] = []
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(parts) < 4:
        seen.add(id(link))
        parts.append(f"{type(link).__name__}: {link}".strip().replace("\n", " ")[:500])
        link = link.__cause__ or link.__context__
    return " <- ".join(parts)


class ClickHouseSink:
    def __init__(self, client: Client, database: str, *, on_failure: Callable[[Exception], None] | None = None) -> None:
        self._client = client
        self._database = database
        self._on_failure = on_failure
        self.failures = 0
        self.last_insert_s = 0.0

    def insert_now(self, table: str, rows: list[list[Any]], token: str) -> None:
        """One insert, blocking; raises what the driver raises.

        The rows go column by column (``column_oriented``): turned into columns here in one C-level
        transpose, instead of the driver's per-block Python loop (-11 % of an insert of 5,000 frame rows,
        BENCHMARKS.md). The column types come from the schema (:data:`COLUMN_TYPES`), not from a DESCRIBE the
        driver would otherwise send first: one round trip less per table per flush (with a server, a network
        round trip), 3-9 % less CPU per insert with chDB (``bench.insert_bench``, BENCHMARKS.md)."""
        self._client.insert(
            table, list(zip(*rows)), column_names=COLUMNS[table], column_type_names=COLUMN_TYPES[table],
            database=self._database, column_oriented=True,
            # Dependent views (the daily aggregates) must drop a retried block too, or they would count it twice.
            settings={"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1},
        )

    async def write(self, rows_by_table: dict[str, list[list[Any]]], token: str) -> None:
        """Insert every non-empty table's rows; retries each until it lands while the failure is
        retriable, raises :class:`~infra.errors.InsertFailed` (``retriable`` False) when it is not."""
        for table, rows in rows_by_table.items():
            if not rows:
                continue
            attempt = 0
            while True:
                started = time.perf_counter()
                try:
                    # Only inserts: nothing here reads ClickHouse (an outage's exclusion is derived at read time).
                    await asyncio.to_thread(self.insert_now, table, rows, f"{token}:{table}")
                    self.last_insert_s = time.perf_counter() - started
                    break
                except Exception as exc:  # the driver raises many kinds: classify() sorts them
                    self.failures += 1
                    if self._on_failure is not None:
                        self._on_failure(exc)
                    retriable, why = classify(exc)
                    if not retriable:
                        raise InsertFailed(
                            f"insert of {len(rows)} rows into {self._database}.{table} failed and retrying cannot fix it "
                            f"({why}): {describe(exc)}",
                            table=table, retriable=False, cause=exc,
                        ) from exc
                    delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                    log.warning("insert into %s failed (%s); retrying in %.1f s", table, describe(exc), delay)
                    await asyncio.sleep(delay)
                    attempt += 1
