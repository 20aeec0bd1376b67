"""The soak's after-run checks: when a group has drained, how frames are counted, how session
mismatches are sorted by kind (pure parts; the soak itself is ``bench/soak_split.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.drain import DrainWatch, GroupLag
from bench.soak_check import breakdown, frames_verdict
from simulator.expectations import MismatchKind, session_differences, session_mismatches


def session(cp: str = "CP-1", tx: str = "7", **over: object) -> dict:
    row = {"charge_point_id": cp, "transaction_id": tx, "connector_id": 1, "id_tag": "TAG", "stop_reason": "Local",
           "stop_status": "Finishing", "closed_by": "stop_transaction", "energy_wh": 1000.0, "ending": "user_stop",
           "quirks": [], "ocpp_version": "ocpp1.6"}
    return row | over


@pytest.mark.parametrize(("committed", "ends", "total", "behind"), [
    ({0: 10, 1: 5}, {0: 10, 1: 5}, 0, {}),
    ({0: 4, 1: 5}, {0: 10, 1: 5}, 6, {0: 6}),
    ({}, {0: 3, 1: 0}, 3, {0: 3}),  # nothing committed yet: everything is lag
    ({0: 12}, {0: 10}, 0, {}),  # a commit past the end read between two requests is not negative lag
])
def test_group_lag(committed: dict, ends: dict, total: int, behind: dict) -> None:
    lag = GroupLag(committed, ends)
    assert lag.total == total
    assert lag.behind() == behind


@pytest.mark.parametrize(("samples", "drained_at"), [
    ([(0, 5), (10, 0), (20, 0), (40, 0)], 40),  # 0 for 30 s
    ([(0, 0), (10, 3), (20, 0), (40, 0), (50, 0)], 50),  # a blip restarts the steady wait
    ([(0, 0), (10, 0), (20, 0)], None),  # not yet long enough
    ([(0, 9), (100, 9)], None),
])
def test_drain_watch_needs_a_steady_zero(samples: list[tuple[float, int]], drained_at: float | None) -> None:
    watch = DrainWatch(steady_s=30)
    done = [t for t, lag in samples if watch.observe(t, lag)]
    assert (done[0] if done else None) == drained_at


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 3)), max_size=30))
def test_drain_watch_never_drained_while_lagging(steps: list[tuple[float, int]]) -> None:
    watch, now = DrainWatch(steady_s=5), 0.0
    for gap, lag in steps:
        now += gap
        if watch.observe(now, lag):
            assert lag == 0 and watch.zero_since is not None and now - watch.zero_since >= 5


def test_frames_verdict_says_lost_or_extra() -> None:
    assert frames_verdict(10, 10).endswith(": 0 lost")
    assert frames_verdict(10, 7).endswith("3 LOST")
    assert "2 more rows" in frames_verdict(10, 12)


def test_mismatches_are_kinds_with_the_same_text_as_before() -> None:
    expected = [session(tx="1"), session(tx="2"), session(tx="3")]
    rows = [session(tx="2"), session(tx="3", energy_wh=900.0, stop_status="Available"), session(tx="4")]
    found = session_differences(expected, rows)
    assert [(m.kind, m.transaction_id) for m in found] == [
        (MismatchKind.MISSING, "1"), (MismatchKind.UNEXPECTED, "4"), (MismatchKind.DIFFERS, "3")]
    assert found[2].fields == ("stop_status", "energy_wh")
    assert session_mismatches(expected, rows) == [m.text for m in found]
    assert found[0].text == "missing session CP-1/1 (user_stop)"


def test_breakdown_counts_each_kind_with_examples() -> None:
    expected = [session(tx=str(n), ending="user_stop" if n < 5 else "cable_pulled") for n in range(8)]
    rows = [session(tx="7", energy_wh=0.0), session(tx="99")]
    lines = breakdown(session_differences(expected, rows), expected)
    assert lines[0] == "missing: 7 (user_stop 5, cable_pulled 2)"
    assert sum(line.startswith("    e.g. missing") for line in lines) == 3
    assert "unexpected: 1" in lines
    assert "differs: 1 (energy_wh 1)" in lines
    assert breakdown([], expected) == []


@pytest.mark.parametrize(("closed_by", "replugged_after_s", "window_s", "want"), [
    ("available", 33.0, 60.0, "next_transaction"),  # plugged in again within the window: read as resumed
    ("available", 61.0, 60.0, "available"),
    ("available", None, 60.0, "available"),  # never plugged in again
    ("available", 33.0, None, "available"),  # the window unknown: the simulator's word
    ("stop_transaction", 1.0, 60.0, "stop_transaction"),  # only sessions closed by Available
])
def test_expected_closed_by_follows_the_status_window(closed_by: str, replugged_after_s: float | None,
                                                      window_s: float | None, want: str) -> None:
    from simulator.expectations import expected_closed_by

    assert expected_closed_by(session(closed_by=closed_by, replugged_after_s=replugged_after_s), window_s) == want


def test_a_quick_replug_is_no_mismatch_once_the_window_is_known() -> None:
    expected = [session(closed_by="available", replugged_after_s=12.5)]
    rows = [session(closed_by="next_transaction")]
    assert [m.fields for m in session_differences(expected, rows)] == [("closed_by",)]
    assert session_differences(expected, rows, status_window_s=60) == []
    assert [m.fields for m in session_differences(expected, rows, status_window_s=5)] == [("closed_by",)]
