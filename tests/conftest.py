"""Shared fixtures: the real local Kafka broker and the real ClickHouse engine (chDB).

The broker fixture reuses a broker that already answers on the configured bootstrap address
(e.g. one left by ``ocpp-pipeline kafka start``) and otherwise starts one, stopping at the end
exactly the process it started. Each test gets fresh topic names and a fresh database.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import os

import pytest
from hypothesis import settings as hypothesis_settings

from infra import clickhouse, local_kafka
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings


# CI explores the same examples every run (a red build must mean a change broke something);
# local runs explore new ones, and hypothesis keeps every failure it finds in .hypothesis/.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


@pytest.fixture(scope="session")
def local_kafka_settings() -> LocalKafkaSettings:
    return LocalKafkaSettings()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka_settings: LocalKafkaSettings) -> Iterator[str]:
    bootstrap = local_kafka_settings.bootstrap_servers
    if local_kafka.answers_metadata(bootstrap, timeout_s=3):
        yield bootstrap
        return
    broker = local_kafka.LocalBroker(local_kafka_settings)
    broker.start()
    try:
        yield bootstrap
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def spare_broker_settings(tmp_path: Path, local_kafka_settings: LocalKafkaSettings) -> LocalKafkaSettings:
    """A second broker in a folder of its own, on free ports, sharing the fetched jars: for tests
    that stop and restart a broker."""
    settings = LocalKafkaSettings(home=tmp_path, port=free_port(), controller_port=free_port())
    local_kafka.fetch(local_kafka_settings)
    settings.libs_dir.parent.mkdir(parents=True)
    settings.libs_dir.symlink_to(local_kafka_settings.libs_dir)
    return settings


@pytest.fixture
def spare_broker(spare_broker_settings: LocalKafkaSettings) -> Iterator[local_kafka.LocalBroker]:
    broker = local_kafka.LocalBroker(spare_broker_settings)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
