"""A real Faust app driven through :mod:`processors.faust_adapter`, as the worker drives it, recording what it sees:
the observations ``tests/processors/test_faust_adapter.py`` pins. Run as a process of its own (Faust's services,
threads and signal handling stay out of pytest's process):

    python -m tests.processors.faust_pins first|second|member

``first``: polls, commits, seeks, end offsets, table writes, a rebalance (a ``member`` process joins the group, then
leaves), the stop hook. ``second``: the same app again: the table recovered through the replaced fetch loop, and
where the group's offsets left it. ``member``: joins the group and stays until SIGTERM. Names come from the
environment (``PIN_*``); observations are one JSON object on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from processors.faust_adapter import TP, FaustConsumer, Poll, ShellApp, StateTable

BOOTSTRAP = os.environ.get("PIN_BOOTSTRAP", "127.0.0.1:9092")
APP_ID = os.environ.get("PIN_APP_ID", "pins")
TOPIC = os.environ.get("PIN_TOPIC", "pins.in")
DATADIR = Path(os.environ.get("PIN_DATADIR", "/tmp/pins"))
POLL_LIMIT = 4  # broker_max_poll_records
TIMEOUT_S = 60.0
NOT_ASSIGNED = TP(TOPIC, 7)  # the topic has 2 partitions


class Companion:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def start(self) -> None:
        self.events.append("companion started")

    async def stop(self) -> None:
        self.events.append("companion stopped")


class Pins:
    """One app, its adapter, and everything recorded about them."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.app = ShellApp(
            APP_ID, broker=f"kafka://{BOOTSTRAP}", store="memory://", datadir=str(DATADIR / role), web_enabled=False,
            topic_partitions=2, topic_replication_factor=1, consumer_auto_offset_reset="earliest",
            broker_max_poll_records=POLL_LIMIT, stream_wait_empty=False, autodiscover=False,
            broker_session_timeout=10.0, broker_heartbeat_interval=3.0, Table=StateTable,
        )
        self.topic = self.app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
        changelog = self.app.topic(f"{APP_ID}-pins-changelog", key_serializer="raw", value_serializer="raw",
                                   partitions=2, compacting=True, deleting=False, internal=True, acks=False)
        table = self.app.Table("pins", default=None, partitions=2, use_partitioner=True, changelog_topic=changelog)
        assert isinstance(table, StateTable)
        self.table = table
        self.changelog_name = changelog.get_topic_name()
        self.app.topics.add(self.topic)
        self.consumer = FaustConsumer(self.app)
        self.events: list[str] = []
        self.seen: dict[str, Any] = {"role": role, "topics": {"topic": TOPIC, "changelog": self.changelog_name}}
        # Per partition of the topic: each poll's records ([[offset, key, value], ...]), flow_active, rebalancing.
        self.polls: dict[int, asyncio.Queue[tuple[list[list[Any]], bool, bool]]] = {0: asyncio.Queue(), 1: asyncio.Queue()}
        self.revocations: list[dict[str, Any]] = []
        self.assignments: list[dict[str, Any]] = []
        self.loop_runs = 0
        self.commit_in_revocation: dict[int, int] = {}
        self.commit_before_stop: dict[int, int] = {}
        self.first_table_value: Any = "no poll"
        self.consumer.replace_fetch_loop(self.fetch_loop)
        self.consumer.on_revoked(self.revoked)
        self.consumer.on_assigned(self.assigned)
        self.app.set_before_stop(self.before_stop)
        self.app.add_companion(Companion(self.events))

    async def fetch_loop(self, stopped: Callable[[], bool]) -> None:
        self.loop_runs += 1
        self.events.append("fetch loop started")
        consumer = self.consumer
        try:
            while not stopped():
                records: Poll = await consumer.poll(1.0)
                for tp, batch in records.items():
                    if tp.topic == TOPIC:
                        if self.first_table_value == "no poll":
                            self.first_table_value = _text(self.table.get(b"pinned"))
                        rows = [[r.offset, _text(r.key), _text(r.value)] for r in batch]
                        self.polls[tp.partition].put_nowait((rows, consumer.flow_active, consumer.rebalancing))
                    elif consumer.flow_active:
                        await consumer.deliver(tp, batch, consumer.generation)
            self.events.append("fetch loop ended: stopped")
        except asyncio.CancelledError:
            self.events.append("fetch loop ended: cancelled")
            raise

    async def revoked(self, revoked: set[TP]) -> None:
        consumer = self.consumer
        self.events.append("revoked")
        held = sorted(tp.partition for tp in consumer.assignment() if tp.topic == TOPIC)
        commits = {TP(TOPIC, p): offset for p, offset in self.commit_in_revocation.items() if p in held}
        self.revocations.append({
            "revoked": sorted(tp.partition for tp in revoked if tp.topic == TOPIC), "held": held,
            "rebalancing": consumer.rebalancing, "flow_active": consumer.flow_active,
            "committed": await consumer.commit(commits) if commits else None,
        })

    async def assigned(self, assigned: set[TP]) -> None:
        self.events.append("assigned")
        self.assignments.append({
            "topics": sorted({tp.topic for tp in assigned}),
            "partitions": sorted(tp.partition for tp in assigned if tp.topic == TOPIC),
            "generation": self.consumer.generation, "rebalancing": self.consumer.rebalancing,
        })

    async def before_stop(self) -> None:
        consumer = self.consumer
        self.events.append("before stop")
        commits = {TP(TOPIC, p): offset for p, offset in self.commit_before_stop.items()}
        self.seen["before_stop"] = {
            "held": sorted(tp.partition for tp in consumer.assignment() if tp.topic == TOPIC),
            "committed": await consumer.commit(commits) if commits else None,
        }

    async def next_poll(self, partition: int) -> tuple[list[list[Any]], bool, bool]:
        return await asyncio.wait_for(self.polls[partition].get(), TIMEOUT_S)

    async def read(self, partition: int, until: int) -> list[list[Any]]:
        """Every record of ``partition`` up to ``until`` (exclusive), poll by poll: [[offset, key, value], ...]."""
        rows: list[list[Any]] = []
        polls = []
        while not rows or rows[-1][0] < until - 1:
            batch, _, _ = await self.next_poll(partition)
            polls.append(len(batch))
            rows += batch
        self.seen.setdefault("poll_sizes", []).extend(polls)
        return rows

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.role}: {what} never happened; events {self.events}")
            await asyncio.sleep(0.1)

    def committed_offsets(self) -> dict[str, int | None]:
        return {str(p): self.consumer.committed_offset(TP(TOPIC, p)) for p in (0, 1)}


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


async def group_offsets() -> dict[str, int]:
    """The group's committed offsets of the topic, as the broker holds them (not as Faust believes)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(APP_ID)
    finally:
        await admin.close()
    return {str(tp.partition): meta.offset for tp, meta in offsets.items() if tp.topic == TOPIC}


async def changelog_records(topic: str) -> dict[str, str]:
    # From the start, not by seek_to_beginning after assign: aiokafka may still be resetting to the end then.
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[str, str] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found |= {r.key.decode(): r.value.decode() for r in records}
        return found
    finally:
        await consumer.stop()


async def first(pins: Pins) -> None:
    consumer, seen = pins.consumer, pins.seen
    tp0, tp1 = TP(TOPIC, 0), TP(TOPIC, 1)
    seen["committed_at_start"] = pins.committed_offsets()
    seen["records"] = {str(p): await pins.read(p, 10) for p in (0, 1)}
    seen["highwater"] = {str(p): consumer.highwater(TP(TOPIC, p)) for p in (0, 1)}
    seen["highwaters"] = {str(tp.partition): n for tp, n in (await consumer.highwaters([tp0, tp1])).items()}
    seen["commit"] = await consumer.commit({tp0: 6})
    seen["committed_after_commit"] = pins.committed_offsets()
    seen["group_after_commit"] = await group_offsets()
    seen["commit_not_assigned"] = await consumer.commit({NOT_ASSIGNED: 1})
    seen["group_after_commit_not_assigned"] = await group_offsets()
    seen["seek"] = await consumer.seek(tp0, 2)
    seen["after_seek"], _, _ = await pins.next_poll(0)
    seen["seek_not_assigned"] = await consumer.seek(NOT_ASSIGNED, 0)
    pins.table[b"pinned"] = b"value 1"
    await pins.table.written()
    seen["changelog_after_written"] = await changelog_records(pins.changelog_name)
    consumer.note_stream_activity(tp0, 123.0)
    monitor = pins.app.monitor
    seen["stream_inbound_time"] = monitor.stream_inbound_time.get(tp0) if monitor is not None else None

    # A second member joins the group (a rebalance), then leaves (another).
    pins.commit_in_revocation = {1: 5}
    member = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.processors.faust_pins", "member",
                                                  stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await pins.wait_for(lambda: len(pins.assignments) >= 2 and not consumer.rebalancing, "the member's join")
        seen["committed_after_join"] = pins.committed_offsets()
        seen["group_after_join"] = await group_offsets()
        pins.commit_in_revocation = {}
        member.send_signal(signal.SIGTERM)
        await asyncio.wait_for(member.wait(), TIMEOUT_S)
        await pins.wait_for(lambda: len(pins.assignments) >= 3 and not consumer.rebalancing, "the member's leave")
    finally:
        if member.returncode is None:
            member.kill()
            await member.wait()
    seen["flow_after_rebalances"] = consumer.flow_active
    pins.commit_before_stop = {1: 9}


async def second(pins: Pins) -> None:
    seen = pins.seen
    seen["committed_at_start"] = pins.committed_offsets()
    seen["first_rows"] = {str(p): (await pins.next_poll(p))[0][0] for p in (0, 1)}
    seen["table_at_first_poll"] = pins.first_table_value


async def member(pins: Pins) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


async def main(role: str) -> None:
    pins = Pins(role)
    await pins.app.start()  # returns once the first assignment's recovery is done
    pins.events.append("started")
    try:
        await {"first": first, "second": second, "member": member}[role](pins)
    finally:
        await pins.app.stop()
        pins.events.append("stopped")
    pins.seen |= {"events": pins.events, "revocations": pins.revocations, "assignments": pins.assignments,
                  "loop_runs": pins.loop_runs}
    if role == "first":
        pins.seen["group_after_stop"] = await group_offsets()
    print(json.dumps(pins.seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
