"""Failed-login throttling (gateway.throttle): exponential, capped, decaying backoff per charge point id and
per address; a charger at home is not locked out by failures sent from elsewhere; memory stays bounded
whatever an attacker sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import RefusalKind
from gateway.throttle import Backoff, FailureLedger, LoginThrottle

HOUR = 3600.0
BACKOFF = Backoff(free_failures=3, base_s=1.0, max_s=60.0, half_life_s=HOUR)


@pytest.mark.parametrize(
    "failures, waits",
    [
        # Back to back (each as soon as the last block ends): the free ones, then 1, 2, 4, ... capped at 60.
        (3, [0, 0, 0]),
        (6, [0, 0, 0, 1, 2, 4]),
        (12, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]),
    ],
)
def test_consecutive_failures_double_the_wait_up_to_the_cap(failures: int, waits: list[float]) -> None:
    never_forgiven = Backoff(free_failures=3, base_s=1.0, max_s=60.0, half_life_s=1e18)
    ledger, now, seen = FailureLedger(never_forgiven, capacity=10), 0.0, []
    for _ in range(failures):
        assert not ledger.blocked("k", now)
        wait = ledger.fail("k", now)
        assert ledger.blocked("k", now + wait / 2) == (wait > 0)
        seen.append(wait)
        now += wait
    assert seen == pytest.approx(waits)


@pytest.mark.parametrize(
    "quiet_s, wait",
    [
        (0.0, 8.0),  # six failures, then a seventh at once: score 7, 4 beyond the free ones: 2^3 s
        (0.5 * HOUR, 2.367),  # 6 * 2^-0.5 + 1 = 5.24: 2^1.24 s
        (HOUR, 1.0),  # half forgiven: 6 / 2 + 1 = 4, one beyond the free ones
        (2 * HOUR, 0.0),  # 6 / 4 + 1 = 2.5: within the free ones again
    ],
)
def test_failures_are_forgiven_by_half_every_half_life(quiet_s: float, wait: float) -> None:
    ledger = FailureLedger(BACKOFF, capacity=10)
    for _ in range(6):
        ledger.fail("k", 0.0)
    assert ledger.fail("k", quiet_s) == pytest.approx(wait, abs=0.001)


def test_a_blocked_key_is_refused_until_its_time_and_not_counted_meanwhile() -> None:
    throttle = LoginThrottle(BACKOFF, Backoff(100, 1.0, 60.0, HOUR), capacity=100)
    now = 0.0
    for _ in range(4):
        throttle.failed("CP-1", "203.0.113.7", now)
    assert throttle.refusal("CP-1", "203.0.113.7", now + 0.5) is RefusalKind.THROTTLED_CHARGE_POINT
    assert throttle.refusal("CP-1", "203.0.113.7", now + 1.0) is None  # the 1 s block is over
    assert throttle.refusal("CP-2", "203.0.113.7", now + 0.5) is None  # another id from the same address: free


def test_the_address_blocks_when_it_sprays_many_ids() -> None:
    throttle = LoginThrottle(BACKOFF, Backoff(10, 1.0, 60.0, HOUR), capacity=1000)
    for n in range(11):
        throttle.failed(f"CP-{n}", "203.0.113.7", 0.0)
    assert throttle.refusal("CP-99", "203.0.113.7", 0.5) is RefusalKind.THROTTLED_ADDRESS
    assert throttle.refusal("CP-99", "198.51.100.1", 0.5) is None
    assert throttle.refusal("CP-99", None, 0.5) is None  # no known address: only the id counts


def test_failures_sent_from_elsewhere_do_not_lock_a_charger_out_at_home() -> None:
    throttle = LoginThrottle(BACKOFF, Backoff(100, 1.0, 60.0, HOUR), capacity=100)
    throttle.succeeded("CP-1", "198.51.100.5")  # the charger's good login: its home
    for t in range(20):  # an attacker hammers CP-1 from elsewhere, each time a block ends
        if throttle.refusal("CP-1", "203.0.113.7", float(t * 60)) is None:
            throttle.failed("CP-1", "203.0.113.7", float(t * 60))
    assert throttle.refusal("CP-1", "203.0.113.7", 19 * 60.0 + 1) is RefusalKind.THROTTLED_CHARGE_POINT
    assert throttle.refusal("CP-1", "198.51.100.5", 19 * 60.0 + 1) is None  # at home: not locked out
    for _ in range(4):  # but a wrong password at home is throttled all the same
        throttle.failed("CP-1", "198.51.100.5", 20 * 60.0)
    assert throttle.refusal("CP-1", "198.51.100.5", 20 * 60.0 + 0.5) is RefusalKind.THROTTLED_CHARGE_POINT


def test_one_misconfigured_charger_behind_a_nat_does_not_lock_out_its_site() -> None:
    """A charger with a stale password retries for a day through its own backoff; the address it shares
    with its neighbours stays open (its failures reach the address only when checked)."""
    throttle = LoginThrottle(Backoff(5, 1.0, 300.0, HOUR), Backoff(100, 1.0, 300.0, HOUR), capacity=1000)
    now, checked = 0.0, 0
    while now < 24 * HOUR:
        if throttle.refusal("CP-STALE", "192.0.2.1", now) is None:
            throttle.failed("CP-STALE", "192.0.2.1", now)
            checked += 1
        assert throttle.refusal("CP-NEIGHBOUR", "192.0.2.1", now) is None
        now += 30.0  # the charger retries every 30 s
    assert checked < 24 * 3600 / 300 + 20  # about one checked attempt per capped block, not one per retry


@given(st.lists(st.tuples(st.text(max_size=8), st.integers(0, 10**6)), max_size=400), st.integers(1, 50))
def test_memory_is_bounded_whatever_is_sent(attempts: list[tuple[str, int]], capacity: int) -> None:
    throttle = LoginThrottle(BACKOFF, BACKOFF, capacity=capacity)
    now = 0.0
    for charge_point, address in attempts:
        now += 0.1
        throttle.failed(charge_point, f"a{address}", now)
        throttle.succeeded(charge_point, f"a{address}")
        assert len(throttle.charge_points) <= capacity and len(throttle.addresses) <= capacity
        assert len(throttle._home) <= capacity


@given(st.lists(st.floats(0, 4 * HOUR, allow_nan=False), min_size=1, max_size=60))
def test_waits_follow_the_decayed_count_of_failures(gaps: list[float]) -> None:
    """Whatever the rhythm of attempts: the first free failures cost nothing, no wait exceeds the cap, and
    each wait is the one the score (every failure +1, halved every half-life) calls for."""
    ledger, now, waits, score, last = FailureLedger(BACKOFF, capacity=10), 0.0, [], 0.0, 0.0
    for gap in gaps:
        now += gap
        if ledger.blocked("k", now):
            continue  # refused unchecked: not a failure
        score = score * 0.5 ** ((now - last) / HOUR) + 1
        last = now
        waits.append(ledger.fail("k", now))
        assert waits[-1] == pytest.approx(min(2 ** (score - 3 - 1), 60.0) if score > 3 else 0.0)
    assert all(0 <= w <= BACKOFF.max_s for w in waits)
    assert waits[:3] == [0.0] * len(waits[:3])


def test_a_forgotten_key_makes_room_before_a_live_one() -> None:
    ledger = FailureLedger(BACKOFF, capacity=3)
    ledger.fail("old", 0.0)
    ledger.fail("b", 10 * HOUR)  # "old" has been forgiven by now: it goes although there is room
    assert len(ledger) == 1
    for key in "cde":
        ledger.fail(key, 10 * HOUR)
    assert len(ledger) == 3 and not ledger.blocked("b", 10 * HOUR)
