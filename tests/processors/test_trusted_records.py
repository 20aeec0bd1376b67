"""``Record.trusted`` (schemas/base.py): the record the validating constructor would give, without validating
again, for values the pipeline made itself. Every record the processors build on the recorded corpus and on a
synthetic fleet is built both ways here and must be the same, value for value and type for type (a float field
given an int, an enum given a str, a tuple for a list would differ in the topic's bytes); the constructor itself
fills defaults like pydantic and refuses what it cannot build."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.worker_bench import charger_day, pure_processor
from schemas.base import Record
from tests.processors.recorded_corpus import load, replay
from tests.test_contracts import SAMPLES

_trusted = Record.trusted.__func__  # type: ignore[attr-defined]


def _typed(value: Any) -> Any:
    """The value with the type of every part, so that 1 and 1.0, "a" and a StrEnum "a" differ."""
    if isinstance(value, (list, tuple)):
        return type(value), [_typed(v) for v in value]
    return type(value), value


def _same(made: Record, validated: Record) -> None:
    assert list(made.__dict__) == list(validated.__dict__)  # field order: what the serializers and row() read
    assert {k: _typed(v) for k, v in made.__dict__.items()} == {k: _typed(v) for k, v in validated.__dict__.items()}
    assert made.model_dump_json() == validated.model_dump_json()
    assert made.row() == validated.row() and made.model_fields_set == validated.model_fields_set
    for record in (made, validated):  # row() reads the instance's dict: the fields, in field order
        assert record.row() == [getattr(record, name) for name in type(record).model_fields]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record.trusted, checked against the validating constructor on every call; the names of what it built."""
    built: list[str] = []

    def both(cls: type[Record], /, **values: Any) -> Record:
        made: Record = _trusted(cls, **values)
        _same(made, cls(**values))
        built.append(cls.__name__)
        return made

    monkeypatch.setattr(Record, "trusted", classmethod(both))
    return built


def test_every_record_of_the_recorded_corpus_is_the_validated_one(checked: list[str]) -> None:
    for stream in load():
        replay(stream)
    assert {"Session", "FaultEvent", "StatusChange", "ChargeAttempt"} <= set(checked)


def test_every_record_of_a_synthetic_fleet_is_the_validated_one(checked: list[str]) -> None:
    records = [(e.key(), e.model_dump_json().encode()) for n in range(40) for e in charger_day(n, 3).envelopes]
    pure_processor(records, 4)
    assert {"Session", "StatusChange", "ChargeAttempt"} <= set(checked)


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_a_sample_of_each_table_built_trusted_is_the_validated_one(table: str) -> None:
    values = dict(SAMPLES[table].__dict__)
    _same(type(SAMPLES[table]).trusted(**values), type(SAMPLES[table])(**values))


_DEFAULTED = {t: [n for n, f in type(r).model_fields.items() if not f.is_required()] for t, r in SAMPLES.items()}


@given(st.sampled_from(sorted(SAMPLES)).flatmap(
    lambda t: st.tuples(st.just(t), st.sets(st.sampled_from(_DEFAULTED[t])) if _DEFAULTED[t] else st.just(set()))))
def test_defaults_left_out_are_filled_as_pydantic_fills_them(case: tuple[str, set[str]]) -> None:
    table, left_out = case
    values = {k: v for k, v in SAMPLES[table].__dict__.items() if k not in left_out}
    cls = type(SAMPLES[table])
    _same(cls.trusted(**values), cls(**values))


@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_a_copy_with_changed_fields_still_gives_its_row_in_field_order(table: str, data: st.DataObject) -> None:
    """The pipeline's storable copies are ``model_copy(update=...)``: the row must still follow the columns."""
    sample = SAMPLES[table]
    names = data.draw(st.lists(st.sampled_from(list(type(sample).model_fields)), unique=True))
    copy = sample.model_copy(update={name: getattr(sample, name) for name in reversed(names)})
    assert copy.row() == [getattr(copy, name) for name in type(copy).model_fields] == sample.row()


@pytest.mark.parametrize(("change", "says"), [
    (lambda values: {**values, "not_a_field": 1}, "no field"),
    (lambda values: {k: v for k, v in values.items() if k != "charge_point_id"}, "charge_point_id"),
    (lambda values: {**{k: v for k, v in values.items() if k != "charge_point_id"}, "not_a_field": 1}, "charge_point_id"),
], ids=["unknown field", "required field missing", "one swapped for an unknown"])
def test_what_it_cannot_build_is_refused(change: Any, says: str) -> None:
    sample = SAMPLES["sessions"]
    with pytest.raises(TypeError, match=says):
        type(sample).trusted(**change(dict(sample.__dict__)))
