"""``ocpp-pipeline verify --session ID``: a driver's or an auditor's check of one session's signed readings.

It finds the session (``sessions``, newest revision), reads its signed data - the ``signed_start`` / ``signed_stop``
columns when the table has them and they are set, else the session's own frames (``frames``: its charge point, its
transaction id, the time from its start to a day after it was written, so a late signed End counts) - and judges
them again with **today's** key registry (``meter_keys`` of its charge point, folded): a key registered after the
session was written counts here, while the session row keeps the verdict it got then. It prints every signed
reading, the key that decided and the verdict; ``--export FILE`` writes what transparency software reads (S.A.F.E.
XML; ``--format json``: the OCMF strings with their key). The exit status is 0 only when the verdict is ``verified``.

Everything is read through ``sql``'s read path (the worker's ``/sql``, the embedded folder, or a server's read-only
user), so it runs beside a running worker.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from schemas.base import ms_to_datetime
from signed_meter.arrival import SignedValue
from signed_meter.export import context_of, ocmf_json, safe_xml
from signed_meter.frames import signed_values_in_frames
from signed_meter.key_events import registry_of_records
from signed_meter.model import SignatureStatus
from signed_meter.session import SessionSignatures, SessionVerdict
from signed_meter.verification import BEGIN_CONTEXT, END_CONTEXT, verify_signed_value

NOT_VERIFIED_EXIT = 1
LATE_END_MS = 24 * 3600 * 1000  # a signed End this long after the session was written still belongs to it
SIGNED_COLUMNS = ("signed_start", "signed_stop")


class VerifyError(RuntimeError):
    """The session cannot be verified at all (not found, ambiguous): the message says why."""


@dataclass(frozen=True)
class SessionRef:
    charge_point_id: str
    connector_id: int | None
    transaction_id: str
    session_id: str
    from_ms: int
    to_ms: int
    energy_wh: float | None


@dataclass(frozen=True)
class Audit:
    session: SessionRef
    source: str  # "sessions columns" | "frames"
    verdict: SessionVerdict
    keys_registered: int


def add_verify_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    verify = sub.add_parser("verify", help="check a session's signed meter readings with today's key registry "
                                           "(Eichrecht / OCMF); exit status 0 only when verified")
    verify.add_argument("--session", required=True, metavar="ID", help="the session id (sessions.session_id) or its "
                                                                       "transaction id")
    verify.add_argument("--charge-point", metavar="CP", help="the charge point (needed when a transaction id is not "
                                                             "unique)")
    verify.add_argument("--export", type=Path, metavar="FILE",
                        help="write the signed readings for transparency software (S.A.F.E. XML, or JSON)")
    verify.add_argument("--format", choices=["xml", "json"], default="xml", help="--export's format (json: the OCMF "
                                                                                 "strings with their public key)")
    return verify


def _string(value: str) -> str:
    from kpi.source import string

    return string(value)


def _table(database: str, name: str) -> str:
    from kpi.source import table

    return table(database, name)


def find_session(source: Any, database: str, session: str, charge_point_id: str | None) -> SessionRef:
    where = f"(session_id = {_string(session)} OR transaction_id = {_string(session)})"
    if charge_point_id is not None:
        where += f" AND charge_point_id = {_string(charge_point_id)}"
    rows = source.rows(
        "SELECT charge_point_id, connector_id, transaction_id, session_id, "
        "toUnixTimestamp64Milli(least(ifNull(started_at, received_at), received_at)), "
        "toUnixTimestamp64Milli(greatest(ifNull(stopped_at, received_at), received_at)), energy_wh "
        f"FROM {_table(database, 'sessions')} FINAL WHERE {where} ORDER BY session_id = {_string(session)} DESC, "
        "charge_point_id, session_id")
    if not rows:
        scope = f" of {charge_point_id}" if charge_point_id else ""
        raise VerifyError(f"no session{scope} has session id or transaction id {session!r}")
    exact = [r for r in rows if r[3] == session]
    rows = exact or rows
    if len({(r[0], r[3]) for r in rows}) > 1:
        names = ", ".join(sorted({f"{r[0]} ({r[3]})" for r in rows})[:5])
        raise VerifyError(f"transaction id {session!r} names {len(rows)} sessions ({names}): give --charge-point or the "
                          "session id")
    cp, connector, transaction, session_id, from_ms, to_ms, energy = rows[0]
    return SessionRef(cp, None if connector is None else int(connector), str(transaction), session_id, int(from_ms),
                      int(to_ms), None if energy is None else float(energy))


def _signed_columns(source: Any, database: str, ref: SessionRef) -> list[SignedValue] | None:
    """The session's ``signed_start`` / ``signed_stop`` (migration 10), None when the table has no such columns or
    neither is set."""
    columns = {row[0] for row in source.rows(f"DESCRIBE TABLE {_table(database, 'sessions')}")}
    if not set(SIGNED_COLUMNS) <= columns:
        return None
    rows = source.rows(f"SELECT signed_start, signed_stop FROM {_table(database, 'sessions')} FINAL "
                       f"WHERE charge_point_id = {_string(ref.charge_point_id)} AND session_id = {_string(ref.session_id)} "
                       "LIMIT 1")
    if not rows:
        return None
    values = [SignedValue(text, text, "", context) for text, context in zip(rows[0], (BEGIN_CONTEXT, END_CONTEXT))
              if text]
    if len(values) == 2 and values[0].signed_data == values[1].signed_data:
        values = values[1:]  # one record holding the Begin and the End
    return values or None


def _signed_frames(source: Any, database: str, ref: SessionRef) -> list[SignedValue]:
    rows = source.rows(
        f"SELECT raw FROM {_table(database, 'frames')} WHERE charge_point_id = {_string(ref.charge_point_id)} "
        "AND direction = 'in' AND action IN ('MeterValues', 'StopTransaction', 'TransactionEvent') "
        f"AND received_at >= fromUnixTimestamp64Milli(toInt64({ref.from_ms - LATE_END_MS}), 'UTC') "
        f"AND received_at <= fromUnixTimestamp64Milli(toInt64({ref.to_ms + LATE_END_MS}), 'UTC') "
        "ORDER BY received_at, seq")
    return signed_values_in_frames((row[0] for row in rows), ref.transaction_id)


def audit(source: Any, database: str, session: str, charge_point_id: str | None = None) -> Audit:
    """Judge the session's signed readings again with today's registry (the module's docstring)."""
    ref = find_session(source, database, session, charge_point_id)
    values, where = _signed_columns(source, database, ref), "sessions columns"
    if values is None:
        values, where = _signed_frames(source, database, ref), "frames"
    from ocpp_pipeline.keys import key_events

    registry = registry_of_records(key_events(source, database, ref.charge_point_id))
    keys = registry.keys_for(ref.charge_point_id, ref.connector_id)
    state = SessionSignatures().add_all(verify_signed_value(v, keys) for v in values)
    return Audit(ref, where, state.result(ref.energy_wh), len(keys))


def report(result: Audit) -> str:
    ref, verdict = result.session, result.verdict
    connector = "every connector" if ref.connector_id is None else f"connector {ref.connector_id}"
    lines = [f"session {ref.session_id} (transaction {ref.transaction_id}) of {ref.charge_point_id} {connector}",
             f"  signed data from the {result.source}; {result.keys_registered} key(s) registered for it today"]
    if not verdict.records:
        lines.append("  no signed readings")
    for n, v in enumerate(verdict.records, start=1):
        record = v.record
        key = (f"key {v.key.fingerprint} ({v.key.curve}, {v.key_source.value if v.key_source else '?'})"
               if v.key else "no key")
        lines.append(f"  [{n}] {context_of(v)}: {v.status.value}; {key}"
                     + (f"; flags {', '.join(sorted(f.value for f in v.flags))}" if v.flags else ""))
        if v.detail:
            lines.append(f"      {v.detail}")
        if record is not None:
            lines.append(f"      {record.format.value} meter {record.meter_serial or '?'} pagination "
                         f"{record.pagination or '?'}")
            for reading in record.readings:
                lines.append(f"      {reading.tx or '-'} {reading.value} {reading.unit or ''} {reading.obis or ''} "
                             f"at {reading.time or '?'}".rstrip())
    energy = "unknown" if verdict.signed_energy_wh is None else f"{verdict.signed_energy_wh:g} Wh"
    session_energy = "unknown" if ref.energy_wh is None else f"{ref.energy_wh:g} Wh"
    lines.append(f"  signed energy {energy} (register {verdict.energy_register or '-'}), the session's {session_energy}")
    if verdict.flags:
        lines.append(f"  flags {', '.join(f.value for f in verdict.flags)}")
    lines.append(f"verdict: {verdict.signature_status.value}")
    return "\n".join(lines)


def export_text(result: Audit, fmt: str) -> str:
    ref = result.session
    if fmt == "json":
        return ocmf_json(result.verdict, charge_point_id=ref.charge_point_id, transaction_id=ref.transaction_id)
    return safe_xml(result.verdict, ref.transaction_id)


def exit_status(result: Audit) -> int:
    return 0 if result.verdict.signature_status is SignatureStatus.VERIFIED else NOT_VERIFIED_EXIT


def run_verify(args: argparse.Namespace, ch: Any, sql: Any) -> int:
    from kpi.source import ReadPathSource

    result = audit(ReadPathSource(ch, sql), ch.database, args.session, args.charge_point)
    print(report(result), flush=True)
    if args.export is not None:
        args.export.write_text(export_text(result, args.format), encoding="utf-8")
        print(f"written: {args.export} ({'OCMF JSON' if args.format == 'json' else 'S.A.F.E. XML'})", flush=True)
    return exit_status(result)
