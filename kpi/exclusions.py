"""Operator exclusions (KPIS.md, Exclusions): which exclusion, if any, covers an outage.

:func:`excluded_reason` is the one rule for ``port_outages.excluded_reason``: the worker calls it when
it writes an outage row, ``ocpp-pipeline outages exclude`` when it re-emits rows already written, and
the EV-ChART export for module 4. It is pure and cheap (a scan of one charger's exclusions, which are
few); :func:`fetch_exclusions` is the only I/O here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from clickhouse_connect.driver.client import Client
from pydantic import ValidationError

from kpi.errors import InvalidExclusion
from schemas.records import ExclusionReason, OutageExclusion
from schemas.tables import OUTAGE_EXCLUSIONS

log = logging.getLogger(__name__)

EVERY_PORT = 0
"""``connector_id`` of an exclusion that covers every port of its charger."""

_FAR_FUTURE_MS = 2**62  # the end of an open outage: it overlaps every exclusion after its start


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def to_ms(value: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (exact: no float on the way)."""
    return (value - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime (exact inverse of :func:`to_ms`)."""
    return _EPOCH + timedelta(milliseconds=ms)


def ordered(exclusions: Sequence[OutageExclusion]) -> list[OutageExclusion]:
    """The order in which exclusions are tried: earliest window first, then ``exclusion_id`` (stable
    whatever order they were recorded or fetched in)."""
    return sorted(exclusions, key=lambda e: (e.from_at, e.exclusion_id))


def covers_port(exclusion: OutageExclusion, connector_id: int) -> bool:
    return exclusion.connector_id in (EVERY_PORT, connector_id)


def first_exclusion(
    connector_id: int, started_ms: int, ended_ms: int | None, exclusions: Sequence[OutageExclusion]
) -> OutageExclusion | None:
    """The first exclusion, in ``exclusions``' order, that covers port ``connector_id`` and overlaps the
    outage ``[started_ms, ended_ms)``. An open outage (``ended_ms`` None) overlaps every exclusion that
    ends after it began."""
    end = _FAR_FUTURE_MS if ended_ms is None else ended_ms
    for exclusion in exclusions:
        if (covers_port(exclusion, connector_id) and to_ms(exclusion.from_at) < end
                and started_ms < to_ms(exclusion.to_at)):
            return exclusion
    return None


def excluded_reason(
    connector_id: int, started_ms: int, ended_ms: int | None, exclusions: Sequence[OutageExclusion]
) -> str:
    """``port_outages.excluded_reason``: the reason (an :class:`ExclusionReason` value) of
    :func:`first_exclusion`, ``""`` if none.

    ``exclusions`` are one charger's, as :func:`fetch_exclusions` returns them (already :func:`ordered`).
    """
    found = first_exclusion(connector_id, started_ms, ended_ms, exclusions)
    return "" if found is None else found.reason.value


def exclusion_id(charge_point_id: str, connector_id: int, from_at: datetime, to_at: datetime,
                 reason: ExclusionReason, note: str) -> str:
    """Content hash: recording the same exclusion twice leaves one row (the table is keyed by it)."""
    text = "|".join((charge_point_id, str(connector_id), str(to_ms(from_at)), str(to_ms(to_at)), str(reason), note))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_exclusion(charge_point_id: str, connector_id: int, from_at: datetime, to_at: datetime,
                  reason: ExclusionReason | str, note: str, recorded_at: datetime) -> OutageExclusion:
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
    return OutageExclusion(
        exclusion_id=exclusion_id(charge_point_id, connector_id, from_at, to_at, reason, note),
        charge_point_id=charge_point_id, connector_id=connector_id, from_at=from_at, to_at=to_at, reason=reason,
        note=note, recorded_at=recorded_at,
    )


def fetch_exclusions(client: Client, database: str, charge_point_ids: Collection[str]) -> dict[str, list[OutageExclusion]]:
    """The recorded exclusions of these chargers, each charger's :func:`ordered`; chargers without any
    are absent. One query; none when ``charge_point_ids`` is empty."""
    if not charge_point_ids:
        return {}
    columns = ", ".join(OUTAGE_EXCLUSIONS.column_names)
    result = client.query(
        f"SELECT {columns} FROM `{database}`.`{OUTAGE_EXCLUSIONS.name}` FINAL "
        "WHERE charge_point_id IN {ids:Array(String)} ORDER BY charge_point_id, from_at, exclusion_id",
        parameters={"ids": list(charge_point_ids)},
    )
    found: dict[str, list[OutageExclusion]] = {}
    for row in result.result_rows:
        exclusion = exclusion_from_row(dict(zip(OUTAGE_EXCLUSIONS.column_names, row)))
        if exclusion is not None:
            found.setdefault(exclusion.charge_point_id, []).append(exclusion)
    return found


def exclusion_from_row(values: dict[str, Any]) -> OutageExclusion | None:
    """A row of ``outage_exclusions`` as a model; None (and a warning) for a row no command could have
    written (a reason EV-ChART does not know, typed in by hand): it must not stop the worker or a report."""
    try:
        return OutageExclusion(**values)
    except ValidationError as exc:
        log.warning("outage_exclusions row %s skipped: %s", values.get("exclusion_id"),
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return None
