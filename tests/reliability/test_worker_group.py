"""Three workers in one consumer group, one SIGKILLed mid-stream and another added: the rows they
wrote between them equal, field by field, a replay of the same topic by a single fresh worker
(replay == live across rebalances).

Each worker owns its embedded ClickHouse folder (chDB: one process per folder), as each would write to
the same ClickHouse cluster in production; their rows are merged the way ReplacingMergeTree's FINAL
merges them (the highest version of each key wins) and compared with the replay's."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import FRAMES
from tests.processors.script import Script, energy
from tests.processors.test_worker_live import expected_outputs, produce, worker_env, workers  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


def chargers(count: int, prefix: str = "GRP-") -> list[Script]:
    """``count`` chargers, each with two sessions ended in one of three ways, in gateway-time order."""
    scripts = []
    for n in range(count):
        s = Script(f"{prefix}{n:04d}")
        s.at(0).status(1, "Preparing").at(1).start(1, 1000 + n, meter_start=100 * n).at(2).status(1, "Charging")
        s.at(30).meter(1, 1000 + n, energy(100 * n + 400))
        if n % 3 == 0:
            s.at(60).status(1, "Finishing").at(61).stop(1000 + n, 100 * n + 900, reason="Local")
        elif n % 3 == 1:
            s.at(60).stop(1000 + n, 100 * n + 800, reason="EVDisconnected").at(61).status(1, "Available")
        else:
            s.at(50).status(1, "Faulted", "GroundFailure").at(51).stop(1000 + n, -1, reason="Other")
            s.at(90).status(1, "Available")
        s.at(120).status(1, "Preparing").at(121).start(1, 5000 + n, meter_start=100 * n + 900)
        s.at(122).status(1, "Charging").at(180).status(1, "Finishing").at(181).stop(5000 + n, 100 * n + 1500)
        scripts.append(s)
    return scripts


def split(scripts: list[Script]) -> tuple[list[Script], list[Script]]:
    # The halves are each sent in gateway-time order, as gateways write a partition, and cut at minute 100,
    # between every charger's two sessions. A pause cut inside a status window would let the live workers'
    # wall-clock advance of idle partitions close that window before the rest arrives: by design (a quiet
    # charger's window must close), and something a replay, which has no pauses, cannot reproduce.
    envelopes = sorted((e for s in scripts for e in s.envelopes), key=lambda e: e.gateway_ts_ms)
    cut_ms = envelopes[0].gateway_ts_ms + 100_000
    first, second = Script("first half"), Script("second half")
    first.envelopes = [e for e in envelopes if e.gateway_ts_ms < cut_ms]
    second.envelopes = [e for e in envelopes if e.gateway_ts_ms >= cut_ms]
    return [first], [second]


def dump(env: dict[str, str], table: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", f"SELECT * FROM ocpp.{table} FINAL", "--format", "json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def merged_sessions(dumps: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """FINAL across several writers: per session key, the row with the highest version."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for rows in dumps:
        for row in rows:
            key = (row["charge_point_id"], row["transaction_id"])
            if key not in best or row["version"] > best[key]["version"]:
                best[key] = row
    return sorted(best.values(), key=lambda r: (r["charge_point_id"], r["transaction_id"]))


def distinct(dumps: list[list[dict[str, Any]]]) -> list[str]:
    return sorted({json.dumps(row, sort_keys=True) for rows in dumps for row in rows})


async def group_lag(kafka: KafkaSettings, group: str) -> int:
    """Frames of the group's topic not yet committed by the group (-1 while it has committed nothing)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    topic = kafka.topic(FRAMES.name)
    admin = AIOKafkaAdminClient(**kafka.client_options())
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                     if tp.topic == topic}
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
        await admin.close()
    if not committed:
        return -1
    return sum(end - committed.get(tp, 0) for tp, end in ends.items())


async def group_state(kafka: KafkaSettings, group: str) -> tuple[str, int]:
    """The consumer group's state (``Stable`` once a rebalance is over) and its number of members (("", 0)
    while the broker has no coordinator for it yet)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError:
        return "", 0
    finally:
        await admin.close()
    (described,) = response.groups
    return described[2], len(described[5])


def test_three_workers_one_killed_one_added_write_what_a_single_replay_writes(
        kafka_settings: KafkaSettings, unique: str, tmp_path: Path, workers) -> None:  # noqa: F811
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}.", "partitions": PARTITIONS})
    asyncio.run(ensure_topics(kafka))
    envs = [worker_env(kafka_settings, tmp_path / f"home-{n}", unique, OCPP_KAFKA_PARTITIONS=str(PARTITIONS),
                       OCPP_WORKER_FLUSH_ROWS="20") for n in range(4)]
    first, second = split(chargers(24))
    began = time.monotonic()
    group = [workers(envs[n], tmp_path / f"worker-{n}.log") for n in range(3)]
    # The first half is sent once all three share the partitions: sent earlier, the first member to join takes
    # it all and the others, given partitions already read, write nothing before one of them is killed.
    deadline, state = time.monotonic() + 120, ("", 0)
    while time.monotonic() < deadline and (state := asyncio.run(group_state(kafka, envs[0]["OCPP_WORKER_APP_ID"]))) != ("Stable", 3):
        time.sleep(0.5)
    assert state == ("Stable", 3), f"the group is {state}"
    records = asyncio.run(produce(kafka, first))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # every member took a share of the partitions and wrote rows
        try:
            if all(w.query("SELECT count() > 0 FROM ocpp.frames") == [[True]] for w in group):
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("a member of the group wrote no rows")
    killed_at = time.monotonic()
    all_wrote_s = killed_at - began
    group[1].stop(signal.SIGKILL)  # mid-stream: no flush, no commit, no goodbye
    group.append(workers(envs[3], tmp_path / "worker-3.log"))
    records += asyncio.run(produce(kafka, second))
    expected = expected_outputs(records)

    deadline = time.monotonic() + 180
    lag = -1
    while time.monotonic() < deadline and (lag := asyncio.run(group_lag(kafka, envs[0]["OCPP_WORKER_APP_ID"]))) != 0:
        time.sleep(1)
    assert lag == 0, f"the group still lags {lag} frames"
    caught_up_s = time.monotonic() - killed_at
    time.sleep(6)  # past the status window (2 s) and the idle advance: the last sessions are closed and written
    for w in group:
        w.stop(signal.SIGTERM if w is not group[1] else signal.SIGKILL)
    live_sessions = merged_sessions([dump(env, "sessions") for env in envs])
    live_faults = distinct([dump(env, "fault_events") for env in envs])

    replay_env = {**envs[0], "OCPP_HOME": str(tmp_path / "replayed")}
    replay_began = time.monotonic()
    replay = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "replay", "--quiet"], cwd=ROOT, env=replay_env,
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    replay_s = time.monotonic() - replay_began
    replayed_sessions = dump(replay_env, "sessions")
    assert len(replayed_sessions) == len(expected.sessions) == 48
    keys = lambda rows: {(r["charge_point_id"], r["transaction_id"]) for r in rows}  # noqa: E731
    assert keys(live_sessions) == keys(replayed_sessions), keys(replayed_sessions) ^ keys(live_sessions)
    for live, replayed in zip(live_sessions, sorted(replayed_sessions, key=lambda r: (r["charge_point_id"], r["transaction_id"]))):
        assert live == replayed
    assert live_faults == distinct([dump(replay_env, "fault_events")])
    print(f"\nworker group: 3 workers, 1 SIGKILLed, 1 added: {len(live_sessions)} sessions, field by field equal to a "
          f"single fresh replay of {len(records)} frames; every member wrote rows {all_wrote_s:.0f} s after the start, the "
          f"group had committed every frame {caught_up_s:.0f} s after the kill, the replay took {replay_s:.0f} s")
