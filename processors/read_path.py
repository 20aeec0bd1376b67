"""``ocpp-pipeline sql``: a read-only query (printed by :mod:`ocpp_pipeline.output`).

chDB lets one process hold a data folder. While the worker runs it holds it, so the query goes to
the worker's ``/sql`` endpoint; when no worker answers, the command opens ClickHouse itself (the
folder, or a server over HTTP). Either way the query runs with ``readonly=1``: writes are refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from infra import clickhouse
from infra.errors import ClickHouseError
from infra.settings import ClickHouseSettings
from processors.settings import WorkerSettings


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    via: str  # "worker" or "direct"


class QueryError(ClickHouseError):
    pass


def query_worker(worker: WorkerSettings, sql: str, timeout_s: float = 60.0) -> QueryResult | None:
    """The worker's answer, or ``None`` if no worker listens."""
    host = "127.0.0.1" if worker.web_host in ("0.0.0.0", "") else worker.web_host
    request = urllib.request.Request(f"http://{host}:{worker.web_port}/sql", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise QueryError(message) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return QueryResult(body["columns"], body["rows"], "worker")


def query_direct(ch: ClickHouseSettings, sql: str) -> QueryResult:
    client = clickhouse.connect(ch)
    try:
        result = client.query(sql, settings={"readonly": 1})
    except Exception as exc:
        raise QueryError(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from None
    finally:
        client.close()
    return QueryResult(list(result.column_names), [list(r) for r in result.result_rows], "direct")


def run_query(ch: ClickHouseSettings, worker: WorkerSettings, sql: str) -> QueryResult:
    if ch.embedded:
        answer = query_worker(worker, sql)
        if answer is not None:
            return answer
    return query_direct(ch, sql)
