"""The frame processor: envelopes from raw records, rows for every table, partition clocks,
crash-replay safety, bad records kept."""

from __future__ import annotations


from processors.correlator import CorrelatorConfig
from processors.pipeline import FrameProcessor, frame_row
from schemas.records import FrameRow
from tests.processors.script import Script, T0_MS


def feed(processor: FrameProcessor, script: Script, partition: int = 0, first_offset: int = 0) -> None:
    for n, envelope in enumerate(script.envelopes):
        processor.process(partition, first_offset + n, envelope.key(), envelope.model_dump_json().encode())


def session_script(cp: str = "CP-1", tx: int = 7) -> Script:
    script = Script(cp)
    script.at(0).status(1, "Charging")
    script.at(1).start(1, tx, meter_start=100)
    script.at(50).stop(tx, 600)  # the transition has not come yet: waits for the window
    return script


def test_every_frame_becomes_a_frames_row() -> None:
    script = session_script()
    processor = FrameProcessor(CorrelatorConfig(), {}.get)
    feed(processor, script)
    out = processor.take()
    assert len(out.rows["frames"]) == len(script.envelopes)
    row = FrameRow.model_validate(dict(zip(FrameRow.model_fields, out.rows["frames"][0])))
    assert row.raw == script.envelopes[0].frame and row.charge_point_id == "CP-1"
    assert frame_row(script.envelopes[0]) == out.rows["frames"][0]
    assert out.offsets == {0: (0, len(script.envelopes) - 1)}


def test_a_partition_clock_expires_a_quiet_chargers_window() -> None:
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig(status_window_ms=60_000), states.get)
    feed(processor, session_script("CP-1"))
    out = processor.take()
    assert out.sessions == []
    states.update(out.states)  # what the shells do at every flush
    other = Script("CP-2")
    other.at(200).status(1, "Available")  # another charger on the same partition moves its clock
    feed(processor, other, first_offset=100)
    (session,) = processor.take().sessions
    assert session.charge_point_id == "CP-1" and "status_transition_missing" in session.flags


def test_advance_moves_an_idle_partition() -> None:
    processor = FrameProcessor(CorrelatorConfig(status_window_ms=60_000), {}.get)
    feed(processor, session_script())
    processor.advance(0, T0_MS + 50_000 + 60_001)
    assert len(processor.take().sessions) == 1


def test_deadlines_survive_a_restart() -> None:
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig(), states.get)
    feed(processor, session_script())
    states.update(processor.take().states)
    restarted = FrameProcessor(CorrelatorConfig(), states.get)
    restarted.recover(0, states.items())
    restarted.advance(0, T0_MS + 10**7)
    assert len(restarted.take().sessions) == 1


def test_frames_already_in_the_state_are_not_applied_twice() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 7, meter_start=100)
    script.at(10).meter(1, 7, {"value": "300"})
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig(), states.get)
    feed(processor, script)
    states.update(processor.take().states)
    # The worker crashed after writing states but before committing offsets: the frames come again.
    again = FrameProcessor(CorrelatorConfig(), states.get)
    feed(again, script)
    script.at(20).status(1, "Finishing")
    script.at(21).stop(7, 900)
    feed(again, _tail(script, 4), first_offset=4)
    (session,) = again.take().sessions
    assert session.energy_wh == 800.0 and session.sample_count == 1 and "duplicate_start" not in session.flags


def _tail(script: Script, start: int) -> Script:
    tail = Script(script.charge_point_id)
    tail.envelopes = script.envelopes[start:]
    return tail


def test_records_that_are_not_envelopes_are_kept_raw() -> None:
    processor = FrameProcessor(CorrelatorConfig(), {}.get)
    processor.process(3, 41, b"CP-9", b"\x00not json")
    processor.process(3, 42, None, b'{"v": 1}')
    out = processor.take()
    assert out.bad_envelopes == 2
    first = dict(zip(FrameRow.model_fields, out.rows["frames"][0]))
    assert first["charge_point_id"] == "CP-9" and first["raw"].endswith("not json") and first["flags"] == ["invalid_envelope"]


def test_the_dedup_token_depends_only_on_the_frames() -> None:
    a, b = FrameProcessor(CorrelatorConfig(), {}.get), FrameProcessor(CorrelatorConfig(), {}.get)
    feed(a, session_script())
    feed(b, session_script())
    assert a.take().token("x") == b.take().token("x")


def test_batches_without_frames_get_their_own_dedup_tokens() -> None:
    """Sessions closed by the clock of a quiet partition come in batches without frames; each
    such batch needs its own token, or ClickHouse drops all but the first as duplicates."""
    store: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig(status_window_ms=1_000), store.get)
    feed(processor, session_script("CP-1", 7), partition=0)
    feed(processor, session_script("CP-2", 8), partition=1)
    first = processor.take()
    processor.advance(0, T0_MS + 50_000 + 1_001)  # CP-1's window closes on partition 0
    second = processor.take()
    processor.advance(1, T0_MS + 50_000 + 1_001)  # the same moment on partition 1: CP-2's
    third = processor.take()
    assert [s.transaction_id for s in second.sessions] == ["7"] and [s.transaction_id for s in third.sessions] == ["8"]
    tokens = {first.token("w"), second.token("w"), third.token("w")}
    assert len(tokens) == 3
    assert third.token("w") == third.token("w")  # a retried batch keeps its token


def test_frames_after_a_take_start_from_the_taken_state_until_it_is_stored() -> None:
    """A writer may still be storing the last batch when the next frames come: they must not
    start from the older stored state."""
    stored: dict = {}
    processor = FrameProcessor(CorrelatorConfig(), stored.get)
    script = session_script()
    head, tail = _tail(script, 0), _tail(script, 3)
    head.envelopes = script.envelopes[:3]  # status, start, its answer: the session is open
    feed(processor, head)
    first = processor.take()  # not stored yet
    feed(processor, tail, first_offset=3)
    processor.advance(0, T0_MS + 10**7)
    second = processor.take()
    (session,) = second.sessions
    assert "stop_without_start" not in session.flags and session.energy_wh == 500.0
    stored.update(first.states)
    processor.persisted(first.states)
    assert processor._unpersisted.keys() == second.states.keys()


def test_frames_that_keep_a_deadline_do_not_grow_the_deadline_index() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 7, meter_start=100)
    for minute in range(1, 200):  # a long session: MeterValues every minute, one open deadline (its age)
        script.at(60 * minute).meter(1, 7, {"value": str(100 + minute)})
    processor = FrameProcessor(CorrelatorConfig(), {}.get)
    feed(processor, script)
    assert len(processor._deadlines[0]) == 1
