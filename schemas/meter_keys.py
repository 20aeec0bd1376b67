"""The meter key event (``ocpp.meter_keys.v1``): its decoding, below the worker and the CLI.

``ocpp-pipeline keys`` writes the events (after checking that the key decodes: ``signed_meter.registry.validate_key``),
the worker folds them into its key registry and sinks them into ``meter_keys`` (``processors.meter_key_intake``),
``verify`` folds the table. What all of them must agree on - the event's shape - is here. Whether the key is a point
on a curve is ``signed_meter``'s to say (cryptography): a record that passes this check but whose key does not decode
is still refused by the worker, with the same error.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.base import validation_summary
from schemas.errors import InvalidMeterKeyEvent
from schemas.records import MeterKeyEvent

MAX_PUBLIC_KEY_CHARS = 4096
"""The longest public key text an event may carry (``signed_meter.limits``: 4 KiB per key)."""


def decode_event(value: bytes | None) -> MeterKeyEvent:
    """An event of ``ocpp.meter_keys.v1``, or :class:`~schemas.errors.InvalidMeterKeyEvent` (the worker counts and
    skips it; its bytes stay on the topic, kept forever)."""
    if value is None:
        raise InvalidMeterKeyEvent("a tombstone (no value)")
    try:
        event = MeterKeyEvent.model_validate_json(value)
    except ValidationError as exc:
        raise InvalidMeterKeyEvent("not a meter key event: " + validation_summary(exc, 3)) from None
    if not event.charge_point_id or not event.public_key.strip():
        raise InvalidMeterKeyEvent("a meter key event names a charge point and a public key")
    if event.connector_id is not None and event.connector_id < 1:
        raise InvalidMeterKeyEvent(f"connector_id {event.connector_id} is not a connector (1, 2, ...; null: every one)")
    if len(event.public_key) > MAX_PUBLIC_KEY_CHARS:
        raise InvalidMeterKeyEvent(f"a public key of {len(event.public_key)} characters (at most {MAX_PUBLIC_KEY_CHARS})")
    return event
