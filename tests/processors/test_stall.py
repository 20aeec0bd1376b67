"""The worker's stall rule (processors.stall), driven as the worker drives it: progress events, and timer
ticks that look at Kafka when the rule says so; then the watch around it (processors.stall_watch) against a
recording consumer: when it looks, where it seeks, when it exits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.faust_adapter import TP
from processors.intake import Intake
from processors.stall import StallAction, StallWatch
from processors.stall_watch import StallWatchdog

STALL_S = 60.0


def tick(watch: StallWatch, now: float, *, behind: bool) -> StallAction | None:
    """One timer tick of the worker: None, NUDGE or EXIT."""
    if not watch.due(now):
        return None
    if not behind:
        watch.quiet(now)
        return None
    return watch.stuck(now)


def ticks(watch: StallWatch, start: float, end: float, *, behind: bool = True, every: float = 0.5) -> list[tuple[float, StallAction]]:
    """The nudges and the exit of ticks from ``start`` to ``end`` (the process ends at an exit)."""
    out, now = [], start
    while now <= end:
        action = tick(watch, now, behind=behind)
        if action is not None:
            out.append((now, action))
        if action is StallAction.EXIT:
            break
        now += every
    return out


def test_frames_waiting_and_none_taken_nudge_then_exit() -> None:
    watch = StallWatch(STALL_S, last_progress=0.0)
    assert ticks(watch, 0.0, 200.0) == [(60.0, StallAction.NUDGE), (120.0, StallAction.EXIT)]


def test_nothing_to_read_is_idle_not_a_stall() -> None:
    watch = StallWatch(STALL_S, last_progress=0.0)
    assert ticks(watch, 0.0, 600.0, behind=False) == []
    assert ticks(watch, 600.5, 700.0) == [(660.0, StallAction.NUDGE)]  # frames arrive at 600: counted from the last look


def test_a_long_restore_that_keeps_reading_the_changelog_is_not_a_stall() -> None:
    watch = StallWatch(STALL_S, last_progress=0.0)
    watch.progressed(0.0)  # assigned: the recovery starts
    for second in range(1, 900):  # fifteen minutes of changelog, frames waiting all along
        watch.changelog_read(float(second), recovering=True)
        assert tick(watch, second + 0.5, behind=True) is None
    assert ticks(watch, 900.0, 1000.0) == [(959.0, StallAction.NUDGE)]  # the restore stopped moving at 899


def test_standby_records_while_running_are_not_progress_of_the_frames() -> None:
    watch = StallWatch(STALL_S, last_progress=0.0)
    actions = []
    for second in range(1, 200):
        watch.changelog_read(float(second), recovering=False)
        action = tick(watch, float(second), behind=True)
        if action is not None:
            actions.append((second, action))
        if action is StallAction.EXIT:
            break
    assert actions == [(60, StallAction.NUDGE), (120, StallAction.EXIT)]


def test_frames_taken_after_a_nudge_undo_it() -> None:
    watch = StallWatch(STALL_S, last_progress=0.0)
    assert ticks(watch, 0.0, 61.0) == [(60.0, StallAction.NUDGE)]
    watch.progressed(70.0)  # the seek helped
    assert ticks(watch, 70.0, 135.0) == [(130.0, StallAction.NUDGE)]  # a new stall is nudged again, not an exit


Event = st.one_of(
    st.tuples(st.just("frames"), st.floats(0.01, 120.0)),
    st.tuples(st.just("restore"), st.floats(0.01, 120.0)),
    st.tuples(st.just("standby"), st.floats(0.01, 120.0)),
    st.tuples(st.just("quiet"), st.floats(0.01, 120.0)),
    st.tuples(st.just("stuck"), st.floats(0.01, 120.0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(Event, max_size=60))
def test_it_exits_only_after_two_limits_without_progress_with_frames_waiting_at_both(events: list[tuple[str, float]]) -> None:
    """Whatever happens: an EXIT comes only when no progress and no quiet look happened for 2 × stall_s, and
    a worker making progress more often than every stall_s is never nudged."""
    watch = StallWatch(STALL_S, last_progress=0.0)
    now, moved, steady = 0.0, 0.0, True  # moved: the last progress, or the last look that found nothing to read
    for kind, gap in events:
        now += gap
        if kind in ("frames", "restore"):
            steady = steady and now - moved < STALL_S
            watch.progressed(now) if kind == "frames" else watch.changelog_read(now, recovering=True)
            moved = now
        elif kind == "standby":
            watch.changelog_read(now, recovering=False)
        else:
            looked = watch.due(now)
            action = tick(watch, now, behind=kind == "stuck")
            if action is StallAction.EXIT:
                assert now - moved >= 2 * STALL_S
                return
            if action is not None:
                assert not (steady and now - moved < STALL_S)
            if kind == "quiet" and looked:
                moved = now


# --- the watch around the rule (processors.stall_watch): what it asks of Kafka and does about it ---------------


class Exited(Exception):
    """Where the worker would exit with 70."""


@dataclass
class Consumer:
    """The consumer as the watch sees it: assignment, committed offsets, end offsets; records its seeks."""

    ends: dict[TP, int]
    committed: dict[TP, int] = field(default_factory=dict)
    rebalancing: bool = False
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    looks: int = 0

    def assignment(self) -> set[TP]:
        return set(self.ends) | {TP("other", 0)}

    def committed_offset(self, tp: TP) -> int | None:
        return self.committed.get(tp)

    async def highwaters(self, tps: Iterable[TP]) -> Mapping[TP, int]:
        self.looks += 1
        assert all(tp.topic == FRAMES for tp in tps)  # only the frames partitions are watched
        return {tp: self.ends[tp] for tp in tps}

    async def seek(self, tp: TP, offset: int) -> bool:
        self.seeks.append((tp, offset))
        return True


FRAMES = "frames"
P0, P1 = TP(FRAMES, 0), TP(FRAMES, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watchdog(consumer: Consumer, intake: Intake, clock: Clock) -> StallWatchdog:
    def exit_process() -> NoReturn:
        raise Exited

    return StallWatchdog(StallWatch(STALL_S, last_progress=0.0), consumer, intake, FRAMES, exit_process=exit_process,
                         clock=clock)


def test_the_watch_looks_at_kafka_only_when_due_and_nudges_then_exits() -> None:
    consumer, intake, clock = Consumer({P0: 10, P1: 4}, committed={P1: 4}), Intake(), Clock()
    intake.taken(0, 7)
    watch = watchdog(consumer, intake, clock)
    clock.now = 59.0
    assert asyncio.run(watch.check()) is None and consumer.looks == 0
    clock.now = 60.0
    assert asyncio.run(watch.check()) is StallAction.NUDGE
    assert consumer.seeks == [(P0, 7)]  # the next offset of the partition behind, none for the caught-up one
    clock.now = 119.0
    assert asyncio.run(watch.check()) is None
    clock.now = 120.0
    with pytest.raises(Exited):
        asyncio.run(watch.check())


def test_nothing_to_read_is_quiet_and_a_stopping_worker_is_not_watched() -> None:
    consumer, intake, clock = Consumer({P0: 5}), Intake(), Clock()
    intake.taken(0, 5)
    watch = watchdog(consumer, intake, clock)
    clock.now = 60.0
    assert asyncio.run(watch.check()) is None and consumer.looks == 1 and not watch.rule.due(clock.now)
    consumer.ends[P0] = 9
    clock.now = 500.0
    assert asyncio.run(watch.check(stopping=True)) is None and consumer.looks == 1


def test_a_nudge_while_the_group_rebalances_seeks_nothing() -> None:
    consumer, intake, clock = Consumer({P0: 5}, rebalancing=True), Intake(), Clock()
    watch = watchdog(consumer, intake, clock)
    clock.now = 60.0
    assert asyncio.run(watch.check()) is StallAction.NUDGE and consumer.seeks == []


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(0, 3), st.tuples(st.integers(0, 50), st.none() | st.integers(0, 50),
                                                    st.none() | st.integers(0, 50)), min_size=1))
def test_a_nudge_seeks_exactly_the_partitions_behind_to_what_comes_next(partitions: dict[int, tuple[int, int | None, int | None]]) -> None:
    """Per partition (end, committed, taken up to): behind when the end is past what comes next (taken, else the
    committed offset, else 0); a nudge seeks each of those there, and never a caught-up one."""
    ends = {TP(FRAMES, p): end for p, (end, _, _) in partitions.items()}
    committed = {TP(FRAMES, p): c for p, (_, c, _) in partitions.items() if c is not None}
    consumer, intake, clock = Consumer(ends, committed=committed), Intake(), Clock()
    for p, (_, _, taken) in partitions.items():
        if taken is not None:
            intake.taken(p, taken)
    expected = {}
    for p, (end, c, taken) in partitions.items():
        done = taken if taken is not None else (c or 0)
        if end > done:
            expected[TP(FRAMES, p)] = done
    clock.now = STALL_S
    action = asyncio.run(watchdog(consumer, intake, clock).check())
    assert action is (StallAction.NUDGE if expected else None)
    assert dict(consumer.seeks) == expected and len(consumer.seeks) == len(expected)
