"""What a soak checks once its fleet has ended: frames on the topic against frames in ClickHouse, and the
sessions the chargers ended against the session rows, with the mismatches sorted by kind so that loss
is told from lag and from a charger the run's end cut short.

:func:`breakdown` and :func:`frames_verdict` are pure; :func:`query` reads ClickHouse through the
worker's read endpoint (the ``sql`` command), as an operator would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.expectations import MismatchKind, SessionMismatch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = 3  # per kind


def query(env: dict[str, str], sql: str, timeout_s: float = 300) -> list[dict[str, Any]]:
    """Rows of a read-only query, through ``ocpp-pipeline sql --format json`` (the worker's endpoint)."""
    out = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", sql, "--format", "json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"sql failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def frames_verdict(on_topic: int, in_clickhouse: int) -> str:
    """One line: frames on the topic against distinct frame rows (the table's key is one record's)."""
    lost = on_topic - in_clickhouse
    if lost == 0:
        return f"frames: {on_topic:,} on the topic, {in_clickhouse:,} in ClickHouse: 0 lost"
    if lost > 0:
        return f"frames: {on_topic:,} on the topic, {in_clickhouse:,} in ClickHouse: {lost:,} LOST"
    return f"frames: {on_topic:,} on the topic, {in_clickhouse:,} in ClickHouse: {-lost:,} more rows than records"


def breakdown(mismatches: Sequence[SessionMismatch], expected: Sequence[dict[str, Any]]) -> list[str]:
    """Lines: the count of each kind (missing by the simulator's ending, differing by field), then a few
    examples of each kind."""
    if not mismatches:
        return []
    endings = {(e["charge_point_id"], str(e["transaction_id"])): e["ending"] for e in expected}
    kinds = Counter(m.kind for m in mismatches)
    lines = []
    for kind in MismatchKind:
        of_kind = [m for m in mismatches if m.kind is kind]
        if not of_kind:
            continue
        if kind is MismatchKind.MISSING:
            detail = Counter(endings.get((m.charge_point_id, m.transaction_id), "?") for m in of_kind)
        elif kind is MismatchKind.DIFFERS:
            detail = Counter(f for m in of_kind for f in m.fields)
        else:
            detail = Counter()
        lines.append(f"{kind.value}: {kinds[kind]:,}" + (" (" + ", ".join(f"{k} {n:,}" for k, n in detail.most_common()) + ")"
                                                          if detail else ""))
        lines += [f"    e.g. {m.text[:400]}" for m in of_kind[:EXAMPLES]]
    return lines


def transaction_frames_sql(charge_point_id: str) -> str:
    """A charger's transaction CALLs and their answers, oldest first (to read a missing session's story)."""
    cp = charge_point_id.replace("'", "''")
    return ("SELECT received_at, direction, message_type, action, message_id, substring(raw, 1, 160) AS raw "
            f"FROM ocpp.frames FINAL WHERE charge_point_id = '{cp}' AND (action IN ('StartTransaction', 'StopTransaction') "
            "OR message_type = 4 OR (message_type = 3 AND raw LIKE '%transactionId%')) ORDER BY received_at, connection_id, seq")
