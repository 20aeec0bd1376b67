"""How sessions and charge attempts end: the coded values of ``sessions.closed_by`` and
``charge_attempts.failure`` (KPIS.md), and the rule that gives a transaction's failure.

Part of the rows' contract, so they live here, below the processors, which write them, and the reports
(``kpi/``), which read them and apply the same rule to the sessions they export.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class ClosedBy(StrEnum):
    """What closed a session (``sessions.closed_by``): its stop, or a guess when it never came (SESSIONS.md)."""

    STOP_TRANSACTION = "stop_transaction"  # its stop (1.6 StopTransaction, 2.0.1 TransactionEvent Ended)
    TIMEOUT = "timeout"  # open longer than the longest a session may last
    NEXT_TRANSACTION = "next_transaction"  # a new transaction began on its connector
    AVAILABLE = "available"  # its connector went Available and no stop came within the status window


class Failure(StrEnum):
    """Why a charge attempt failed (``charge_attempts.failure``; '' when it ended ok). A transaction whose stop
    reason was not one of :data:`OK_STOP_REASONS` fails with ``stop_<reason>`` (:func:`stop_failure`)."""

    NO_ENERGY = "no_energy"  # the transaction never delivered
    FAULTED = "faulted"  # it stopped into Faulted
    STOP_MISSING = "stop_missing"  # it was never stopped: closed on a guess
    AUTHORIZE_REJECTED = "authorize_rejected"  # the driver's card was refused, and no start followed
    AUTHORIZE_NO_START = "authorize_no_start"  # a card accepted, and no start followed within the window
    PLUGIN_NO_START = "plugin_no_start"  # plugged in and out again without a start


OK_STOP_REASONS: Final = frozenset({"Local", "Remote", "EVDisconnected", "StoppedByEV"})
"""Stop reasons of a charge that ended as the driver meant (1.6 ``Reason``; 2.0.1 ``stoppedReason`` adds
StoppedByEV); a missing reason is Local (OCPP 1.6, 6.46)."""
STOP_FAILURE_PREFIX: Final = "stop_"
_MAX_REASON = 48  # what a charger's reason may add to the code: the column stays short whatever it sends
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """``EmergencyStop`` → ``emergency_stop``, ``EVDisconnected`` → ``ev_disconnected``."""
    return _CAMEL.sub("_", name).lower()


def stop_failure(reason: str) -> str:
    """The failure of a transaction stopped for ``reason``, not one of :data:`OK_STOP_REASONS`: ``stop_`` and the
    reason in snake case (``stop_emergency_stop``), a family as open as the reasons chargers send, bounded."""
    return STOP_FAILURE_PREFIX + snake(reason)[:_MAX_REASON]


def transaction_failure(*, delivered: bool, into_faulted: bool, stopped: bool, reason: str) -> str:
    """``failure`` of a transaction's attempt, '' when it ended ok; the first that holds: it never delivered
    (``no_energy``), it stopped into Faulted (``faulted``), it was never stopped (``stop_missing``: closed on a
    guess), its stop reason was not one of :data:`OK_STOP_REASONS` (``stop_<reason>``)."""
    if not delivered:
        return Failure.NO_ENERGY.value
    if into_faulted:
        return Failure.FAULTED.value
    if not stopped:
        return Failure.STOP_MISSING.value
    reason = reason or "Local"
    return "" if reason in OK_STOP_REASONS else stop_failure(reason)
