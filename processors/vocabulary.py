"""The processors' words for what chargers report, version-free: a connector's status, the groups of statuses the
rules name, and what a deadline of the correlator waits for. Values are the wire strings (a member compares equal
to its text).

A status is what a connector does. OCPP 1.6 says it in StatusNotification (``ChargePointStatus``); OCPP 2.0.1 says
less there (``ConnectorStatusEnumType``: Available, Occupied, Reserved, Unavailable, Faulted) and says what the EV
does in its transaction's ``chargingState`` (``ChargingStateEnumType``: Charging, SuspendedEV, SuspendedEVSE,
EVConnected, Idle). The domain's vocabulary is the union, one member per word: a word means the same whichever
version sent it (:func:`status_of`). A word no version defines is :attr:`Status.UNKNOWN` (the text the charger
sent stays beside it where a row repeats it: ``status_text``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Status(StrEnum):
    NONE = ""  # none reported yet (or an empty status)
    AVAILABLE = "Available"
    PREPARING = "Preparing"  # 1.6: plugged in (or a card shown), not charging yet
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"  # 1.6: the transaction stopped, the cable not yet unplugged
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"  # 2.0.1 connector status: plugged in, what the EV does told by its transaction
    EV_CONNECTED = "EVConnected"  # 2.0.1 chargingState: plugged in, not charging
    IDLE = "Idle"  # 2.0.1 chargingState: the transaction holds no EV (before plug-in, after unplug)
    UNKNOWN = "Unknown"  # a word no version defines (a lenient StatusNotification, a made-up chargingState)


_BY_TEXT: Final = {status.value: status for status in Status}


def status_of(text: str) -> Status:
    """The domain's reading of a status or charging state as sent: its member, :attr:`Status.UNKNOWN` for a
    word no version defines (compared as sent: ``charging`` is no status)."""
    return _BY_TEXT.get(text, Status.UNKNOWN)


OUT_OF_CHARGING: Final = frozenset({Status.AVAILABLE, Status.SUSPENDED_EV, Status.SUSPENDED_EVSE, Status.FINISHING,
                                    Status.UNAVAILABLE, Status.FAULTED})
"""Where a 1.6 connector goes when charging ends (the seed article: Charging -> ...)."""
IN_TRANSACTION: Final = frozenset({Status.PREPARING, Status.CHARGING, Status.SUSPENDED_EV, Status.SUSPENDED_EVSE})
"""Statuses that say a transaction on the connector is going on (after an Available, it resumed)."""
SUSPENDED: Final = frozenset({Status.SUSPENDED_EV, Status.SUSPENDED_EVSE})
PHASES: Final = (Status.CHARGING, Status.SUSPENDED_EV, Status.SUSPENDED_EVSE)
"""What the connector did during a session that ``charging_s`` / ``suspended_ev_s`` / ``suspended_evse_s`` count
(1.6 status; 2.0.1 chargingState), in :attr:`~processors.state.SessionState.phase_totals`' order."""
PLUGGED_IN: Final = frozenset({Status.PREPARING, Status.OCCUPIED})
"""A connector a car was plugged into with no transaction yet (1.6 Preparing; 2.0.1 Occupied): a charge attempt
may begin (processors.attempts)."""


class DeadlineKind(StrEnum):
    """What the correlator waits for until a deadline (gateway time), and does when it passes. Values order the
    deadlines that fall at one time (their string order, as they always did)."""

    EMIT = "emit"  # a stopped session's status window ended: it goes out
    AVAILABLE = "available"  # an open session's connector went Available and no stop came: closed by Available
    TIMEOUT = "timeout"  # an open session reached the longest a session may last: closed by age
    AUTHORIZE = "authorize"  # a pending Authorize's window ended: an attempt of its own, or part of a plug-in's
    NAMING = "naming"  # a 2.0.1 Faulted waited long enough for the problem that names it: its fault goes out
