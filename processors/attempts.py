"""Charge attempts (KPIS.md, Attempts): a driver's try at charging, pure, one charger at a time.

Three kinds (:class:`~schemas.records.AttemptKind`):

- ``start_transaction``: every transaction, one attempt even when an Authorize or a plug-in came first.
  Its row is built from the session's (:func:`transaction_attempt`) each time the session's row is written,
  and written, with that row's version, when it differs from the last one (:func:`attempt_key`);
- ``authorize_without_start``: an Authorize (accepted or rejected) followed by no start with that idTag on
  that charger within the authorize window (300 s of gateway time). Decided when the window passes
  (:meth:`AttemptTracker.expire`, driven by the correlator's deadlines);
- ``plugin_without_start``: a connector going Preparing (2.0.1: Occupied) and back to Available without a
  start. An Authorize made during such a plug-in, or up to the window before it, is the same driver: it joins
  the plug-in's attempt (its idTag; ``authorize_rejected`` when it was refused) instead of being one of its own.

``started_at`` is the earliest of the attempt's Authorize, its plug-in and its start; the tracker hands the
earliest of the first two to the start that claims them (:meth:`AttemptTracker.claim`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from processors.state import AttemptState, PendingAuthorize, PlugIn, SessionState
from processors.vocabulary import PLUGGED_IN, Status
from schemas.attempt_failure import AttemptFailure, transaction_failure
from schemas.base import ms_to_datetime
from schemas.flags import Flag
from schemas.records import AttemptKind, ChargeAttempt, ClosedBy, Session

AUTHORIZES_KEPT = 32  # pending Authorizes of one charger: a charger flooding them must not grow its state forever
PLUGINS_KEPT = 64  # open plug-ins of one charger (one per connector): nor inventing connector ids
_NOTHING_HELD: Mapping[str, int] = MappingProxyType({})


def attempt_id(charge_point_id: str, event_id: str) -> str:
    """An attempt without a transaction: the charger and the frame that began it (stable across replays)."""
    return hashlib.sha256(f"{charge_point_id}|{event_id}".encode()).hexdigest()[:16]


def transaction_attempt(session: SessionState, record: Session) -> ChargeAttempt:
    """The attempt of a transaction, as its session's row (``record``) says it now (its failure:
    :func:`schemas.attempt_failure.transaction_failure`)."""
    known = [ms for ms in (session.attempt_ms, session.start_gw_ms, session.closed_gw_ms) if ms is not None]
    started_ms = min(known) if known else 0  # a stop-only session: its plug-in, or its stop
    delivered = (record.energy_wh or 0) > 0 or session.first_charging_ms is not None
    into_faulted = record.stop_status == Status.FAULTED or Flag.FAULTED_AT_STOP in record.flags
    failure = transaction_failure(delivered=delivered, into_faulted=into_faulted,
                                  stopped=record.closed_by == ClosedBy.STOP_TRANSACTION, reason=record.stop_reason)
    delay = None
    if session.first_charging_ms is not None:
        delay = max(0, session.first_charging_ms - started_ms) / 1000
    # trusted: every value is typed here (the session row is the pipeline's own); the sink's storable check
    # still guards the row.
    return ChargeAttempt.trusted(
        charge_point_id=record.charge_point_id, connector_id=record.connector_id or 0, attempt_id=record.session_id,
        started_at=ms_to_datetime(started_ms), kind=AttemptKind.START_TRANSACTION, transaction_id=record.transaction_id,
        id_tag=record.id_tag, delivered=delivered, ended_ok=failure == "", failure=failure, start_delay_s=delay,
        version=record.version, ocpp_version=record.ocpp_version,
    )


def attempt_key(attempt: ChargeAttempt) -> str:
    """What an attempt's row says besides its version, short: a new row only when it changes."""
    content = (attempt.connector_id, attempt.started_at.timestamp(), attempt.id_tag, attempt.delivered,
               attempt.failure, attempt.start_delay_s, attempt.transaction_id, attempt.ocpp_version)
    return hashlib.sha256(repr(content).encode()).hexdigest()[:12]


class AttemptTracker:
    """One charger's attempts without a transaction, and what a start claims of them."""

    def __init__(self, charge_point_id: str, state: AttemptState, window_ms: int) -> None:
        self.charge_point_id = charge_point_id
        self.state = state
        self.window_ms = window_ms

    # --- inputs ----------------------------------------------------------------------------------

    def authorize_requested(self, gw_ms: int, event_id: str, message_id: str, id_tag: str, ocpp_version: str) -> None:
        pending = self.state.authorizes
        if any(a.message_id == message_id and a.id_tag == id_tag for a in pending):
            return  # resent after its answer was lost (a reconnect): one tap of the card
        pending.append(PendingAuthorize(gw_ms, event_id, message_id, id_tag, None, ocpp_version))
        del pending[:-AUTHORIZES_KEPT]

    def authorize_answered(self, message_id: str, accepted: bool | None) -> None:
        for pending in reversed(self.state.authorizes):
            if pending.message_id == message_id:
                pending.accepted = accepted
                return

    def status(self, connector: int, status: Status, gw_ms: int, event_id: str, *, free: bool, ocpp_version: str
               ) -> list[ChargeAttempt]:
        """A connector's status. ``free``: no transaction holds the connector and none stopped on it waits for
        Available (a plug-in then is a new driver's)."""
        plugins = self.state.plugins
        if status in PLUGGED_IN:
            if connector not in plugins and free and len(plugins) < PLUGINS_KEPT:
                plugins[connector] = PlugIn(gw_ms, event_id, ocpp_version=ocpp_version)
            return []
        if status is Status.AVAILABLE and connector in plugins:
            return [self._plugin_attempt(connector, plugins.pop(connector), gw_ms)]
        return []

    def claim(self, connector: int | None, id_tag: str, gw_ms: int) -> int | None:
        """A transaction started (``gw_ms``) with ``id_tag`` on ``connector``: the Authorizes of that idTag
        within the window before it and the connector's plug-in are its attempt. The earliest of their times,
        ``None`` when it claimed none."""
        times: list[int] = []
        plugin = self.state.plugins.get(connector) if connector is not None else None
        if plugin is not None:
            times.append(plugin.gw_ms)
        kept = []
        for pending in self.state.authorizes:
            if self._card_before(pending, id_tag, gw_ms):
                times.append(pending.gw_ms)
            elif plugin is not None and pending.gw_ms <= gw_ms and self._plugin_for(pending) is plugin:
                pass  # another card of the plug-in's driver (one refused, say): one driver, one attempt
            else:
                kept.append(pending)
        self.state.authorizes = kept
        if plugin is not None and connector is not None:
            del self.state.plugins[connector]
        return min(times) if times else None

    # --- time ------------------------------------------------------------------------------------

    def take(self, id_tag: str, gw_ms: int) -> None:
        """A transaction learnt its idTag at ``gw_ms`` (after its start): the Authorizes of that idTag within the
        window before are its driver's, no attempts of their own."""
        self.state.authorizes = [a for a in self.state.authorizes if not self._card_before(a, id_tag, gw_ms)]

    def _card_before(self, pending: PendingAuthorize, id_tag: str, gw_ms: int) -> bool:
        """``pending`` is the card ``id_tag`` shown within the window before ``gw_ms``."""
        return bool(id_tag) and pending.id_tag == id_tag and gw_ms - self.window_ms <= pending.gw_ms <= gw_ms

    def _deadline(self, pending: PendingAuthorize, held: Mapping[str, int]) -> int:
        """When an Authorize is decided: its window's end, or later while a start with its idTag, requested
        within that window, waits for its answer (``held``: idTag -> until when; the start claims it then)."""
        return max(pending.gw_ms + self.window_ms, held.get(pending.id_tag, 0))

    def next_deadline(self, held: Mapping[str, int] = _NOTHING_HELD) -> int | None:
        """When the next pending Authorize is decided."""
        pending = self.state.authorizes
        return min(self._deadline(a, held) for a in pending) if pending else None

    def expire(self, now_ms: int, held: Mapping[str, int] = _NOTHING_HELD) -> list[ChargeAttempt]:
        """Authorizes decided before ``now_ms`` without a start: each joins an open plug-in it belongs to (made
        while the car was plugged in, or up to the window before), or is an attempt of its own, decided when
        its deadline passed (its version)."""
        attempts: list[ChargeAttempt] = []
        kept = []
        for pending in self.state.authorizes:
            deadline = self._deadline(pending, held)
            if deadline >= now_ms:
                kept.append(pending)
                continue
            plugin = self._plugin_for(pending)
            if plugin is not None:
                plugin.join(pending)
                continue
            attempts.append(self._authorize_attempt(pending, deadline))
        self.state.authorizes = kept
        return attempts

    # --- rows ------------------------------------------------------------------------------------

    def _plugin_for(self, pending: PendingAuthorize) -> PlugIn | None:
        """The open plug-in an Authorize belongs to: the earliest one begun no later than the window after it."""
        candidates = [p for p in self.state.plugins.values() if p.gw_ms - self.window_ms <= pending.gw_ms]
        return min(candidates, key=lambda p: p.gw_ms) if candidates else None

    def _plugin_attempt(self, connector: int, plugin: PlugIn, now_ms: int) -> ChargeAttempt:
        # Authorizes of this driver still pending (the window not passed yet): they belong to this plug-in.
        kept = []
        for pending in self.state.authorizes:
            if plugin.gw_ms - self.window_ms <= pending.gw_ms <= now_ms:
                plugin.join(pending)
            else:
                kept.append(pending)
        self.state.authorizes = kept
        return self._row(AttemptKind.PLUGIN_WITHOUT_START, connector, plugin.event_id, plugin.gw_ms, plugin.id_tag,
                         AttemptFailure.AUTHORIZE_REJECTED if plugin.rejected else AttemptFailure.PLUGIN_NO_START, now_ms,
                         plugin.ocpp_version)

    def _authorize_attempt(self, pending: PendingAuthorize, version_ms: int) -> ChargeAttempt:
        failure = AttemptFailure.AUTHORIZE_REJECTED if pending.accepted is False else AttemptFailure.AUTHORIZE_NO_START
        return self._row(AttemptKind.AUTHORIZE_WITHOUT_START, 0, pending.event_id, pending.gw_ms, pending.id_tag,
                         failure, version_ms, pending.ocpp_version)

    def _row(self, kind: AttemptKind, connector: int, event_id: str, started_ms: int, id_tag: str, failure: AttemptFailure,
             version_ms: int, ocpp_version: str) -> ChargeAttempt:
        return ChargeAttempt.trusted(
            charge_point_id=self.charge_point_id, connector_id=connector, attempt_id=attempt_id(self.charge_point_id, event_id),
            started_at=ms_to_datetime(started_ms), kind=kind, transaction_id="", id_tag=id_tag, delivered=False,
            ended_ok=False, failure=failure.value, start_delay_s=None, version=version_ms, ocpp_version=ocpp_version,
        )
