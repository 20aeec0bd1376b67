"""What the code of this checkout makes of the golden inputs, as plain JSON values (the same each run).

Only public entry points: the DDL renderers and migrations, the gateway's :class:`~gateway.handler.FrameHandler`,
the worker's :class:`~processors.pipeline.FrameProcessor` (rows per table, the records it publishes),
:class:`~processors.exclusion_intake.ExclusionIntake`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas import ddl
from schemas.migrations import MIGRATIONS, RETAINED_TABLES
from schemas.retention import Retention
from schemas.tables import READ_VIEWS, VIEWS

FLUSH_EVERY = 40  # frames per take(): states go through their bytes, as between the worker's flushes
QUIET_MS = 3 * 86_400_000  # the clocks moved on at the end: every deadline passes


def value_bytes(stored: dict[str, str] | None) -> bytes | None:
    if stored is None:
        return None
    return stored["text"].encode("utf-8", "surrogatepass") if "text" in stored else bytes.fromhex(stored["hex"])


def plain(value: Any) -> Any:
    """A row value as JSON can hold it, its kind kept: ``{"dt": ...}`` for a datetime, ``{"date": ...}`` for a date."""
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"a row value of an unexpected kind: {type(value).__name__} {value!r}")


def ddl_statements() -> dict[str, Any]:
    """Every statement the migrations run, for one node and for a cluster; the views; the TTL statements."""
    out: dict[str, Any] = {}
    retention = Retention(raw_days=30, status_days=365, compliance_days=800)
    for label, dialect in (("embedded", ddl.Embedded()), ("cluster", ddl.Cluster(name="prod"))):
        out[label] = {
            "migrations": {str(m.version): m.statements("ocpp", dialect) for m in MIGRATIONS},
            "latest_tables": {t.name: ddl.create_table(t, "ocpp", dialect, at_version=MIGRATIONS[-1].version)
                              for t in RETAINED_TABLES},
            "views": {v.name: ddl.create_view(v, "ocpp", dialect) for v in VIEWS},
            "read_views": {v.name: ddl.create_read_view(v, "ocpp", dialect) for v in READ_VIEWS},
            "ttl": {t.name: ddl.set_ttl(t, "ocpp", dialect, retention) + ddl.ttl_settings(t, "ocpp", dialect)
                    for t in RETAINED_TABLES},
        }
    return out


def gateway_envelopes(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per frame: the envelope bytes the gateway writes (the frame's, its answer's), the answer, and whether it
    waits for Kafka; per connection its ``connected`` / ``disconnected`` envelopes."""
    from gateway.actions import SUPPORTED_SUBPROTOCOLS
    from gateway.answers import AnswerPolicy
    from gateway.envelope_record import encode_envelope
    from gateway.handler import ConnectionInfo, FrameHandler
    from gateway.payload_schemas import compile_validators
    from gateway.transaction_ids import TransactionIdAllocator
    from schemas.envelope import ConnectionEvent

    ids = TransactionIdAllocator()
    handlers = {v: FrameHandler(ConnectionInfo(f"CP-{v}", f"conn-{v}", "gw-golden", v), compile_validators(v),
                                AnswerPolicy(), ids) for v in SUPPORTED_SUBPROTOCOLS}
    out: list[dict[str, Any]] = []
    for version, handler in handlers.items():
        out.append({"connected": encode_envelope(handler.connection_event(ConnectionEvent.CONNECTED, 1_764_000_000_000))
                    .decode()})
    for item in frames:
        reaction = handlers[item["ocpp_version"]].receive(item["frame"], item["now_ms"])
        out.append({
            "inbound": encode_envelope(reaction.inbound).decode(),
            "reply": reaction.reply,
            "reply_envelope": None if reaction.reply_envelope is None else encode_envelope(reaction.reply_envelope).decode(),
            "durable": reaction.durable,
            "outcome": reaction.outcome,
        })
    for version, handler in handlers.items():
        closed = handler.connection_event(ConnectionEvent.DISCONNECTED, 1_764_000_999_000, close_code=1006,
                                          reason="going away \u00e9")
        out.append({"disconnected": encode_envelope(closed).decode()})
    return out


@dataclass
class _Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def worker_outputs(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows of every table and the records of the sessions and faults topics, flush by flush."""
    from processors.pipeline import FrameProcessor
    from processors.settings import CorrelatorConfig

    states: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    offsets: dict[int, int] = {}
    flushes: list[dict[str, Any]] = []
    last_ms = 0

    def flush() -> None:
        out = processor.take()
        states.update(out.states)
        processor.persisted(out.states)
        flushes.append({
            "rows": {table: [plain(row) for row in rows] for table, rows in sorted(out.rows.items()) if rows},
            "sessions": [s.model_dump_json() for s in out.sessions],
            "faults": [f.model_dump_json() for f in out.faults],
            "bad_envelopes": out.bad_envelopes, "processing_failures": out.processing_failures,
            "unstorable_rows": out.unstorable_rows,
        })

    for n, item in enumerate(records, 1):
        partition = item["partition"]
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        key = None if item["key"] is None else item["key"].encode()
        processor.process_batch(partition, [_Record(offset, key, value_bytes(item["value"]), item["timestamp_ms"])])
        last_ms = max(last_ms, item["timestamp_ms"])
        if n % FLUSH_EVERY == 0:
            flush()
    flush()
    for partition in sorted(offsets):
        processor.advance(partition, last_ms + QUIET_MS)
    flush()
    return {"flushes": flushes}


def exclusion_rows(records: list[dict[str, Any]]) -> dict[str, Any]:
    from processors.exclusion_intake import ExclusionIntake

    intake = ExclusionIntake()
    intake.take(0, [_Record(r["offset"], None, value_bytes(r["value"]), 0) for r in records])
    batch = intake.drain()
    return {"rows": [plain(row) for row in batch.rows], "invalid": batch.invalid, "commits": batch.commits,
            "token": batch.token("golden")}


def canonical(data: Any) -> str:
    return json.dumps(data, indent=1) + "\n"
