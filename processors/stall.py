"""The worker's stall rule, apart from the consumer it watches: when a worker that has frames to read
but takes none is nudged, and when it gives up and exits to be restarted.

Progress is anything that shows the consumer moving: frames taken, the table's changelog read while a
recovery runs, a new assignment (its recovery starts), the deadlines of recovered states indexed. A restore
of millions of changelog records takes minutes and is progress all along; a restore that stops moving is a
stall like any other. Standby changelog records read while the worker runs are not progress of the frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StallAction(StrEnum):
    NUDGE = "nudge"  # stuck for the limit: seek each partition behind to the offset that comes next
    EXIT = "exit"  # still stuck a limit after the nudge: exit so that the process is restarted


@dataclass
class StallWatch:
    """``stall_s``: how long without progress, while Kafka holds frames for this worker, counts as a stall."""

    stall_s: float
    last_progress: float
    nudged: bool = False

    def progressed(self, now: float) -> None:
        self.last_progress, self.nudged = now, False

    def changelog_read(self, now: float, *, recovering: bool) -> None:
        if recovering:
            self.progressed(now)

    def due(self, now: float) -> bool:
        """Quiet for ``stall_s``: the caller looks at Kafka and says :meth:`quiet` or :meth:`stuck`."""
        return now - self.last_progress >= self.stall_s

    def quiet(self, now: float) -> None:
        """Nothing to read: idle, not stalled (and whatever was nudged has caught up)."""
        self.progressed(now)

    def stuck(self, now: float) -> StallAction:
        """Frames wait and none were taken for ``stall_s``: a nudge first, the exit if that did not help."""
        if self.nudged:
            return StallAction.EXIT
        self.nudged, self.last_progress = True, now
        return StallAction.NUDGE
