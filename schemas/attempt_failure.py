"""The codes of ``charge_attempts.failure`` (KPIS.md, Attempts) and the rule that gives a transaction's.

The worker writes them (``processors.attempts``); the reports read them, and apply the same rule to a session
written before attempts existed (``kpi.ev_chart_rows``): one rule, here, below both.
"""

from __future__ import annotations

import re
from enum import StrEnum


class AttemptFailure(StrEnum):
    """Why an attempt did not end as the driver meant, besides ``stop_<reason>`` (:func:`stop_failure`)."""

    NO_ENERGY = "no_energy"  # it never delivered: no energy, no Charging
    FAULTED = "faulted"  # it stopped into Faulted
    STOP_MISSING = "stop_missing"  # never stopped: its session was closed on a guess
    AUTHORIZE_REJECTED = "authorize_rejected"  # the driver's card was refused
    AUTHORIZE_NO_START = "authorize_no_start"  # an Authorize no start followed
    PLUGIN_NO_START = "plugin_no_start"  # a plug-in no start followed


OK_STOP_REASONS = frozenset({"Local", "Remote", "EVDisconnected", "StoppedByEV"})
"""Stop reasons of a charge that ended as the driver meant (1.6 ``Reason``; 2.0.1 ``stoppedReason`` adds
StoppedByEV); a missing reason is Local (OCPP 1.6, 6.46)."""
DEFAULT_STOP_REASON = "Local"
STOP_PREFIX = "stop_"
MAX_REASON = 48  # characters of a stop reason kept in its failure code


def snake(name: str) -> str:
    """``EmergencyStop`` → ``emergency_stop``, ``EVDisconnected`` → ``ev_disconnected``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def stop_failure(reason: str) -> str:
    """The failure code of a stop reason that is not one of :data:`OK_STOP_REASONS`."""
    return STOP_PREFIX + snake(reason)[:MAX_REASON]


def transaction_failure(*, delivered: bool, into_faulted: bool, stopped: bool, reason: str) -> str:
    """``failure`` of a transaction's attempt, '' when it ended ok; the first that holds: it never delivered
    (``no_energy``), it stopped into Faulted (``faulted``), it was never stopped (``stop_missing``: closed on a
    guess), its stop reason was not one of :data:`OK_STOP_REASONS` (``stop_<reason>``)."""
    if not delivered:
        return AttemptFailure.NO_ENERGY.value
    if into_faulted:
        return AttemptFailure.FAULTED.value
    if not stopped:
        return AttemptFailure.STOP_MISSING.value
    reason = reason or DEFAULT_STOP_REASON
    return "" if reason in OK_STOP_REASONS else stop_failure(reason)
