"""What goes wrong at a charger, and what it did about it: pure, no I/O, no clock.

The reliability KPIs (``KPIS.md``) need chargers that are not always there and drivers who do not
always charge. :class:`Behaviours` says how often (simulated seconds; a share is per idle period of a
connector), :func:`plan_idle` what a free connector does next, :func:`plan_offline` /
:func:`plan_station_outage` the whole charger's incidents. The charger records what it actually did as
ground truth (times by its own clock, which on one machine is the gateway's, give or take the
answer latency):

- :class:`ExpectedConnection`: each WebSocket connection, opened and closed (the charger is offline
  between a close and the next open: a clean close, a socket dropped without a close frame, a power
  loss, the end of the run);
- :class:`ExpectedDown`: each interval a connector (0: the whole station) reported Faulted or
  Unavailable;
- :class:`ExpectedPort`: when each port was first reported (ports count from then);
- :class:`ExpectedAttempt`: each driver's attempt (a transaction, an Authorize without a start, a
  plug-in without a start), with ``delivered`` / ``ended_ok`` / ``failure`` as the KPIs define them.

:mod:`simulator.expectations` turns these into the outages and rates the pipeline must produce.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

AUTHORIZE_WINDOW_S = 300.0  # KPIS.md: an Authorize with no start within this long (gateway clock) is an attempt


@dataclass(frozen=True)
class Behaviours:
    """How often simulated chargers misbehave. Durations are simulated seconds (the charger divides by the
    time scale); a ``*_share`` is the chance that one idle period of a connector ends that way instead of
    in a session. The defaults are a well-behaved fleet (only the rare idle fault of older versions)."""

    idle_fault_share: float = 0.025  # a free connector goes Faulted (an errorCode), then Available
    fault_s: tuple[float, float] = (120.0, 1800.0)  # how long an idle fault lasts (uniform)
    maintenance_share: float = 0.0  # a free connector is Unavailable for a maintenance window
    maintenance_s: float = 1800.0  # mean length of a maintenance window (connector or station)
    authorize_only_share: float = 0.0  # a driver presents a card (Authorize) and never starts
    plugin_only_share: float = 0.0  # a driver plugs in (Preparing) and unplugs without a start
    offline_every_s: float = 0.0  # mean time between a charger's offline periods; 0 = never
    offline_s: float = 600.0  # mean length of an offline period
    offline_drop_share: float = 0.5  # share of offline periods where the socket dies without a close frame
    station_every_s: float = 0.0  # mean time between whole-station outages (connector 0, OCPP 1.6); 0 = never
    blocked_share: float = 0.0  # share of sessions whose car stays in the bay long after the stop (Finishing held)
    blocked_s: float = 3600.0  # mean such post-stop occupancy
    backlog_share: float = 0.0  # share of chargers whose first connection flushes a session made before it (simulator.backlog)

    def __post_init__(self) -> None:
        shares = (self.idle_fault_share, self.maintenance_share, self.authorize_only_share, self.plugin_only_share)
        if any(not 0 <= s <= 1 for s in (*shares, self.offline_drop_share, self.blocked_share, self.backlog_share)):
            raise ValueError("behaviour shares must be within 0-1")
        if sum(shares) > 1:
            raise ValueError(f"idle-period shares add up to {sum(shares):g}, more than 1")
        if min(self.maintenance_s, self.offline_s, self.blocked_s, self.offline_every_s, self.station_every_s) < 0:
            raise ValueError("behaviour durations must not be negative")


class IdleEnd(StrEnum):
    """How an idle period of a connector ends."""

    SESSION = "session"
    FAULT = "fault"
    MAINTENANCE = "maintenance"
    AUTHORIZE_ONLY = "authorize_only"
    PLUGIN_ONLY = "plugin_only"


def plan_idle(rng: random.Random, behaviours: Behaviours) -> IdleEnd:
    """What a free connector does after its idle gap: one draw, the shares in :class:`IdleEnd` order."""
    draw = rng.random()
    for end, share in ((IdleEnd.FAULT, behaviours.idle_fault_share), (IdleEnd.MAINTENANCE, behaviours.maintenance_share),
                       (IdleEnd.AUTHORIZE_ONLY, behaviours.authorize_only_share),
                       (IdleEnd.PLUGIN_ONLY, behaviours.plugin_only_share)):
        if draw < share:
            return end
        draw -= share
    return IdleEnd.SESSION


class OfflineHow(StrEnum):
    """How a charger's connection ended (the charger's side of an offline period)."""

    CLOSED = "closed"  # a WebSocket close frame (the gateway logs close code 1000)
    DROPPED = "dropped"  # the socket died without a close frame (1006)
    POWER_LOSS = "power_loss"  # the power went; the socket died with it
    RUN_END = "run_end"  # the simulation ended


@dataclass(frozen=True)
class OfflinePlan:
    after_s: float  # simulated seconds from now until the connection goes
    lasts_s: float
    how: OfflineHow


def plan_offline(rng: random.Random, behaviours: Behaviours) -> OfflinePlan | None:
    """The charger's next offline period, or None when it never goes offline."""
    if behaviours.offline_every_s <= 0:
        return None
    how = OfflineHow.DROPPED if rng.random() < behaviours.offline_drop_share else OfflineHow.CLOSED
    return OfflinePlan(rng.expovariate(1 / behaviours.offline_every_s),
                       behaviours.offline_s * rng.uniform(0.5, 1.5), how)


STATION_FAULT = ("OtherError", "PS-7", "power supply")  # errorCode, vendorErrorCode, info of a station fault


@dataclass(frozen=True)
class StationOutagePlan:
    after_s: float
    lasts_s: float
    status: str  # "Unavailable" (maintenance) or "Faulted"


def plan_station_outage(rng: random.Random, behaviours: Behaviours) -> StationOutagePlan | None:
    """The next whole-station outage (connector 0 Unavailable or Faulted), or None when there are none."""
    if behaviours.station_every_s <= 0:
        return None
    status = "Unavailable" if rng.random() < 0.6 else "Faulted"
    return StationOutagePlan(rng.expovariate(1 / behaviours.station_every_s),
                             behaviours.maintenance_s * rng.uniform(0.5, 1.5), status)


def maintenance_s(rng: random.Random, behaviours: Behaviours) -> float:
    return behaviours.maintenance_s * rng.uniform(0.5, 1.5)


def blocked_s(rng: random.Random, behaviours: Behaviours) -> float | None:
    """The post-stop occupancy of a session when its car stays long in the bay; None: the usual unplug."""
    if behaviours.blocked_share <= 0 or rng.random() >= behaviours.blocked_share:
        return None
    return behaviours.blocked_s * rng.uniform(0.5, 1.5)


# --- the KPI rules the simulator applies to what it did (KPIS.md) ----------------------------------

OK_STOP_REASONS = frozenset({"Local", "Remote", "EVDisconnected", "StoppedByEV"})


class AttemptKind(StrEnum):
    START_TRANSACTION = "start_transaction"
    AUTHORIZE_WITHOUT_START = "authorize_without_start"
    PLUGIN_WITHOUT_START = "plugin_without_start"


def transaction_failure(*, delivered: bool, stopped: bool, reason: str, into_faulted: bool) -> str:
    """``failure`` of a transaction's attempt ('' when it ended ok), in KPIS.md's order of precedence."""
    if not delivered:
        return "no_energy"
    if into_faulted:
        return "faulted"
    if not stopped:
        return "stop_missing"
    if (reason or "Local") in OK_STOP_REASONS:
        return ""
    return "stop_" + snake(reason)


def snake(name: str) -> str:
    """``EmergencyStop`` → ``emergency_stop``; ``EVDisconnected`` → ``ev_disconnected``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# --- ground truth --------------------------------------------------------------------------------


@dataclass
class ExpectedConnection:
    """One WebSocket connection of a charger: open from ``opened_ms`` until ``closed_ms`` (None: still open)."""

    charge_point_id: str
    opened_ms: int
    closed_ms: int | None = None
    how: str = ""  # OfflineHow of the close, '' while open

    def to_json(self) -> dict[str, Any]:
        return {"kind": "connection"} | asdict(self)


@dataclass
class ExpectedDown:
    """A connector (0: the station) reporting Faulted or Unavailable from ``started_ms`` until it reported
    anything else (``ended_ms``; None: still so at the end of the run)."""

    charge_point_id: str
    connector_id: int
    status: str  # "Faulted" | "Unavailable"
    started_ms: int
    ended_ms: int | None = None
    error_code: str = ""
    vendor_error_code: str = ""
    ocpp_version: str = "ocpp1.6"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "down"} | asdict(self)


@dataclass
class ExpectedPort:
    """A port (connector >= 1; the EVSE in 2.0.1) and the moment the charger first reported it."""

    charge_point_id: str
    connector_id: int
    first_reported_ms: int
    ocpp_version: str = "ocpp1.6"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "port"} | asdict(self)


@dataclass
class ExpectedAttempt:
    """A driver's attempt as the simulator lived it; ``charge_attempts`` rows must say the same."""

    charge_point_id: str
    connector_id: int  # 0 for an Authorize without a start (it names no connector)
    kind: str  # AttemptKind
    started_ms: int  # the earliest of its Authorize, its plug-in and its start
    transaction_id: str = ""
    id_tag: str = ""
    delivered: bool = False
    ended_ok: bool = False
    failure: str = ""
    first_charging_ms: int | None = None
    stopped_ms: int | None = None  # when the stop went out (transactions)
    available_ms: int | None = None  # when the connector was next Available (post-stop occupancy ends)
    closed: bool = False  # the attempt is over (its stop, or its unplug / its 300 s for no-start attempts)
    ocpp_version: str = "ocpp1.6"

    @property
    def start_delay_s(self) -> float | None:
        return None if self.first_charging_ms is None else max(0.0, (self.first_charging_ms - self.started_ms) / 1000)

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["attempt_kind"] = fields.pop("kind")  # "kind" names the expectation line
        return {"kind": "attempt"} | fields

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "ExpectedAttempt":
        fields = {k: v for k, v in row.items() if k in cls.__dataclass_fields__ and k != "kind"}
        return cls(kind=row["attempt_kind"], **fields)
