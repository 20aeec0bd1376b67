"""Where the reports read rows from.

A report's queries return only numbers and strings (times as epoch milliseconds), so the same query
runs on a ClickHouse client or through the worker's read-only ``/sql`` endpoint (JSON), which is the
only way in while a worker holds the embedded chDB folder (DESIGN.md, Components).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from clickhouse_connect.driver.client import Client

from schemas import ddl

if TYPE_CHECKING:
    from infra.settings import ClickHouseSettings
    from processors.settings import WorkerSettings


class RowSource(Protocol):
    def rows(self, sql: str) -> list[Sequence[Any]]:
        """The result rows of a read-only query."""
        ...


class ClientSource:
    """Rows straight from a ClickHouse client (tests, and the CLI when no worker answers)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def rows(self, sql: str) -> list[Sequence[Any]]:
        return list(self._client.query(sql, settings={"readonly": 1}).result_rows)


class ReadPathSource:
    """Rows through ``ocpp-pipeline sql``'s read path: the running worker's ``/sql``, else direct."""

    def __init__(self, ch: ClickHouseSettings, worker: WorkerSettings) -> None:
        self._ch, self._worker = ch, worker

    def rows(self, sql: str) -> list[Sequence[Any]]:
        from processors.read_path import run_query

        return run_query(self._ch, self._worker, sql).rows


def table(database: str, name: str) -> str:
    return f"`{database}`.`{name}`"


def string(value: str) -> str:
    """A string literal (queries through ``/sql`` cannot bind parameters)."""
    return ddl.quote_string(value)
