"""``ocpp-pipeline sql``: a read-only query, printed as an aligned table, CSV or JSON.

chDB lets one process hold a data folder. While the worker runs it holds it, so the query goes to
the worker's ``/sql`` endpoint; when no worker answers, the command opens ClickHouse itself (the
folder, or a server over HTTP). Either way the query runs with ``readonly=1``: writes are refused.
"""

from __future__ import annotations

import csv
import io
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


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) or abs(value) < 1e15 else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def render(result: QueryResult, fmt: str = "table") -> str:
    if fmt == "json":
        return "\n".join(json.dumps(dict(zip(result.columns, row)), default=str) for row in result.rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_text(v) if v is not None else "" for v in row] for row in result.rows])
        return buffer.getvalue().rstrip("\n")
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    numeric = [all(_is_number(row[i]) for row in result.rows) and bool(result.rows) for i in range(len(result.columns))]

    def line(values: list[str]) -> str:
        return " │ ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    out = [line(result.columns), "─┼─".join("─" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
