"""The worker's stall rule (processors.stall), driven as the worker drives it: progress events, and timer
ticks that look at Kafka when the rule says so."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.stall import StallAction, StallWatch

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
