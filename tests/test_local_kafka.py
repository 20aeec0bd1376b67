"""The real local broker: lifecycle, topics, produce / consume."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra import local_kafka
from infra.errors import PrerequisiteMissing
from infra.settings import KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import TopicSpec


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/cmdline").read_bytes() != b""  # a zombie has no command line


def test_start_status_stop_leaves_no_process(spare_broker_settings: LocalKafkaSettings) -> None:
    broker = local_kafka.LocalBroker(spare_broker_settings)
    assert not broker.status().running
    status = broker.start()
    try:
        assert status.running and status.pid is not None
        assert local_kafka.answers_metadata(spare_broker_settings.bootstrap_servers)
        assert broker.start().pid == status.pid  # a second start reuses the running broker
    finally:
        assert broker.stop()
    assert not _alive(status.pid)
    assert not broker.pid_path.exists()
    assert not broker.status().running
    assert broker.stop() is False  # nothing left to stop


def test_stop_never_signals_a_process_it_did_not_start(spare_broker_settings: LocalKafkaSettings) -> None:
    broker = local_kafka.LocalBroker(spare_broker_settings)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        broker.run_dir.mkdir(parents=True, exist_ok=True)
        broker.pid_path.write_text(f"{stranger.pid}\n")  # e.g. a stale pid file whose pid was reused
        assert broker.stop() is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_missing_java_is_a_clear_error() -> None:
    with pytest.raises(PrerequisiteMissing, match=r"Java 17\+ is required"):
        local_kafka.java_major_version("no-such-java-binary")


def test_ensure_topics_is_idempotent(kafka_settings: KafkaSettings, unique: str) -> None:
    spec = TopicSpec(name=f"test.idem.{unique}", partitions=3, retention_ms=3600_000)
    first = asyncio.run(ensure_topics(kafka_settings.model_copy(update={"partitions": None}), [spec]))
    second = asyncio.run(ensure_topics(kafka_settings.model_copy(update={"partitions": None}), [spec]))
    assert [(s.created, s.partitions) for s in first] == [(True, 3)]
    assert [(s.created, s.partitions) for s in second] == [(False, 3)]


def test_produce_and_consume_keep_per_key_order(kafka_settings: KafkaSettings, unique: str) -> None:
    spec = TopicSpec(name=f"test.rt.{unique}", partitions=2, retention_ms=3600_000)

    async def run() -> dict[bytes, list[int]]:
        await ensure_topics(kafka_settings, [spec])
        producer = AIOKafkaProducer(**kafka_settings.client_options(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(50):
                await producer.send(spec.name, key=f"CP{i % 5}".encode(), value=str(i).encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            spec.name, **kafka_settings.client_options(), group_id=f"g-{unique}", auto_offset_reset="earliest"
        )
        await consumer.start()
        seen: dict[bytes, list[int]] = {}
        try:
            while sum(map(len, seen.values())) < 50:
                batch = await consumer.getmany(timeout_ms=2000)
                for records in batch.values():
                    for record in records:
                        seen.setdefault(record.key, []).append(int(record.value))
        finally:
            await consumer.stop()
        return seen

    seen = asyncio.run(asyncio.wait_for(run(), 60))
    assert sorted(seen) == [f"CP{i}".encode() for i in range(5)]
    for key, values in seen.items():
        assert values == sorted(values)
        assert values == [i for i in range(50) if f"CP{i % 5}".encode() == key]


def test_cluster_ids_are_kafka_uuids_a_command_line_accepts() -> None:
    import base64

    for _ in range(2000):  # about 1 in 64 raw ids would start with '-'
        value = local_kafka.cluster_id()
        assert not value.startswith("-") and len(value) == 22
        assert len(base64.urlsafe_b64decode(value + "==")) == 16


def test_a_three_node_cluster_replicates_what_the_pipeline_creates(cluster_settings: LocalKafkaSettings) -> None:
    """`kafka start --brokers 3`: three processes, folders and pid files; topics get 3 replicas and
    min.insync.replicas 2 without being told; `status` and `stop` (without --brokers) handle all three."""
    from infra.local_cluster import LocalCluster

    env = {**os.environ, "OCPP_HOME": str(cluster_settings.home), "OCPP_LOCAL_KAFKA_PORT": str(cluster_settings.port),
           "OCPP_LOCAL_KAFKA_CONTROLLER_PORT": str(cluster_settings.controller_port)}
    cli = lambda *args: subprocess.run([sys.executable, "-m", "ocpp_pipeline", "kafka", *args], env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    started = cli("start", "--brokers", "3")
    cluster = LocalCluster(cluster_settings)
    pids = [b.pid() for b in cluster.brokers]
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "kafka cluster of 3 nodes, 3 running" in started.stdout
        assert len({pid for pid in pids if pid}) == 3
        assert len({b.run_dir for b in cluster.brokers}) == 3 and all(b.pid_path.exists() for b in cluster.brokers)
        status = cli("status")
        assert status.returncode == 0 and status.stdout.count("running, pid") == 3, status.stdout

        kafka = KafkaSettings(bootstrap_servers=cluster_settings.bootstrap_servers)
        states = asyncio.run(ensure_topics(kafka))
        assert {s.replication_factor for s in states} == {3}
        assert asyncio.run(min_insync_replicas(kafka, states[0].name)) == "2"
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "kafka stopped (3 nodes)" in stopped.stdout, stopped.stdout + stopped.stderr
    assert not any(_alive(pid) for pid in pids if pid)
    assert cli("status").returncode == 1


async def min_insync_replicas(kafka: KafkaSettings, topic: str) -> str:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = response.to_object()["resources"][0]["config_entries"]
    return next(e["config_value"] for e in entries if e.get("config_names", e.get("config_name")) == "min.insync.replicas")
