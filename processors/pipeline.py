"""What a worker does with the frames of its partitions, without I/O.

:class:`FrameProcessor` takes raw Kafka records (partition, offset, key, value, timestamp) in order,
runs one :class:`~processors.correlator.Correlator` per charge point, keeps a clock per partition (its
watermark: the newest gateway time seen) to expire deadlines of quiet chargers, and collects what
must be written: rows per ClickHouse table, records for ``ocpp.sessions.v1`` / ``ocpp.faults.v1``,
and the correlator states to persist. The Faust agent and ``replay`` are thin shells around it.

Exactly-once in effect: the shells write rows, then records, then states, then commit offsets.
A crash replays frames since the last commit; every state remembers the offset of the last frame
applied to it, so a frame already in the state is not applied twice, and the ClickHouse keys and
insert-deduplication tokens make re-written rows disappear.

No record can stop a partition (DESIGN.md, bad input: "the raw bytes kept, and nothing else lost"):

- a record that is not an envelope, or has no value (a tombstone), is one ``frames`` row of its own,
  flagged, keyed by its Kafka coordinates (received_at = the record's timestamp, connection_id
  ``kafka:<partition>``, seq = offset), so each is kept and a replay rewrites the same row;
- a frame on which the correlator raises is kept, flagged ``processing_failed`` with the error, counted,
  logged once, and skipped: the charger's state is rolled back to exactly what it was before the frame
  (below), so its later frames and every other charger go on as if the frame had not come;
- every row is made storable (:mod:`schemas.storable`) before it leaves, so no value can make an
  insert fail forever.

Rollback without a copy per frame: a correlator lives for one batch (until :meth:`take`). Beside it the
processor keeps the snapshot bytes it was loaded from (which it holds anyway) and a journal of what was
applied since (``feed`` of an envelope, ``advance`` to a time). When a call raises, the correlator is
rebuilt from the snapshot and the journal re-applied, its events discarded (they were collected when the
calls first ran); if re-applying raises too, the snapshot alone is taken, and that is logged.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from pydantic import ValidationError

from processors import state_codec
from processors.charge_point import NO_KEYS, KeyLookup
from processors.correlator import Correlator
from processors.envelope_decode import decode_envelope
from processors.events import Event
from processors.inputs import Frame
from processors.settings import CorrelatorConfig
from processors.state import CorrelatorState
from schemas.base import ms_to_datetime
from schemas.flags import Flag, close_code
from schemas.records import ChargeAttempt, FaultEvent, PortOutage, Session, StatusChange
from schemas.storable import row_coercer
from schemas.tables import (
    ALL_TABLES,
    CHARGE_ATTEMPTS,
    CONNECTOR_STATUS,
    FAULT_EVENTS,
    FRAMES,
    PORT_OUTAGES,
    SESSIONS,
    Table,
)
from signed_meter.model import SignatureStatus

log = logging.getLogger(__name__)

# Persisted correlator states are JSON bytes: an immutable snapshot taken at the flush, so what
# the changelog stores is exactly the state after the frames of that flush, never later edits.
StateLoader = Callable[[str], bytes | None]

_FRAMES_COLUMNS = FRAMES.column_names
_ERROR, _FLAGS = _FRAMES_COLUMNS.index("error"), _FRAMES_COLUMNS.index("flags")
# Resolved once: ``row_coercer`` is cached on the (frozen, deep) Table, and hashing it per row cost more
# than the check itself.
_COERCE = {t.name: row_coercer(t) for t in ALL_TABLES}
# The table each kind of correlator event is a row of.
_EVENT_TABLES = {StatusChange: CONNECTOR_STATUS, FaultEvent: FAULT_EVENTS, Session: SESSIONS, PortOutage: PORT_OUTAGES,
                 ChargeAttempt: CHARGE_ATTEMPTS}


def _load_state_bytes(snapshot: bytes | None) -> CorrelatorState:
    """A persisted snapshot (None: a charger never seen) as the correlator's state."""
    return state_codec.loads(snapshot) if snapshot else CorrelatorState()


def _dump_state(correlator: Correlator) -> bytes:
    return state_codec.dumps(correlator.state)


@dataclass
class Outputs:
    """Everything one flush writes."""

    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {t.name: [] for t in ALL_TABLES})
    sessions: list[Session] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    states: dict[str, bytes] = field(default_factory=dict)  # charge point id -> JSON snapshot
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last)
    advances: dict[int, int] = field(default_factory=dict)  # partition -> clock moved to, without frames
    bad_envelopes: int = 0  # records that are not envelopes, tombstones included
    processing_failures: int = 0  # frames (or clock moves) on which a correlator raised
    unstorable_rows: int = 0  # rows with a value made storable (flagged value_not_storable)
    signed_values: dict[str, int] = field(default_factory=dict)  # verdicts on signed meter values, by status (issue 25)

    @property
    def frame_count(self) -> int:
        return len(self.rows[FRAMES.name])

    def token(self, salt: str) -> str:
        """An insert-deduplication token: the same frames and clock moves give the same token
        (a retried batch lands once), different ones a different token. The clock moves matter:
        batches without frames (sessions closed by a status window on a quiet partition) once all
        had the same token, and ClickHouse dropped every such batch after the first."""
        spans = ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self.offsets.items()))
        moves = ",".join(f"{p}@{ms}" for p, ms in sorted(self.advances.items()))
        return hashlib.sha256(f"{salt}|{spans}|{moves}".encode()).hexdigest()[:32]


_DATETIME_MIN = datetime.min.replace(tzinfo=timezone.utc)
_DATETIME_MAX = datetime.max.replace(tzinfo=timezone.utc)


def _received_at(ms: int) -> datetime:
    """A gateway / Kafka time in ms as a datetime; one beyond what a datetime holds becomes datetime's
    own bound, which the storable check then clamps to DateTime64's and flags."""
    try:
        return ms_to_datetime(ms)
    except (OverflowError, ValueError, OSError):
        return _DATETIME_MIN if ms < 0 else _DATETIME_MAX


def _frames_row(*, charge_point_id: str, received_at: datetime, direction: str, message_type: int | None, action: str,
                message_id: str, raw: str, ocpp_version: str, gateway_id: str, connection_id: str, seq: int, error: str,
                flags: list[str]) -> list[Any]:
    """A ``frames`` row from its columns by name (:data:`schemas.tables.FRAMES`), in the table's order. The keyword
    names are the columns' (a test holds them equal), so a column moved in the table moves here by name."""
    return [charge_point_id, received_at, direction, message_type, action, message_id, raw, ocpp_version, gateway_id,
            connection_id, seq, error, flags]


def frame_row(env: Frame) -> list[Any]:
    """The ``frames`` row of an envelope (see :class:`schemas.records.FrameRow`). A connection event's row is
    flagged with the event (``connected`` / ``disconnected``, ``close_code:<n>``)."""
    flags = list(env.flags)
    if env.event is not None:
        flags.append(Flag(env.event.value))
        if env.close_code is not None:
            flags.append(close_code(env.close_code))
    return _frames_row(
        charge_point_id=env.charge_point_id, received_at=_received_at(env.gateway_ts_ms), direction=str(env.direction),
        message_type=int(env.message_type) if env.message_type is not None else None, action=env.action or "",
        message_id=env.message_id or "", raw=env.frame, ocpp_version=env.ocpp_version, gateway_id=env.gateway_id,
        connection_id=env.connection_id, seq=env.seq, error=env.error or "", flags=flags,
    )


def bad_record_row(key: bytes | None, value: bytes | None, error: str, flag: Flag, *, partition: int, offset: int,
                   timestamp_ms: int | None) -> list[Any]:
    """A record on the frames topic that is not an envelope (or has no value): kept, raw, with the reason.
    Its sort key comes from its Kafka coordinates, so every such record is a row of its own and a replay
    rewrites the same one."""
    return _frames_row(
        charge_point_id=(key or b"").decode("utf-8", "replace")[:48], received_at=_received_at(max(timestamp_ms or 0, 0)),
        direction="", message_type=None, action="", message_id="", raw=(value or b"").decode("utf-8", "replace"),
        ocpp_version="", gateway_id="", connection_id=f"kafka:{partition}", seq=offset, error=error[:1000], flags=[flag],
    )


class _Fed(NamedTuple):
    """Journal: a frame applied, at its offset."""

    envelope: Frame
    offset: int


class _Advanced(NamedTuple):
    """Journal: the clock moved on."""

    now_ms: int


class _Skipped(NamedTuple):
    """Journal: a frame that failed, kept in the frames table and skipped (its offset counts as applied)."""

    offset: int


@dataclass(slots=True)
class _Loaded:
    """A correlator of the current batch: the snapshot it was loaded from and the journal of what
    was applied to it since: enough to rebuild it as it was before any one call."""

    correlator: Correlator
    snapshot: bytes | None
    journal: list[_Fed | _Advanced | _Skipped] = field(default_factory=list)


class FrameProcessor:
    def __init__(self, config: CorrelatorConfig, load_state: StateLoader, *, meter_keys: KeyLookup = NO_KEYS) -> None:
        """``meter_keys``: the meter public keys signed meter values are verified with (issue 25): anything with
        ``keys_for(charge_point_id, connector_id)``, asked at each verification (a holder whose registry is replaced
        later is seen)."""
        self.config = config
        self.meter_keys = meter_keys
        self._load_state = load_state
        self._batch: dict[str, _Loaded] = {}
        self._watermarks: dict[int, int] = {}
        self._deadlines: dict[int, list[tuple[int, str]]] = {}
        # The deadline each charger has in its heap: a frame that leaves it unchanged pushes nothing,
        # so the heap grows with deadline changes, not with frames.
        self._indexed: dict[str, int] = {}
        # A deadline whose advance raised: not indexed again until the charger's next frame applies.
        self._stuck: dict[str, int] = {}
        self._out = Outputs()
        self._touched_ids: set[str] = set()
        self._logged: set[str] = set()  # chargers whose failure this batch was logged with its traceback
        # Snapshots handed out by take() whose write the shell has not confirmed yet: they are newer
        # than what the loader returns, and the next frames of those chargers must start from them.
        self._unpersisted: dict[str, bytes] = {}

    # --- input -----------------------------------------------------------------------------------

    def process(self, partition: int, offset: int, key: bytes | None, value: bytes | None,
                timestamp_ms: int | None = None) -> None:
        """One record of the frames topic; ``timestamp_ms`` is its Kafka timestamp (keys the rows of
        records that are not envelopes)."""
        first, _ = self._out.offsets.get(partition, (offset, offset))
        self._out.offsets[partition] = (first, offset)
        if value is None:
            self._bad_record(key, None, "tombstone: a record without a value", Flag.TOMBSTONE, partition, offset, timestamp_ms)
            return
        try:
            env = decode_envelope(value)
        except ValidationError as exc:
            self._bad_record(key, value, f"invalid envelope: {exc.errors()[:1]}", Flag.INVALID_ENVELOPE,
                             partition, offset, timestamp_ms)
            return
        row = frame_row(env)
        fed, error = self._feed(env, partition, offset)
        if error is not None:
            row[_FLAGS] = [*row[_FLAGS], Flag.PROCESSING_FAILED]
            if not row[_ERROR]:
                row[_ERROR] = f"processing failed: {type(error).__name__}: {error}"[:1000]
        self._keep(FRAMES, row)
        if fed:
            if env.gateway_ts_ms > self._watermarks.get(partition, 0):
                self._watermarks[partition] = env.gateway_ts_ms
            self._expire(partition)

    def process_batch(self, partition: int, records: Iterable[Any]) -> int:
        """Records of one partition, in offset order, as Kafka clients give them (objects with ``offset``,
        ``key``, ``value`` and ``timestamp`` in ms): the same as :meth:`process` on each. Returns the
        offset after the last one."""
        process = self.process
        offset = -1
        for record in records:
            offset = record.offset
            process(partition, offset, record.key, record.value, record.timestamp)
        return offset + 1

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions this worker no longer owns (a rebalance gave them to another): drop their clocks
        and deadlines. Call it only once their batch was written (nothing of them is pending)."""
        for partition in partitions:
            self._watermarks.pop(partition, None)
            for _, charge_point_id in self._deadlines.pop(partition, []):
                self._indexed.pop(charge_point_id, None)
                self._stuck.pop(charge_point_id, None)
                self._unpersisted.pop(charge_point_id, None)

    def advance(self, partition: int, now_ms: int) -> None:
        """Move a quiet partition's clock on (the live worker does so with wall time)."""
        if now_ms > self._watermarks.get(partition, 0):
            self._watermarks[partition] = now_ms
            self._out.advances[partition] = now_ms
            self._expire(partition)

    def watermark(self, partition: int) -> int | None:
        return self._watermarks.get(partition)

    def recover(self, partitions: int | Iterable[int], states: Iterable[tuple[str, bytes]]) -> int:
        """Index the deadlines of persisted states of ``partitions`` (after a restart or a rebalance),
        in one pass over ``states``; returns how many states were read. A state of another partition (a
        standby copy, or a partition of another worker) is told apart by its last key, ``"p"``, without
        parsing it."""
        wanted = {partitions} if isinstance(partitions, int) else set(partitions)
        read = 0
        for charge_point_id, snapshot in states:
            hint = state_codec.partition_hint(snapshot)
            if hint is not None and hint not in wanted:
                continue
            try:
                state = _load_state_bytes(snapshot)
                read += 1
                if state.partition in wanted:
                    self._index(charge_point_id, state.partition,
                                Correlator(charge_point_id, self.config, state).next_deadline())
            except Exception:
                log.exception("the persisted state of charge point %r is unreadable: its deadlines wait for its next frame",
                              charge_point_id)
        return read

    # --- output ----------------------------------------------------------------------------------

    def take(self) -> Outputs:
        """Everything collected since the last take. The caller stores ``states`` (JSON snapshots)
        and then calls :meth:`persisted`; until then this processor keeps using its own copies."""
        out, self._out = self._out, Outputs()
        for charge_point_id in self._touched_ids:
            loaded = self._batch[charge_point_id]
            try:
                out.states[charge_point_id] = _dump_state(loaded.correlator)
            except Exception:
                log.exception("charge point %r: its state cannot be written; it stays at its last snapshot", charge_point_id)
                out.processing_failures += 1
                if loaded.snapshot is not None:
                    out.states[charge_point_id] = loaded.snapshot
        self._touched_ids.clear()
        self._batch.clear()  # the correlators and their journals: the next batch loads the snapshots
        self._logged.clear()
        self._unpersisted.update(out.states)
        return out

    def persisted(self, states: dict[str, bytes]) -> None:
        """The shell stored these snapshots: from now on the loader returns them."""
        for charge_point_id, snapshot in states.items():
            if self._unpersisted.get(charge_point_id) is snapshot:
                del self._unpersisted[charge_point_id]

    @property
    def pending_frames(self) -> int:
        return self._out.frame_count

    # --- internals -------------------------------------------------------------------------------

    def _feed(self, env: Frame, partition: int, offset: int) -> tuple[bool, Exception | None]:
        """Apply one envelope to its charger: (applied, the exception it raised)."""
        charge_point_id = env.charge_point_id
        try:
            loaded = self._loaded(charge_point_id, partition)
            correlator = loaded.correlator
            if offset <= correlator.state.offset:
                return False, None  # applied before a crash that came between the state write and the commit
            events = correlator.feed(env)
            correlator.state.offset = offset
            if correlator.cp.signed_statuses:
                self._count_signed(correlator.cp.signed_statuses)
            self._stuck.pop(charge_point_id, None)  # its state moved on: a stuck deadline is tried again
            self._touched(correlator, partition)
        except Exception as exc:
            self._failed(charge_point_id, partition, exc, f"frame at {partition}/{offset}", skipped_offset=offset)
            return False, exc
        loaded.journal.append(_Fed(env, offset))
        self._emit(events)
        return True, None

    def _failed(self, charge_point_id: str, partition: int, exc: Exception, what: str, *,
                skipped_offset: int | None) -> None:
        """Count and log a correlator failure (called in the ``except`` block), then roll back."""
        self._out.processing_failures += 1
        if charge_point_id not in self._logged:
            self._logged.add(charge_point_id)
            log.exception("charge point %r: processing the %s failed (%s: %s); skipped, its state rolled back",
                          charge_point_id, what, type(exc).__name__, exc)
        else:
            log.debug("charge point %r: processing the %s failed again (%s)", charge_point_id, what, exc)
        self._roll_back(charge_point_id, partition, skipped_offset)

    def _roll_back(self, charge_point_id: str, partition: int, skipped_offset: int | None) -> None:
        loaded = self._batch.get(charge_point_id)
        if loaded is None:
            return  # failed while loading: nothing was applied
        try:
            correlator = self._rebuild(charge_point_id, partition, loaded)
        except Exception:
            log.exception("charge point %r: re-applying the batch's %d operations after a failure failed too; "
                          "its state falls back to its last snapshot", charge_point_id, len(loaded.journal))
            correlator = self._fresh(charge_point_id, partition, loaded.snapshot)
            loaded.journal.clear()
        if skipped_offset is not None and skipped_offset > correlator.state.offset:
            correlator.state.offset = skipped_offset  # handled (kept, flagged): a crash-replay skips it too
            loaded.journal.append(_Skipped(skipped_offset))
        loaded.correlator = correlator
        try:
            self._touched(correlator, partition)
        except Exception:
            log.exception("charge point %r: its deadline cannot be read after a rollback", charge_point_id)

    def _rebuild(self, charge_point_id: str, partition: int, loaded: _Loaded) -> Correlator:
        """The correlator as the snapshot plus the journal made it; events are discarded."""
        correlator = self._fresh(charge_point_id, partition, loaded.snapshot)
        state = correlator.state
        for entry in loaded.journal:
            if isinstance(entry, _Fed):
                correlator.feed(entry.envelope)
                state.offset = entry.offset
            elif isinstance(entry, _Advanced):
                correlator.advance(entry.now_ms)
            else:
                state.offset = entry.offset
        correlator.cp.signed_statuses.clear()  # counted when the frames were first applied
        return correlator

    def _fresh(self, charge_point_id: str, partition: int | None, snapshot: bytes | None) -> Correlator:
        state = _load_state_bytes(snapshot)
        state.partition = partition
        return Correlator(charge_point_id, self.config, state, meter_keys=self.meter_keys)

    def _count_signed(self, statuses: list[SignatureStatus]) -> None:
        tally = self._out.signed_values
        for status in statuses:
            tally[str(status)] = tally.get(str(status), 0) + 1
        statuses.clear()

    def _loaded(self, charge_point_id: str, partition: int) -> _Loaded:
        loaded = self._batch.get(charge_point_id)
        if loaded is None:
            snapshot = self._unpersisted.get(charge_point_id) or self._load_state(charge_point_id)
            try:
                correlator = self._fresh(charge_point_id, partition, snapshot)
            except Exception:
                # A state no code can read would fail every frame of the charger, forever.
                log.exception("charge point %r: its persisted state is unreadable; starting from an empty state",
                              charge_point_id)
                self._out.processing_failures += 1
                snapshot = None
                correlator = self._fresh(charge_point_id, partition, None)
            loaded = self._batch[charge_point_id] = _Loaded(correlator, snapshot)
        return loaded

    def _touched(self, correlator: Correlator, partition: int) -> None:
        self._touched_ids.add(correlator.charge_point_id)
        self._index(correlator.charge_point_id, partition, correlator.next_deadline())

    def _index(self, charge_point_id: str, partition: int, deadline: int | None) -> None:
        if deadline is None or self._indexed.get(charge_point_id) == deadline or self._stuck.get(charge_point_id) == deadline:
            return
        self._indexed[charge_point_id] = deadline
        heapq.heappush(self._deadlines.setdefault(partition, []), (deadline, charge_point_id))

    def _expire(self, partition: int) -> None:
        heap = self._deadlines.get(partition)
        now = self._watermarks.get(partition, 0)
        while heap and heap[0][0] < now:
            deadline, charge_point_id = heapq.heappop(heap)
            if self._indexed.get(charge_point_id) == deadline:
                del self._indexed[charge_point_id]  # the live entry is consumed
            current: int | None = deadline
            try:
                loaded = self._loaded(charge_point_id, partition)
                correlator = loaded.correlator
                current = correlator.next_deadline()
                if current is None or current >= now:
                    self._index(charge_point_id, partition, current)
                    continue  # a stale entry: the deadline moved or went
                events = correlator.advance(now)
                self._touched(correlator, partition)
            except Exception as exc:
                if current is not None:
                    self._stuck[charge_point_id] = current  # or this loop would pop it again at once
                self._failed(charge_point_id, partition, exc, f"clock move to {now} ms (partition {partition})",
                             skipped_offset=None)
                continue
            loaded.journal.append(_Advanced(now))
            self._emit(events)

    def _keep(self, table: Table, row: list[Any]) -> list[Any]:
        storable = _COERCE[table.name](row)
        if storable is not row:
            self._out.unstorable_rows += 1
        self._out.rows[table.name].append(storable)
        return storable

    def _bad_record(self, key: bytes | None, value: bytes | None, error: str, flag: Flag, partition: int, offset: int,
                    timestamp_ms: int | None) -> None:
        self._keep(FRAMES, bad_record_row(key, value, error, flag, partition=partition, offset=offset,
                                          timestamp_ms=timestamp_ms))
        self._out.bad_envelopes += 1

    def _emit(self, events: list[Event]) -> None:
        rows, out = self._out.rows, self._out
        for event in events:
            table = _EVENT_TABLES[type(event)]
            # The record published on a topic is the storable one too: the same values as its row
            # (schemas.storable.storable_record, with the table's coercer resolved once).
            record, row = event, event.row()
            fixed = _COERCE[table.name](row)
            if fixed is not row:
                record, row = event.model_copy(update=dict(zip(type(event).model_fields, fixed))), fixed
                out.unstorable_rows += 1
            rows[table.name].append(row)
            if isinstance(record, FaultEvent):
                out.faults.append(record)
            elif isinstance(record, Session):
                out.sessions.append(record)
