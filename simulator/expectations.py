"""Hold what the pipeline produced against what the simulator did (``simulate --expected``).

Pure functions over plain rows, used by the end-to-end and fault-injection tests (the reliability
tables: :mod:`simulator.kpi_expectations`): the sessions in
ClickHouse must be exactly the expected ones (same keys, connector, idTag, energy within 1 Wh,
stop reason, the status out of Charging, how the session closed, the OCPP version), and every
expected fault must have begun — and cleared, when the simulator cleared it — on ``ocpp.faults.v1``.

``ocpp_version`` ("ocpp1.6" / "ocpp2.0.1") is on every expectation (an older file without it meant
1.6); it is compared with rows and events that carry it. So are the signed meter values (issue 25): a row with
a ``signature_status`` column is held against the session's signed expectation
(:func:`simulator.signed_truth.signature_differences`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from simulator.signed_truth import signature_differences

SESSION_FIELDS = ("connector_id", "id_tag", "stop_reason", "stop_status", "closed_by")
DEFAULT_VERSION = "ocpp1.6"
ENERGY_TOLERANCE_WH = 1.0  # kWh registers carry three decimals: whole Wh survive, rounding aside


def load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sessions, faults) from an expectations file (the KPI ground truth: :func:`load_truth`)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["kind"] == "session"], [r for r in rows if r["kind"] == "fault"]


class MismatchKind(StrEnum):
    """How what the simulated chargers did and the pipeline's rows disagree (sessions here, the KPI tables in
    :mod:`simulator.kpi_expectations`)."""

    MISSING = "missing"  # the chargers did it; no row (e.g. they ended a session)
    UNEXPECTED = "unexpected"  # a row for something no charger did (e.g. a charger cancelled mid-stop at the run's end)
    DIFFERS = "differs"  # both there, some field differs


@dataclass(frozen=True)
class SessionMismatch:
    """One difference between the expected sessions and the rows, keyed by (charge point, transaction)."""

    kind: MismatchKind
    charge_point_id: str
    transaction_id: str
    text: str
    fields: tuple[str, ...] = ()  # the fields that differ (DIFFERS only)


def expected_closed_by(expected: Mapping[str, Any], status_window_s: float | None) -> str:
    """How the worker closes the session, given its status window (None: unknown, the simulator's word).

    A session closed by its Available (a charger that never sends StopTransaction) is closed by the next
    start instead when the connector was plugged in again within the window: the worker reads
    Available-then-Preparing inside the window as the transaction going on (flag ``available_then_resumed``).
    Under a time scale the simulator's idle gaps shrink while the worker's window stays in gateway seconds,
    so this is common in fast runs (the 10k soak: 11 of 17,494 sessions)."""
    replugged = expected.get("replugged_after_s")
    if (expected["closed_by"] == "available" and status_window_s is not None and replugged is not None
            and replugged < status_window_s):
        return "next_transaction"
    return expected["closed_by"]


def by_transaction(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Sessions (expected, or rows) by (charge point, transaction id): stations that number transactions per EVSE
    have several per key, told apart by their connector (:func:`pair`)."""
    out: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for item in items:
        out.setdefault((item["charge_point_id"], str(item["transaction_id"])), []).append(item)
    return out


def pair(wanted: list[Any], candidates: list[Mapping[str, Any]], connector_of: Any = None,
         ) -> tuple[list[tuple[Any, Mapping[str, Any]]], list[Any]]:
    """Expectations of one (charge point, transaction id) paired with rows: on the same connector first, then what
    is left in order (a wrong connector is a difference, not a missing session). Returns the pairs and the
    expectations left without a row; paired rows are removed from ``candidates``."""
    connector = connector_of or (lambda e: e.get("connector_id"))
    pairs: list[tuple[Any, Mapping[str, Any]]] = []
    left = []
    for e in wanted:
        match = next((c for c in candidates if c.get("connector_id") == connector(e)), None)
        if match is None:
            left.append(e)
        else:
            candidates.remove(match)
            pairs.append((e, match))
    missing = []
    for e in left:
        if candidates:
            pairs.append((e, candidates.pop(0)))
        else:
            missing.append(e)
    return pairs, missing


def session_differences(expected: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]], *,
                        status_window_s: float | None = None) -> list[SessionMismatch]:
    """Every difference between expected sessions and session rows, keyed by (charge point, transaction) (and
    the connector, where one id names sessions on several EVSEs): missing ones first, then unexpected ones, then
    the ones whose fields differ, each sorted by key. ``status_window_s``: the worker's
    (``OCPP_WORKER_STATUS_WINDOW_S``), when known (:func:`expected_closed_by`)."""
    want, got = by_transaction(expected), by_transaction(rows)
    pairs: list[tuple[tuple[str, str], Mapping[str, Any], Mapping[str, Any]]] = []
    missing: list[tuple[tuple[str, str], Mapping[str, Any]]] = []
    for key in sorted(want):
        paired, left = pair(want[key], got.get(key, []))
        pairs += [(key, e, r) for e, r in paired]
        missing += [(key, e) for e in left]
    problems = [SessionMismatch(MismatchKind.MISSING, *k, f"missing session {k[0]}/{k[1]} ({e['ending']})")
                for k, e in missing]
    problems += [SessionMismatch(MismatchKind.UNEXPECTED, *k, f"unexpected session {k[0]}/{k[1]}: {dict(r)}")
                 for k in sorted(got) for r in got[k]]
    for key, e, r in pairs:
        e = {**e, "closed_by": expected_closed_by(e, status_window_s)}
        diffs = {f: f"{f} {r.get(f)!r} != {e[f]!r}" for f in SESSION_FIELDS if r.get(f) != e[f]}
        version = e.get("ocpp_version", DEFAULT_VERSION)
        if "ocpp_version" in r and r["ocpp_version"] != version:
            diffs["ocpp_version"] = f"ocpp_version {r['ocpp_version']!r} != {version!r}"
        energy = r.get("energy_wh")
        if energy is None or abs(float(energy) - float(e["energy_wh"])) > ENERGY_TOLERANCE_WH:
            diffs["energy_wh"] = f"energy_wh {energy!r} != {e['energy_wh']!r}"
        diffs |= signature_differences(e, r)
        if diffs:
            problems.append(SessionMismatch(
                MismatchKind.DIFFERS, *key,
                f"session {key[0]}/{key[1]} ({e['ending']}, {version}, quirks {e['quirks']}): " + "; ".join(diffs.values()),
                tuple(diffs)))
    return problems


def session_mismatches(expected: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]], *,
                       status_window_s: float | None = None) -> list[str]:
    """Every difference between expected sessions and session rows, keyed by (charge point, transaction)."""
    return [m.text for m in session_differences(expected, rows, status_window_s=status_window_s)]


def fault_mismatches(expected: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Expected faults against fault events (``began`` / ``cleared``), counted per connector and code."""
    expected = list(expected)
    events = list(events)

    def key(x: Mapping[str, Any]) -> tuple[str, int, str]:
        return (x["charge_point_id"], int(x["connector_id"]), x["error_code"])

    problems = []
    for kind, want in (("began", Counter(key(f) for f in expected)),
                       ("cleared", Counter(key(f) for f in expected if f["cleared"]))):
        got = Counter(key(e) for e in events if e["event"] == kind)
        for k in sorted(want.keys() | got.keys()):
            if want[k] != got[k]:
                problems.append(f"fault {kind} {k}: {got[k]} events, expected {want[k]}")
    versions = {f["charge_point_id"]: f.get("ocpp_version", DEFAULT_VERSION) for f in expected}
    wrong = Counter((e["charge_point_id"], e["ocpp_version"]) for e in events
                    if e["charge_point_id"] in versions and "ocpp_version" in e and e["ocpp_version"] != versions[e["charge_point_id"]])
    problems += [f"fault events of {cp} say {version}: {n}, expected {versions[cp]}" for (cp, version), n in sorted(wrong.items())]
    return problems
