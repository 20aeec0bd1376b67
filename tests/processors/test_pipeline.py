"""The frame processor: envelopes from raw records, rows for every table, partition clocks,
crash-replay safety, bad records kept; no record stops a partition (tombstones, invalid records one
row each, a correlator failure skipped with the charger's state rolled back, every value storable)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import datetime, timezone

import pytest

from processors import state_codec
from processors.clickhouse_sink import ClickHouseSink
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from processors.pipeline import FrameProcessor, frame_row
from processors.state import CorrelatorState
from schemas.base import ms_to_datetime
from schemas.envelope import FrameEnvelope
from schemas.records import FrameRow, Session
from schemas.tables import PORT_OUTAGES
from tests.processors.script import T0_MS, Script, energy


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
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    feed(processor, script)
    out = processor.take()
    assert len(out.rows["frames"]) == len(script.envelopes)
    row = FrameRow.model_validate(dict(zip(FrameRow.model_fields, out.rows["frames"][0])))
    assert row.raw == script.envelopes[0].frame and row.charge_point_id == "CP-1"
    assert frame_row(script.envelopes[0]) == out.rows["frames"][0]
    assert out.offsets == {0: (0, len(script.envelopes) - 1)}


def test_a_partition_clock_expires_a_quiet_chargers_window() -> None:
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=60_000), states.get)
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
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=60_000), {}.get)
    feed(processor, session_script())
    processor.advance(0, T0_MS + 50_000 + 60_001)
    assert len(processor.take().sessions) == 1


def test_deadlines_survive_a_restart() -> None:
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    feed(processor, session_script())
    states.update(processor.take().states)
    restarted = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    restarted.recover(0, states.items())
    restarted.advance(0, T0_MS + 10**7)
    assert len(restarted.take().sessions) == 1


def test_frames_already_in_the_state_are_not_applied_twice() -> None:
    script = Script()
    script.at(0).status(1, "Charging")
    script.at(1).start(1, 7, meter_start=100)
    script.at(10).meter(1, 7, {"value": "300"})
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    feed(processor, script)
    states.update(processor.take().states)
    # The worker crashed after writing states but before committing offsets: the frames come again.
    again = FrameProcessor(CorrelatorConfig.defaults(), states.get)
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
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    processor.process(3, 41, b"CP-9", b"\x00not json")
    processor.process(3, 42, None, b'{"v": 1}')
    out = processor.take()
    assert out.bad_envelopes == 2
    first = dict(zip(FrameRow.model_fields, out.rows["frames"][0]))
    assert first["charge_point_id"] == "CP-9" and first["raw"].endswith("not json") and first["flags"] == ["invalid_envelope"]


def test_the_dedup_token_depends_only_on_the_frames() -> None:
    a, b = FrameProcessor(CorrelatorConfig.defaults(), {}.get), FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    feed(a, session_script())
    feed(b, session_script())
    assert a.take().token("x") == b.take().token("x")


def test_batches_without_frames_get_their_own_dedup_tokens() -> None:
    """Sessions closed by the clock of a quiet partition come in batches without frames; each
    such batch needs its own token, or ClickHouse drops all but the first as duplicates."""
    store: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=1_000), store.get)
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
    processor = FrameProcessor(CorrelatorConfig.defaults(), stored.get)
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
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    feed(processor, script)
    assert len(processor._deadlines[0]) == 1


# --- no record stops a partition -----------------------------------------------------------------------------

def _frames(out) -> list[dict]:
    return [dict(zip(FrameRow.model_fields, row)) for row in out.rows["frames"]]


def test_a_tombstone_is_a_flagged_row_keyed_by_its_kafka_coordinates() -> None:
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    processor.process(1, 17, b"CP-9", None, T0_MS)
    processor.process(1, 18, None, None)  # no key, no timestamp either
    out = processor.take()
    first, second = _frames(out)
    assert first["flags"] == [Flag.TOMBSTONE] and first["charge_point_id"] == "CP-9" and first["raw"] == ""
    assert (first["received_at"], first["connection_id"], first["seq"]) == (ms_to_datetime(T0_MS), "kafka:1", 17)
    assert (second["charge_point_id"], second["received_at"], second["seq"]) == ("", ms_to_datetime(0), 18)
    assert out.bad_envelopes == 2 and out.processing_failures == 0 and out.offsets == {1: (17, 18)}


def test_invalid_records_with_one_key_are_one_row_each_and_a_replay_rewrites_the_same_rows(chdb_client, database: str) -> None:
    def run() -> list[list]:
        processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
        for offset in range(8):  # the same bytes eight times: only their Kafka coordinates differ
            processor.process(0, 100 + offset, b"CP-9", b"{not json", T0_MS + offset // 2)
        return processor.take().rows["frames"]

    rows = run()
    assert len({(r[0], r[1], r[9], r[10]) for r in rows}) == 8  # the frames sort key: unique per record
    assert rows == run()  # and stable: a replay gives the same keys
    sink = ClickHouseSink(chdb_client, database)
    asyncio.run(sink.write({"frames": rows}, token="a"))
    asyncio.run(sink.write({"frames": run()}, token="b"))  # the replay, as a different batch
    count = chdb_client.query(f"SELECT count() FROM `{database}`.frames FINAL WHERE has(flags, 'invalid_envelope')")
    assert count.result_rows[0][0] == 8


class FailOn:
    """Correlator.feed that raises for one frame (after changing the state, as a half-done call would)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *targets: FrameEnvelope, on_replay: FrameEnvelope | None = None) -> None:
        self.calls = 0
        # The processor hands the correlator its own decoded envelope (envelope_decode.Envelope), not a
        # FrameEnvelope: frames are told apart by their identity on the wire.
        wire = lambda e: (e.charge_point_id, e.connection_id, e.seq, e.direction)  # noqa: E731
        self.targets, self.on_replay = {wire(t) for t in targets}, wire(on_replay) if on_replay is not None else None
        feed_ = Correlator.feed
        seen: list[FrameEnvelope] = []

        def feed(correlator: Correlator, envelope: FrameEnvelope):
            if wire(envelope) in self.targets:
                self.calls += 1
                feed_(correlator, envelope)  # the state changes, then the call fails
                raise RuntimeError(f"injected failure on {envelope.message_id}")
            if wire(envelope) == self.on_replay:
                if seen:  # the second time: while re-applying the journal
                    raise RuntimeError("injected failure while re-applying")
                seen.append(envelope)
            return feed_(correlator, envelope)

        monkeypatch.setattr(Correlator, "feed", feed)


def two_chargers() -> tuple[Script, Script, FrameEnvelope]:
    """Two chargers on one partition, their frames interleaved by time; the bad frame is a MeterValues
    in the middle of BAD's session, after several of its frames in the same batch."""
    bad, ok = Script("BAD"), Script("OK")
    for s, tx in ((bad, 7), (ok, 8)):
        s.at(0).status(1, "Preparing").at(1).status(1, "Charging").at(2).start(1, tx, meter_start=100)
        s.at(30).meter(1, tx, energy(300))
    poison = bad.at(40).meter(1, 7, energy(99_000)).envelopes[-1]  # would count as energy were it applied
    for s, tx in ((bad, 7), (ok, 8)):
        s.at(60).meter(1, tx, energy(400)).at(90).status(1, "Finishing").at(91).stop(tx, 600, reason="Local")
    return bad, ok, poison


def interleaved(*scripts: Script, skip: FrameEnvelope | None = None) -> list[tuple[int, FrameEnvelope]]:
    merged = sorted(((e.gateway_ts_ms, k, n), e) for k, s in enumerate(scripts) for n, e in enumerate(s.envelopes))
    return [(offset, e) for offset, (_, e) in enumerate(merged) if e is not skip]


def run_records(processor: FrameProcessor, records: list[tuple[int, FrameEnvelope]], *, take_every: int = 0,
                store: dict | None = None) -> list:
    outs = []
    for n, (offset, envelope) in enumerate(records):
        processor.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
        if take_every and n % take_every == take_every - 1:
            outs.append(processor.take())
            if store is not None:
                store.update(outs[-1].states)
                processor.persisted(outs[-1].states)
    processor.advance(0, T0_MS + 10**7)
    outs.append(processor.take())
    return outs


def merged(outs: list) -> dict:
    return {"sessions": [r for o in outs for r in o.rows["sessions"]],
            "connector_status": [r for o in outs for r in o.rows["connector_status"]],
            "failures": sum(o.processing_failures for o in outs),
            "frames": [r for o in outs for r in o.rows["frames"]]}


def final_states(outs: list) -> dict[str, bytes]:
    states: dict[str, bytes] = {}
    for out in outs:
        states.update(out.states)
    return states


@pytest.mark.parametrize("take_every", [0, 5, 13], ids=["one batch", "batches of 5", "batches of 13"])
def test_a_frame_the_correlator_raises_on_is_kept_flagged_and_skipped_with_the_state_rolled_back(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, take_every: int) -> None:
    bad, ok, poison = two_chargers()
    stored: dict[str, bytes] = {}
    baseline = run_records(FrameProcessor(CorrelatorConfig.defaults(), stored.get), interleaved(bad, ok, skip=poison),
                           take_every=take_every, store=stored)
    without = merged(baseline)
    fail = FailOn(monkeypatch, poison)
    store: dict[str, bytes] = {}
    with caplog.at_level(logging.ERROR, logger="processors.pipeline"):
        outs = run_records(FrameProcessor(CorrelatorConfig.defaults(), store.get), interleaved(bad, ok), take_every=take_every, store=store)
    got = merged(outs)
    assert fail.calls == 1 and got["failures"] == 1
    # Every later frame of BAD and every frame of OK gave exactly what they give without the bad frame.
    assert got["sessions"] == without["sessions"] and got["connector_status"] == without["connector_status"]
    (session,) = [r for r in got["sessions"] if r[0] == "BAD"]
    assert session[SESSION_ENERGY] == 500.0  # 600 - 100: the bad frame's sample counted nowhere
    # BAD's state is the state of a run without the frame.
    assert final_states(outs)["BAD"] == final_states(baseline)["BAD"]
    # The frame itself is kept, flagged, with the reason.
    (row,) = [r for r in _frames_of(got) if (r["charge_point_id"], r["message_id"]) == ("BAD", poison.message_id)]
    assert row["flags"] == [Flag.PROCESSING_FAILED] and row["error"].startswith("processing failed: RuntimeError: injected")
    assert len(got["frames"]) == len(without["frames"]) + 1
    # Logged once, with the charge point id.
    (record,) = [r for r in caplog.records if r.name == "processors.pipeline"]
    assert "'BAD'" in record.getMessage() and record.exc_info is not None


SESSION_ENERGY = list(Session.model_fields).index("energy_wh")


def _frames_of(got: dict) -> list[dict]:
    return [dict(zip(FrameRow.model_fields, row)) for row in got["frames"]]


def test_a_crash_replay_does_not_retry_a_skipped_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skipped frame counts as handled: a replay of the batch after a crash skips it as well."""
    bad, ok, poison = two_chargers()
    records = interleaved(bad, ok)
    fail = FailOn(monkeypatch, poison)
    store: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), store.get)
    cut = next(n for n, (_, e) in enumerate(records) if e is poison) + 1
    for offset, envelope in records[:cut]:
        processor.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
    store.update(processor.take().states)  # states written, offsets not committed: the batch comes again
    again = FrameProcessor(CorrelatorConfig.defaults(), store.get)
    for offset, envelope in records:
        again.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
    assert fail.calls == 1 and again.take().processing_failures == 0


def test_when_re_applying_fails_too_the_charger_falls_back_to_its_snapshot(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    bad, ok, poison = two_chargers()
    records = interleaved(bad, ok)
    store: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), store.get)
    head = [r for r in records if r[1].gateway_ts_ms < bad.envelopes[0].gateway_ts_ms + 30_000]
    for offset, envelope in head:  # BAD's session is open and stored
        processor.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
    first = processor.take()
    store.update(first.states)
    processor.persisted(first.states)
    meter = next(e for e in bad.envelopes if e.action == "MeterValues")  # in the next batch, before the poison
    FailOn(monkeypatch, poison, on_replay=meter)
    with caplog.at_level(logging.ERROR, logger="processors.pipeline"):
        for offset, envelope in records[len(head):]:
            if envelope.gateway_ts_ms <= poison.gateway_ts_ms:
                processor.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
    out = processor.take()
    assert out.processing_failures == 1
    assert any("falls back to its last snapshot" in r.getMessage() for r in caplog.records)
    state = state_codec.loads(out.states["BAD"])
    snapshot = state_codec.loads(store["BAD"])
    poison_offset = next(o for o, e in records if e is poison)
    assert state.offset == poison_offset  # the skipped frame is handled; the rest is the snapshot
    state.offset = snapshot.offset
    assert state_codec.dumps(state) == state_codec.dumps(snapshot)


def test_a_clock_move_that_raises_is_rolled_back_and_retried_only_after_the_chargers_next_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=60_000), {}.get)
    feed(processor, session_script("CP-1"))  # stopped, waiting for its status window
    feed(processor, session_script("CP-2", 8), first_offset=100)
    before = processor.take()
    advance = Correlator.advance
    calls = []

    def failing(correlator: Correlator, now_ms: int):
        if correlator.charge_point_id == "CP-1":
            calls.append(now_ms)
            advance(correlator, now_ms)
            raise RuntimeError("injected")
        return advance(correlator, now_ms)

    monkeypatch.setattr(Correlator, "advance", failing)
    processor.advance(0, T0_MS + 10**6)
    processor.advance(0, T0_MS + 10**6 + 1)  # the stuck deadline is not popped again and again
    out = processor.take()
    assert calls == [T0_MS + 10**6] and out.processing_failures == 1
    assert [s.charge_point_id for s in out.sessions] == ["CP-2"]  # the other charger on the partition goes on
    assert state_codec.dumps(state_codec.loads(out.states["CP-1"])) == before.states["CP-1"]  # rolled back
    monkeypatch.setattr(Correlator, "advance", advance)
    later = Script("CP-1")
    later.at(55).status(2, "Available")  # before the deadline, on another connector: changes nothing of it
    feed(processor, later, first_offset=50)
    (session,) = processor.take().sessions  # after its next frame the partition clock expires it again
    assert session.charge_point_id == "CP-1" and session.transaction_id == "7"


def test_an_unreadable_state_starts_the_charger_afresh_instead_of_failing_every_frame(caplog: pytest.LogCaptureFixture) -> None:
    store = {"CP-1": b"{not a state"}
    processor = FrameProcessor(CorrelatorConfig.defaults(), store.get)
    processor.recover(0, store.items())
    with caplog.at_level(logging.ERROR, logger="processors.pipeline"):
        feed(processor, session_script())
        processor.advance(0, T0_MS + 10**7)
    out = processor.take()
    assert len(out.sessions) == 1 and out.processing_failures == 1 and "CP-1" in out.states


def test_rows_and_records_hold_only_storable_values(monkeypatch: pytest.MonkeyPatch, chdb_client, database: str) -> None:
    """Whatever the correlator emits, what leaves the processor lands: absurd values become null or
    clamped and the row is flagged; the topic record says what the row says and serializes."""
    feed_ = Correlator.feed

    def absurd(correlator: Correlator, envelope: FrameEnvelope):
        events = feed_(correlator, envelope)
        return [e.model_copy(update={"connector_id": 4294967296, "charge_point_id": "CP-\ud800"}) if not isinstance(e, Session)
                else e.model_copy(update={"energy_wh": math.inf, "id_tag": "\udfff", "stopped_at": datetime(9999, 12, 31, tzinfo=timezone.utc),
                                          "sample_count": -1}) for e in events]

    monkeypatch.setattr(Correlator, "feed", absurd)
    script = Script("CP-1")
    script.at(0).status(1, "Charging").at(1).start(1, 7, meter_start=100)
    script.at(2).status(1, "Faulted", "GroundFailure").at(3).stop(7, 900)
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    feed(processor, script)
    processor.process(0, 99, b"CP-1", script.envelopes[0].model_copy(update={"gateway_ts_ms": 10**20}).model_dump_json().encode())
    processor.advance(0, T0_MS + 10**7)
    out = processor.take()
    (session,) = out.sessions
    (fault,) = out.faults
    assert (session.energy_wh, session.id_tag, session.stopped_at, session.sample_count) == (None, "\ufffd", None, 0)
    assert (fault.connector_id, fault.charge_point_id) == (4294967295, "CP-\ufffd")
    for record in (session, fault):
        assert Flag.VALUE_NOT_STORABLE in record.flags
        json.loads(record.model_dump_json())  # what the worker publishes
    assert session.row() in out.rows["sessions"] and fault.row() in out.rows["fault_events"]
    made_absurd = sum(len(out.rows[t]) for t in ("connector_status", "port_outages", "charge_attempts"))
    assert out.unstorable_rows == 1 + 1 + made_absurd + 1  # the last: a frame beyond year 9999
    asyncio.run(ClickHouseSink(chdb_client, database).write(out.rows, token="t"))
    flagged = chdb_client.query(f"SELECT count() FROM `{database}`.frames WHERE has(flags, 'value_not_storable')")
    assert flagged.result_rows[0][0] == 1


def test_the_poison_frames_of_the_issue_stop_nothing(chdb_client, database: str) -> None:
    """The integrator's frames (tests/processors/test_poison_live.py sends them to the real worker)."""
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=2_000), {}.get)
    records = poison_records() + good_session_records(41, at=600)
    for offset, (key, value) in enumerate(records):
        processor.process(0, offset, key, value, T0_MS + offset)
    processor.advance(0, T0_MS + 10**7)
    out = processor.take()
    asyncio.run(ClickHouseSink(chdb_client, database).write(out.rows, token="t"))
    assert [s.charge_point_id for s in out.sessions if s.transaction_id == "41"] == ["GOOD-1"]
    frames = _frames(out)
    assert len(frames) == len(records)
    assert sum(Flag.INVALID_ENVELOPE in f["flags"] for f in frames) == 8
    assert sum(Flag.TOMBSTONE in f["flags"] for f in frames) == 1


def poison_records() -> list[tuple[bytes, bytes | None]]:
    """POISON-1's records from the issue, as (key, value): a tombstone, eight invalid records with one
    key, a connectorId beyond UInt32, a transactionId "²", a timestamp in the year 10000 (UTC), a
    meterStop of 1e30."""
    poison = Script("POISON-1")
    poison.at(0).status(4294967296, "Available")
    poison.at(1).start(1, "²", meter_start=100)  # type: ignore[arg-type]  # a charger sends any JSON
    poison.at(2).stop("²", 500)
    poison.at(3).status(1, "Charging", ts="9999-12-31T23:59:59-05:00")
    poison.at(4).start(2, 9, meter_start=100, ts="9999-12-31T23:59:59-05:00")
    poison.at(5).stop(9, 1e30, ts="9999-12-31T23:59:59-05:00")
    records: list[tuple[bytes, bytes | None]] = [(b"POISON-1", None)]
    records += [(b"POISON-1", b"{not an envelope")] * 8
    return records + [(e.key(), e.model_dump_json().encode()) for e in poison.envelopes]


def good_session_records(tx: int, at: float) -> list[tuple[bytes, bytes | None]]:
    """A normal complete session of GOOD-1, ``at`` seconds after T0."""
    good = Script("GOOD-1")
    good.at(at).status(1, "Preparing").at(at + 1).start(1, tx, meter_start=1000)
    good.at(at + 2).status(1, "Charging").at(at + 60).status(1, "Finishing")
    good.at(at + 61).stop(tx, 3500, reason="EVDisconnected")
    return [(e.key(), e.model_dump_json().encode()) for e in good.envelopes]


def test_connection_events_are_frames_rows_flagged_and_outage_rows() -> None:
    """A connection event is kept in ``frames`` (flagged with what it was) and feeds ``port_outages``."""
    script = Script("CP-1").at(0).connected("c1").status(1, "Available").at(60).disconnected("c1", close_code=1001)
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    feed(processor, script)  # the envelopes' JSON as the gateway writes it (the event fields only on events)
    out = processor.take()
    flags = [row[-1] for row in out.rows["frames"]]
    assert flags[0] == ["connected"] and flags[-1] == ["disconnected", "close_code:1001"] and flags[1] == []
    (outage,) = out.rows["port_outages"]
    columns = dict(zip(PORT_OUTAGES.column_names, outage))
    assert (columns["connector_id"], columns["cause"], columns["ended_at"]) == (1, "offline", None)
