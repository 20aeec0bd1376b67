"""``ocpp-pipeline gateway --processes N``: N gateway processes on one port, one per core.

A Python process serves chargers on one core; a host (a pod) with more cores runs one process per
core, all listening on the same port with SO_REUSEPORT, so the kernel spreads new connections over
them. Each process is a whole gateway (:func:`gateway.server.run_gateway`) with its own Kafka producer;
what they share:

- the ports, the chargers' and the admin one: the supervisor binds each first with SO_REUSEPORT (not
  listening: it gets no connections), which resolves port 0 and keeps the ports theirs while a process
  is replaced;
- ``/metrics`` (admin port): prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a fresh
  directory per start), so any process answers for the host (:mod:`gateway.metrics`);
- ``/healthz`` and ``/readyz`` (admin port): one byte per process in shared memory (:mod:`gateway.host_view`);
- transactionIds: process ``i`` of ``N`` gives ids ``≡ i (mod N)`` (:mod:`gateway.transaction_ids`).

The supervisor creates the topics and raises the open-files limit once, then watches: a process that
exits unexpectedly is marked dead (``/healthz`` 503 meanwhile, its metrics files retired) and started
again after a pause. SIGTERM / SIGINT: every process gets SIGTERM and drains (1001 to its chargers,
Kafka flushed); the supervisor waits for all of them, then exits.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import socket
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from gateway.errors import ListenError
from gateway.host_view import HostView, WorkerPlace
from gateway.settings import GatewaySettings
from infra.settings import KafkaSettings

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def reserve_port(host: str, port: int, what: str = "port") -> socket.socket:
    """Bind ``(host, port)`` with SO_REUSEPORT without listening: the processes bind the same port.
    Port 0 becomes a free port (read it from the socket). :class:`ListenError` if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"{what} {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _die_with_the_supervisor() -> None:
    """Linux: a SIGTERM (drain, then exit) when the supervisor dies, even by SIGKILL: a process left serving
    on the port after its host's supervisor is gone would hold chargers no supervisor watches."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(settings: GatewaySettings, kafka: KafkaSettings, place: WorkerPlace, log_level: str, log_format: str) -> None:
    """One gateway process (the target of a spawned process)."""
    # Stopped before its event loop runs (a SIGTERM right after the start): nothing to drain yet.
    signal.signal(signal.SIGTERM, lambda signum, frame: _exit_before_serving())
    _die_with_the_supervisor()
    from infra.logs import configure

    configure(log_level, log_format)
    log.info("gateway process %d of %d, pid %d", place.index + 1, place.count, os.getpid())
    from gateway.server import run_gateway

    coroutine = run_gateway(settings, kafka, place)
    try:
        import uvloop

        uvloop.run(coroutine)
    except ImportError:
        asyncio.run(coroutine)


def _exit_before_serving() -> None:
    raise SystemExit(0)


class Supervisor:
    def __init__(self, settings: GatewaySettings, kafka: KafkaSettings, processes: int, *, log_level: str, log_format: str) -> None:
        self.settings = settings
        self.kafka = kafka
        self.count = processes
        self._log = (log_level, log_format)
        self._context = multiprocessing.get_context("spawn")  # no event loop or producer thread is forked
        self._host = HostView.create(processes, self._context)
        self._workers: list[BaseProcess | None] = [None] * processes
        self._stopping = False
        self._signalled: set[int] = set()
        self._metrics_dir: Path | None = None

    def _start(self, index: int, settings: GatewaySettings) -> None:
        assert self._metrics_dir is not None
        place = WorkerPlace(index, self.count, self._host, self._metrics_dir)
        process = self._context.Process(
            target=_worker_main, args=(settings, self.kafka, place, *self._log), name=f"ocpp-gateway-{index}",
        )
        process.start()
        self._workers[index] = process

    def _stop_requested(self, signum: int, frame: object) -> None:
        if not self._stopping:
            log.info("stopping: %d gateway processes close their connections and flush Kafka", self.count)
        self._stopping = True
        for process in self._workers:
            self._terminate(process)

    def _terminate(self, process: BaseProcess | None) -> None:
        """SIGTERM once: a second one could land after the process's handler is gone and kill it midway."""
        pid = None if process is None else process.pid  # None: not started
        if process is not None and pid is not None and pid not in self._signalled and process.is_alive():
            self._signalled.add(pid)
            os.kill(pid, signal.SIGTERM)

    def run(self) -> int:
        """Serve until SIGTERM / SIGINT; 0 when every process drained and exited cleanly."""
        from prometheus_client import multiprocess

        from infra.limits import raise_open_files_limit

        # Topics: each process waits for (or creates) them in the background, serving chargers meanwhile.
        log.info("open files limit %d (one per charger connection, inherited by the processes)", raise_open_files_limit())
        s = self.settings
        reserved = reserve_port(s.host, s.port, "chargers' port (OCPP_GATEWAY_PORT)")
        try:
            admin = reserve_port(s.admin_host, s.admin_port, "admin port (OCPP_GATEWAY_ADMIN_PORT)")
        except ListenError:
            reserved.close()
            raise
        settings = s.model_copy(update={"port": reserved.getsockname()[1], "admin_port": admin.getsockname()[1]})
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="ocpp-gateway-metrics-"))
        # prometheus_client picks its multiprocess value store at import, from this variable: the
        # spawned processes inherit it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self._metrics_dir)
        previous = {sig: signal.signal(sig, self._stop_requested) for sig in _STOP_SIGNALS}
        try:
            for index in range(self.count):
                self._start(index, settings)
            log.info("gateway: %d processes on %s:%d, admin endpoints on %s:%d", self.count, settings.host, settings.port,
                     settings.admin_host, settings.admin_port)
            while not self._stopping:
                running = {p.sentinel: (i, p) for i, p in enumerate(self._workers) if p is not None}
                for sentinel in wait(list(running), timeout=1.0):
                    assert isinstance(sentinel, int)  # wait() hands back the sentinels it was given
                    index, process = running[sentinel]
                    process.join()
                    self._host.mark_dead(index)
                    multiprocess.mark_process_dead(process.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
                    if self._stopping:
                        break
                    log.error("gateway process %d (pid %d) exited with %s; starting it again", index + 1, process.pid, process.exitcode)
                    time.sleep(RESTART_PAUSE_S)
                    if not self._stopping:
                        self._start(index, settings)
            return self._drain()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            reserved.close()
            admin.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _drain(self) -> int:
        """Wait for every process to close its connections and flush Kafka; kill what overstays."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_s + 10
        clean = True
        for index, process in enumerate(self._workers):
            if process is None:
                continue
            self._terminate(process)  # started during the stop
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("gateway process %d (pid %d) did not stop in time; killed", index + 1, process.pid)
                process.kill()
                process.join()
            self._host.mark_dead(index)
            if process.exitcode != 0:
                log.error("gateway process %d (pid %d) exited with %s", index + 1, process.pid, process.exitcode)
                clean = False
        log.info("gateway: all %d processes stopped", self.count)
        return 0 if clean else 1


def run_supervisor(settings: GatewaySettings, kafka: KafkaSettings, processes: int, *, log_level: str, log_format: str) -> int:
    return Supervisor(settings, kafka, processes, log_level=log_level, log_format=log_format).run()
