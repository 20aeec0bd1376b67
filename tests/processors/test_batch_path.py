"""The batch path: the cheap decoders decide exactly what pydantic and ``json.loads`` decided, a batch is the same
as its records one by one, partitions are forgotten and recovered as a set, and the fetch loop
(:class:`processors.batch_path.BatchPath`) takes, seeks back and hands over as :mod:`processors.intake` says,
against a scripted consumer."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from processors import frame_json
from processors.batch_path import BatchPath
from processors.envelope_decode import Envelope, decode_envelope
from processors.exclusion_intake import ExclusionIntake
from processors.faust_adapter import TP
from processors.intake import Intake
from processors.metrics import WorkerMetrics
from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig
from processors.stall import StallWatch
from processors.state_codec import partition_hint
from schemas.envelope import FrameEnvelope
from tests.processors.script import T0_MS, Script, energy

FRAMES = [
    '[2, "m1", "MeterValues", {"connectorId": 1}]', "123456789012345678901234567890", "18446744073709551616", "1e400",
    "-1e400", "NaN", "Infinity", "-Infinity", '"\\ud800"', '{"a": 1, "a": 2}', "1.0000000000000000000000001", "0.1",
    "123456789012345678901234567890.5", '"\\u0000"', " [1] ", "[1] x", "[1,2,]", "1" * 5000, "[" * 5000, "", "{}", "[]",
    '[2, "m", "StopTransaction", {"meterStop": 1e30, "transactionId": "\\u00b2"}]', "-0", "1E5", "true",
]


def outcome(decode, text):
    try:
        return "ok", decode(text)
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__mro__[1] if type(exc).__name__ == "JSONDecodeError" else type(exc)


@pytest.mark.parametrize("text", FRAMES)
def test_frame_json_decides_as_json_loads(text: str) -> None:
    mine, theirs = outcome(frame_json.loads, text), outcome(json.loads, text)
    if mine[0] == "ok" and isinstance(mine[1], float) and math.isnan(mine[1]):
        assert math.isnan(theirs[1])
        return
    assert mine == theirs
    if mine[0] == "ok":
        assert json.dumps(mine[1]) == json.dumps(theirs[1])  # same types too (int stays int)


def envelopes() -> list[bytes]:
    script = Script("CP-1")
    script.at(0).status(1, "Charging").at(1).start(1, 7, meter_start=100).at(30).meter(1, 7, energy(300))
    script.at(50).stop(7, 600)
    return [e.model_dump_json().encode() for e in script.envelopes]


def test_the_envelope_decoder_gives_what_pydantic_gives() -> None:
    for value in envelopes():
        fast, model = decode_envelope(value), FrameEnvelope.model_validate_json(value)
        assert isinstance(fast, Envelope)
        assert {name: getattr(fast, name) for name in FrameEnvelope.model_fields} == model.model_dump()


@pytest.mark.parametrize("change", [{"seq": "5"}, {"gateway_ts_ms": 1764000000000.0}, {"message_type": "2"}])
def test_what_msgspec_refuses_pydantic_still_decides(change: dict) -> None:
    data = json.loads(envelopes()[0]) | change
    value = json.dumps(data).encode()
    try:
        expected = FrameEnvelope.model_validate_json(value)
    except ValidationError:
        with pytest.raises(ValidationError):
            decode_envelope(value)
        return
    assert decode_envelope(value) == expected  # pydantic's own value (lax), as before


@pytest.mark.parametrize("value", [b"{}", b"[]", b'{"charge_point_id": "x"}', b"not json", b'"\\ud800"'])
def test_a_record_that_is_no_envelope_is_refused_as_before(value: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_envelope(value)


def test_a_batch_is_its_records_one_by_one() -> None:
    values = envelopes() + [b"not an envelope", None]
    one = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    for offset, value in enumerate(values):
        one.process(0, offset, b"CP-1", value, 1000 + offset)
    batch = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    records = [SimpleNamespace(offset=o, key=b"CP-1", value=v, timestamp=1000 + o) for o, v in enumerate(values)]
    assert batch.process_batch(0, records) == len(values)
    a, b = one.take(), batch.take()
    assert a.rows == b.rows and a.states == b.states and a.offsets == b.offsets


def test_forgotten_partitions_lose_their_clock_and_deadlines_and_come_back_by_recovery() -> None:
    states: dict = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=60_000), states.get)
    script = Script("CP-1")
    script.at(0).status(1, "Charging").at(1).start(1, 7, meter_start=100).at(50).stop(7, 600)  # waits for its window
    for offset, e in enumerate(script.envelopes):
        processor.process(3, offset, e.key(), e.model_dump_json().encode())
    out = processor.take()
    states.update(out.states)
    processor.persisted(out.states)
    assert partition_hint(states["CP-1"]) == 3
    processor.forget({3})
    assert processor.watermark(3) is None
    processor.advance(3, T0_MS + 10**7)
    assert processor.take().sessions == []  # nothing of partition 3 is known any more
    assert processor.recover({1, 2}, states.items()) == 0  # another partition's state: not even parsed
    assert processor.recover({3}, states.items()) == 1
    processor.advance(3, T0_MS + 10**7 + 1)
    assert len(processor.take().sessions) == 1


def test_the_correlator_makes_the_same_of_msgspec_envelopes_as_of_pydantic_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything a normalizer or the correlator reads of an envelope (fields and derived facts such as
    ``content_flags``) is there on the msgspec struct: the same rows, records and states, no failure."""
    from processors import pipeline
    from tests.processors.test_worker_live import fleet

    values = [(e.key(), e.model_dump_json().encode()) for script in fleet() for e in script.envelopes]
    values.append((b"CP-9", FrameEnvelope.model_validate(
        json.loads(envelopes()[0]) | {"charge_point_id": "CP-9", "flags": ["schema_violation", "schema:x:y"]}
    ).model_dump_json().encode()))

    def run() -> tuple:
        processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=2_000), {}.get)
        for offset, (key, value) in enumerate(values):
            processor.process(0, offset, key, value, 0)
        processor.advance(0, T0_MS + 10**8)
        out = processor.take()
        return out.rows, out.sessions, out.faults, out.states, out.processing_failures

    fast = run()
    assert fast[-1] == 0
    monkeypatch.setattr(pipeline, "decode_envelope", FrameEnvelope.model_validate_json)
    assert run() == fast


CRASH_POINTS = ("processed", "rows", "topics", "states", "committed")


def _stored_run(values: list[tuple[int, bytes, bytes]], batch: int, crash: tuple[int, str] | None) -> tuple:
    """The worker's commit order over a store: per flush rows, then topic records, then states, then
    offsets; ``crash`` = (flush number, the last step done) restarts from what is stored then (a new
    processor, the committed offsets, the stored states). Returns what the store ends with: frame rows
    by their key, the newest revision of every session and fault, the states."""
    rows: dict = {}
    records: dict = {}
    states: dict[str, bytes] = {}
    committed = {0: 0, 1: 0}

    def store(step: str, out, offsets: dict[int, int]) -> None:
        if step == "rows":
            for row in out.rows["frames"]:
                rows[(row[0], row[9], row[10])] = row
        elif step == "topics":
            for session in out.sessions:  # the newest revision is what a reader keeps
                key = ("session", session.charge_point_id, session.session_id)
                if key not in records or records[key].version <= session.version:
                    records[key] = session
            for fault in out.faults:
                records[("fault", fault.charge_point_id, fault.event_id, fault.event)] = fault
        elif step == "states":
            states.update(out.states)
        elif step == "committed":
            committed.update(offsets)

    def run(crash_at: tuple[int, str] | None) -> bool:
        processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=2_000), states.get)
        processor.recover({0, 1}, list(states.items()))  # as the worker does before its first batch
        todo = [(p, o, k, v) for p, o, k, v in values if o >= committed[p]]
        for flush, start in enumerate(range(0, len(todo), batch)):
            offsets = {}
            for partition, offset, key, value in todo[start:start + batch]:
                processor.process(partition, offset, key, value, 0)
                offsets[partition] = offset + 1
            if start + batch >= len(todo):
                for partition in (0, 1):
                    processor.advance(partition, T0_MS + 10**8)  # the end: every window closes
            out = processor.take()
            for step in CRASH_POINTS[1:]:
                store(step, out, offsets)
                if crash_at == (flush, step):
                    return False
            if crash_at == (flush, "processed"):
                return False
            processor.persisted(out.states)
        return True

    if not run(crash):
        assert run(None)
    return rows, records, states


@pytest.mark.parametrize("crash_step", CRASH_POINTS)
def test_a_restart_at_any_point_of_the_commit_order_ends_with_the_same_store(crash_step: str) -> None:
    """Rows -> topics -> states -> offsets: a crash after any step of any flush, then a restart from the
    committed offsets and the stored states, ends with exactly the rows, records and states of a run
    without a crash (nothing lost, nothing applied twice)."""
    from tests.processors.test_worker_live import fleet

    # The gateway writes frames as they come: each partition's offsets follow the gateway clock.
    envelopes = sorted((e for script in fleet() for e in script.envelopes), key=lambda e: e.gateway_ts_ms)
    values, offsets = [], {0: 0, 1: 0}
    for e in envelopes:
        partition = sum(e.key()) % 2
        values.append((partition, offsets[partition], e.key(), e.model_dump_json().encode()))
        offsets[partition] += 1
    values.sort(key=lambda v: (v[0], v[1]))
    batch = 9
    clean = _stored_run(values, batch, None)
    assert clean[1], "the fleet emits sessions"
    flushes = -(-len(values) // batch)
    for flush in range(flushes):
        assert _stored_run(values, batch, (flush, crash_step)) == clean, f"crash after {crash_step} of flush {flush}"


# --- the fetch loop (processors.batch_path.BatchPath) against a scripted consumer --------------------------------

FRAMES_TOPIC, EXCLUSIONS_TOPIC, CHANGELOG = "frames", "exclusions", "changelog"


@dataclass(frozen=True)
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0


@dataclass
class Poll:
    """One poll's records, and the flow state the consumer is in while the loop looks at them."""

    records: dict[TP, list[Rec]]
    flow_active: bool = True
    rebalancing: bool = False


@dataclass
class ScriptedConsumer:
    """Hands the loop one scripted poll after another (and stops it after the last); records what it is asked."""

    polls: list[Poll]
    ends: dict[TP, int] = field(default_factory=dict)
    committed: dict[TP, int] = field(default_factory=dict)
    flow_active: bool = True
    rebalancing: bool = False
    generation: int = 1
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    delivered: list[tuple[TP, list[int]]] = field(default_factory=list)
    seeks_to_committed: int = 0
    active: dict[TP, float] = field(default_factory=dict)

    async def poll(self, timeout_s: float) -> dict[TP, list[Rec]]:
        step = self.polls.pop(0)
        self.flow_active, self.rebalancing = step.flow_active, step.rebalancing
        return step.records

    def stopped(self) -> bool:
        return not self.polls

    async def deliver(self, tp: TP, records: Iterable[Rec], generation: int) -> None:
        self.delivered.append((tp, [r.offset for r in records]))

    def committed_offset(self, tp: TP) -> int | None:
        return self.committed.get(tp)

    def highwater(self, tp: TP) -> int | None:
        return self.ends.get(tp)

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def seek(self, tp: TP, offset: int) -> bool:
        self.seeks.append((tp, offset))
        return True

    async def seek_to_committed(self) -> bool:
        self.seeks_to_committed += 1
        return True

    def note_stream_activity(self, tp: TP, now: float) -> None:
        self.active[tp] = now


@dataclass
class Loop:
    consumer: ScriptedConsumer
    states: dict[str, bytes] = field(default_factory=dict)
    flushes: int = 0
    recovered: list[int] = field(default_factory=list)
    path: BatchPath = field(init=False)
    processor: FrameProcessor = field(init=False)
    exclusions: ExclusionIntake = field(default_factory=ExclusionIntake)
    intake: Intake = field(default_factory=Intake)

    def __post_init__(self) -> None:
        self.processor = FrameProcessor(CorrelatorConfig.defaults(status_window_ms=2_000), self.states.get)

        async def flush() -> None:
            self.flushes += 1

        def persisted() -> list[tuple[str, bytes]]:
            self.recovered.append(len(self.states))
            return list(self.states.items())

        self.path = BatchPath(
            consumer=self.consumer, processor=self.processor, intake=self.intake, exclusions=self.exclusions,
            stall=StallWatch(60.0, 0.0), metrics=WorkerMetrics(), persisted_states=persisted, flush=flush,
            frames_topic=FRAMES_TOPIC, exclusions_topic=EXCLUSIONS_TOPIC, flush_rows=5, idle_advance_s=5.0)

    def run(self, assigned: Iterable[TP]) -> None:
        self.path.assigned(assigned)
        asyncio.run(self.path.run(self.consumer.stopped))


def frames(partition: int, first: int, count: int) -> dict[TP, list[Rec]]:
    values = envelopes()
    return {TP(FRAMES_TOPIC, partition): [Rec(first + n, b"CP-1", values[n % len(values)]) for n in range(count)]}


P0 = TP(FRAMES_TOPIC, 0)


def test_the_loop_hands_frames_to_the_processor_and_flushes_a_full_batch() -> None:
    loop = Loop(ScriptedConsumer([Poll(frames(0, 0, 3)), Poll(frames(0, 3, 3))]))
    loop.run([P0])
    assert loop.intake.next_offset(0) == 6 and loop.processor.pending_frames == 6
    assert loop.flushes == 1  # 6 frames pending >= flush_rows (5)
    assert loop.recovered == [0]  # the partition's states indexed once, before its first frames
    assert P0 in loop.consumer.active and loop.consumer.seeks == []


def test_frames_fetched_during_a_rebalance_are_not_taken_but_sought_back_to() -> None:
    loop = Loop(ScriptedConsumer([Poll(frames(0, 0, 2)), Poll(frames(0, 2, 3), flow_active=False, rebalancing=True)]))
    loop.run([P0])
    assert loop.intake.next_offset(0) == 2 and loop.processor.pending_frames == 2
    assert loop.consumer.seeks == [(P0, 2)]
    assert loop.consumer.seeks_to_committed == 1  # and, as Faust's own poll, back to the committed offsets


def test_frames_of_a_partition_not_owned_are_ignored_and_a_stopping_worker_takes_none() -> None:
    loop = Loop(ScriptedConsumer([Poll(frames(1, 0, 2)), Poll(frames(0, 0, 2))]))
    loop.path.assigned([P0])
    loop.path.stop_taking()
    asyncio.run(loop.path.run(loop.consumer.stopped))
    assert loop.processor.pending_frames == 0 and loop.consumer.seeks == []


def test_exclusions_are_taken_even_during_a_rebalance_and_the_changelog_goes_to_faust_only_with_the_flow() -> None:
    from tests.kpi.test_exclusions import excl

    good = excl(1, 0, 10).model_dump_json().encode()
    changelog = TP(CHANGELOG, 0)
    polls = [
        Poll({TP(EXCLUSIONS_TOPIC, 0): [Rec(0, None, good)], changelog: [Rec(0, b"CP-1", b"{}")]},
             flow_active=False, rebalancing=True),
        Poll({changelog: [Rec(1, b"CP-1", b"{}")]}),
    ]
    loop = Loop(ScriptedConsumer(polls))
    loop.run([P0])
    assert loop.exclusions.drain().commits == {0: 1}
    assert loop.consumer.delivered == [(changelog, [1])]


def test_an_idle_caught_up_partition_clock_moves_on_and_a_lagging_one_waits() -> None:
    consumer = ScriptedConsumer([Poll(frames(0, 0, 3))], ends={P0: 3})
    loop = Loop(consumer)
    loop.run([P0])
    mark = loop.processor.watermark(0)
    assert mark is not None and loop.path.lag() == 0
    arrived = loop.path._arrivals[0][0]
    loop.path.advance_idle_clocks(arrived + 4.0)
    assert loop.processor.watermark(0) == mark  # not idle long enough
    consumer.ends[P0] = 10  # frames wait in Kafka: wall time must not close their windows
    loop.path.advance_idle_clocks(arrived + 6.0)
    assert loop.processor.watermark(0) == mark and loop.path.lag() == 7
    consumer.ends[P0] = 3
    consumer.rebalancing = True
    loop.path.advance_idle_clocks(arrived + 6.0)
    assert loop.processor.watermark(0) == mark
    consumer.rebalancing = False
    loop.path.advance_idle_clocks(arrived + 6.0)
    assert mark + 5000 < loop.processor.watermark(0) <= mark + 6000  # moved on by the idle time


def test_a_lost_partition_is_forgotten_and_read_again_from_the_committed_offset_if_it_comes_back() -> None:
    loop = Loop(ScriptedConsumer([Poll(frames(0, 0, 3))]))
    loop.run([P0])
    assert loop.path.assigned([TP(FRAMES_TOPIC, 1)]) == {0}
    assert loop.intake.next_offset(0) is None and loop.processor.watermark(0) is None
    assert loop.path.assigned([P0, TP(FRAMES_TOPIC, 1)]) == set()
