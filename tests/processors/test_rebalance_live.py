"""A rebalance mid-stream loses and doubles nothing, on the real broker and two real workers.

Worker A starts alone on a 4-partition topic and is correlating (small flushes, so batches are in flight);
worker B joins while frames flow (two partitions move from A to B while A has frames processed and not yet
written), then B stops while frames still flow (its partitions move back to A). Each worker has its own
embedded ClickHouse (chDB: one process per folder), so the rows of the run are the union of both:

- every frame is a row in exactly one of the two databases (none lost; none written by both: the
  revoked worker wrote and committed everything it had processed before its partitions moved);
- the newest revision of every session, over both databases, is what the pure processor makes of all
  the frames at once (states moved with their partitions: no frame applied twice or skipped), and the
  energy total is the undisturbed run's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from tests.processors.script import Script
from tests.processors.test_worker_live import (  # noqa: F401 (fixture)
    ROOT,
    expected_outputs,
    expected_session_rows,
    fleet,
    produce,
    worker_env,
    workers,
)
from tests.conftest import free_port

SESSION_COLUMNS = ("charge_point_id, transaction_id, connector_id, energy_wh, energy_source, stop_reason, stop_status, "
                   "closed_by, arraySort(flags), version")


def big_fleet(copies: int) -> list[Script]:
    """``fleet()`` under several names: enough chargers for every partition to hold some."""
    scripts = []
    for copy in range(copies):
        for script in fleet():
            renamed = Script(f"{script.charge_point_id}-{copy}")
            renamed.envelopes = [e.model_copy(update={"charge_point_id": renamed.charge_point_id}) for e in script.envelopes]
            scripts.append(renamed)
    return scripts


def split(scripts: list[Script], parts: int) -> list[list[Script]]:
    """Each charger's frames cut into ``parts`` consecutive pieces (its order kept across the pieces)."""
    pieces = [[Script(s.charge_point_id) for s in scripts] for _ in range(parts)]
    for n, script in enumerate(scripts):
        size = -(-len(script.envelopes) // parts)
        for k in range(parts):
            pieces[k][n].envelopes = script.envelopes[k * size:(k + 1) * size]
    return pieces


async def produce_paced(kafka: KafkaSettings, scripts: list[Script], seconds: float) -> list[tuple[int, int, bytes, bytes]]:
    """``produce``, spread over ``seconds`` (charger by charger, each in order)."""
    from aiokafka import AIOKafkaProducer

    from schemas.topics import FRAMES

    records = [(e.key(), e.model_dump_json().encode()) for s in scripts for e in s.envelopes]
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    sent = []
    try:
        for key, value in records:
            meta = await producer.send_and_wait(kafka.topic(FRAMES.name), key=key, value=value)
            sent.append((meta.partition, meta.offset, key, value))
            await asyncio.sleep(seconds / len(records))
    finally:
        await producer.stop()
    return sent


WINDOW_S = 20.0


def sql(env: dict[str, str], query: str) -> list[list[Any]]:
    """A query on a stopped worker's database (the ``sql`` command opens its chDB folder)."""
    out = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", query, "--format", "json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return [list(json.loads(line).values()) for line in out.stdout.splitlines() if line.strip()]


FRAME_KEYS = "SELECT charge_point_id, toString(received_at), connection_id, seq FROM ocpp.frames FINAL"


def frame_key(value: bytes) -> tuple[str, str, str, int]:
    """An envelope as a row of FRAME_KEYS."""
    e = json.loads(value)
    when = dt.datetime.fromtimestamp(e["gateway_ts_ms"] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return e["charge_point_id"], when, e["connection_id"], e["seq"]


def test_partitions_moving_between_two_workers_lose_and_double_nothing(
        kafka_settings: KafkaSettings, unique: str, tmp_path: Path, workers) -> None:  # noqa: F811
    # A status window longer than any pause of the run (a partition idle while it moves): the live clock
    # of an idle partition moves on with wall time, which the all-at-once expectation does not see.
    extra = {"OCPP_KAFKA_PARTITIONS": "4", "OCPP_WORKER_FLUSH_ROWS": "15", "OCPP_WORKER_STATUS_WINDOW_S": str(WINDOW_S)}
    env_a = worker_env(kafka_settings, tmp_path / "home-a", unique, **extra)
    env_b = {**worker_env(kafka_settings, tmp_path / "home-b", unique, **extra), "OCPP_WORKER_WEB_PORT": str(free_port())}
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}.", "partitions": 4})
    asyncio.run(ensure_topics(kafka))
    first, second, third = split(big_fleet(8), 3)

    records = asyncio.run(produce(kafka, first))
    a = workers(env_a, tmp_path / "worker-a.log")
    a.wait_for("SELECT count() > 0 FROM ocpp.frames", [[True]])
    b = workers(env_b, tmp_path / "worker-b.log")  # joins while A is mid-stream: two partitions move to B
    b.wait_for("SELECT 1", [[1]])  # its web server is up: it joins the group in the next seconds
    records += asyncio.run(produce_paced(kafka, second, seconds=10))  # frames flow while the partitions move
    b.wait_for("SELECT count() > 0 FROM ocpp.frames", [[True]], timeout_s=120)
    with ThreadPoolExecutor(1) as pool:  # frames flow while B leaves: its partitions move back to A mid-stream
        rest = pool.submit(lambda: asyncio.run(produce_paced(kafka, third, seconds=10)))
        time.sleep(2)
        b.stop(signal.SIGTERM)
        records += rest.result()
    assert b.proc.returncode == 0, b.log_path.read_text()[-3000:]

    expected = expected_outputs(records, WINDOW_S)
    frames_b = {tuple(r) for r in sql(env_b, FRAME_KEYS)}
    deadline = time.monotonic() + 180
    while True:
        frames_a = {tuple(r) for r in a.query(FRAME_KEYS)}
        if len(frames_a | frames_b) >= len(records) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert frames_b, "worker B processed nothing: no partition moved"
    # Where each frame sits on the topic, to say which partition (and so which move) went wrong.
    at = {frame_key(value): (partition, offset) for partition, offset, _, value in records}
    both = frames_a & frames_b
    assert not both, f"frames written by both workers (partition, offset): {sorted(at[k] for k in both)}"
    missing = set(at) - frames_a - frames_b
    assert not missing, f"frames written by neither worker (partition, offset): {sorted(at[k] for k in missing)}"

    def newest(rows: list[list[Any]]) -> dict[tuple[str, str], list[Any]]:
        return {(r[0], r[1]): r for r in rows}

    query = f"SELECT {SESSION_COLUMNS} FROM ocpp.sessions FINAL ORDER BY 1, 2, version"
    rows_b = sql(env_b, query)
    wanted = expected_session_rows(expected)
    deadline = time.monotonic() + 120
    while True:
        merged = newest(sorted(rows_b + a.query(query), key=lambda r: (r[0], r[1], r[-1])))
        got = sorted([*r[:8], sorted(r[8]), r[9]] for r in merged.values())
        if got == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == wanted
    total = sum(s.energy_wh or 0 for s in expected.sessions)
    assert round(sum(r[3] or 0 for r in merged.values()), 3) == round(total, 3)
    assert "Discarded commit" not in a.log_path.read_text() + b.log_path.read_text()
    a.stop()
    assert a.proc.returncode == 0, a.log_path.read_text()[-3000:]
