"""The admin listener: ``/healthz``, ``/readyz`` and ``/metrics`` on ``OCPP_GATEWAY_ADMIN_HOST`` /
``OCPP_GATEWAY_ADMIN_PORT`` (loopback:9001 by default; 0.0.0.0:9001, port name ``admin``, in the image and
on Kubernetes, where only probes and Prometheus reach it). The chargers' port serves OCPP only: these
paths are refused there like any other path that is not ``<prefix>/<chargePointId>``.

- ``/healthz``: 200 while the process serves; with several processes (``place``), 200 while every process
  of the host is alive (:mod:`gateway.host_view`);
- ``/readyz``: 200 while Kafka takes frames (every process's producer, with several), else 503;
- ``/metrics``: Prometheus text (the whole host's values, with several: :mod:`gateway.metrics`).

With ``--processes N`` every process listens on the admin port too (SO_REUSEPORT, reserved by the
supervisor like the chargers' port), so whichever answers speaks for the host. Anything else: 404.
Plain HTTP GET over the same websockets server machinery as the chargers' port (it never upgrades).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from gateway.host_view import WorkerPlace
from gateway.metrics import GatewayMetrics

PATHS = ("/healthz", "/readyz", "/metrics")
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class AdminEndpoints:
    def __init__(self, metrics: GatewayMetrics, kafka_up: Callable[[], bool], place: WorkerPlace | None = None) -> None:
        self.metrics = metrics
        self.kafka_up = kafka_up
        self.place = place

    def respond(self, connection: ServerConnection, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            if self.place is None or self.place.host.healthy():
                return connection.respond(HTTPStatus.OK, "ok\n")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, self.place.host.describe() + "\n")
        if path == "/readyz":
            if self.place is None:
                ready, reason = self.kafka_up(), "kafka unavailable"
            else:
                self.place.host.report(self.place.index, self.kafka_up())
                ready, reason = self.place.host.ready(), self.place.host.describe()
            return connection.respond(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                                      "ready\n" if ready else reason + "\n")
        if path == "/metrics":
            response = connection.respond(HTTPStatus.OK, self.metrics.exposition().decode())
            del response.headers["Content-Type"]  # Headers is a multi-dict: replace, not add
            response.headers["Content-Type"] = PROMETHEUS_TEXT
            return response
        return connection.respond(HTTPStatus.NOT_FOUND, f"admin endpoints: {' '.join(PATHS)}\n")


async def _never_upgraded(connection: ServerConnection) -> None:  # every request gets a response first
    await connection.close()


async def serve_admin(endpoints: AdminEndpoints, host: str, port: int, *, reuse_port: bool,
                      logger: logging.Logger | None = None) -> Server:
    return await serve(
        _never_upgraded, host, port, process_request=endpoints.respond, server_header=None, compression=None,
        reuse_port=reuse_port, logger=logger, open_timeout=10, max_size=1024,
    )
