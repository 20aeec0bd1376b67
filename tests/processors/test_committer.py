"""The worker's flushes (processors.committer), with the real processor and recording stand-ins for ClickHouse,
the topics, the table and the consumer: the order rows -> topic records -> states -> offsets, refused commits offered
again, an insert that cannot be fixed stopping before anything else is written, and the stop's last flush."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.errors import InsertFailed
from processors.committer import Committer, OffsetLedger
from processors.exclusion_intake import ExclusionIntake
from processors.faust_adapter import TP
from processors.intake import Intake
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig
from schemas.tables import FRAMES, OUTAGE_EXCLUSIONS
from tests.kpi.test_exclusions import excl
from tests.processors.test_batch_path import Rec
from tests.processors.script import Script, energy

FRAMES_TOPIC, EXCLUSIONS_TOPIC = "t.ocpp.frames.v1", "t.ocpp.exclusions.v1"


class Refused(Exception):
    """What the test's ``refused`` raises where the worker would exit."""


@dataclass
class Stand:
    """Everything the committer writes to, recording into one journal: ('insert', table, rows), ('send', topic),
    ('state', key), ('written',), ('commit', offsets, accepted)."""

    journal: list[tuple[Any, ...]] = field(default_factory=list)
    accept: list[bool] = field(default_factory=list)  # the next commits' outcomes (then: accepted)
    insert_error: BaseException | None = None
    states: dict[bytes, bytes] = field(default_factory=dict)

    async def write(self, rows_by_table: dict[str, list[list[Any]]], token: str) -> None:
        if self.insert_error is not None:
            raise self.insert_error
        for table, rows in rows_by_table.items():
            if rows:
                self.journal.append(("insert", table, len(rows)))

    def topic(self, name: str) -> Topic:
        return Topic(self, name)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.states[key] = value
        self.journal.append(("state", key))

    async def written(self) -> None:
        self.journal.append(("written",))

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        accepted = self.accept.pop(0) if self.accept else True
        self.journal.append(("commit", dict(offsets), accepted))
        return accepted

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.journal]

    def commits(self) -> list[tuple[dict[TP, int], bool]]:
        return [(entry[1], entry[2]) for entry in self.journal if entry[0] == "commit"]


@dataclass
class Topic:
    stand: Stand
    name: str

    async def send(self, *, key: bytes, value: bytes) -> Awaitable[Any]:
        self.stand.journal.append(("send", self.name))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def refuse(exc: InsertFailed) -> NoReturn:
    raise Refused(str(exc))


@dataclass
class Shell:
    """A committer on the real processor and intake, fed as the batch path feeds them."""

    stand: Stand = field(default_factory=Stand)
    processor: FrameProcessor = field(init=False)
    intake: Intake = field(default_factory=Intake)
    exclusions: ExclusionIntake = field(default_factory=ExclusionIntake)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    committer: Committer = field(init=False)

    def __post_init__(self) -> None:
        self.processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=2000), self.stand.states.get)
        self.committer = Committer(
            processor=self.processor, intake=self.intake, exclusions=self.exclusions, sink=self.stand,
            sessions=self.stand.topic("sessions"), faults=self.stand.topic("faults"), states=self.stand,
            consumer=self.stand, frames_topic=FRAMES_TOPIC, exclusions_topic=EXCLUSIONS_TOPIC, app_id="test",
            metrics=self.metrics, refused=refuse)

    def feed(self, partition: int, script: Script, start: int = 0) -> int:
        records = [Rec(start + n, e.key(), e.model_dump_json().encode()) for n, e in enumerate(script.envelopes)]
        self.intake.taken(partition, self.processor.process_batch(partition, records))
        return start + len(records)


def metric(shell: Shell, name: str) -> float | None:
    return shell.metrics.registry.get_sample_value(name)


def charger(name: str) -> Script:
    """A session that ends, and a fault: rows of every kind, a session and fault records, a state."""
    script = Script(name)
    script.at(0).status(1, "Preparing").at(1).start(1, 7, meter_start=100).at(2).status(1, "Charging")
    script.at(30).meter(1, 7, energy(300)).at(50).status(1, "Finishing").at(51).stop(7, 600, reason="Local")
    script.at(60).status(1, "Faulted", "GroundFailure").at(70).status(1, "Available")
    return script


def test_rows_then_topic_records_then_states_then_offsets() -> None:
    shell = Shell()
    end0, end1 = shell.feed(0, charger("CP-A")), shell.feed(1, charger("CP-B"))
    asyncio.run(shell.committer.flush())
    kinds = shell.stand.kinds()
    assert kinds == sorted(kinds, key=["insert", "send", "state", "written", "commit"].index), kinds
    assert {"insert", "send", "state", "written", "commit"} == set(kinds)
    assert ("insert", FRAMES.name, end0 + end1) in shell.stand.journal
    assert shell.stand.commits() == [({TP(FRAMES_TOPIC, 0): end0, TP(FRAMES_TOPIC, 1): end1}, True)]
    assert set(shell.stand.states) == {b"CP-A", b"CP-B"}
    assert ("send", "sessions") in shell.stand.journal and ("send", "faults") in shell.stand.journal
    assert metric(shell, "ocpp_worker_sessions_total") == shell.stand.journal.count(("send", "sessions")) >= 2
    assert metric(shell, "ocpp_worker_fault_events_total") == shell.stand.journal.count(("send", "faults")) > 0


def test_a_refused_commit_is_offered_again_by_the_next_flush_and_an_accepted_one_is_not() -> None:
    shell = Shell()
    shell.stand.accept = [False]
    end = shell.feed(0, charger("CP-A"))
    asyncio.run(shell.committer.flush())
    asyncio.run(shell.committer.flush())  # nothing new processed: only the refused offsets
    asyncio.run(shell.committer.flush())  # accepted already: nothing at all
    offsets = {TP(FRAMES_TOPIC, 0): end}
    assert shell.stand.commits() == [(offsets, False), (offsets, True)]
    assert shell.stand.journal[-2:] == [("written",), ("commit", offsets, True)]  # nothing written twice


def test_an_insert_that_cannot_be_fixed_stops_before_anything_else_is_written() -> None:
    shell = Shell()
    shell.stand.insert_error = InsertFailed("a column is missing", table=FRAMES.name, retriable=False)
    shell.feed(0, charger("CP-A"))
    with pytest.raises(Refused):
        asyncio.run(shell.committer.flush())
    assert shell.stand.journal == []  # no record sent, no state, no offset: the frames are read again


def test_a_write_that_failed_is_raised_by_the_next_flush() -> None:
    async def scenario(shell: Shell) -> None:
        shell.feed(0, charger("CP-A"))
        await shell.committer.flush(wait=False)  # handed to the writer; the batch path goes on
        with pytest.raises(RuntimeError, match="broken"):
            await shell.committer.flush()
    shell = Shell()
    shell.stand.insert_error = RuntimeError("broken")
    asyncio.run(scenario(shell))
    assert shell.stand.commits() == []


def test_the_stop_writes_everything_processed_then_nothing_more() -> None:
    async def scenario(shell: Shell) -> None:
        end = shell.feed(0, charger("CP-A"))
        await shell.committer.hand_over(timeout_s=10)
        assert shell.committer.handed_over
        assert shell.stand.commits() == [({TP(FRAMES_TOPIC, 0): end}, True)]
        shell.feed(0, charger("CP-B"), start=end)  # taken after the stop began: the next owner's
        await shell.committer.flush()
        assert shell.stand.commits() == [({TP(FRAMES_TOPIC, 0): end}, True)]
    asyncio.run(scenario(Shell()))


def test_a_stop_whose_last_flush_fails_still_stops_and_commits_nothing() -> None:
    shell = Shell()
    shell.stand.insert_error = ConnectionRefusedError("ClickHouse unreachable")
    shell.feed(0, charger("CP-A"))
    asyncio.run(shell.committer.hand_over(timeout_s=10))  # does not raise: the stop goes on
    assert shell.committer.handed_over and shell.stand.commits() == []


def test_exclusions_are_stored_and_committed_with_the_frames() -> None:
    shell = Shell()
    end = shell.feed(0, charger("CP-A"))
    good = excl(1, 0, 10, note="grid").model_dump_json().encode()
    shell.exclusions.take(2, [Rec(4, None, good), Rec(5, None, b"{not json")])
    asyncio.run(shell.committer.flush())
    assert ("insert", OUTAGE_EXCLUSIONS.name, 1) in shell.stand.journal
    assert shell.stand.commits() == [({TP(FRAMES_TOPIC, 0): end, TP(EXCLUSIONS_TOPIC, 2): 6}, True)]
    assert metric(shell, "ocpp_worker_exclusions_total") == metric(shell, "ocpp_worker_invalid_exclusions_total") == 1


def test_partitions_gone_to_another_worker_are_offered_again_if_they_come_back() -> None:
    shell = Shell()
    end = shell.feed(0, charger("CP-A"))
    asyncio.run(shell.committer.flush())
    shell.committer.forget([0])  # revoked, then assigned again: its position may have moved on elsewhere
    asyncio.run(shell.committer.flush())
    assert shell.stand.commits() == [({TP(FRAMES_TOPIC, 0): end}, True)] * 2


Step = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 2), st.integers(1, 5)),
    st.tuples(st.just("flush"), st.lists(st.booleans(), min_size=1, max_size=1)),
    st.tuples(st.just("forget"), st.integers(0, 2)),
)


@given(st.lists(Step, max_size=40))
def test_a_flush_commits_exactly_the_positions_the_group_does_not_hold(steps: list[tuple[Any, ...]]) -> None:
    """Whatever moves, refusals and revocations come: each flush offers every partition whose position differs from
    what the group accepted last (a refused commit is never taken for done), and nothing else."""
    ledger, positions, accepted = OffsetLedger(), {}, {}
    for step in steps:
        if step[0] == "move":
            positions[step[1]] = positions.get(step[1], 0) + step[2]
        elif step[0] == "forget":
            ledger.forget([step[1]])
            positions.pop(step[1], None)  # the intake forgets it too
            accepted.pop(step[1], None)  # the next owner's commits are not this worker's to know
        else:
            due = ledger.due(positions)
            assert due == {p: n for p, n in positions.items() if accepted.get(p) != n}
            if step[1][0]:
                accepted |= due
            else:
                ledger.refused(due)
