"""``ocpp-pipeline dev``: the whole pipeline on one machine.

Starts the local Kafka broker (fetching it the first time; secured, as ``kafka start --secure``, unless
``--plaintext-kafka``: each child then runs as its own Kafka identity, the gateway as ``ocpp-gateway``, the
worker as ``ocpp-worker``), creates the topics, then runs the gateway and the worker as child processes (the worker creates the ClickHouse tables in the
embedded engine and serves the read endpoint that ``ocpp-pipeline sql`` uses). It prints where to
look, restarts a worker that exits asking for it (code 70, see the stall watchdog), and on Ctrl-C
or SIGTERM stops exactly what it started, by process id: the children first, then the broker if
it was not already running. Unless told not to, a fleet of simulated chargers
(``ocpp-pipeline simulate``) runs against the gateway as a third child, until Ctrl-C; the public keys of its
signing meters are registered first (``keys import`` of its keys file, as the operator), so its signed sessions
verify from the first one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from gateway.settings import GatewaySettings
from infra import local_kafka
from infra.kafka_acls import GATEWAY, OPERATOR, WORKER
from infra.local_credentials import env_values
from infra.secured_broker import make_ready
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics
from processors.app import STALLED_EXIT_CODE
from processors.settings import WorkerSettings
from simulator.fleet import plan_fleet
from simulator.settings import FLEET_FLAGS, SimulatorSettings

# ``dev`` shows the pipeline at work: a small fleet, half of it speaking OCPP 2.0.1 (a network migrating
# its chargers), two minutes of simulated time per real second, so sessions land within the first minute.
# It misbehaves too, so the reliability KPIs have something to show within minutes: with 20 chargers, three
# minutes (six simulated hours) hold about 20 offline periods, 5 station outages, and a few maintenance
# windows, failed attempts and long post-stop occupancies. A fifth of the chargers sign their readings (4 of 20), half
# of those with a signing fault: sessions that verify, one whose signature fails, one verified only with its frame's key.
DEV_SIMULATOR_DEFAULTS = {"chargers": 20, "time_scale": 120.0, "duration_s": 0.0, "ocpp_mix": "1.6:0.5,2.0.1:0.5",
                          "offline_every_s": 21_600.0, "station_every_s": 43_200.0, "maintenance_share": 0.03,
                          "authorize_only_share": 0.05, "plugin_only_share": 0.05, "blocked_share": 0.1, "backlog_share": 0.1,
                          "signing_share": 0.2, "signing_quirky_share": 0.5}


# How a child reaches Kafka comes from dev (its identity), never from the shell that ran dev.
_CONNECTION_VARIABLES = {"OCPP_KAFKA_BOOTSTRAP_SERVERS", "OCPP_KAFKA_SECURITY_PROTOCOL", "OCPP_KAFKA_SASL_MECHANISM",
                         "OCPP_KAFKA_SASL_USERNAME", "OCPP_KAFKA_SASL_PASSWORD", "OCPP_KAFKA_SSL_CAFILE",
                         "OCPP_KAFKA_SSL_CERTFILE", "OCPP_KAFKA_SSL_KEYFILE", "OCPP_KAFKA_SSL_KEYFILE_PASSWORD"}


class Child:
    """A child process of ``dev``, logging to a file, stopped by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = open(self.log_path, "ab")
        try:
            return subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", *self.args], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def restart(self) -> None:
        self.proc = self._spawn()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_dev(local: LocalKafkaSettings, kafka: KafkaSettings, ch: ClickHouseSettings, *, wait: bool = True,
            simulator: SimulatorSettings | None = None, expected: str | None = None) -> int:
    broker = local_kafka.LocalBroker(local)
    already_running = broker.pid() is not None
    if already_running and broker.configured_secure() != local.secure:
        # Use the broker that runs as it is (a `kafka start` of the user's) rather than refuse to start.
        local = local.model_copy(update={"secure": broker.configured_secure()})
        broker = local_kafka.LocalBroker(local)
    if not local_kafka.jars_present(local):
        print(f"fetching Apache Kafka {local.version} from Maven Central (once)...", flush=True)
    started = time.monotonic()
    status = broker.start()
    print(status.describe() + (" (already running; left running on exit)" if already_running else ""), flush=True)
    children: list[Child] = []
    try:
        gateway, worker = GatewaySettings(), WorkerSettings()
        env = {**{k: v for k, v in os.environ.items() if k not in _CONNECTION_VARIABLES}, "OCPP_HOME": str(ch.home)}
        if local.secure:
            bus = make_ready(local, kafka, worker.app_id)
            topics = bus.topics
            gateway_kafka, worker_kafka = (env_values(bus.settings_of(name)) for name in (GATEWAY, WORKER))
            operator_kafka = bus.settings_of(OPERATOR)
        else:
            kafka = operator_kafka = kafka.model_copy(update={"bootstrap_servers": local.bootstrap_servers})
            topics = asyncio.run(ensure_topics(kafka))
            gateway_kafka = worker_kafka = {"OCPP_KAFKA_BOOTSTRAP_SERVERS": local.bootstrap_servers}
        for state in topics:
            print("  topic " + state.describe(), flush=True)
        if local.secure:
            print(bus.describe(), flush=True)
        if simulator is not None:
            # Before the worker starts (it reads the keys whole before its first frame) and long before the fleet's
            # first session: a signed reading judged without its key would be key_unknown.
            print(import_simulator_keys(simulator.model_copy(update={"meter_keys_file": simulator.meter_keys_path(ch.home)}),
                                        operator_kafka), flush=True)
        log_dir = ch.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        children.append(Child("gateway", ["gateway"], {**env, **gateway_kafka}, log_dir))
        children.append(Child("worker", ["worker"], {**env, **worker_kafka, **simulated_clock_env(worker, simulator)},
                              log_dir))
        host = "127.0.0.1" if gateway.host in ("0.0.0.0", "") else gateway.host
        _wait_for_port(host, gateway.port, children[0])
        _wait_for_port(worker.web_host, worker.web_port, children[1])
        if simulator is not None:
            simulator = simulator.model_copy(update={"url": f"ws://{host}:{gateway.port}{gateway.path_prefix}",
                                                     "meter_keys_file": simulator.meter_keys_path(ch.home)})
            extra = ["--expected", str(Path(expected).resolve())] if expected else []
            children.append(Child("simulator", ["simulate", "--quiet", *simulator_args(simulator), *extra], env, log_dir))
        print(f"ready in {time.monotonic() - started:.1f} s", flush=True)
        print(f"  chargers connect to   ws://{host}:{gateway.port}{gateway.path_prefix}/<chargePointId>  (subprotocols {', '.join(gateway.subprotocols)})")
        admin_host = "127.0.0.1" if gateway.admin_host in ("0.0.0.0", "") else gateway.admin_host
        print(f"  gateway metrics       http://{admin_host}:{gateway.admin_port}/metrics" if gateway.admin_port
              else "  gateway metrics       /metrics on a free port (see the gateway log)")
        print(f"  worker metrics        http://{worker.web_host}:{worker.web_port}/metrics")
        print(f"  query                 .venv/bin/ocpp-pipeline sql \"SELECT * FROM {ch.database}.sessions FINAL\"")
        print(f"  read endpoint         {_read_endpoint(ch)}")
        print(f"  logs                  {log_dir}/" + ", ".join(f"{c.name}.log" for c in children))
        if simulator is not None:
            print(f"  simulated chargers    {simulator.chargers} ({simulator.id_prefix}00001...), time scale "
                  f"{simulator.time_scale:g}; summary in {log_dir}/simulator.log", flush=True)
            signing = sum(1 for p in plan_fleet(simulator) if p.meter is not None)
            if signing:
                print(f"  meter keys            {simulator.meter_keys_file} ({signing} signing chargers' meters; "
                      f"CSV for `ocpp-pipeline keys import`)", flush=True)
        else:
            print("  simulated chargers    none (--no-simulator)", flush=True)
        for child in children:
            print(f"  {child.name} pid {child.proc.pid}", flush=True)
        if wait:
            print("running; Ctrl-C stops everything this command started", flush=True)
            _supervise(children)
    finally:
        for child in reversed(children):
            child.stop()
        if not already_running:
            broker.stop()
            print("kafka stopped", flush=True)
        print("stopped", flush=True)
    return 0


def import_simulator_keys(simulator: SimulatorSettings, operator: KafkaSettings) -> str:
    """Write the simulated fleet's meter keys file (as ``simulate`` does) and register every key in it, as
    ``keys import`` does; a line saying what was done."""
    from datetime import datetime, timezone

    from ocpp_pipeline.keys import publish
    from signed_meter.key_events import record_of
    from signed_meter.registry import parse_key_file
    from simulator.fleet import write_meter_keys

    path = simulator.meter_keys_file
    assert path is not None
    keys, signing = write_meter_keys(simulator, path)
    if not signing:
        return "  meter keys            none (no simulated charger signs)"
    now = datetime.now(timezone.utc)
    events = [record_of(e, now) for e in parse_key_file(path.read_text(encoding="utf-8"), author="ocpp-pipeline dev",
                                                          reference=f"simulator keys file {path}")]
    asyncio.run(publish(operator, events))
    return f"  meter keys registered {len(events)} keys of {signing} signing chargers from {path} (keys import)"


def _read_endpoint(ch: ClickHouseSettings) -> str:
    """Where the worker's /sql listens and where its token is: the owner-only file it publishes in its folder."""
    from infra import read_endpoint
    from infra.read_path import embedded_folder

    if not ch.embedded:
        return "server mode: `sql` reads as OCPP_CLICKHOUSE_READ_DSN"
    folder = embedded_folder(ch)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            found = read_endpoint.read(folder)
        except Exception:  # noqa: BLE001 - being written: look again
            found = None
        if found is not None and read_endpoint.alive(found):
            where = ("token in " if found.token else "token: OCPP_WORKER_SQL_TOKEN; details in ")
            return f"{found.url} ({where}{folder / read_endpoint.FILE_NAME}, owner-only)"
        time.sleep(0.2)
    return f"not published yet in {folder / read_endpoint.FILE_NAME} (see worker.log)"


def simulated_clock_env(worker: WorkerSettings, simulator: SimulatorSettings | None) -> dict[str, str]:
    """Worker settings that are spans of a driver's time, in the simulated chargers' clock: they live
    ``time_scale`` times faster than the gateway's, so the Authorize window (300 s: KPIS.md) is 300 simulated
    seconds, or every badge-only driver would be joined to a plug-in hours of their time away. Left alone when
    set explicitly (``OCPP_WORKER_AUTHORIZE_WINDOW_S``)."""
    if simulator is None or simulator.time_scale <= 1 or "OCPP_WORKER_AUTHORIZE_WINDOW_S" in os.environ:
        return {}
    return {"OCPP_WORKER_AUTHORIZE_WINDOW_S": repr(worker.authorize_window_s / simulator.time_scale)}


def simulator_args(settings: SimulatorSettings) -> list[str]:
    """The ``simulate`` flags that reproduce ``settings`` in a child process."""
    args = ["--url", settings.url, "--chargers", str(settings.chargers), "--connectors", settings.connectors,
            "--duration", repr(settings.duration_s), "--time-scale", repr(settings.time_scale),
            "--seed", str(settings.seed), "--quirky", repr(settings.quirky_share)]
    if settings.rate:
        args += ["--rate", repr(settings.rate)]
    args += ["--ocpp", settings.ocpp]
    if settings.ocpp_mix:
        args += ["--ocpp-mix", settings.ocpp_mix]
    if settings.meter_keys_file is not None:
        args += ["--meter-keys", str(settings.meter_keys_file)]
    for flag, field in FLEET_FLAGS.items():
        args += [flag, repr(getattr(settings, field))]
    return args


def _wait_for_port(host: str, port: int, child: Child, timeout_s: float = 120.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}; see {child.log_path}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not listen on {host}:{port} within {timeout_s:.0f} s; see {child.log_path}")


def _supervise(children: list[Child]) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watched = list(children)
    while not stop.wait(1.0):
        for child in list(watched):
            code = child.proc.poll()
            if child.name == "simulator" and code == 0:
                print(f"simulator finished; its summary is in {child.log_path}; gateway and worker keep running", flush=True)
                watched.remove(child)
            elif code == STALLED_EXIT_CODE:
                print(f"{child.name} asked to be restarted (exit {code}); restarting", flush=True)
                child.restart()
            elif code is not None:
                print(f"{child.name} exited with {code}; see {child.log_path}; stopping", flush=True)
                return
