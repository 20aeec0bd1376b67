"""The exclusion event (``ocpp.exclusions.v1``, KPIS.md Exclusions): its identity, its decoding, the ports it covers.

``ocpp-pipeline outages exclude`` writes the events (its checks: ``kpi.exclusions``), the worker sinks them into
``outage_exclusions`` (``processors.exclusion_intake``), the reports and the view
``port_outages_with_exclusions`` read them. What all of them must agree on is here, below the worker and the reports.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import ValidationError

from schemas.base import datetime_to_ms, validation_summary
from schemas.errors import InvalidExclusionEvent
from schemas.records import ExclusionReason, OutageExclusion

EVERY_PORT = 0
"""``connector_id`` of an exclusion that covers every port of its charger."""


def covers_port(exclusion: OutageExclusion, connector_id: int) -> bool:
    return exclusion.connector_id in (EVERY_PORT, connector_id)


def exclusion_id(charge_point_id: str, connector_id: int, from_at: datetime, to_at: datetime,
                 reason: ExclusionReason, note: str) -> str:
    """Content hash of what is excluded (not of who recorded it): recording the same exclusion twice leaves one row,
    the newest recording's (``recorded_at`` is the table's version); the topic keeps every recording."""
    text = "|".join((charge_point_id, str(connector_id), str(datetime_to_ms(from_at)), str(datetime_to_ms(to_at)),
                     str(reason), note))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_event(value: bytes | None) -> OutageExclusion:
    """An event of ``ocpp.exclusions.v1``, or :class:`~schemas.errors.InvalidExclusionEvent` (the worker counts and
    skips it). The id must be the content's: an event cannot overwrite another exclusion's row by naming its id."""
    if value is None:
        raise InvalidExclusionEvent("a tombstone (no value)")
    try:
        exclusion = OutageExclusion.model_validate_json(value)
    except ValidationError as exc:
        raise InvalidExclusionEvent("not an exclusion event: " + validation_summary(exc, 3)) from None
    expected = exclusion_id(exclusion.charge_point_id, exclusion.connector_id, exclusion.from_at, exclusion.to_at,
                            exclusion.reason, exclusion.note)
    if exclusion.exclusion_id != expected:
        raise InvalidExclusionEvent(f"exclusion_id {exclusion.exclusion_id!r} is not its content's ({expected})")
    return exclusion
