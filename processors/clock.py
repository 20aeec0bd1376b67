"""The charger's clock against the gateway's: is an old charger timestamp the past of a frame that waited in the
charger's offline queue, or the mark of a wrong clock? Pure; SESSIONS.md, *Clocks*.

The *lag* of a frame is gateway time minus charger time. A live frame of a right clock lags by its latency (near
0); a frame from the offline queue lags by its age; every frame of a clock behind by X lags by X (ahead: -X). A
queue only ever adds lag, and it is flushed in a burst, so:

- a frame within the skew limit of the gateway's time shows the clock right now (a wrong clock cannot stamp the
  present; a queue's frame that recent is as good);
- a frame ahead by more than the limit, or older than any queue holds (:data:`MAX_BACKLOG_MS`: a clock reset to
  2000-01-01), shows the clock off: no queue sends the future or the last century;
- a frame behind by more than the limit is a queue's, unless the clock itself is behind: that is shown by frames
  that keep the same lag (within :data:`AGREE_MS`) over time (at least :data:`CONFIRM_MS` of gateway time apart),
  which a queue flushed in a burst never does.

:class:`ClockState` keeps what the charger's frames have shown (``lag_ms``: ``None`` when nothing has, the clock
is presumed right); :func:`observe` reads one frame. A 2.0.1 event the charger flags ``offline`` is a queue's by
its own word and shows nothing. A BootNotification forgets the evidence: the charger sets its clock from the
answer's ``currentTime``.

:func:`session_timing` places a session's start and stop against the clock known when each came (or the clock of
its own two frames, when they lag alike over time) and decides its row's duration, whether it is flagged
``clock_skew``, and the durations its energy may be judged by: a clock doubt never withholds the meter's energy
(the charger's own duration counts whenever its two timestamps were made by one clock the evidence knows, in
order).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from schemas.flags import Flag

AGREE_MS = 5_000
"""Two frames of one live clock lag alike within this: latency, a CALL waiting for the one in flight, whole-second
timestamps."""
CONFIRM_MS = 30_000
"""Frames that keep one lag this long apart (gateway time) are live: a queue is flushed faster than that, and its
frames' lags shrink by the time between them."""
MAX_BACKLOG_MS = 31 * 24 * 3600 * 1000
"""The oldest a frame from a charger's offline queue can be: a month offline. Older is a wrong clock."""


@dataclass(slots=True)
class ClockState:
    """What a charger's frames have shown of its clock (persisted in the correlator's state)."""

    lag_ms: int | None = None  # the clock's lag as last shown; None: never shown (presumed right)
    candidate: tuple[int, int] | None = None  # (gateway ms, lag) of a frame behind by more than the limit, unexplained

    def is_empty(self) -> bool:
        return self.lag_ms is None and self.candidate is None


def observe(clock: ClockState, gw_ms: int, charger_ms: int, limit_ms: int) -> None:
    """One frame stamped ``charger_ms`` by the charger arrived at ``gw_ms``: what it shows of the clock."""
    lag = gw_ms - charger_ms
    if lag <= limit_ms or lag > MAX_BACKLOG_MS:
        clock.lag_ms, clock.candidate = lag, None  # the present (right, or ahead), or older than any queue: the clock
        return
    if clock.lag_ms is not None and abs(lag - clock.lag_ms) <= AGREE_MS:
        return  # the clock already known to be behind, again
    candidate = clock.candidate
    if candidate is not None and abs(lag - candidate[1]) <= AGREE_MS:
        if gw_ms - candidate[0] >= CONFIRM_MS:
            clock.lag_ms, clock.candidate = lag, None  # the same lag over time: the clock is behind
        return
    clock.candidate = (gw_ms, lag)  # a queue's frame, or the first of a clock behind


def saw(clock: ClockState, gw_ms: int, charger_ms: int | None, flags: Collection[str], limit_ms: int) -> None:
    """A frame stamped by the charger (``charger_ms``, None: not stamped) with ``flags``: :func:`observe` it, unless
    it is a 2.0.1 event the charger says it made offline (a queue's by its own word: it shows nothing)."""
    if charger_ms is not None and Flag.OFFLINE_EVENT not in flags:
        observe(clock, gw_ms, charger_ms, limit_ms)


def forget(clock: ClockState) -> None:
    """The charger rebooted: it sets its clock from the BootNotification's answer."""
    clock.lag_ms, clock.candidate = None, None


class Placement(StrEnum):
    """Where a charger-stamped frame stands against the clock known (:func:`place`)."""

    LIVE = "live"  # made now by the known clock
    QUEUED = "queued"  # made earlier by it, and queued
    OTHER_CLOCK = "other_clock"  # stamped by some other clock: ahead of it, or older than any queue


def place(charger_ms: int, gw_ms: int, clock_lag_ms: int | None, limit_ms: int) -> Placement:
    """A frame against the clock known (:class:`Placement`)."""
    age = (gw_ms - charger_ms) - (clock_lag_ms or 0)
    if age < -limit_ms or age > MAX_BACKLOG_MS:
        return Placement.OTHER_CLOCK
    return Placement.QUEUED if age > limit_ms else Placement.LIVE


@dataclass(frozen=True, slots=True)
class SessionTiming:
    """How long a session lasted, by which clock, and what that says about the charger's clock."""

    duration_s: float | None  # the row's ``duration_s``
    from_gateway: bool  # ``duration_s`` is the gateway's (flag ``duration_from_gateway_clock``)
    skew: bool  # the charger's clock was off (flag ``clock_skew``)
    charger_s: float | None  # the charger's own duration, when its timestamps were made by the known clock, in order
    gateway_s: float | None  # from the frame that opened the session to the one that closed it

    @property
    def energy_s(self) -> tuple[float | None, float | None]:
        """(charger, gateway) durations the energy's plausibility may use: the charger's whenever its clock made both
        timestamps; the gateway's when it is the row's (a clock doubt never withholds the meter's energy)."""
        return self.charger_s, self.gateway_s if self.from_gateway else None


def _own_clock(start_ms: int | None, start_gw_ms: int | None, stop_ms: int | None, stop_gw_ms: int | None) -> int | None:
    """The lag of the clock that stamped a session's start and stop, when those were live: the same lag (within
    :data:`AGREE_MS`) at least :data:`CONFIRM_MS` of gateway time apart; else None."""
    if start_ms is None or start_gw_ms is None or stop_ms is None or stop_gw_ms is None:
        return None
    start_lag, stop_lag = start_gw_ms - start_ms, stop_gw_ms - stop_ms
    if abs(start_lag - stop_lag) <= AGREE_MS and stop_gw_ms - start_gw_ms >= CONFIRM_MS:
        return stop_lag
    return None


def session_timing(start_ms: int | None, start_gw_ms: int | None, start_clock: int | None, stop_ms: int | None,
                   stop_gw_ms: int | None, stop_clock: int | None, end_gw_ms: int | None, limit_ms: int) -> SessionTiming:
    """A session's timing. ``start_clock`` / ``stop_clock``: the charger's clock (lag) as known when its start and
    its stop came (``None``: nothing shown; the other one stands in); ``stop_ms`` / ``stop_gw_ms``: its stop
    (``None`` when it was closed on a guess); ``end_gw_ms``: when it closed (its stop, or the guess).

    A start and a stop that lag alike, at least :data:`CONFIRM_MS` apart, are live frames of the clock that stamped
    them (a queue is flushed in a burst): its lag is theirs, whatever the charger's other frames show (some chargers
    stamp transactions with a meter's clock of their own).

    The charger's duration is the row's when both timestamps are readable, in order, and made by one known clock
    (each live or queued by :func:`place`, and the clock did not change between them), unless that clock is off and
    both frames were live: then the gateway timed them as they happened, and its duration is the row's (as it is
    for sessions closed on a guess). A clock off, a timestamp made by another clock, or a clock that changed under
    the session is ``skew``."""
    start_clock = start_clock if start_clock is not None else stop_clock
    stop_clock = stop_clock if stop_clock is not None else start_clock
    own = _own_clock(start_ms, start_gw_ms, stop_ms, stop_gw_ms)
    if own is not None and abs(own) > limit_ms:
        start_clock = stop_clock = own  # the session's own frames, live, by a clock off (whatever else stamps)
    skew = any(lag is not None and abs(lag) > limit_ms for lag in (start_clock, stop_clock))
    changed = start_clock is not None and stop_clock is not None and abs(start_clock - stop_clock) > limit_ms
    places = [place(start_ms, start_gw_ms, start_clock, limit_ms) if start_ms is not None and start_gw_ms is not None
              else None,
              place(stop_ms, stop_gw_ms, stop_clock, limit_ms) if stop_ms is not None and stop_gw_ms is not None
              else None]
    one_clock = Placement.OTHER_CLOCK not in places and not changed
    skew = skew or not one_clock
    charger_s: float | None = None
    if start_ms is not None and stop_ms is not None and stop_ms >= start_ms and one_clock:
        charger_s = (stop_ms - start_ms) / 1000
    gateway_s: float | None = None
    if start_gw_ms is not None and end_gw_ms is not None and end_gw_ms >= start_gw_ms:
        gateway_s = (end_gw_ms - start_gw_ms) / 1000
    if charger_s is not None and not (skew and places == [Placement.LIVE, Placement.LIVE]):
        return SessionTiming(charger_s, False, skew, charger_s, gateway_s)
    if gateway_s is not None:
        return SessionTiming(gateway_s, True, skew, charger_s, gateway_s)
    return SessionTiming(None, False, skew, charger_s, gateway_s)
