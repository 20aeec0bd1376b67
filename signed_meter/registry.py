"""The key registry: which meter public keys belong to which charge point (and connector).

Keys are registered by **charge point**, and by connector when a charger has one meter per connector:
meter serials are not unique keys (``12345678`` is the serial of two NZR meters with two keys in the
real data; a BAUER serial is published elsewhere with another key), and a serial inside a record is
written by the same party that signs it. A key a frame carries is not registered by being seen.

The registry is a value built from operator events (``keys add`` / ``keys import`` / removal, each with
an author and a reference): :meth:`KeyRegistry.apply` returns a new registry, so replaying the events
rebuilds it. Lookup for a session on connector *n* gives the keys registered for that connector first,
then those for the whole charge point; for an unknown connector, every key of the charge point.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from signed_meter.curves import CURVES
from signed_meter.errors import SignedMeterError, UnusablePublicKey
from signed_meter.keys import MeterKey, decode_public_key


class KeyAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """A public key registered for a charge point (``connector_id`` None: for all its connectors)."""

    charge_point_id: str
    connector_id: int | None
    public_key: str  # as the operator gave it (label, transparency data); decoded per record's curve
    meter_serial: str | None = None  # what the label says; informative, never a lookup key
    author: str = ""
    reference: str = ""

    def decode(self, curve_hint: str | None) -> MeterKey:
        return decode_public_key(self.public_key, curve_hint)


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """An operator's change to the registry (the record on the meter-keys topic)."""

    action: KeyAction
    key: RegisteredKey
    at_ms: int | None = None


def validate_key(public_key: str, curve: str | None = None) -> MeterKey:
    """The key as registered must decode: a DER key on its own, a bare point on ``curve`` or on some curve.

    Raises :class:`UnusablePublicKey` with a message for the operator.
    """
    if curve is not None:
        return decode_public_key(public_key, curve)
    try:
        return decode_public_key(public_key)
    except UnusablePublicKey:
        for name in CURVES:
            try:
                return decode_public_key(public_key, name)
            except UnusablePublicKey:
                continue
        raise


@dataclass(frozen=True)
class KeyRegistry:
    """Registered keys, indexed by charge point. Immutable: every change returns a new registry."""

    entries: tuple[RegisteredKey, ...] = ()
    _by_charge_point: Mapping[str, tuple[RegisteredKey, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[RegisteredKey]] = {}
        for entry in self.entries:
            index.setdefault(entry.charge_point_id, []).append(entry)
        object.__setattr__(self, "_by_charge_point", {cp: tuple(keys) for cp, keys in index.items()})

    def add(self, key: RegisteredKey) -> KeyRegistry:
        """Register ``key`` (validated: raises :class:`UnusablePublicKey`); the same key twice is once."""
        validate_key(key.public_key)
        same = self._same_key(key)
        if any(same(entry) for entry in self.entries):
            return self
        return KeyRegistry((*self.entries, key))

    def remove(self, key: RegisteredKey) -> KeyRegistry:
        """Unregister the same key (same point) for the same charge point and connector."""
        same = self._same_key(key)
        return KeyRegistry(tuple(entry for entry in self.entries if not same(entry)))

    def apply(self, event: KeyEvent) -> KeyRegistry:
        return self.add(event.key) if event.action is KeyAction.ADD else self.remove(event.key)

    def keys_for(self, charge_point_id: str, connector_id: int | None = None) -> tuple[RegisteredKey, ...]:
        """Keys to verify a session of this charge point with: the connector's first, then the station's."""
        entries = self._by_charge_point.get(charge_point_id, ())
        if connector_id is None:
            return entries
        return tuple(e for e in entries if e.connector_id == connector_id) + tuple(
            e for e in entries if e.connector_id is None
        )

    @staticmethod
    def _same_key(key: RegisteredKey) -> Callable[[RegisteredKey], bool]:
        mine = _point_or_text(key.public_key)

        def same(entry: RegisteredKey) -> bool:
            return (
                entry.charge_point_id == key.charge_point_id
                and entry.connector_id == key.connector_id
                and _point_or_text(entry.public_key) == mine
            )

        return same


def _point_or_text(public_key: str) -> object:
    try:
        key = validate_key(public_key)
    except SignedMeterError:
        return public_key
    return (key.curve, key.point)


def registry_of(events: Iterable[KeyEvent]) -> KeyRegistry:
    """The registry the events build, in order; events whose key does not decode are skipped."""
    registry = KeyRegistry()
    for event in events:
        try:
            registry = registry.apply(event)
        except UnusablePublicKey:
            continue
    return registry


class KeyFileError(SignedMeterError):
    """A line of a key import file that cannot be registered; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


KEY_FILE_COLUMNS = ("charge_point_id", "connector_id", "public_key", "meter_serial")


def parse_key_file(text: str, *, author: str = "", reference: str = "") -> list[KeyEvent]:
    """``keys import FILE``: a CSV with a header naming ``charge_point_id``, ``public_key`` and, optionally,
    ``connector_id`` (empty: the whole charge point) and ``meter_serial``. Every line is checked before
    any is returned; the first bad one raises :class:`KeyFileError`.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _key_events(reader, author, reference)
    except csv.Error as e:
        raise KeyFileError(max(reader.line_num, 1), f"not CSV: {e}") from e


def _key_events(reader: csv.DictReader[str], author: str, reference: str) -> list[KeyEvent]:
    missing = {"charge_point_id", "public_key"} - set(reader.fieldnames or ())
    if missing:
        raise KeyFileError(1, f"header lacks {', '.join(sorted(missing))} (columns: {', '.join(KEY_FILE_COLUMNS)})")
    events = []
    for row in reader:
        line = reader.line_num
        cp = (row.get("charge_point_id") or "").strip()
        public_key = (row.get("public_key") or "").strip()
        connector_text = (row.get("connector_id") or "").strip()
        if not cp or not public_key:
            raise KeyFileError(line, "charge_point_id and public_key are required")
        if connector_text and not (connector_text.isdigit() and int(connector_text) >= 1):
            raise KeyFileError(line, f"connector_id {connector_text!r} is not a connector number (1, 2, …)")
        try:
            validate_key(public_key)
        except UnusablePublicKey as e:
            raise KeyFileError(line, str(e)) from e
        key = RegisteredKey(
            cp,
            int(connector_text) if connector_text else None,
            public_key,
            (row.get("meter_serial") or "").strip() or None,
            author,
            reference,
        )
        events.append(KeyEvent(KeyAction.ADD, key))
    return events
