"""The recorded corpus (:mod:`tests.processors.recorded_corpus`): every stream gives, step by step, the rows it gave
when it was recorded. A refactor of the processors changes none; a change of behaviour re-records the rows it
changes, and says so in its commit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.processors.recorded_corpus import load, replay

STREAMS = load()


def test_the_corpus_covers_both_versions_and_the_pipeline() -> None:
    """Picked by branch coverage, it still holds what it was picked for: frames of both versions, connection
    events, records that are not envelopes, clock moves of quiet partitions."""
    text = "".join(str(step) for stream in STREAMS for step in stream["steps"])
    assert all(part in text for part in ('"ocpp1.6"', '"ocpp2.0.1"', '"event":"connected"', "advance"))
    assert any(step[4] is None or "charge_point_id" not in str(step[4]) for s in STREAMS for step in s["steps"]
               if step[0] == "record")


@pytest.mark.parametrize("stream", STREAMS, ids=[s["name"] for s in STREAMS])
def test_each_stream_gives_the_rows_it_was_recorded_with(stream: dict[str, Any]) -> None:
    made = replay(stream)
    for want, got in zip(stream["outputs"], made):
        assert got == want, f"step {want['step']} of {stream['name']} (from {stream['from']})"
    assert len(made) == len(stream["outputs"])
