"""Start in any order, as on Kubernetes where every pod starts at once: the gateway and the worker
started at the same moment as a fresh broker (before it, with it, right after it) wait for what they
need, say so, never crash, and then carry a charger's session into ClickHouse.

The case seen before: on a broker that had just started, a topic described right after its creation
showed 0 partitions for several seconds and the worker died with Faust's "Topic cannot have zero
partitions"."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from infra.local_kafka import LocalBroker
from infra.settings import KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import ALL_TOPICS
from tests.conftest import free_port
from tests.processors.test_worker_live import worker_env, workers  # noqa: F401 (fixture)
from tests.test_dev import charge

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_topics_created_on_a_broker_that_just_started_report_their_partitions(
        spare_broker_settings: LocalKafkaSettings) -> None:
    broker = LocalBroker(spare_broker_settings)
    broker.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=spare_broker_settings.bootstrap_servers)
        states = asyncio.run(ensure_topics(kafka))
    finally:
        broker.stop()
    assert [(s.created, s.partitions) for s in states] == [(True, spec.partitions) for spec in ALL_TOPICS]


# seconds between starting the services and starting the broker (negative: the broker first)
@pytest.mark.parametrize("broker_delay_s", [3.0, 0.0, -1.0], ids=["services-first", "together", "broker-first"])
def test_gateway_and_worker_started_with_a_fresh_broker_wait_and_work(
        spare_broker_settings: LocalKafkaSettings, tmp_path: Path, unique: str, workers, broker_delay_s: float) -> None:  # noqa: F811
    kafka = KafkaSettings(bootstrap_servers=spare_broker_settings.bootstrap_servers)
    env = worker_env(kafka, tmp_path / "home", unique)
    gateway_port = free_port()
    gateway_env = {**env, "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(gateway_port)}
    broker = LocalBroker(spare_broker_settings)
    started = threading.Thread(target=broker.start)
    if broker_delay_s < 0:
        started.start()  # the services start while the broker is still starting
        time.sleep(-broker_delay_s)
    gateway_log = open(tmp_path / "gateway.log", "wb")
    gateway = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway"], cwd=ROOT, env=gateway_env,
                               stdout=gateway_log, stderr=subprocess.STDOUT)
    try:
        worker = workers(env, tmp_path / "worker.log")
        if broker_delay_s >= 0:
            time.sleep(broker_delay_s)
            started.start()
        started.join()
        assert broker.pid() is not None
        worker.wait_for("SELECT 1", [[1]], timeout_s=120)
        deadline = time.monotonic() + 30
        while not _listening(gateway_port) and time.monotonic() < deadline:
            assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
            time.sleep(0.2)
        tx = asyncio.run(asyncio.wait_for(charge(gateway_port), 60))
        worker.wait_for(f"SELECT transaction_id, energy_wh FROM ocpp.sessions FINAL WHERE charge_point_id = 'DEV-1'",
                        [[str(tx), 7500.0]])
        assert gateway.poll() is None and worker.proc.poll() is None
        logs = (tmp_path / "worker.log").read_text() + (tmp_path / "gateway.log").read_text()
        assert "zero partitions" not in logs and "Traceback" not in logs, logs[-3000:]
        if broker_delay_s > 0:  # both said what they were waiting for
            assert "waiting for Kafka topics on" in (tmp_path / "worker.log").read_text()
            assert "waiting for Kafka topics on" in (tmp_path / "gateway.log").read_text()
    finally:
        gateway.terminate()
        gateway.wait(60)
        gateway_log.close()
        if started.is_alive():
            started.join()
        broker.stop()
