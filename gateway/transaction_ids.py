"""OCPP 1.6 transactionIds: int32 > 0, unique per charge point across gateway restarts and replicas,
with no shared database.

Scheme
------
``transactionId = seconds since 2025-01-01T00:00:00Z on the gateway clock + 1``, raised to
``last id this process gave the charge point + 1`` when that is higher.

Why it is unique per charge point: a charger has one connection at a time (a new one replaces
the old, see the gateway README), and OCPP-J lets it have one CALL outstanding, so its
StartTransactions are handled one after another. Within one process the floor makes ids strictly
increasing. Between processes (a restart, another replica after a reconnect) the clock does:
a reconnect plus a new StartTransaction takes well over a second, so the new process's clock is
already past every id the old one gave.

Several processes on one host (``ocpp-pipeline gateway --processes N``): the kernel spreads
connections over them (SO_REUSEPORT), so a charger that reconnects may land on another process of the
same host at once, sooner than the clock argument allows. Each process therefore owns one residue
class: process ``i`` of ``N`` gives only ids ``≡ i (mod N)`` (the floor above, raised to the next id of
its class). Two processes of one host can never give the same id, whatever the timing; within a
process ids still increase strictly; between hosts the clock argument holds, with ids up to ``N - 1``
seconds ahead of the clock (the rounding up to the class).

Limits (documented, tested):
- ids run out on 2093-01-19 (2^31 - 1 seconds after the epoch); :class:`TransactionIdExhausted` then;
- replica clocks must agree to better than the time a charger needs to reconnect and start again
  (NTP keeps them within milliseconds); a process that gave a charger a burst of more than one id
  per second has used ids up to a few seconds ahead of its clock;
- a StartTransaction resent after a lost answer (same connector, idTag, meterStart, timestamp) gets
  the same id back from the same process; after a restart or on another replica it gets a new id,
  and the processors merge the duplicate start by its content (flagged).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MAX_TRANSACTION_ID = 2**31 - 1
RESENDS_REMEMBERED = 16  # per charge point: more than any charger retries one start


class TransactionIdExhausted(RuntimeError):
    """The gateway clock is past what an int32 transactionId can express."""


class TransactionIdAllocator:
    """Gives out transactionIds; one per gateway process, shared by all its connections.

    ``process_index`` / ``process_count``: this process's place among the gateway processes of its
    host (0 / 1 for a single process); its ids are those ``≡ process_index (mod process_count)``."""

    def __init__(self, epoch_ms: int = EPOCH_MS, *, process_index: int = 0, process_count: int = 1) -> None:
        if not 0 <= process_index < process_count:
            raise ValueError(f"process index {process_index} is not one of {process_count} processes")
        self._epoch_ms = epoch_ms
        self._index = process_index
        self._count = process_count
        self._last: dict[str, int] = {}
        self._recent: dict[str, OrderedDict[Hashable, int]] = {}

    def allocate(self, charge_point_id: str, start_key: Hashable, now_ms: int) -> int:
        """The transactionId for a StartTransaction of ``charge_point_id`` seen at ``now_ms``.

        ``start_key`` identifies the start's content: the same key gets the same id again.
        """
        recent = self._recent.setdefault(charge_point_id, OrderedDict())
        if start_key in recent:
            recent.move_to_end(start_key)
            return recent[start_key]
        candidate = max((now_ms - self._epoch_ms) // 1000 + 1, 1)
        transaction_id = max(candidate, self._last.get(charge_point_id, 0) + 1)
        transaction_id += (self._index - transaction_id) % self._count  # up to this process's class
        if transaction_id > MAX_TRANSACTION_ID:
            raise TransactionIdExhausted(f"transactionId {transaction_id} does not fit OCPP 1.6's int32")
        self._last[charge_point_id] = transaction_id
        recent[start_key] = transaction_id
        if len(recent) > RESENDS_REMEMBERED:
            recent.popitem(last=False)
        return transaction_id
