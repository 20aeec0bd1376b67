"""The I/O side of the worker's stall rule (:mod:`processors.stall`): a crash-only safety net.

A consumer that has frames to read but hands none to the processor for ``OCPP_WORKER_STALL_S`` is nudged once (each
frames partition behind is sought to the offset that comes next, which is always safe: what is read again is
ignored), and if it stays stuck the process exits with :data:`STALLED_EXIT_CODE` so that Kubernetes (or ``dev``)
restarts it; offsets and states make the restart lose nothing. It never resumes partitions: Faust pauses them while
it recovers the table, and frames read then would miss their states. A stopping worker takes no frames on purpose,
and is not watched.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn, Protocol

from processors.faust_adapter import TP
from processors.intake import Intake
from processors.stall import StallAction, StallWatch

log = logging.getLogger(__name__)

STALLED_EXIT_CODE = 70  # EX_SOFTWARE: restart me


class WatchedConsumer(Protocol):
    """What the watch asks of the consumer (:class:`processors.faust_adapter.FaustConsumer`)."""

    @property
    def rebalancing(self) -> bool: ...

    def assignment(self) -> set[TP]: ...

    def committed_offset(self, tp: TP) -> int | None: ...

    async def highwaters(self, tps: Iterable[TP]) -> Mapping[TP, int]: ...

    async def seek(self, tp: TP, offset: int) -> bool: ...


def exit_stalled() -> NoReturn:
    logging.shutdown()
    os._exit(STALLED_EXIT_CODE)


class StallWatchdog:
    """Looks at Kafka when :class:`~processors.stall.StallWatch` says a look is due (from the worker's timer)."""

    def __init__(self, rule: StallWatch, consumer: WatchedConsumer, intake: Intake, frames_topic: str, *,
                 exit_process: Callable[[], NoReturn] = exit_stalled, clock: Callable[[], float] = time.monotonic) -> None:
        self.rule = rule
        self._consumer, self._intake, self._frames_topic = consumer, intake, frames_topic
        self._exit, self._clock = exit_process, clock

    async def check(self, *, stopping: bool = False) -> StallAction | None:
        """One look: None (not due, nothing to read, or stopping) or NUDGE (partitions sought to their next
        offsets); a consumer still stuck a limit after the nudge exits the process (``exit_process``)."""
        if stopping or not self.rule.due(self._clock()):
            return None
        consumer = self._consumer
        tps = [tp for tp in consumer.assignment() if tp.topic == self._frames_topic]
        if not tps:
            return None
        ends = await consumer.highwaters(tps)
        behind: dict[TP, int] = {}
        for tp in tps:
            # What the processor has taken, not what the consumer fetched.
            done = self._intake.next_offset(tp.partition, consumer.committed_offset(tp)) or 0
            if ends.get(tp, 0) > done:
                behind[tp] = done
        if not behind:
            self.rule.quiet(self._clock())
            return None
        described = ", ".join(f"{tp.partition}: {done}/{ends.get(tp, 0)}" for tp, done in sorted(behind.items()))
        if self.rule.stuck(self._clock()) is StallAction.NUDGE:
            log.warning("no frames for %.0f s while partitions have some (partition: next/end %s): seeking them to the "
                        "next offsets", self.rule.stall_s, described)
            if not consumer.rebalancing:
                for tp, done in behind.items():
                    await consumer.seek(tp, done)
            return StallAction.NUDGE
        log.error("consumer still stalled after a nudge (partition: next/end %s; rebalancing: %s): exiting with %d to "
                  "be restarted", described, consumer.rebalancing, STALLED_EXIT_CODE)
        self._exit()
