"""The batch path's offset bookkeeping (:mod:`processors.intake`): table-driven rules, then a model of one
partition read through rebalances, Faust's own seeks, late deliveries and gaps in the log, in every order
hypothesis finds. Whatever happens, the processor is handed every record on the log exactly once, in
order, and the partition never stalls (the class of the stall once seen after a restart: records fetched
while a rebalance was ending were dropped with the consumer's position already past them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.intake import Ignore, Intake, Seek, Take


@pytest.mark.parametrize(
    ("first", "last", "owned", "ready", "committed", "taken", "expected"),
    [
        (0, 9, True, True, None, None, Take(0)),  # a partition never committed: from wherever the log starts
        (5, 9, True, True, 5, None, Take(5)),  # from the committed offset
        (7, 9, True, True, None, 7, Take(7)),  # the next after the last taken
        (3, 9, True, True, 5, None, Take(5)),  # read again in part: the rest taken
        (0, 4, True, True, 5, None, Ignore()),  # read again in full: processed already
        (8, 9, True, True, 5, None, Seek(5)),  # a gap: sought back once
        (5, 9, False, True, 5, None, Ignore()),  # another worker's now
        (5, 9, True, False, 5, None, Seek(5)),  # not ready: read again later
        (8, 9, True, False, 5, None, Seek(5)),  # not ready, and ahead: back to the next offset
        (2, 9, True, False, 5, None, Seek(2)),  # not ready, behind: back to the records themselves
        (4, 9, True, False, None, None, Seek(4)),  # not ready, next offset unknown: back to the records
    ],
)
def test_rules(first: int, last: int, owned: bool, ready: bool, committed: int | None, taken: int | None,
               expected: object) -> None:
    intake = Intake()
    if taken is not None:
        intake.taken(0, taken)
    assert intake.decide(0, first, last, owned=owned, ready=ready, committed=committed,
                         poll=intake.poll_started()) == expected


def test_a_gap_is_taken_only_when_a_poll_begun_after_the_seek_back_still_shows_it() -> None:
    intake = Intake()
    stale_poll = intake.poll_started()
    assert intake.decide(0, 8, 9, owned=True, ready=True, committed=5, poll=stale_poll) == Seek(5)
    # Records of a poll begun before the seek are no answer: sought back again.
    assert intake.decide(0, 8, 9, owned=True, ready=True, committed=5, poll=stale_poll) == Seek(5)
    poll = intake.poll_started()
    assert intake.decide(0, 8, 9, owned=True, ready=True, committed=5, poll=poll) == Take(8, skipped=(5, 8))


def test_records_dropped_while_not_ready_cancel_a_pending_gap_check() -> None:
    intake = Intake()
    assert intake.decide(0, 8, 9, owned=True, ready=True, committed=5, poll=intake.poll_started()) == Seek(5)
    poll = intake.poll_started()
    assert intake.decide(0, 5, 9, owned=True, ready=False, committed=5, poll=poll) == Seek(5)
    # The answer to the gap check was among the dropped records: a later jump is checked anew.
    assert intake.decide(0, 8, 9, owned=True, ready=True, committed=5, poll=intake.poll_started()) == Seek(5)


def test_forgotten_partitions_start_again_from_the_committed_offset() -> None:
    intake = Intake()
    intake.taken(0, 40)
    intake.forget([0])
    assert intake.next_offset(0, 12) == 12
    assert intake.decide(0, 12, 20, owned=True, ready=True, committed=12, poll=intake.poll_started()) == Take(12)


# --- the model ---------------------------------------------------------------------------------------


@dataclass
class Partition:
    """One partition as the worker, Faust and aiokafka see it: the log, the group's committed offset,
    the consumer's position and what the processor was handed."""

    log: list[int]  # offsets on the log (gaps: retention, transaction markers)
    committed: int | None = None
    position: int = 0
    owned: bool = True
    ready: bool = False  # Faust starts in a rebalance
    intake: Intake = field(default_factory=Intake)
    handed: list[int] = field(default_factory=list)

    def fetch(self, size: int) -> list[int]:
        records = [o for o in self.log if o >= self.position][:size]
        if records:
            self.position = records[-1] + 1
        return records

    def deliver(self, records: list[int], poll: int) -> None:
        """The worker's ``_take_frames`` for one partition."""
        if not records:
            return
        decision = self.intake.decide(0, records[0], records[-1], owned=self.owned, ready=self.ready,
                                      committed=self.committed if self.owned else None, poll=poll)
        if isinstance(decision, Seek):
            self.position = decision.offset
        elif isinstance(decision, Take):
            taken = [o for o in records if o >= decision.from_offset]
            self.handed.extend(taken)
            self.intake.taken(0, taken[-1] + 1)

    def flush(self) -> None:
        """Rows, topics, states, then the offsets: the committed offset is the next one taken."""
        if self.owned and (done := self.intake.next_offset(0)) is not None:
            self.committed = done

    def faust_seek_to_committed(self) -> None:
        """aiokafka's ``seek_to_committed``: no seek at all for a partition without a commit (or at 0)."""
        if self.committed:
            self.position = self.committed

    def rebalance(self, keeps: bool) -> None:
        """Revoked (everything flushed and committed first), then assigned again or not: a new
        assignment starts from the committed offset, or from the log's start without one."""
        self.ready = False
        self.flush()
        self.owned = keeps
        if not keeps:
            self.intake.forget([0])
            self.handed.append(-1)  # the next owner goes on from the committed offset
            self.owned = True  # and later this worker gets it back
        self.position = self.committed or 0


steps = st.lists(
    st.one_of(
        st.tuples(st.just("poll"), st.integers(1, 6), st.sampled_from(["now", "after_faust_seek", "after_ready",
                                                                         "after_unready", "after_rebalance"])),
        st.tuples(st.just("ready"), st.booleans(), st.just(None)),
        st.tuples(st.just("faust_seek"), st.none(), st.none()),
        st.tuples(st.just("flush"), st.none(), st.none()),
        st.tuples(st.just("rebalance"), st.booleans(), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(log=st.lists(st.booleans(), min_size=1, max_size=40).filter(any), steps=steps)
def test_every_record_is_handed_over_once_in_order_and_the_partition_never_stalls(log: list[bool], steps: list) -> None:
    partition = Partition(log=[o for o, present in enumerate(log) if present])
    for step, arg, when in steps:
        if step == "poll":
            poll = partition.intake.poll_started()
            records = partition.fetch(arg)
            # What can happen between a fetch and its delivery to the worker (Faust runs concurrently).
            if when == "after_faust_seek":
                partition.faust_seek_to_committed()
            elif when == "after_ready":
                partition.ready = True
            elif when == "after_unready":
                partition.ready = False
            elif when == "after_rebalance":
                partition.rebalance(keeps=True)
            partition.deliver(records, poll)
        elif step == "ready":
            partition.ready = arg
        elif step == "faust_seek":
            partition.faust_seek_to_committed()
        elif step == "flush":
            partition.flush()
        else:
            partition.rebalance(keeps=arg)
    # Then the rebalance ends and the worker reads on: it must reach the end of the log.
    partition.ready = True
    for _ in range(2 * len(log) + 4):
        partition.deliver(partition.fetch(3), partition.intake.poll_started())
    # Per ownership (separated by -1), the offsets handed over are the log's, in order, each once; each
    # ownership starts where the one before stopped (its committed offset): together, the whole log once.
    runs: list[list[int]] = [[]]
    for offset in partition.handed:
        if offset == -1:
            runs.append([])
        else:
            runs[-1].append(offset)
    for run in runs:
        assert run == sorted(set(run)), f"duplicates or out of order: {run}"
    assert [o for run in runs for o in run] == partition.log, f"handed {partition.handed}, log {partition.log}"
    assert partition.intake.next_offset(0, partition.committed) == partition.log[-1] + 1, "stalled"
