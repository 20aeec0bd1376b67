"""The rules of topic readiness and replication (pure: no broker)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.errors import TopicError, TopicRefused
from infra.topic_admin import Readiness, readiness, replication_for, wait_reason, waiting_line


def partition(n: int, leader: int = 1, replicas: int = 1, error_code: int = 0) -> dict:
    return {"partition": n, "leader": leader, "replicas": list(range(replicas)), "error_code": error_code}


def topic(name: str, partitions: list[dict], error_code: int = 0) -> dict:
    return {"topic": name, "error_code": error_code, "partitions": partitions}


@pytest.mark.parametrize(("described", "expected"), [
    # a just-created topic on a just-started broker: known, but 0 partitions for a few seconds
    ([topic("t", [])], Readiness(0, 0, "0 partitions yet")),
    ([], Readiness(0, 0, "not known yet (not in the metadata)")),
    ([topic("t", [], error_code=3)], Readiness(0, 0, "not known yet (UnknownTopicOrPartitionError)")),
    ([topic("t", [partition(0), partition(1, leader=-1)])], Readiness(2, 1, "1 of 2 partitions without a leader yet")),
    ([topic("t", [partition(0), partition(1, error_code=5)])], Readiness(2, 1, "1 of 2 partitions without a leader yet")),
    ([topic("t", [partition(0, replicas=3), partition(1, replicas=3)])], Readiness(2, 3, None)),
    ([topic("other", [partition(0)]), topic("t", [partition(0)])], Readiness(1, 1, None)),
])
def test_readiness(described: list[dict], expected: Readiness) -> None:
    assert readiness(described, ["t"]) == {"t": expected}


@given(st.lists(st.tuples(st.integers(-1, 3), st.integers(0, 1)), max_size=30))
def test_a_topic_is_usable_only_with_partitions_all_led(parts: list[tuple[int, int]]) -> None:
    described = [topic("t", [partition(i, leader=leader, error_code=5 * err) for i, (leader, err) in enumerate(parts)])]
    state = readiness(described, ["t"])["t"]
    usable = bool(parts) and all(leader >= 0 and err == 0 for leader, err in parts)
    assert (state.problem is None) == usable
    assert state.partitions == len(parts)


@pytest.mark.parametrize(("configured", "brokers", "expected"), [
    (None, 1, 1), (None, 2, 2), (None, 3, 3), (None, 5, 3), (None, 0, 1), (2, 3, 2), (3, 1, 3),
])
def test_replication_follows_the_cluster_unless_configured(configured: int | None, brokers: int, expected: int) -> None:
    assert replication_for(configured, brokers) == expected


def test_the_waiting_line_says_where_what_and_how_long() -> None:
    line = waiting_line("127.0.0.1:9092", wait_reason(TopicError("ocpp.frames.v1: 0 partitions yet")), 12.4)
    assert line == "waiting for Kafka topics on 127.0.0.1:9092 (12 s so far): ocpp.frames.v1: 0 partitions yet"
    assert wait_reason(OSError("refused")) == "Kafka not answering (OSError: refused)"
    assert not TopicRefused("x").retriable and TopicError("x").retriable
