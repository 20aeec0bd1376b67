"""``ocpp-pipeline keys add|remove|import|list``: the meter public keys signed readings are verified with.

Registering writes nothing to ClickHouse: every key is checked first (it must decode to a point of a curve OCMF uses,
:func:`signed_meter.registry.validate_key`; an import file is checked whole, and its first bad line refuses it with
nothing sent), then sent as events (:class:`schemas.records.MeterKeyEvent`) to ``ocpp.meter_keys.v1`` and
acknowledged by every in-sync replica. Every worker folds the events into its key registry (from the next signed
reading on) and stores them in ``meter_keys``; ``keys list`` reads that table through ``sql``'s read path. The Kafka
identity is the operator's (``outages exclude``'s): who may write this topic decides which readings verify
(SECURITY.md).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infra.errors import TopicError
from infra.settings import ClickHouseSettings, KafkaSettings, SqlSettings
from ocpp_pipeline.output import FORMATS, Rows, print_rows
from schemas.records import MeterKeyEvent
from schemas.topics import METER_KEYS
from signed_meter.curves import CURVES
from signed_meter.errors import SignedMeterError
from signed_meter.key_events import record_of, registry_of_records
from signed_meter.registry import KeyAction, KeyEvent, KeyFileError, RegisteredKey, parse_key_file


class KeyCommandError(RuntimeError):
    """A key the command refuses (nothing was sent): the message says why, for the operator."""


def add_keys_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    keys = sub.add_parser("keys", help="meter public keys signed readings are verified with (issue 25): add, remove, "
                                       "import, list")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, about in (("add", "register a meter's public key for a charge point (or one of its connectors)"),
                        ("remove", "unregister a key (the same point, charge point and connector)")):
        parser = actions.add_parser(name, help=about)
        parser.add_argument("--charge-point", required=True, metavar="ID")
        parser.add_argument("--connector", type=int, metavar="N", help="the connector the meter measures (default: every "
                                                                      "connector of the charge point)")
        parser.add_argument("--public-key", required=True, metavar="KEY",
                            help="as on the label or in the transparency data: DER (hex or base64) or a SEC1 point (hex)")
        parser.add_argument("--curve", choices=sorted(CURVES), help="the key's curve (needed for nothing but a bare "
                                                                     "point; checked against a DER key's own)")
        if name == "add":
            parser.add_argument("--meter-serial", default="", metavar="S", help="the serial on the meter's label "
                                                                                 "(informative: never a lookup key)")
        _author_flags(parser)
    importing = actions.add_parser("import", help="register every key of a CSV file (charge_point_id, public_key, "
                                                  "connector_id, meter_serial); a bad line refuses the whole file")
    importing.add_argument("file", type=Path, metavar="FILE")
    _author_flags(importing)
    listing = actions.add_parser("list", help="the keys registered now (from meter_keys, through the read path)")
    listing.add_argument("--charge-point", metavar="ID", help="only this charge point's")
    listing.add_argument("--history", action="store_true", help="every add and remove, oldest first")
    listing.add_argument("--format", choices=FORMATS, default="table")
    return keys


def _author_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--author", required=True, metavar="NAME", help="who registers it (kept with the key)")
    parser.add_argument("--reference", default="", metavar="TEXT",
                        help="the operator's reference: a ticket, a delivery note, the label's photo")


def events_from_args(args: argparse.Namespace, now: datetime) -> list[MeterKeyEvent]:
    """The events ``keys add|remove|import`` sends, every key checked; :class:`KeyCommandError` names the first
    problem (an import file: its line)."""
    author, reference = args.author.strip(), args.reference
    if not author:
        raise KeyCommandError("--author must name who registers the key")
    if args.action == "import":
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyCommandError(f"cannot read {args.file}: {exc}") from None
        try:
            parsed = parse_key_file(text, author=author, reference=reference)
        except KeyFileError as exc:
            raise KeyCommandError(f"{args.file}: {exc}; nothing was registered") from None
        if not parsed:
            raise KeyCommandError(f"{args.file}: no keys (a header and one line per key)")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:  # parse_key_file took them all: the ids a charger can have, each bad one by its line
            _check_charge_point((row.get("charge_point_id") or "").strip(), where=f"{args.file}: line {reader.line_num}: ")
        return [record_of(event, now) for event in parsed]
    _check_charge_point(args.charge_point, where="")
    if args.connector is not None and args.connector < 1:
        raise KeyCommandError(f"--connector {args.connector} is not a connector (1, 2, ...; leave it out for every one)")
    key = RegisteredKey(args.charge_point, args.connector, args.public_key.strip(),
                        (getattr(args, "meter_serial", "") or "").strip() or None, author, reference)
    try:
        record = record_of(KeyEvent(KeyAction(args.action), key), now, args.curve)
    except SignedMeterError as exc:
        raise KeyCommandError(f"--public-key is not usable: {exc}") from None
    if args.curve is not None and record.curve != args.curve:
        raise KeyCommandError(f"--public-key is a {record.curve} key (its DER says so), not {args.curve}")
    return [record]


def _check_charge_point(charge_point_id: str, *, where: str) -> None:
    from gateway import handshake

    if not handshake.valid_charge_point_id(charge_point_id):
        raise KeyCommandError(f"{where}charge point {charge_point_id!r} can never connect (1-{handshake.MAX_ID_LENGTH} "
                              "characters of A-Za-z0-9*-_=+|@.); nothing was registered")


async def publish(kafka: KafkaSettings, events: Sequence[MeterKeyEvent], timeout_s: float = 30.0) -> list[int]:
    """Send the events in order and wait until Kafka has every one (acks=all, idempotent producer); their offsets.
    :class:`~infra.errors.TopicError` when it cannot, saying how many were acknowledged (sending the same keys
    again registers each once)."""
    topic = kafka.topic(METER_KEYS.name)
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True,
                                request_timeout_ms=int(timeout_s * 1000))
    offsets: list[int] = []
    try:
        await producer.start()
        sent = [await producer.send(topic, key=e.charge_point_id.encode(), value=e.model_dump_json().encode())
                for e in events]
        for delivery in sent:
            offsets.append((await delivery).offset)
    except KafkaError as exc:
        raise TopicError(f"{len(offsets)} of {len(events)} key events acknowledged: Kafka at {kafka.bootstrap_servers} "
                         f"did not take the rest on {topic} ({exc.__class__.__name__}: {exc}); running the command again "
                         "registers each key once") from None
    finally:
        await producer.stop()
    return offsets


def describe(events: Sequence[MeterKeyEvent], offsets: Sequence[int]) -> str:
    lines = []
    for event, offset in zip(events, offsets):
        where = "every connector" if event.connector_id is None else f"connector {event.connector_id}"
        verb = "registered" if event.action.value == "add" else "removed"
        lines.append(f"key {event.fingerprint} ({event.curve}) {verb} for {event.charge_point_id} {where} by "
                     f"{event.author}" + (f", reference {event.reference}" if event.reference else "")
                     + f"; event {METER_KEYS.name}@{offset}")
    lines.append("the workers verify with it from the next signed reading on and store it in meter_keys")
    return "\n".join(lines)


# --- keys list ---------------------------------------------------------------------------------------------------

LIST_COLUMNS = ["charge_point_id", "connector_id", "curve", "fingerprint", "meter_serial", "author", "reference", "at",
                "public_key"]
HISTORY_COLUMNS = ["at", "action", *[c for c in LIST_COLUMNS if c != "at"]]


def key_events(source, database: str, charge_point_id: str | None = None) -> list[MeterKeyEvent]:  # source: RowSource
    """The ``meter_keys`` rows (each event once), oldest first."""
    from kpi.source import string, table

    where = f" WHERE charge_point_id = {string(charge_point_id)}" if charge_point_id is not None else ""
    rows = source.rows(
        "SELECT charge_point_id, connector_id, public_key, curve, fingerprint, meter_serial, action, author, reference, "
        f"toUnixTimestamp64Milli(at) FROM {table(database, 'meter_keys')} FINAL{where} "
        "ORDER BY at, charge_point_id, fingerprint, action")
    names = ("charge_point_id", "connector_id", "public_key", "curve", "fingerprint", "meter_serial", "action", "author",
             "reference")
    return [MeterKeyEvent.model_validate({**dict(zip(names, row[:9])),
                                          "at": datetime.fromtimestamp(int(row[9]) / 1000, timezone.utc)})
            for row in rows]


def list_rows(events: Sequence[MeterKeyEvent], *, history: bool) -> Rows:
    if history:
        return Rows(HISTORY_COLUMNS, [[e.at.isoformat(), e.action.value, e.charge_point_id, e.connector_id, e.curve,
                                       e.fingerprint, e.meter_serial, e.author, e.reference, e.public_key]
                                      for e in events])
    by_charge_point: dict[str, list[MeterKeyEvent]] = {}
    latest: dict[tuple[str, int | None, str], MeterKeyEvent] = {}
    for e in events:
        by_charge_point.setdefault(e.charge_point_id, []).append(e)
        if e.action.value == "add":
            latest[(e.charge_point_id, e.connector_id, e.public_key)] = e
    rows = []
    for cp_events in by_charge_point.values():  # folded per charge point: an event changes its own keys only
        for entry in registry_of_records(cp_events).entries:
            match = latest[(entry.charge_point_id, entry.connector_id, entry.public_key)]
            rows.append([match.charge_point_id, match.connector_id, match.curve, match.fingerprint, match.meter_serial,
                         match.author, match.reference, match.at.isoformat(), match.public_key])
    return Rows(LIST_COLUMNS, sorted(rows, key=lambda r: (r[0], r[1] or 0, r[3])))


def run_keys(args: argparse.Namespace, ch: ClickHouseSettings, sql: SqlSettings, kafka: KafkaSettings) -> int:
    if args.action == "list":
        from kpi.source import ReadPathSource

        print_rows(list_rows(key_events(ReadPathSource(ch, sql), ch.database, args.charge_point), history=args.history),
                   args.format)
        return 0
    events = events_from_args(args, datetime.now(timezone.utc))
    offsets = asyncio.run(publish(kafka, events))
    print(describe(events, offsets), flush=True)
    return 0
