"""What a worker does with the frames of its partitions, without I/O.

:class:`FrameProcessor` takes raw Kafka records (partition, offset, key, value) in order, runs one
:class:`~processors.correlator.Correlator` per charge point, keeps a clock per partition (its
watermark: the newest gateway time seen) to expire deadlines of quiet chargers, and collects what
must be written: rows per ClickHouse table, records for ``ocpp.sessions.v1`` / ``ocpp.faults.v1``,
and the correlator states to persist. The Faust agent and ``replay`` are thin shells around it.

Exactly-once in effect: the shells write rows, then records, then states, then commit offsets.
A crash replays frames since the last commit; every state remembers the offset of the last frame
applied to it, so a frame already in the state is not applied twice, and the ClickHouse keys and
insert-deduplication tokens make re-written rows disappear.
"""

from __future__ import annotations

import hashlib
import json
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from processors.correlator import Correlator, CorrelatorConfig, Event, empty_state
from schemas.base import ms_to_datetime
from schemas.envelope import FrameEnvelope
from schemas.records import FaultEvent, Session, StatusChange
from schemas.tables import CONNECTOR_STATUS, FAULT_EVENTS, FRAMES, SESSIONS

# Persisted correlator states are JSON bytes: an immutable snapshot taken at the flush, so what
# the changelog stores is exactly the state after the frames of that flush, never later edits.
StateLoader = Callable[[str], bytes | None]


@dataclass
class Outputs:
    """Everything one flush writes."""

    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {t.name: [] for t in (FRAMES, SESSIONS, FAULT_EVENTS, CONNECTOR_STATUS)})
    sessions: list[Session] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    states: dict[str, bytes] = field(default_factory=dict)  # charge point id -> JSON snapshot
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last)
    advances: dict[int, int] = field(default_factory=dict)  # partition -> clock moved to, without frames
    bad_envelopes: int = 0

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


def frame_row(env: FrameEnvelope) -> list[Any]:
    """The ``frames`` row of an envelope, in column order (see :class:`schemas.records.FrameRow`)."""
    return [
        env.charge_point_id, ms_to_datetime(env.gateway_ts_ms), str(env.direction),
        int(env.message_type) if env.message_type is not None else None, env.action or "", env.message_id or "",
        env.frame, env.ocpp_version, env.gateway_id, env.connection_id, env.seq, env.error or "", list(env.flags),
    ]


def bad_envelope_row(key: bytes | None, value: bytes, error: str) -> list[Any]:
    """A record on the frames topic that is not an envelope: kept, raw, with the reason."""
    return [
        (key or b"").decode("utf-8", "replace")[:48], ms_to_datetime(0), "", None, "", "",
        value.decode("utf-8", "replace"), "", "", "", 0, f"invalid envelope: {error}"[:1000], ["invalid_envelope"],
    ]


class FrameProcessor:
    def __init__(self, config: CorrelatorConfig, load_state: StateLoader) -> None:
        self.config = config
        self._load_state = load_state
        self._correlators: dict[str, Correlator] = {}
        self._watermarks: dict[int, int] = {}
        self._deadlines: dict[int, list[tuple[int, str]]] = {}
        # The deadline each charger has in its heap: a frame that leaves it unchanged pushes nothing,
        # so the heap grows with deadline changes, not with frames.
        self._indexed: dict[str, int] = {}
        self._out = Outputs()
        self._touched_ids: set[str] = set()
        # Snapshots handed out by take() whose write the shell has not confirmed yet: they are newer
        # than what the loader returns, and the next frames of those chargers must start from them.
        self._unpersisted: dict[str, bytes] = {}

    # --- input -----------------------------------------------------------------------------------

    def process(self, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        first, _ = self._out.offsets.get(partition, (offset, offset))
        self._out.offsets[partition] = (first, offset)
        try:
            env = FrameEnvelope.model_validate_json(value)
        except ValidationError as exc:
            self._out.rows[FRAMES.name].append(bad_envelope_row(key, value, str(exc.errors()[:1])))
            self._out.bad_envelopes += 1
            return
        self._out.rows[FRAMES.name].append(frame_row(env))
        correlator = self._correlator(env.charge_point_id, partition)
        state = correlator.state
        if offset <= state.get("offset", -1):
            return  # applied before a crash that came between the state write and the commit
        try:
            events = correlator.feed(env)
        finally:
            state["offset"] = offset
            self._touched(correlator, partition)
        self._emit(events)
        if env.gateway_ts_ms > self._watermarks.get(partition, 0):
            self._watermarks[partition] = env.gateway_ts_ms
        self._expire(partition)

    def advance(self, partition: int, now_ms: int) -> None:
        """Move a quiet partition's clock on (the live worker does so with wall time)."""
        if now_ms > self._watermarks.get(partition, 0):
            self._watermarks[partition] = now_ms
            self._out.advances[partition] = now_ms
            self._expire(partition)

    def watermark(self, partition: int) -> int | None:
        return self._watermarks.get(partition)

    def recover(self, partition: int, states: Iterable[tuple[str, bytes]]) -> None:
        """Index the deadlines of persisted states (after a restart or a rebalance)."""
        for charge_point_id, snapshot in states:
            state = json.loads(snapshot)
            if state.get("p") == partition:
                self._index(charge_point_id, partition, Correlator(charge_point_id, self.config, state).next_deadline())

    # --- output ----------------------------------------------------------------------------------

    def take(self) -> Outputs:
        """Everything collected since the last take. The caller stores ``states`` (JSON snapshots)
        and then calls :meth:`persisted`; until then this processor keeps using its own copies."""
        out, self._out = self._out, Outputs()
        for charge_point_id in self._touched_ids:
            out.states[charge_point_id] = json.dumps(self._correlators[charge_point_id].state, separators=(",", ":")).encode()
        self._touched_ids.clear()
        self._correlators.clear()
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

    def _correlator(self, charge_point_id: str, partition: int) -> Correlator:
        correlator = self._correlators.get(charge_point_id)
        if correlator is None:
            snapshot = self._unpersisted.get(charge_point_id) or self._load_state(charge_point_id)
            state = json.loads(snapshot) if snapshot else empty_state()
            state["p"] = partition
            correlator = self._correlators[charge_point_id] = Correlator(charge_point_id, self.config, state)
        return correlator

    def _touched(self, correlator: Correlator, partition: int) -> None:
        self._touched_ids.add(correlator.charge_point_id)
        self._index(correlator.charge_point_id, partition, correlator.next_deadline())

    def _index(self, charge_point_id: str, partition: int, deadline: int | None) -> None:
        if deadline is None or self._indexed.get(charge_point_id) == deadline:
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
            correlator = self._correlator(charge_point_id, partition)
            current = correlator.next_deadline()
            if current is None or current >= now:
                self._index(charge_point_id, partition, current)
                continue  # a stale entry: the deadline moved or went
            self._emit(correlator.advance(now))
            self._touched(correlator, partition)

    def _emit(self, events: list[Event]) -> None:
        rows = self._out.rows
        for event in events:
            if isinstance(event, StatusChange):
                rows[CONNECTOR_STATUS.name].append(event.row())
            elif isinstance(event, FaultEvent):
                rows[FAULT_EVENTS.name].append(event.row())
                self._out.faults.append(event)
            else:
                rows[SESSIONS.name].append(event.row())
                self._out.sessions.append(event)
