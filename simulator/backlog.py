"""A session a charger made before it ever reached the central system, flushed from its offline queue on its
first connection (:attr:`~simulator.incidents.Behaviours.backlog_share` of the chargers): pure, no I/O, no clock.

A newly commissioned or migrated charger charges cars before its backend knows it; its queue holds the
transaction's messages with the times they were made, and it sends them right after its first BootNotification.
The pipeline has seen no connection of it close (there was none), so only the charger's own timestamps say the
session is an hour old and lasted an hour (issue #23, class 1). Times here are real milliseconds: the session
happened before the simulated run began, at the speed of the real world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.lives import Profile, SessionPlan, energy_wh, plan_session

MIN_AGE_S, MAX_AGE_S = 600.0, 4 * 3600.0  # how long before the first connection the session ended
SAMPLE_EVERY_S = 900.0  # its queued periodic meter values
MAX_SAMPLES = 16


@dataclass(frozen=True)
class Backlog:
    """The queued session: its plan (driver, power), its charger times and its register readings."""

    plan: SessionPlan
    start_ms: int
    stop_ms: int
    meter_start: int
    samples: tuple[tuple[int, int], ...]  # (charger ms, register Wh) of its periodic meter values, in order
    meter_stop: int

    @property
    def energy_wh(self) -> int:
        return self.meter_stop - self.meter_start


def plan_backlog(rng: random.Random, profile: Profile, now_ms: int, register_wh: int) -> Backlog:
    """The session on connector 1 that ended a while before ``now_ms``; the register read ``register_wh`` at its start
    (a register that restarts every session starts it at 0)."""
    plan = plan_session(rng, profile)
    duration_s = min(plan.charge_s, MAX_AGE_S)
    stop_ms = now_ms - int(rng.uniform(MIN_AGE_S, MAX_AGE_S) * 1000)
    start_ms = stop_ms - int(duration_s * 1000)
    samples = []
    at_s = SAMPLE_EVERY_S
    while at_s < duration_s and len(samples) < MAX_SAMPLES:
        samples.append((start_ms + int(at_s * 1000), register_wh + energy_wh(plan.power_w, at_s)))
        at_s += SAMPLE_EVERY_S
    # At least one Wh: a session of the queue charged (the pipeline counts a delivery by its energy).
    meter_stop = register_wh + max(1, energy_wh(plan.power_w, duration_s))
    return Backlog(plan, start_ms, stop_ms, register_wh, tuple(samples), meter_stop)
