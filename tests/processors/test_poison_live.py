"""No frame can stop a partition, on the real worker: the integrator's poison records (a tombstone,
eight invalid records with one key, connectorId 4294967296, transactionId "²", a timestamp in the year
10000, meterStop 1e30) go to the frames topic before a normal session of another charger. The other
charger's session lands, every poison record is a row of its own, and a restarted worker goes on.
An insert that retrying cannot fix stops the worker and the replay with the reason, not a retry loop."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaProducer

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from processors.app import INSERT_REFUSED_EXIT_CODE
from schemas.topics import FRAMES
from tests.processors.test_pipeline import good_session_records, poison_records
from tests.processors.test_worker_live import ROOT, WorkerProcess, worker_env, workers  # noqa: F401 (fixture)


async def produce_raw(kafka: KafkaSettings, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(kafka.topic(FRAMES.name), key=key, value=value)
    finally:
        await producer.stop()


def metric(worker: WorkerProcess, name: str) -> float:
    url = f"http://127.0.0.1:{worker.env['OCPP_WORKER_WEB_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def metric_reaches(worker: WorkerProcess, name: str, value: float, timeout_s: float = 30) -> float:
    """The metric once it reached ``value`` (or its last value when the time is up): a flush counts its
    records after its rows are written, so rows can be visible a moment before the counters move."""
    deadline = time.monotonic() + timeout_s
    while (current := metric(worker, name)) < value and time.monotonic() < deadline:
        time.sleep(0.2)
    return current


def good_session(worker: WorkerProcess, tx: int) -> None:
    worker.wait_for(f"SELECT energy_wh, stop_reason, stop_status FROM ocpp.sessions FINAL "
                    f"WHERE charge_point_id = 'GOOD-1' AND transaction_id = '{tx}'", [[2500.0, "EVDisconnected", "Finishing"]])


def test_poison_records_stop_no_partition_and_no_restart(kafka_settings: KafkaSettings, unique: str, tmp_path: Path,
                                                          workers) -> None:  # noqa: F811
    env = worker_env(kafka_settings, tmp_path / "home", unique)
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    asyncio.run(ensure_topics(kafka))
    poison = poison_records()
    asyncio.run(produce_raw(kafka, poison + good_session_records(41, at=600)))

    worker = workers(env, tmp_path / "worker.log")
    good_session(worker, 41)
    worker.wait_for("SELECT count() FROM ocpp.frames FINAL WHERE charge_point_id = 'POISON-1'", [[len(poison)]])
    # One row each, and the rows say what happened.
    assert worker.query("SELECT countIf(has(flags, 'invalid_envelope')), countIf(has(flags, 'tombstone')), "
                        "uniqExact(connection_id, seq) FROM ocpp.frames FINAL WHERE charge_point_id = 'POISON-1'") == [
        [8, 1, len(poison)]]
    assert worker.query("SELECT countIf(has(flags, 'timestamp_unreadable')) > 0, countIf(has(flags, 'transaction_id_invalid')) > 0 "
                        "FROM ocpp.sessions FINAL WHERE charge_point_id = 'POISON-1'") == [[True, True]]
    assert metric_reaches(worker, "ocpp_worker_invalid_envelopes_total", 9) == 9
    flagged = worker.query("SELECT countIf(has(flags, 'processing_failed')) FROM ocpp.frames FINAL")[0][0]
    # Exposed; the rows flag each one.
    assert metric_reaches(worker, "ocpp_worker_processing_failures_total", flagged) == flagged

    worker.stop(signal.SIGTERM)
    assert worker.proc.returncode == 0, worker.log_path.read_text()[-3000:]
    restarted = workers(env, tmp_path / "worker-restarted.log")
    asyncio.run(produce_raw(kafka, good_session_records(42, at=1200)))
    good_session(restarted, 42)
    assert restarted.query("SELECT count() FROM ocpp.frames FINAL WHERE charge_point_id = 'POISON-1'") == [[len(poison)]]
    restarted.stop(signal.SIGTERM)
    assert restarted.proc.returncode == 0, restarted.log_path.read_text()[-3000:]


BREAK_SCHEMA = """
from infra import clickhouse
from infra.settings import ClickHouseSettings
ch = ClickHouseSettings()
client = clickhouse.connect(ch)
clickhouse.migrate(client, ch.database)
client.command(f"ALTER TABLE `{ch.database}`.connector_status DROP COLUMN info")
client.close()
"""


def test_an_insert_retrying_cannot_fix_stops_the_worker_and_the_replay_with_the_reason(
        kafka_settings: KafkaSettings, unique: str, tmp_path: Path, workers) -> None:  # noqa: F811
    """A table out of step with the code (a column dropped by hand): no silent retry loop, a clear
    line and a non-zero exit; the frames stay uncommitted on Kafka."""
    env = worker_env(kafka_settings, tmp_path / "home", unique)
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    asyncio.run(ensure_topics(kafka))
    subprocess.run([sys.executable, "-c", BREAK_SCHEMA], cwd=ROOT, env=env, check=True, capture_output=True)
    asyncio.run(produce_raw(kafka, good_session_records(41, at=600)))
    worker = workers(env, tmp_path / "worker.log")
    assert worker.proc.wait(120) == INSERT_REFUSED_EXIT_CODE
    log = worker.log_path.read_text()
    assert "stopping the worker: insert of" in log and "connector_status" in log and "retrying cannot fix it" in log
    assert log.count("retrying in") == 0  # not retried
    replay = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "replay", "--database", "ocpp", "--force", "--quiet"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert replay.returncode == 2 and "replay stopped after" in replay.stderr and "retrying cannot fix it" in replay.stderr
