"""The contracts produce today's bytes: the DDL of every migration (one node and a cluster), the gateway's envelopes
on ``ocpp.frames.v1``, the worker's rows in every table and its records on ``ocpp.sessions.v1`` / ``ocpp.faults.v1``,
the exclusion rows (inputs and outputs in ``tests/golden/``; ``python -m tests.golden --write`` records a change
meant to alter them)."""

from __future__ import annotations

import json

import pytest

from tests.golden.__main__ import HERE, goldens, load_inputs
from tests.golden.outputs import canonical

INPUTS = load_inputs()
GOLDENS = goldens(INPUTS)


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_the_outputs_are_todays(name: str) -> None:
    expected = json.loads((HERE / name).read_text())
    actual = json.loads(canonical(GOLDENS[name]()))
    if actual != expected:
        _fail_at_first_difference(name, expected, actual)


def _fail_at_first_difference(name: str, expected: object, actual: object, path: str = "") -> None:
    """Point at the first value that differs (a whole-file diff of 200 kB is no help)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if expected.get(key, ...) != actual.get(key, ...):
                _fail_at_first_difference(name, expected.get(key, "<absent>"), actual.get(key, "<absent>"), f"{path}/{key}")
    if isinstance(expected, list) and isinstance(actual, list):
        for n, (e, a) in enumerate(zip(expected, actual)):
            if e != a:
                _fail_at_first_difference(name, e, a, f"{path}[{n}]")
        if len(expected) != len(actual):
            pytest.fail(f"{name}{path}: {len(expected)} items recorded, {len(actual)} made now")
    pytest.fail(f"{name}{path}: recorded {expected!r}, made now {actual!r}")
