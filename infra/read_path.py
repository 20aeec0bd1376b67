"""The read path of ``ocpp-pipeline sql`` and ``report``: one read-only query, through whatever may read.

- Server mode: ClickHouse as the read DSN's user (``OCPP_CLICKHOUSE_READ_DSN``: the analysts' read-only
  user, never the ingest DSN).
- Embedded: when a worker holds the folder (it published :mod:`infra.read_endpoint` in it and still runs),
  its ``/sql`` with the bearer token (``OCPP_WORKER_SQL_TOKEN``, else the one the worker generated into the
  owner-only file); the request names the folder, and a worker serving another refuses it. With no live worker,
  the folder itself, read-only (:func:`infra.reader.read_embedded`).

Every refusal is one line (:class:`~infra.errors.QueryRefused`, :class:`~infra.errors.ReadUnavailable`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from infra import read_endpoint, reader
from infra.errors import QueryRefused, ReadUnavailable
from infra.reader import ReadLimits, ReadResult
from infra.settings import ClickHouseSettings, SqlSettings

FOLDER_HEADER = "X-Ocpp-Folder"
"""The folder the client means; a worker that serves another answers 409."""


def embedded_folder(ch: ClickHouseSettings) -> Path:
    return Path(reader.engine_path(Path(ch.resolved_dsn().removeprefix("chdb://"))))


def run_query(ch: ClickHouseSettings, sql: SqlSettings, text: str) -> ReadResult:
    limits = ReadLimits.of(sql)
    if not ch.embedded:
        if ch.read_dsn is None:
            raise ReadUnavailable("set OCPP_CLICKHOUSE_READ_DSN to the analysts' read-only user: the read path never "
                                  "reads with the ingest DSN")
        return reader.read_server(ch.read_dsn.get_secret_value(), text, limits, database=ch.database)
    folder = embedded_folder(ch)
    endpoint = read_endpoint.read(folder) if folder.is_dir() else None
    if endpoint is not None and read_endpoint.alive(endpoint):
        token = sql.token.get_secret_value() if sql.token is not None else endpoint.token
        return query_worker(endpoint, token, folder, text, timeout_s=sql.max_execution_s + 15)
    if not (folder / "metadata").is_dir():
        raise ReadUnavailable(f"no ClickHouse data in {folder}: start the worker (or `ocpp-pipeline db migrate`) first")
    holder = read_endpoint.folder_holder(folder)
    if holder is not None and holder != os.getpid():
        stale = "" if endpoint is None else f"; its endpoint file is stale (pid {endpoint.pid} is gone)"
        raise ReadUnavailable(f"{folder} is held by process {holder} (one process per chDB folder), which publishes no "
                              f"read endpoint{stale}: is a worker starting, or another command running?")
    return reader.read_embedded(folder, text, limits, database=ch.database)


def worker_answers(ch: ClickHouseSettings) -> read_endpoint.Endpoint | None:
    """The live worker that holds the embedded folder, if one does."""
    if not ch.embedded:
        return None
    folder = embedded_folder(ch)
    endpoint = read_endpoint.read(folder) if folder.is_dir() else None
    return endpoint if endpoint is not None and read_endpoint.alive(endpoint) else None


def query_worker(endpoint: read_endpoint.Endpoint, token: str | None, folder: Path, text: str, *,
                 timeout_s: float) -> ReadResult:
    """POST ``text`` to the worker's ``/sql``."""
    headers = {FOLDER_HEADER: str(folder), "Content-Type": "text/plain; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(endpoint.url, data=text.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        message = _error_of(exc)
        if exc.code == 400:
            raise QueryRefused(message) from None
        if exc.code == 401:
            raise ReadUnavailable(f"the worker (pid {endpoint.pid}) refused the token: {message} (OCPP_WORKER_SQL_TOKEN "
                                  "must be the worker's)") from None
        raise ReadUnavailable(f"the worker (pid {endpoint.pid}) at {endpoint.url}: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReadUnavailable(f"the worker (pid {endpoint.pid}) holds {folder} but its read endpoint {endpoint.url} does "
                              f"not answer ({reason}): wait until it is up, or stop it") from None
    return ReadResult(body["columns"], body["types"], body["rows"])


def _error_of(exc: urllib.error.HTTPError) -> str:
    raw = exc.read()
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace").strip()[:300] or f"HTTP {exc.code}"
