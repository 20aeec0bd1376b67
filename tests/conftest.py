"""Shared fixtures: a Kafka broker of the suite's own and the real ClickHouse engine (chDB).

The suite never shares anything with ``make run``: at the start of the session every ``OCPP_*``
variable inherited from the shell is dropped and ``OCPP_HOME`` points at a temporary folder, so a
command a test starts (gateway, worker, ``sql``, ``replay``) cannot reach ``.local/`` (the broker data
of ``make run`` or its ClickHouse folder) even when the test forgets to say where to go. The broker is
started once per session in that folder, on free ports, from the jars fetched once into the project's
``.local/kafka/<version>/libs`` (a symlink), and stopped by its pid at the end. Each test gets fresh
topic names and a fresh database.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from infra import clickhouse, local_kafka
from infra.local_cluster import LocalCluster
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings


# CI explores the same examples every run (a red build must mean a change broke something);
# local runs explore new ones, and hypothesis keeps every failure it finds in .hypothesis/.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

# Where the jars are fetched once, read before the suite replaces OCPP_HOME (the project's `.local/`).
PROJECT_KAFKA = LocalKafkaSettings()


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (``ip_local_port_range``)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


_EPHEMERAL = _ephemeral_ports()
_handed_out: set[int] = set()
_pick = random.Random()


def free_port_run(length: int) -> int:
    """The first of ``length`` consecutive ports free now (a cluster's nodes use port + 2i, controller + 2i).

    Taken below the kernel's ephemeral range: a port from there may be given to any outgoing connection
    (a fleet opens thousands) between this check and the server's bind, which once failed a 3-node cluster's
    start ("Address already in use", and a raft client that reached another process on a node's port).
    Never the same port twice in one run."""
    spans = [(lo, hi - length) for lo, hi in ((10_000, _EPHEMERAL.start), (_EPHEMERAL.stop, 65536)) if hi - length > lo]
    for _ in range(1000):
        base = _pick.randrange(*_pick.choice(spans))
        ports = range(base, base + length)
        if _handed_out.intersection(ports):
            continue
        sockets = []
        try:
            for port in ports:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        _handed_out.update(ports)
        return base
    raise RuntimeError(f"no {length} consecutive free ports outside the ephemeral range {_EPHEMERAL}")


def free_port() -> int:
    """A port free now, outside the kernel's ephemeral range (see :func:`free_port_run`)."""
    return free_port_run(1)


def wait_listening(port: int, host: str = "127.0.0.1", timeout_s: float = 60.0) -> None:
    """Block until something accepts TCP connections on ``port`` (a server started as a subprocess is up).
    Tests start clients only then: a fleet started before its gateway listens backs off for seconds, and on a
    loaded machine what the test measures then depends on how long the start took."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s") from None
            time.sleep(0.05)


def broker_settings_in(home: Path, brokers: int = 1, **overrides: object) -> LocalKafkaSettings:
    """A broker (or a cluster of ``brokers`` nodes) of its own under ``home`` on free ports, its libs
    folder a symlink to the fetched jars."""
    if brokers == 1:
        ports = {"port": free_port(), "controller_port": free_port(), "tls_port": free_port()}
    else:
        base = free_port_run(2 * brokers)
        ports = {"port": base, "controller_port": base + 1, "tls_port": free_port_run(brokers)}
    settings = LocalKafkaSettings(home=home, brokers=brokers, **ports, **overrides)
    local_kafka.fetch(PROJECT_KAFKA)
    if not settings.libs_dir.exists():
        settings.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        settings.libs_dir.symlink_to(PROJECT_KAFKA.libs_dir.resolve())
    return settings


@pytest.fixture(scope="session")
def suite_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's ``OCPP_HOME``; the environment of every process a test starts points here."""
    home = tmp_path_factory.mktemp("ocpp-home")
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.upper().startswith("OCPP_")]:
        del os.environ[name]
    os.environ["OCPP_HOME"] = str(home)
    # A gateway a test starts serves /healthz, /readyz and /metrics on a free port unless the test says
    # which: never make run's 9001, nor another gateway's of the same test.
    os.environ["OCPP_GATEWAY_ADMIN_PORT"] = "0"
    # The suite's recorded conversations have fixed dates (2025-11-24, ...): a worker or replay a test starts keeps
    # their raw frames and statuses instead of dropping them at once as older than the default retention. The
    # retention tests (test_clickhouse_migrations.py) set their own.
    os.environ["OCPP_CLICKHOUSE_FRAMES_TTL_DAYS"] = "0"
    os.environ["OCPP_CLICKHOUSE_STATUS_TTL_DAYS"] = "0"
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def _isolated_from_make_run(suite_home: Path) -> Path:
    return suite_home


@pytest.fixture(scope="session")
def local_kafka_settings(suite_home: Path) -> LocalKafkaSettings:
    """The suite's broker: under the suite's home, on free ports (never make run's 127.0.0.1:9092)."""
    settings = broker_settings_in(suite_home)
    # Processes a test starts find it without being told (their own settings still win).
    os.environ["OCPP_LOCAL_KAFKA_PORT"] = str(settings.port)
    os.environ["OCPP_LOCAL_KAFKA_CONTROLLER_PORT"] = str(settings.controller_port)
    os.environ["OCPP_LOCAL_KAFKA_TLS_PORT"] = str(settings.tls_port)  # a secured broker a test starts (dev's)
    os.environ["OCPP_KAFKA_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    return settings


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka_settings: LocalKafkaSettings) -> Iterator[str]:
    """Starts the suite's broker once (on first use) and stops exactly that process at the end."""
    broker = local_kafka.LocalBroker(local_kafka_settings)
    broker.start()
    try:
        yield local_kafka_settings.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=2)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group and database names of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def chdb_settings(tmp_path_factory: pytest.TempPathFactory) -> ClickHouseSettings:
    # chDB serves one data folder per process, so the whole test session shares one folder.
    return ClickHouseSettings(home=tmp_path_factory.mktemp("chdb"))


@pytest.fixture(scope="session")
def chdb_client(chdb_settings: ClickHouseSettings):
    client = clickhouse.connect(chdb_settings)
    yield client
    client.close()


@pytest.fixture
def database(chdb_client, unique: str) -> str:
    """A freshly migrated database of its own for one test."""
    name = f"t_{unique}"
    clickhouse.migrate(chdb_client, name)
    return name


@pytest.fixture
def spare_broker_settings(tmp_path: Path) -> LocalKafkaSettings:
    """A second broker in a folder of its own, on free ports, sharing the fetched jars: for tests
    that stop and restart a broker."""
    return broker_settings_in(tmp_path)


@pytest.fixture
def spare_broker(spare_broker_settings: LocalKafkaSettings) -> Iterator[local_kafka.LocalBroker]:
    broker = local_kafka.LocalBroker(spare_broker_settings)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def cluster_settings(tmp_path: Path) -> LocalKafkaSettings:
    """Three KRaft nodes of their own (``kafka start --brokers 3``) on free loopback ports."""
    return broker_settings_in(tmp_path, brokers=3)


@pytest.fixture
def cluster(cluster_settings: LocalKafkaSettings) -> Iterator[LocalCluster]:
    running = LocalCluster(cluster_settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()
