"""What every gateway process of one host knows about the others: one byte each, in shared memory.

``gateway --processes N`` runs N processes on one port (SO_REUSEPORT); a load balancer's probe lands
on any of them, so ``/healthz`` and ``/readyz`` answer for the whole host:

- ``/healthz``: 200 while every process is alive (the supervisor marks a process dead the moment it
  exits, and alive again once its replacement serves);
- ``/readyz``: 200 while every process's Kafka producer takes frames.

Each process writes its own byte (:meth:`HostView.report`); the supervisor writes ``DEAD``.
A byte is written and read whole, so no lock is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

DEAD, KAFKA_DOWN, KAFKA_UP = -1, 0, 1


class HostView:
    def __init__(self, slots: Any) -> None:
        """``slots``: a shared ``RawArray('b', N)`` (:meth:`create`), handed to each process at its start."""
        self._slots = slots

    @classmethod
    def create(cls, count: int, context: BaseContext) -> "HostView":
        slots = context.RawArray("b", count)
        for i in range(count):
            slots[i] = DEAD
        return cls(slots)

    def __reduce__(self) -> tuple[Any, ...]:  # travels to a spawned process with its shared memory
        return (HostView, (self._slots,))

    @property
    def count(self) -> int:
        return len(self._slots)

    def report(self, index: int, kafka_up: bool) -> None:
        self._slots[index] = KAFKA_UP if kafka_up else KAFKA_DOWN

    def mark_dead(self, index: int) -> None:
        self._slots[index] = DEAD

    def healthy(self) -> bool:
        return all(state != DEAD for state in self._slots)

    def ready(self) -> bool:
        return all(state == KAFKA_UP for state in self._slots)

    def describe(self) -> str:
        states = list(self._slots)
        return f"{sum(s != DEAD for s in states)}/{len(states)} processes alive, Kafka up in {states.count(KAFKA_UP)}"


@dataclass(frozen=True)
class WorkerPlace:
    """One process's place among the gateway processes of its host."""

    index: int
    count: int
    host: HostView
    multiprocess_dir: Path  # PROMETHEUS_MULTIPROC_DIR: every process's metric values, for /metrics
