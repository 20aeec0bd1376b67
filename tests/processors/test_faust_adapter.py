"""What the worker relies on in Faust's internals (:mod:`processors.faust_adapter`), pinned against a real Faust app
and the real broker, for the faust-streaming versions ``pyproject.toml`` allows (0.15.3: the only release in
``>=0.15.3,<0.16``). An upgrade that changes one of these fails here, by name, instead of somewhere in the worker.

One scenario (``tests/processors/faust_pins.py``, a process of its own) runs once per module: an app polls, commits,
seeks, writes its table; a second member joins the group and leaves (two rebalances); the app stops; then the same
app starts again. Each test reads one behaviour off what it recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import TopicSpec

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 10  # per partition
POLL_LIMIT = 4  # the scenario's broker_max_poll_records

pytestmark = pytest.mark.kafka


async def _fill(kafka: KafkaSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for partition in (0, 1):
            for n in range(RECORDS):
                await producer.send_and_wait(topic, key=f"k{partition}-{n}".encode(), value=f"v{partition}-{n}".encode(),
                                             partition=partition)
    finally:
        await producer.stop()


def _run(role: str, env: dict[str, str], log: Path) -> dict[str, Any]:
    with open(log, "ab") as err:
        done = subprocess.run([sys.executable, "-m", "tests.processors.faust_pins", role], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=err, timeout=240)
    lines = done.stdout.decode().strip().splitlines()
    assert done.returncode == 0 and lines, f"{role}: exit {done.returncode}\n{log.read_text()[-4000:]}"
    return dict(json.loads(lines[-1]))


@pytest.fixture(scope="module")
def seen(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What the scenario's two runs recorded: ``{"first": ..., "second": ...}``."""
    unique = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=2)
    topic = f"test.pins.{unique}"
    asyncio.run(ensure_topics(kafka, [TopicSpec(name=topic, partitions=2, retention_ms=3_600_000)]))
    asyncio.run(_fill(kafka, topic))
    folder = tmp_path_factory.mktemp("pins")
    env = {**os.environ, "PIN_BOOTSTRAP": kafka_bootstrap, "PIN_APP_ID": f"pins-{unique}", "PIN_TOPIC": topic,
           "PIN_DATADIR": str(folder)}
    first = _run("first", env, folder / "first.log")
    return {"first": first, "second": _run("second", env, folder / "second.log")}


def test_the_fetcher_runs_the_replaced_loop_from_the_start_until_after_the_stop_hook(seen: dict[str, dict[str, Any]]) -> None:
    """``Consumer._drain_messages`` replaced on the instance: Faust's fetcher runs ours before the app is ready (the
    first recovery reads the changelog through it), keeps it through rebalances, and ends it (cancelled, or by
    ``stopped()``) only once the consumer stops, after the stop hook: during the hand-over it still polls, which is
    why the batch path stops taking frames itself."""
    for run in seen.values():
        events = run["events"]
        ended = [e for e in events if e.startswith("fetch loop ended")]
        assert run["loop_runs"] >= 1 and len(ended) == events.count("fetch loop started") == run["loop_runs"], events
        assert events.index("fetch loop started") < events.index("started")
        assert events.index(ended[-1]) > events.index("before stop"), events


def test_a_poll_gives_the_records_of_the_active_partitions_in_order_within_the_poll_limit(seen: dict[str, dict[str, Any]]) -> None:
    first = seen["first"]
    for partition in ("0", "1"):
        rows = first["records"][partition]
        assert rows == [[n, f"k{partition}-{n}", f"v{partition}-{n}"] for n in range(RECORDS)]
    assert first["poll_sizes"] and max(first["poll_sizes"]) <= POLL_LIMIT


def test_committed_offsets_are_none_until_something_is_committed(seen: dict[str, dict[str, Any]]) -> None:
    assert seen["first"]["committed_at_start"] == {"0": None, "1": None}


def test_a_commit_is_held_by_the_group_and_told(seen: dict[str, dict[str, Any]]) -> None:
    """``_commit_offsets`` commits exactly the offsets given (no acks needed) and says so; ``_committed_offset``
    then holds them."""
    first = seen["first"]
    assert first["commit"] is True
    assert first["group_after_commit"] == {"0": 6}
    assert first["committed_after_commit"] == {"0": 6, "1": None}


def test_a_commit_of_a_partition_not_assigned_is_refused_without_an_error(seen: dict[str, dict[str, Any]]) -> None:
    first = seen["first"]
    assert first["commit_not_assigned"] is False
    assert first["group_after_commit_not_assigned"] == {"0": 6}


def test_a_seek_moves_the_next_poll_and_a_partition_not_assigned_is_not_sought(seen: dict[str, dict[str, Any]]) -> None:
    first = seen["first"]
    assert first["seek"] is True
    assert first["after_seek"][0] == [2, "k0-2", "v0-2"]
    assert first["seek_not_assigned"] is False


def test_end_offsets_from_the_last_fetch_and_from_the_broker(seen: dict[str, dict[str, Any]]) -> None:
    first = seen["first"]
    assert first["highwater"] == {"0": RECORDS, "1": RECORDS}
    assert first["highwaters"] == {"0": RECORDS, "1": RECORDS}


def test_a_table_write_is_on_the_changelog_once_written_returns(seen: dict[str, dict[str, Any]]) -> None:
    """``StateTable.written``: ``Collection.send_changelog`` returns the write's future, resolved when Kafka
    acknowledged it (rather than ``Producer.flush``, which may return with a write still on its way in 0.15.3:
    the adapter's docstring)."""
    assert seen["first"]["changelog_after_written"] == {"pinned": "value 1"}


def test_stream_activity_lands_where_fausts_health_check_reads_it(seen: dict[str, dict[str, Any]]) -> None:
    assert seen["first"]["stream_inbound_time"] == 123.0


def test_the_revocation_hook_runs_while_the_partitions_are_held_and_the_flow_is_stopped(seen: dict[str, dict[str, Any]]) -> None:
    """A member joins: the revocation hook sees the partitions still assigned, the group rebalancing and the flow
    stopped, and a commit there is accepted (the new owner starts from it)."""
    first = seen["first"]
    moved = [r for r in first["revocations"] if r["revoked"]]
    assert len(moved) == 2, first["revocations"]  # the member's join, then its leave
    join = moved[0]
    assert join["held"] == join["revoked"] == [0, 1]
    assert join["rebalancing"] is True and join["flow_active"] is False
    assert join["committed"] is True
    assert first["group_after_join"] == {"0": 6, "1": 5}


def test_an_assignment_is_whole_and_a_new_generation(seen: dict[str, dict[str, Any]]) -> None:
    """The assigned hook gets every subscribed topic's partitions (the table's changelog too) while the group still
    rebalances; each rebalance is a new generation; the member's join split the partitions, its leave joined them."""
    assignments = seen["first"]["assignments"]
    assert len(assignments) == 3, assignments
    assert all(a["rebalancing"] for a in assignments)
    assert [len(a["partitions"]) for a in assignments] == [2, 1, 2]
    names = set(seen["first"]["topics"].values())
    assert all(names <= set(a["topics"]) for a in assignments), assignments
    generations = [a["generation"] for a in assignments]
    assert generations == sorted(set(generations))


def test_after_a_recovery_the_flow_runs_and_committed_offsets_are_the_groups(seen: dict[str, dict[str, Any]]) -> None:
    """Once a recovery ends, Faust has sought the partitions to the committed offsets (``perform_seek`` sets
    ``_committed_offset``) and resumed the flow."""
    first = seen["first"]
    kept = first["assignments"][1]["partitions"]
    assert {p: first["committed_after_join"][str(p)] for p in kept} == {p: {0: 6, 1: 5}[p] for p in kept}
    assert first["flow_after_rebalances"] is True


def test_the_stop_hook_runs_before_the_consumer_leaves_and_no_revocation_comes(seen: dict[str, dict[str, Any]]) -> None:
    """``App.on_stop`` runs before the consumer stops: the assignment is held and a commit is accepted. Faust sends
    no revocation on a stop (that is why the worker needs this hook). Companions stop after it."""
    first = seen["first"]
    assert first["before_stop"] == {"held": [0, 1], "committed": True}
    assert first["group_after_stop"] == {"0": 6, "1": 9}
    events = first["events"]
    after = events[events.index("before stop"):]
    assert "revoked" not in after
    assert after.index("companion stopped") > 0
    assert events.index("companion started") < events.index("started")


def test_a_restart_recovers_the_table_through_the_replaced_loop_before_frames_come(seen: dict[str, dict[str, Any]]) -> None:
    """The table's changelog goes through the loop's hand-over to Faust's own path (``_to_message``, the conductor's
    callback, ``_read_offset``): the state is whole when the first records are polled, and they start at the group's
    committed offsets."""
    second = seen["second"]
    assert second["table_at_first_poll"] == "value 1"
    assert second["committed_at_start"] == {"0": 6, "1": 9}
    assert second["first_rows"] == {"0": [6, "k0-6", "v0-6"], "1": [9, "k1-9", "v1-9"]}
