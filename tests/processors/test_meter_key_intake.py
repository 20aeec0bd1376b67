"""Meter key events on their way into the worker's key registry and meter_keys: valid ones change the holder at once
and become rows, anything else (not JSON, a wrong field, a key that is no point) is counted and skipped; the holder
after any sequence of events is the registry those events build."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.meter_key_intake import MeterKeyHolder, MeterKeyIntake
from signed_meter.key_events import record_of
from signed_meter.registry import KeyAction, KeyEvent, RegisteredKey, registry_of

SAMPLES = json.loads((Path(__file__).resolve().parents[2].parent / "shared" / "ocmf" / "samples.json").read_text())
KEYS = sorted({s["public_key_hex"] for s in SAMPLES})[:4]
AT = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes | None


def event(cp: str, key: str, action: KeyAction = KeyAction.ADD, connector: int | None = None) -> KeyEvent:
    return KeyEvent(action, RegisteredKey(cp, connector, key, None, "ops", "T-1"))


def encoded(e: KeyEvent) -> bytes:
    return record_of(e, AT).model_dump_json().encode()


def test_valid_events_reach_the_holder_and_become_rows_the_rest_is_counted() -> None:
    holder = MeterKeyHolder()
    intake = MeterKeyIntake(holder)
    good = encoded(event("CP-1", KEYS[0], connector=2))
    not_a_point = json.loads(good)
    not_a_point["public_key"] = "04" + "11" * 64
    no_connector = json.loads(good) | {"connector_id": 0}
    intake.take(0, [Record(3, good), Record(4, b"{not json"), Record(5, None), Record(6, json.dumps(not_a_point).encode()),
                    Record(7, json.dumps(no_connector).encode()), Record(8, encoded(event("CP-2", KEYS[1])))])
    batch = intake.drain()
    assert len(batch.rows) == 2 and batch.invalid == 4 and batch.offsets == {0: (3, 8)}
    assert [k.public_key for k in holder.keys_for("CP-1", 2)] == [KEYS[0]]
    assert holder.keys_for("CP-1", 1) == ()  # registered for connector 2 only
    assert [k.public_key for k in holder.keys_for("CP-2", 1)] == [KEYS[1]]  # the whole station's
    assert holder.keys_for("CP-3") == () and holder.key_count == 2
    assert not intake.drain()


def test_a_removal_unregisters_the_key_whatever_its_spelling() -> None:
    holder = MeterKeyHolder()
    intake = MeterKeyIntake(holder)
    intake.take(0, [Record(0, encoded(event("CP-1", KEYS[0]))),
                    Record(1, encoded(event("CP-1", KEYS[0].upper(), KeyAction.REMOVE)))])
    assert holder.keys_for("CP-1") == () and holder.key_count == 0 and holder.charge_point_count == 0


actions = st.lists(st.tuples(st.sampled_from(["CP-1", "CP-2"]), st.sampled_from(KEYS), st.sampled_from(list(KeyAction)),
                             st.sampled_from([None, 1, 2])), max_size=25)


@settings(max_examples=40, deadline=None)
@given(actions)
def test_the_holder_is_the_registry_of_its_events(steps) -> None:
    events = [event(cp, key, action, connector) for cp, key, action, connector in steps]
    holder = MeterKeyHolder()
    intake = MeterKeyIntake(holder)
    intake.take(0, [Record(n, encoded(e)) for n, e in enumerate(events)])
    expected = registry_of(events)
    for cp in ("CP-1", "CP-2"):
        for connector in (None, 1, 2):
            assert holder.keys_for(cp, connector) == expected.keys_for(cp, connector)
