"""The worker's web views: ``/metrics`` on Faust's web server, and ``/sql`` on a listener of its own.

``/sql`` (SECURITY.md, Read path) is a convenience for the embedded engine, which one process may hold: the
``sql`` and ``report`` commands read through it while the worker runs. It listens on
``OCPP_WORKER_SQL_HOST:PORT`` (loopback by default), takes ``POST`` only (anything else: 405), requires
``Authorization: Bearer <token>`` (compared in constant time; the configured ``OCPP_WORKER_SQL_TOKEN``, else one
generated at start and published owner-only in the folder, :mod:`infra.read_endpoint`), refuses a request that
names another folder (409), runs at most ``OCPP_WORKER_SQL_CONCURRENCY`` queries at once (more: 429), and runs
each on a read-only session of its own (:mod:`infra.reader`), never the sink's: whatever it is sent, ingestion
goes on. In server mode it reads as the read DSN's user, and without one it does not listen at all.

Answers are JSON: ``{"columns", "types", "rows"}``, or ``{"error"}`` with one line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import faust
from aiohttp import web

from infra import read_endpoint, reader
from infra.errors import QueryRefused, ReadUnavailable
from infra.read_path import FOLDER_HEADER
from infra.reader import ReadLimits, ReadResult
from infra.settings import ClickHouseSettings, SqlSettings
from processors.metrics import WorkerMetrics

log = logging.getLogger(__name__)

MAX_QUERY_BYTES = 256 * 1024  # ClickHouse's own max_query_size: a longer text could not be parsed anyway


def add_metrics_page(app: faust.App, metrics: WorkerMetrics) -> None:
    """``/metrics`` on Faust's web server (``OCPP_WORKER_WEB_PORT``), which serves nothing else of ours."""

    class MetricsView(faust.web.View):
        async def get(self, request: Any) -> Any:
            return self.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    app.page("/metrics")(MetricsView)


class SqlListener:
    """``POST /sql`` on its own port; publishes where it listens in the folder it serves."""

    def __init__(self, settings: SqlSettings, ch: ClickHouseSettings, metrics: WorkerMetrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.limits = ReadLimits.of(settings)
        self.embedded = ch.embedded
        self.database = ch.database
        self.folder = Path(reader.engine_path(Path(ch.resolved_dsn().removeprefix("chdb://")))) if ch.embedded else None
        self._read_dsn = ch.read_dsn.get_secret_value() if ch.read_dsn is not None else None
        self.generated = settings.token is None
        self._token = settings.token.get_secret_value() if settings.token is not None else secrets.token_urlsafe(32)
        self._running = asyncio.Semaphore(settings.concurrency)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def enabled(self) -> bool:
        return self.embedded or self._read_dsn is not None

    async def start(self) -> None:
        if not self.enabled:
            log.info("/sql not served: server mode without OCPP_CLICKHOUSE_READ_DSN (analysts read ClickHouse with "
                     "their read-only user)")
            return
        application = web.Application(client_max_size=MAX_QUERY_BYTES)
        application.router.add_post("/sql", self.handle)
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        addresses = self._runner.addresses  # the port the kernel gave (port 0)
        self.port = int(addresses[0][1]) if addresses else self.settings.port
        if self.folder is not None:
            path = read_endpoint.publish(self.folder, read_endpoint.Endpoint(
                host=read_endpoint.connect_host(self.settings.host), port=self.port, folder=str(self.folder),
                database=self.database, pid=os.getpid(), pid_started=read_endpoint.process_started(os.getpid()),
                token=self._token if self.generated else None))
            log.info("/sql on %s:%d (token %s), published in %s", self.settings.host, self.port,
                     "generated, in that owner-only file" if self.generated else "OCPP_WORKER_SQL_TOKEN", path)

    async def stop(self) -> None:
        if self.folder is not None:
            read_endpoint.withdraw(self.folder, os.getpid())
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.Response:
        outcome, response = await self._answer(request)
        self.metrics.sql_requests.labels(outcome).inc()
        return response

    async def _answer(self, request: web.Request) -> tuple[str, web.Response]:
        if not self._authorized(request.headers.get("Authorization", "")):
            return "unauthorized", _error(401, "a bearer token is required (Authorization: Bearer <OCPP_WORKER_SQL_TOKEN>)",
                                          headers={"WWW-Authenticate": 'Bearer realm="ocpp-pipeline sql"'})
        wanted = request.headers.get(FOLDER_HEADER)
        if wanted is not None and (self.folder is None or os.path.realpath(wanted) != str(self.folder)):
            return "wrong_folder", _error(409, f"this worker serves {self.folder or 'a ClickHouse server'}, not {wanted}")
        if self._running.locked():
            return "busy", _error(429, f"{self.settings.concurrency} queries already run; try again when one ends")
        try:
            text = await request.text()
        except UnicodeDecodeError:
            return "refused", _error(400, "refused: the query is not UTF-8 text")
        async with self._running:
            try:
                result = await asyncio.to_thread(self._read, text)
            except QueryRefused as exc:
                return "refused", _error(400, str(exc))
            except ReadUnavailable as exc:
                return "unavailable", _error(503, str(exc))
        return "ok", web.json_response({"columns": result.columns, "types": result.types, "rows": result.rows})

    def _authorized(self, header: str) -> bool:
        scheme, _, presented = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode("utf-8", "replace"),
                                                                   self._token.encode())

    def _read(self, text: str) -> ReadResult:
        if self.folder is not None:
            return reader.read_embedded(self.folder, text, self.limits)
        assert self._read_dsn is not None
        return reader.read_server(self._read_dsn, text, self.limits)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
