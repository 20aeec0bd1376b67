"""Where the reports read rows from.

A report's queries return only numbers and strings (times as epoch milliseconds), so the same query
runs on a ClickHouse client or through the read path of ``ocpp-pipeline sql`` (:mod:`infra.read_path`: the
running worker's ``/sql``, the folder read-only, or a server as the analysts' read-only user).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from infra.read_path import run_query
from infra.settings import ClickHouseSettings, SqlSettings
from schemas import ddl


class RowSource(Protocol):
    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        """The result rows of a read-only query."""
        ...


class ClientSource:
    """Rows straight from a ClickHouse client (tests)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        return list(self._client.query(sql).result_rows)


class ReadPathSource:
    """Rows through ``ocpp-pipeline sql``'s read path."""

    def __init__(self, ch: ClickHouseSettings, sql: SqlSettings) -> None:
        self._ch, self._sql = ch, sql

    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        return run_query(self._ch, self._sql, sql).rows


def table(database: str, name: str) -> str:
    return f"`{database}`.`{name}`"


def string(value: str) -> str:
    """A string literal (queries through ``/sql`` cannot bind parameters)."""
    return ddl.quote_string(value)
