"""Exclusion events on their way into outage_exclusions: valid ones become rows, anything else is counted and
skipped (it stays on the topic), offsets to commit cover both, and a batch's token is its records'."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from processors.exclusion_intake import ExclusionIntake
from tests.kpi.test_exclusions import excl


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes | None


GOOD = excl(1, 0, 10, note="grid").model_dump_json().encode()
FORGED = excl(1, 0, 10).model_copy(update={"exclusion_id": "0" * 16}).model_dump_json().encode()


def test_valid_events_become_rows_and_the_rest_is_counted() -> None:
    intake = ExclusionIntake()
    intake.take(0, [Record(5, GOOD), Record(6, b"{not json"), Record(7, None), Record(8, FORGED), Record(9, GOOD)])
    batch = intake.drain()
    assert len(batch.rows) == 2 and batch.invalid == 3
    assert batch.commits == {0: 10} and batch.offsets == {0: (5, 9)}
    assert not intake.drain()  # drained: nothing left to write or commit


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=30))
def test_every_record_is_a_row_or_counted_and_the_token_follows_the_records(records) -> None:
    first, second = ExclusionIntake(), ExclusionIntake()
    offsets: dict[int, int] = {}
    for partition, valid in records:
        offset = offsets[partition] = offsets.get(partition, -1) + 1
        for intake in (first, second):
            intake.take(partition, [Record(offset, GOOD if valid else b"x")])
    a, b = first.drain(), second.drain()
    assert len(a.rows) + a.invalid == len(records)
    assert a.commits == {p: n + 1 for p, n in offsets.items()}
    assert a.token("w") == b.token("w") and (not records or a.token("w") != a.token("other"))
