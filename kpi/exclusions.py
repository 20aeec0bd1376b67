"""Operator exclusions (KPIS.md, Exclusions): the checks of the event ``outages exclude`` records, and reading it.

An exclusion is an event on ``ocpp.exclusions.v1`` (the ``outage_exclusions`` row as JSON, key = charge point
id) that the worker sinks into ``outage_exclusions``; a replay rebuilds the table from the topic. The event itself
(its id, its decoding, the ports it covers) is a contract: :mod:`schemas.exclusions`. Which exclusion names an
outage is decided at read time by the view ``port_outages_with_exclusions``
(:data:`schemas.tables.PORT_OUTAGES_WITH_EXCLUSIONS`, the one rule); nothing writes it into outage rows.

Pure, except :func:`fetch_lifetime` (one query through a :class:`~kpi.source.RowSource`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kpi.errors import InvalidExclusion
from kpi.source import RowSource, string, table
from schemas.base import datetime_to_ms, ms_to_datetime, validation_summary
from schemas.exclusions import EVERY_PORT, exclusion_id
from schemas.records import ExclusionReason, OutageExclusion
from schemas.tables import CONNECTOR_STATUS, FRAMES, PORT_OUTAGES

log = logging.getLogger(__name__)

MAX_TEXT = 1000  # note, reference, recorded_by: characters kept (EV-ChART's notes hold 255)


def new_exclusion(charge_point_id: str, connector_id: int, from_at: datetime, to_at: datetime,
                  reason: ExclusionReason | str, note: str, recorded_at: datetime, *, recorded_by: str,
                  reference: str = "", forced: bool = False) -> OutageExclusion:
    """A checked exclusion, or :class:`InvalidExclusion` saying what is wrong."""
    try:
        reason = ExclusionReason(reason)
    except ValueError:
        raise InvalidExclusion(
            f"unknown reason {reason!r}; one of {', '.join(r.value for r in ExclusionReason)}") from None
    if from_at.tzinfo is None or to_at.tzinfo is None:
        raise InvalidExclusion("the window's times need a time zone")
    if to_at <= from_at:
        raise InvalidExclusion(f"the window is empty: --to {to_at.isoformat()} is not after --from {from_at.isoformat()}")
    if connector_id < 0:
        raise InvalidExclusion(f"connector {connector_id}: ports are numbered from 1 (0 or none: every port)")
    if not charge_point_id:
        raise InvalidExclusion("no charge point id")
    if not recorded_by.strip():
        raise InvalidExclusion("no author: --by NAME (or run it as a named OS user)")
    for flag, text in (("--note", note), ("--reference", reference), ("--by", recorded_by)):
        if len(text) > MAX_TEXT:
            raise InvalidExclusion(f"{flag} is longer than {MAX_TEXT} characters")
    return OutageExclusion(
        exclusion_id=exclusion_id(charge_point_id, connector_id, from_at, to_at, reason, note),
        charge_point_id=charge_point_id, connector_id=connector_id, from_at=from_at, to_at=to_at, reason=reason,
        note=note, recorded_at=recorded_at, recorded_by=recorded_by.strip(), reference=reference, forced=forced,
    )


def exclusion_from_row(values: dict[str, Any]) -> OutageExclusion | None:
    """A row of ``outage_exclusions`` as a model; None (and a warning) for a row no command could have
    written (a reason EV-ChART does not know, typed in by hand): it must not stop a report."""
    try:
        return OutageExclusion(**values)
    except ValidationError as exc:
        log.warning("outage_exclusions row %s skipped: %s", values.get("exclusion_id"),
                    validation_summary(exc))
        return None


# --- bounds: an exclusion of data the pipeline has -------------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    """What the pipeline has seen of a charger (gateway clock): its first and last frame, and whether the port
    an exclusion names was ever reported (True when it names every port)."""

    first_ms: int | None  # None: never seen
    last_ms: int | None
    port_seen: bool


def check_bounds(exclusion: OutageExclusion, lifetime: Lifetime, now_ms: int) -> None:
    """The exclusion excludes data the pipeline has: a charge point (and port) it has seen, a window inside
    [its first frame, now]. Else :class:`InvalidExclusion` naming every problem; ``--force`` skips this."""
    problems = []
    cp = exclusion.charge_point_id
    if lifetime.first_ms is None:
        problems.append(f"the pipeline has never seen charge point {cp!r}")
    else:
        if not lifetime.port_seen:
            problems.append(f"{cp} never reported port {exclusion.connector_id}")
        if datetime_to_ms(exclusion.from_at) < lifetime.first_ms:
            problems.append(f"--from {exclusion.from_at.isoformat()} is before {cp} was first seen "
                            f"({ms_to_datetime(lifetime.first_ms).isoformat()})")
    if datetime_to_ms(exclusion.to_at) > now_ms:
        problems.append(f"--to {exclusion.to_at.isoformat()} is in the future: record an exclusion once its window "
                        "has passed")
    if problems:
        raise InvalidExclusion("; ".join(problems) + " (--force records it anyway, marked forced)")


def fetch_lifetime(source: RowSource, database: str, charge_point_id: str, connector_id: int) -> Lifetime:
    """One query: the charger's first and last frame (``frames`` is sorted by charge point), and whether the port was
    reported (``connector_status``, ``port_outages``)."""
    cp = string(charge_point_id)
    port = ("1" if connector_id == EVERY_PORT else
            f"(SELECT count() FROM {table(database, CONNECTOR_STATUS.name)} WHERE charge_point_id = {cp} "
            f"AND connector_id = {int(connector_id)}) + (SELECT count() FROM {table(database, PORT_OUTAGES.name)} "
            f"WHERE charge_point_id = {cp} AND connector_id = {int(connector_id)})")
    rows = source.rows(
        f"SELECT count(), toInt64(min(toUnixTimestamp64Milli(received_at))), "
        f"toInt64(max(toUnixTimestamp64Milli(received_at))), {port} "
        f"FROM {table(database, FRAMES.name)} WHERE charge_point_id = {cp}")
    count, first, last, seen = rows[0]
    if not int(count):
        return Lifetime(None, None, False)
    return Lifetime(int(first), int(last), bool(int(seen)))
