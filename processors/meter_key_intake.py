"""Meter key events (``ocpp.meter_keys.v1``) on their way into the worker's key registry and ``meter_keys``.

Every worker reads the whole topic (one partition, kept forever, a few events per meter), without a consumer group:
each needs every charge point's keys, whichever frames partitions it owns (:mod:`processors.meter_key_reader`). The
records read are handed here: :meth:`MeterKeyIntake.take` folds each valid event into the :class:`MeterKeyHolder`
at once and keeps its row for ``meter_keys``; :meth:`MeterKeyIntake.drain` gives the rows to insert.

A record that is not a valid event (not JSON, a field wrong, a key that decodes to no point of a known curve) is
counted and skipped with a warning naming its partition and offset: its bytes stay on the topic (kept forever),
nothing else is lost, and the worker goes on. Rows are idempotent (the table's sort key is the whole event: charge
point, fingerprint, time, action), so the same events written again by another worker or after a restart change
nothing once merged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from processors.topic_batch import KafkaRecord, TopicBatch
from schemas.errors import InvalidMeterKeyEvent
from schemas.meter_keys import decode_event
from signed_meter.errors import UnusablePublicKey
from signed_meter.key_events import event_of
from signed_meter.registry import KeyEvent, KeyRegistry, RegisteredKey

log = logging.getLogger(__name__)


class MeterKeyHolder:
    """The worker's key registry, kept current by the intake: the ``meter_keys`` lookup the
    :class:`~processors.pipeline.FrameProcessor` verifies signed readings with (``keys_for``, read at verification
    time, so a key registered while the worker runs counts from the next signed reading on).

    One :class:`~signed_meter.registry.KeyRegistry` per charge point: an event changes its own charge point's keys
    only (a fleet has a key per meter; one registry of them all would compare each new key with every other)."""

    def __init__(self) -> None:
        self._by_charge_point: dict[str, KeyRegistry] = {}
        self.events = 0  # events applied since the start

    def apply(self, event: KeyEvent) -> None:
        """Fold one event in (raises :class:`~signed_meter.errors.UnusablePublicKey` for a key that does not decode;
        nothing changes then)."""
        cp = event.key.charge_point_id
        registry = self._by_charge_point.get(cp, KeyRegistry()).apply(event)
        if registry.entries:
            self._by_charge_point[cp] = registry
        else:
            self._by_charge_point.pop(cp, None)
        self.events += 1

    def keys_for(self, charge_point_id: str, connector_id: int | None = None) -> tuple[RegisteredKey, ...]:
        """The keys registered for the charge point: the connector's first, then the whole station's."""
        registry = self._by_charge_point.get(charge_point_id)
        return () if registry is None else registry.keys_for(charge_point_id, connector_id)

    @property
    def key_count(self) -> int:
        return sum(len(r.entries) for r in self._by_charge_point.values())

    @property
    def charge_point_count(self) -> int:
        return len(self._by_charge_point)


class MeterKeyIntake:
    """Takes records of the meter keys topic: valid events into the holder at once, their rows until drained."""

    def __init__(self, holder: MeterKeyHolder) -> None:
        self.holder = holder
        self._batch = TopicBatch("meter_keys")

    def take(self, partition: int, records: Iterable[KafkaRecord]) -> None:
        batch = self._batch
        for record in records:
            batch.take(partition, record.offset)
            try:
                row = decode_event(record.value)
                self.holder.apply(event_of(row))
            except (InvalidMeterKeyEvent, UnusablePublicKey) as exc:
                batch.invalid += 1
                log.warning("meter keys partition %d offset %d skipped (it stays on the topic): %s", partition,
                            record.offset, exc)
                continue
            batch.rows.append(row.row())

    def drain(self) -> TopicBatch:
        batch, self._batch = self._batch, TopicBatch("meter_keys")
        return batch
