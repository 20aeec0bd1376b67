"""Registry events as the pipeline carries them: :class:`~signed_meter.registry.KeyEvent` to and from the
``ocpp.meter_keys.v1`` record / ``meter_keys`` row (:class:`schemas.records.MeterKeyEvent`).

The record adds what the table is read by - the decoded key's ``curve`` and ``fingerprint`` - and the time the
operator's command recorded it. Both directions check the key (:func:`~signed_meter.registry.validate_key`): a
record whose key does not decode raises :class:`~signed_meter.errors.UnusablePublicKey`, wherever it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.base import datetime_to_ms
from schemas.records import MeterKeyAction, MeterKeyEvent
from signed_meter.registry import KeyAction, KeyEvent, KeyRegistry, RegisteredKey, registry_of, validate_key


def record_of(event: KeyEvent, at: datetime, curve: str | None = None) -> MeterKeyEvent:
    """The topic record of ``event``, recorded at ``at``; ``curve`` decodes a bare point (else every curve is tried).

    Raises :class:`~signed_meter.errors.UnusablePublicKey` when the key does not decode."""
    key = validate_key(event.key.public_key, curve)
    return MeterKeyEvent(
        charge_point_id=event.key.charge_point_id,
        connector_id=event.key.connector_id,
        public_key=event.key.public_key,
        curve=key.curve,
        fingerprint=key.fingerprint,
        meter_serial=event.key.meter_serial or "",
        action=MeterKeyAction(event.action.value),
        author=event.key.author,
        reference=event.key.reference,
        at=at,
    )


def event_of(record: MeterKeyEvent) -> KeyEvent:
    """The registry event of a record (from the topic or the table). Raises
    :class:`~signed_meter.errors.UnusablePublicKey` when its key does not decode."""
    validate_key(record.public_key)  # as KeyRegistry.add checks it: the same (cached) decoding, not a second one
    return _event(record)


def registry_of_records(records: Iterable[MeterKeyEvent]) -> KeyRegistry:
    """The registry the records build, folded in the order they were recorded (``at``; ties in the given order).
    Records whose key does not decode are left out (the worker refused them too)."""
    return registry_of(_event(r) for r in sorted(records, key=lambda r: r.at))


def _event(record: MeterKeyEvent) -> KeyEvent:
    key = RegisteredKey(record.charge_point_id, record.connector_id, record.public_key, record.meter_serial or None,
                        record.author, record.reference)
    return KeyEvent(KeyAction(record.action.value), key, datetime_to_ms(record.at))
