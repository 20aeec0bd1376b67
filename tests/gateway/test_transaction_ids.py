"""transactionIds: int32 > 0, unique per charge point across restarts and replicas, resends
answered with the same id."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from gateway.transaction_ids import (
    EPOCH_MS,
    MAX_TRANSACTION_ID,
    TransactionIdAllocator,
    TransactionIdExhausted,
)

NOW = 1_764_000_000_000  # 2025-11-24


def test_ids_are_positive_int32_and_grow() -> None:
    ids = TransactionIdAllocator()
    first = ids.allocate("CP", ("a",), NOW)
    second = ids.allocate("CP", ("b",), NOW)  # same second: raised above the last id
    assert 0 < first < second <= MAX_TRANSACTION_ID


def test_a_resent_start_gets_the_same_id() -> None:
    ids = TransactionIdAllocator()
    first = ids.allocate("CP", ("1", "TAG", "100", "t"), NOW)
    ids.allocate("CP", ("2", "TAG", "5", "t"), NOW + 10)
    assert ids.allocate("CP", ("1", "TAG", "100", "t"), NOW + 20_000) == first


def test_charge_points_are_independent() -> None:
    ids = TransactionIdAllocator()
    assert ids.allocate("A", ("x",), NOW) == ids.allocate("B", ("x",), NOW)


def test_before_the_epoch_ids_stay_positive() -> None:
    assert TransactionIdAllocator().allocate("CP", ("x",), 0) == 1


def test_exhaustion_is_an_error_not_a_wrap() -> None:
    with pytest.raises(TransactionIdExhausted):
        TransactionIdAllocator().allocate("CP", ("x",), EPOCH_MS + MAX_TRANSACTION_ID * 1000)


# A charger's life: starts separated by gaps (ms); at some starts it has reconnected to another
# process (a restart or another replica) whose clock is off by a small skew. The scheme's stated
# limit: a reconnect plus a new StartTransaction takes over a second, plus the seconds a burst of
# starts (several connectors within one second) made the old process give out ahead of its clock.
lives = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=600_000),  # ms since the previous start
        st.booleans(),  # reconnected to a fresh process before this start
        st.integers(min_value=-50, max_value=50),  # that process's clock skew, ms (NTP-synced)
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300)
@given(lives)
def test_ids_are_unique_across_restarts_and_replicas(life: list[tuple[int, bool, int]]) -> None:
    process = TransactionIdAllocator()
    skew = 0
    clock = NOW
    issued: list[int] = []
    for n, (gap, reconnected, new_skew) in enumerate(life):
        if reconnected:
            ahead_s = max(0, issued[-1] - ((clock + skew - EPOCH_MS) // 1000 + 1)) if issued else 0
            gap = max(gap, 1_100 + 1000 * ahead_s)
            process, skew = TransactionIdAllocator(), new_skew
        clock += gap
        issued.append(process.allocate("CP", (n,), clock + skew))
    assert len(set(issued)) == len(issued)
    assert all(0 < i <= MAX_TRANSACTION_ID for i in issued)


# --- several processes on one host (gateway --processes N) ---------------------------------------------

# A charger hopping between the processes of one host at any moment (SO_REUSEPORT picks the process of
# each new connection), at any clock reading the host gives, even the same millisecond or a step back.
hops = st.integers(min_value=1, max_value=16).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(-5_000, 5_000)), min_size=1, max_size=80),
))


@settings(max_examples=300)
@given(hops)
def test_processes_of_one_host_never_give_the_same_id(hop: tuple[int, list[tuple[int, int]]]) -> None:
    count, starts = hop
    processes = [TransactionIdAllocator(process_index=i, process_count=count) for i in range(count)]
    issued: list[int] = []
    by_process: dict[int, list[int]] = {}
    clock = NOW
    for n, (index, step_ms) in enumerate(starts):
        clock += step_ms
        transaction_id = processes[index].allocate("CP", (n,), clock)
        issued.append(transaction_id)
        by_process.setdefault(index, []).append(transaction_id)
        assert transaction_id % count == index
    assert len(set(issued)) == len(issued)
    assert all(ids == sorted(set(ids)) for ids in by_process.values())  # strictly increasing per process
    assert all(0 < i <= MAX_TRANSACTION_ID for i in issued)


@pytest.mark.parametrize(("index", "count", "expected"), [
    (0, 1, 1 + (NOW - EPOCH_MS) // 1000),
    (0, 2, 2 + (NOW - EPOCH_MS) // 1000),  # the clock's id is odd: rounded up to the class of 0
    (1, 2, 1 + (NOW - EPOCH_MS) // 1000),
    (3, 4, 1 + (NOW - EPOCH_MS) // 1000 + 2),
])
def test_a_process_rounds_the_clock_up_to_its_class(index: int, count: int, expected: int) -> None:
    assert (1 + (NOW - EPOCH_MS) // 1000) % 4 == 1  # the table's premise
    assert TransactionIdAllocator(process_index=index, process_count=count).allocate("CP", ("x",), NOW) == expected


@pytest.mark.parametrize(("index", "count"), [(1, 1), (-1, 2), (0, 0)])
def test_a_process_index_outside_the_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        TransactionIdAllocator(process_index=index, process_count=count)
