"""States written by the code before issue #24 (``data/state_v2_before_issue24.json``: format 2, written by main at
0f39190) are read and continue to the rows that code made of the frames that followed them.

The fixture holds 14 states of real conversations (unit and property tests' charge points, simulator fleets of both
versions, three made for what no conversation leaves in a state: a transactionData sample across a meter swap, a
reducer inside a break, a session closed by age), picked so that together they hold every field of the state:
open and closed sessions of both versions, pending starts, aliases, meter hints, faults waiting for their name,
station problems, the charger's clock, 2.0.1 sequence numbers, open and ended outages, pending Authorizes and
plug-ins. Each comes with up to 60 frames its charge point sent next and every row the code of that time made of
them, its deadlines passed at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.envelope import FrameEnvelope
from schemas.records import Session
from tests.processors.recorded_corpus import as_recorded

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "state_v2_before_issue24.json").read_text())


def _row(event: Any) -> dict[str, Any]:
    row = json.loads(json.dumps(event.row(), default=str))
    return {"type": type(event).__name__, "row": as_recorded(row) if isinstance(event, Session) else row}


def _comparable(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows in the order they came, but charge attempts as a set: each is written beside the session row it
    follows, in whatever place among the attempt rows of its call."""
    attempts = sorted(json.dumps(r, sort_keys=True) for r in rows if r["type"] == "ChargeAttempt")
    return [r for r in rows if r["type"] != "ChargeAttempt"], attempts


def continue_from(case: dict[str, Any]) -> list[dict[str, Any]]:
    config = CorrelatorConfig.defaults(**case["config"])
    cp = case["charge_point_id"]
    state = state_codec.loads(json.dumps(case["state"]))
    rows = []
    for frame in case["then"]:
        correlator = Correlator(cp, config, state)
        rows += [_row(e) for e in correlator.feed(FrameEnvelope.model_validate(frame))]
        state = state_codec.loads(state_codec.dumps(correlator.state))
    rows += [_row(e) for e in Correlator(cp, config, state).advance(case["until_ms"])]
    return rows


def test_the_states_hold_every_field() -> None:
    covered = {feature for case in CASES for feature in case["covers"]}
    assert len(covered) == 119 and {"pending.token_type", "fault.unannounced", "sessions.td.mark", "sessions.mv.in_break",
                                    "closed.emitted.timeout", "clock.candidate", "attempts.plugin_joined"} <= covered


@pytest.mark.parametrize("case", CASES, ids=[f"{c['charge_point_id']}-{n}" for n, c in enumerate(CASES)])
def test_a_state_written_before_issue_24_continues_to_the_same_rows(case: dict[str, Any]) -> None:
    assert _comparable(continue_from(case)) == _comparable(case["rows"])


@pytest.mark.parametrize("case", CASES, ids=[f"{c['charge_point_id']}-{n}" for n, c in enumerate(CASES)])
def test_a_state_written_before_issue_24_is_written_again_with_named_fields_and_reads_back_equal(case: dict[str, Any]) -> None:
    state = state_codec.loads(json.dumps(case["state"]))
    written = state_codec.dumps(state)
    assert json.loads(written)["v"] == state_codec.FORMAT and state_codec.loads(written) == state
