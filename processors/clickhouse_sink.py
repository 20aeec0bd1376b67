"""Writes batches of rows to ClickHouse: one insert per table per flush, retried with backoff
until it lands, each with an insert-deduplication token so a retried batch lands once.

ClickHouse wants large, infrequent inserts (thousands of rows, about one a second): the worker
flushes on size or time (``OCPP_WORKER_FLUSH_ROWS`` / ``_INTERVAL_S``). Calls block, so they run
on a thread; while ClickHouse fails, the worker stops taking new frames (backpressure: Kafka holds
them) and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.tables import ALL_TABLES

log = logging.getLogger(__name__)

COLUMNS = {t.name: list(t.column_names) for t in ALL_TABLES}
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class ClickHouseSink:
    def __init__(self, client: Client, database: str, *, on_failure: Callable[[Exception], None] | None = None) -> None:
        self._client = client
        self._database = database
        self._on_failure = on_failure
        self.failures = 0
        self.last_insert_s = 0.0

    def insert_now(self, table: str, rows: list[list[Any]], token: str) -> None:
        """One insert, blocking; raises what the driver raises."""
        self._client.insert(
            table, rows, column_names=COLUMNS[table], database=self._database,
            # Dependent views (the daily aggregates) must drop a retried block too, or they would count it twice.
            settings={"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1},
        )

    async def write(self, rows_by_table: dict[str, list[list[Any]]], token: str) -> None:
        """Insert every non-empty table's rows; retries each until it lands."""
        for table, rows in rows_by_table.items():
            if not rows:
                continue
            attempt = 0
            while True:
                started = time.perf_counter()
                try:
                    await asyncio.to_thread(self.insert_now, table, rows, f"{token}:{table}")
                    self.last_insert_s = time.perf_counter() - started
                    break
                except Exception as exc:  # the driver raises many kinds; all mean "not written yet"
                    self.failures += 1
                    if self._on_failure is not None:
                        self._on_failure(exc)
                    delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                    log.warning("insert into %s failed (%s); retrying in %.1f s", table, exc, delay)
                    await asyncio.sleep(delay)
                    attempt += 1
