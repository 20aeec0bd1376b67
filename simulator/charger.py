"""A simulated charger living its life over a :class:`~simulator.link.Link`.

Boot, heartbeats, and per connector: idle (now and then a fault), then sessions —
Available → Preparing → StartTransaction → Charging → periodic MeterValues → an ending from
:mod:`simulator.lives`, with the transition before or after StopTransaction as the firmware
does it. A power loss cuts the connection of the whole charger: every running session ends with
``PowerLoss`` after the reboot, with the register value of the moment the power went.

Besides sessions it misbehaves as :class:`~simulator.incidents.Behaviours` say: a free connector
may fault, go Unavailable for maintenance, see a driver who only presents a card (Authorize, no
start) or only plugs in (Preparing, then Available); the whole charger goes offline now and then
(closing its socket or dropping it without a close, then reconnecting), and an OCPP 1.6 station
reports connector 0 Unavailable or Faulted; a session's car may stay in the bay long after the stop.

What happened is recorded as :class:`~simulator.lives.ExpectedSession` /
:class:`~simulator.lives.ExpectedFault` and the KPI ground truth of :mod:`simulator.incidents`
(connections, down intervals, ports, attempts) in the :class:`Ledger` the moment it happens, by
this process's clock, so the expectations describe this run, timing included, not a prediction of it.

:class:`Charger` speaks OCPP 1.6J; :class:`simulator.charger_v201.Charger201` lives the same life in
OCPP 2.0.1 by overriding the moments whose messages differ (boot, status, the start, the move out of
Charging, samples, the stop).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from signed_meter.model import TX_BEGIN, TX_END
from simulator import backlog, incidents, lives, signed_truth
from simulator.incidents import (AttemptKind, Behaviours, ExpectedAttempt, ExpectedConnection, ExpectedDown, ExpectedPort,
                                 IdleEnd)
from simulator.lives import ENDINGS, Ending, ExpectedFault, ExpectedSession, Profile, Quirk, SessionPlan
from simulator.link import Link
from simulator.ocmf_meter import OcmfMeter, SentRecord, with_signed_16


class PowerCut(Exception):
    """The charger lost power while this connector was waiting."""


class Closing(Exception):
    """The run is over: finish what is open, quickly."""


class EmergencyStopped(Exception):
    """The station's emergency stop was pressed while this connector was waiting (OCPP 2.0.1 stations)."""


@dataclass(frozen=True)
class Timing:
    """How simulated time maps to real time, and the cadence of periodic messages."""

    time_scale: float = 1.0  # simulated seconds per real second
    meter_interval_s: float = 60.0  # simulated
    heartbeat_interval_s: float = 300.0  # simulated; floored at 5 real seconds
    idle_mean_s: float = 7200.0  # simulated mean time a connector is free

    def real(self, simulated_s: float) -> float:
        return simulated_s / self.time_scale


@dataclass
class Ledger:
    """Everything a fleet did, for the summary and the expectations file."""

    sessions: list[ExpectedSession] = field(default_factory=list)
    faults: list[ExpectedFault] = field(default_factory=list)
    started: int = 0
    endings: Counter[str] = field(default_factory=Counter)
    start_refused: int = 0
    power_losses: int = 0
    # KPI ground truth (simulator.incidents)
    connections: list[ExpectedConnection] = field(default_factory=list)
    downs: list[ExpectedDown] = field(default_factory=list)
    ports: list[ExpectedPort] = field(default_factory=list)
    attempts: list[ExpectedAttempt] = field(default_factory=list)
    offline_periods: int = 0
    maintenance_windows: int = 0
    station_outages: int = 0

    def expectation_rows(self) -> list[dict[str, Any]]:
        """Everything the pipeline must make of this run, one JSON object per fact (``--expected``)."""
        facts: list[Any] = [*self.sessions, *self.faults, *self.connections, *self.downs, *self.ports, *self.attempts]
        return [f.to_json() for f in facts]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Connector:
    number: int
    register_wh: int
    status: str = ""
    fault: ExpectedFault | None = None
    energy_f: float = 0.0  # Wh not yet on the whole-Wh register
    plugged_ms: int | None = None  # Preparing reported at (a plug-in not yet followed by a start)
    attempt: ExpectedAttempt | None = None  # the transaction's attempt, until the stop and the next Available
    # A session closed by its Available (a charger that never stops) and when that Available went out, until
    # the connector's next plug-in: how soon it came decides how the worker closes the session.
    closed_by_available: tuple[ExpectedSession, int] | None = None
    meter: OcmfMeter | None = None  # a signing charger's calibrated meter of this connector (simulator.ocmf_meter)


class Charger:
    OCPP_VERSION = "ocpp1.6"  # the subprotocol it speaks, recorded on every expectation

    def __init__(self, profile: Profile, link: Link, timing: Timing, ledger: Ledger, rng: random.Random,
                 closing: asyncio.Event, behaviours: Behaviours = Behaviours()) -> None:
        self.profile, self.link, self.timing, self.ledger, self.rng = profile, link, timing, ledger, rng
        self.closing = closing
        self.behaviours = behaviours
        # The charger-wide incidents draw from their own source: their timing must not shift the lives.
        self.incident_rng = random.Random(rng.getrandbits(64))
        self.open_downs: dict[int, ExpectedDown] = {}  # connector (0 = station) -> its Faulted / Unavailable interval
        self.ports_seen: set[int] = set()
        self._station_up = asyncio.Event()
        self._station_up.set()
        self.connectors = [_Connector(c, lives.first_register_wh(rng, profile),
                                      meter=OcmfMeter(profile, c) if profile.meter is not None else None)
                           for c in range(1, profile.connectors + 1)]
        self.epoch = 0  # grows with each power cut
        self.cut_ms = 0
        self._cut = asyncio.Event()  # set while the power is off
        self._rebooted = asyncio.Event()
        self._rebooted.set()
        self._estop = asyncio.Event()  # set while the station's emergency stop is pressed
        self._released = asyncio.Event()
        self._released.set()

    # --- the life -----------------------------------------------------------------------------

    async def live(self) -> None:
        try:
            await self._boot()
            if self.behaviours.backlog_share > 0 and self.incident_rng.random() < self.behaviours.backlog_share:
                await self._flush_backlog(self.connectors[0])
            background = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._offline_life()),
                          asyncio.create_task(self._station_life())]
            try:
                await asyncio.gather(*(self._connector_life(c) for c in self.connectors))
            finally:
                async with self.link.between_calls():  # a heartbeat in flight is answered, not cut off
                    for task in background:
                        task.cancel()
                    await asyncio.gather(*background, return_exceptions=True)
        finally:
            try:
                await self.link.close()
            finally:
                self.ledger.connections += self.link.connections  # even when the run gave up waiting for it

    async def _boot_notification(self) -> None:
        """BootNotification until the central system answers it (firmware retries a refused boot)."""
        while await self.link.call("BootNotification", lives.boot_payload(self.profile)) is None:
            await asyncio.sleep(5)

    async def _boot(self) -> None:
        await self._boot_notification()
        if self.profile.has(Quirk.STALE_FAULT_AFTER_BOOT):
            # Alfen: after a reboot an old Faulted on connector 0 is replayed with its old timestamp.
            stale = ("OtherError", "E-0042", "replayed after reboot")
            await self._status(0, "Faulted", stale, at_ms=now_ms() - 2 * 86_400_000)
            self._record_fault(0, stale[0])
        await self._status(0, "Available")
        for connector in self.connectors:
            await self._status(connector.number, "Available", conn=connector)

    async def _heartbeats(self) -> None:
        interval = max(5.0, self.timing.real(self.timing.heartbeat_interval_s))
        while True:
            await asyncio.sleep(interval * self.rng.uniform(0.9, 1.1))
            await self.link.call("Heartbeat", {})

    async def _connector_life(self, conn: _Connector) -> None:
        # The first gap is short and spread, so a fresh fleet starts charging within seconds.
        gap = self.rng.uniform(0, min(self.timing.idle_mean_s, 30 * self.timing.time_scale))
        while not self.closing.is_set():
            try:
                await self._wait(gap)
                while not self._station_up.is_set():  # no driver is served while the station is down
                    await self._wait(60)
                end = incidents.plan_idle(self.rng, self.behaviours)
                if end is IdleEnd.FAULT:
                    await self._status(conn.number, "Faulted", lives.idle_fault(self.rng, self.profile), conn=conn)
                    await self._wait(self.rng.uniform(*self.behaviours.fault_s))
                    await self._status(conn.number, "Available", conn=conn)
                elif end is IdleEnd.MAINTENANCE:
                    self.ledger.maintenance_windows += 1
                    await self._status(conn.number, "Unavailable", conn=conn)
                    await self._wait(incidents.maintenance_s(self.rng, self.behaviours), closing_ok=True)
                    await self._status(conn.number, "Available", conn=conn)
                elif end is IdleEnd.AUTHORIZE_ONLY:
                    await self._authorize_only()
                elif end is IdleEnd.PLUGIN_ONLY:
                    conn.closed_by_available = None  # no start follows this plug-in: the Available's rule stands
                    await self._status(conn.number, "Preparing", conn=conn)
                    await self._wait(self.rng.uniform(20, 180), closing_ok=True)  # the driver gives up and unplugs
                    await self._status(conn.number, "Available", conn=conn)
                else:
                    plan = lives.plan_session(self.rng, self.profile)
                    hold_s = incidents.blocked_s(self.incident_rng, self.behaviours)
                    await self._session(conn, plan if hold_s is None else replace(plan, unplug_s=hold_s))
            except PowerCut:
                await self._rebooted.wait()
                await self._status(conn.number, "Available", conn=conn)
            except EmergencyStopped:
                await self._released.wait()  # the station reports every EVSE Available when it is released
            except Closing:
                break
            gap = lives.idle_gap_s(self.rng, self.timing.idle_mean_s)

    # --- a session ------------------------------------------------------------------------------

    async def _session(self, conn: _Connector, plan: SessionPlan) -> None:
        if self.profile.has(Quirk.REGISTER_PER_SESSION):
            conn.register_wh, conn.energy_f = 0, 0.0
        session = await self._start(conn, plan)
        if session is None:
            self.ledger.start_refused += 1
            await self._status(conn.number, "Available", conn=conn)
            return
        self.ledger.started += 1
        conn.attempt = ExpectedAttempt(
            self.profile.charge_point_id, conn.number, AttemptKind.START_TRANSACTION,
            started_ms=conn.plugged_ms or session.start_ms, transaction_id=str(session.tx), id_tag=self._id_tag(session),
            ocpp_version=self.OCPP_VERSION)
        conn.plugged_ms = None  # the plug-in belongs to this transaction's attempt
        self.ledger.attempts.append(conn.attempt)
        await self._signed_begin(session)
        try:
            await self._charging_started(session)
            if conn.attempt.first_charging_ms is None:
                conn.attempt.first_charging_ms = now_ms()
            self._check_power(session.epoch)
            await self._charge(session, plan.charge_s, plan.power_w)
            await self._end(session)
        except PowerCut:
            await self._end_after_power_loss(session)
        except EmergencyStopped:
            await self._end_after_emergency_stop(session)
            raise  # the connector waits for the release
        except Closing:
            await self._end_now(session)

    async def _start(self, conn: _Connector, plan: SessionPlan) -> "_Session | None":
        """Plug-in to an open transaction (None: the central system gave no transaction)."""
        self._replugged(conn)
        await self._status(conn.number, "Preparing", conn=conn)
        await self._wait(self.rng.uniform(5, 40))  # authorisation, cable locked
        epoch = self.epoch
        if not await self._authorize(plan.id_tag):
            return None
        self._check_power(epoch)
        meter_start, start_ms = conn.register_wh, now_ms()
        answer = await self.link.call("StartTransaction", lives.start_payload(self.profile, conn.number, plan, meter_start, start_ms))
        if not answer or not isinstance(answer.get("transactionId"), int):
            return None
        return _Session(conn, plan, answer["transactionId"], meter_start, start_ms, self.epoch)

    async def _charging_started(self, s: "_Session") -> None:
        await self._status(s.conn.number, "Charging", conn=s.conn)

    async def _leave_charging(self, s: "_Session", status: str) -> None:
        """The connector goes from Charging to ``status`` while the transaction goes on (EV full, EVSE limit)."""
        await self._status(s.conn.number, status, conn=s.conn)
        s.transition = status

    def _soc(self, s: "_Session") -> float | None:
        if not self.profile.dc:
            return None
        delivered = s.conn.register_wh - s.meter_start
        return min(100.0, s.plan.soc_start + delivered / 600)  # a 60 kWh battery

    async def _charge(self, s: "_Session", duration_s: float, power_w: float) -> None:
        """Charge for ``duration_s`` simulated seconds, a MeterValues every interval."""
        left = duration_s
        while left > 0:
            step = min(self.timing.meter_interval_s, left)
            try:
                await self._wait(step)
            finally:
                self._accrue(s, power_w)
            left -= step
            await self._meter_values(s, power_w)
            self._check_power(s.epoch)

    def _accrue(self, s: "_Session", power_w: float) -> None:
        """Advance the register by the real time since the last accrual (to the cut, if power went)."""
        until = self.cut_ms if self.epoch != s.epoch else now_ms()
        if until > s.last_ms:
            s.conn.energy_f += power_w * (until - s.last_ms) / 3_600_000
            whole = int(s.conn.energy_f)
            s.conn.register_wh += whole
            s.conn.energy_f -= whole
            s.last_ms = until
        s.power_now = power_w

    async def _meter_values(self, s: "_Session", power_w: float, context: str = "Sample.Periodic") -> None:
        soc = self._soc(s)
        payload = {"connectorId": s.conn.number, "transactionId": s.tx,
                   "meterValue": [lives.meter_value(self.profile, now_ms(), s.conn.register_wh, power_w, soc, context)]}
        await self.link.call("MeterValues", payload)

    async def _end(self, s: "_Session") -> None:
        plan, spec = s.plan, ENDINGS[s.plan.ending]
        if plan.ending is Ending.POWER_LOSS:
            asyncio.create_task(self._power_loss(plan.reboot_s))
            await asyncio.sleep(0)
            raise PowerCut()
        if self.profile.has(Quirk.NEVER_STOPS):
            await self._meter_values(s, 0)
            await self._signed_end_without_stop(s)
            await self._status(s.conn.number, "Available", conn=s.conn)
            self._expect(s, reason="", stop_status=lives.session_stop_status(plan, self.profile), closed_by="available")
            return
        if plan.ending in (Ending.EV_FULL, Ending.EVSE_LIMIT):
            await self._leave_charging(s, spec.transition)
            await self._charge(s, plan.suspended_s, 0)  # parked, no current
            await self._stop_with_status(s, "Finishing", spec.reason, self._finishing_fault())
        elif plan.ending is Ending.FAULT:
            await self._stop_with_status(s, "Faulted", spec.reason, plan.fault)
            await self._wait(plan.fault_s, closing_ok=True)
            await self._status(s.conn.number, "Available", conn=s.conn)
            return
        elif spec.transition == "Finishing":
            await self._stop_with_status(s, "Finishing", spec.reason, self._finishing_fault())
        else:
            await self._stop_with_status(s, spec.transition, spec.reason, None)
            return
        await self._wait(plan.unplug_s, closing_ok=True)
        await self._status(s.conn.number, "Available", conn=s.conn)

    def _finishing_fault(self) -> tuple[str, str, str] | None:
        return lives.FINISHING_ERROR if self.profile.has(Quirk.FINISHING_WITH_ERROR) else None

    async def _stop_with_status(self, s: "_Session", status: str, reason: str, fault: tuple[str, str, str] | None) -> None:
        """The transition and StopTransaction, in this firmware's order, a few seconds apart."""
        if self.profile.status_after_stop:
            await self._stop(s, reason)
            await self._wait(s.plan.status_gap_s, closing_ok=True)
            await self._status(s.conn.number, status, fault, conn=s.conn)
            s.transition = s.transition or status
        else:
            await self._status(s.conn.number, status, fault, conn=s.conn)
            s.transition = s.transition or status
            await self._wait(s.plan.status_gap_s, closing_ok=True)
            await self._stop(s, reason)
        self._expect(s, reason=reason, stop_status=s.transition, closed_by="stop_transaction")

    async def _stop(self, s: "_Session", reason: str, at_ms: int | None = None) -> None:
        """StopTransaction. A signing charger's End goes in its transactionData, or else in a Transaction.End
        MeterValues: before the stop, or after it (LATE_TRANSACTION_END) with the late values."""
        self._accrue(s, s.power_now)
        ms = at_ms or now_ms()
        payload = lives.stop_payload(self.profile, s.plan, s.tx, s.meter_start, s.conn.register_wh, s.start_ms, ms, reason)
        end = self._sign(s, TX_END, s.conn.register_wh, ms)
        if "transactionData" in payload:
            payload["transactionData"] = [with_signed_16(value, sent) if sent else value for value, sent in
                                          zip(payload["transactionData"], (self._signed_of(s, TX_BEGIN), end))]
            end = None  # sent with the stop
        elif end is not None and not self.profile.has(Quirk.LATE_TRANSACTION_END):
            await self._signed_meter_values(s, end, "Transaction.End", ms, s.conn.register_wh)
            end = None
        await self.link.call("StopTransaction", payload)
        s.stopped_ms = now_ms()
        s.stop_reason = reason
        if self.profile.has(Quirk.RESENT_STOP):
            await self.link.call("StopTransaction", payload)
        if self.profile.has(Quirk.LATE_TRANSACTION_END):
            await self._meter_values(s, 0, context="Transaction.End")
            if end is not None:
                await self._signed_meter_values(s, end, "Transaction.End", ms, s.conn.register_wh)

    # --- signed meter values (a signing charger's OCMF meter: simulator.ocmf_meter) -------------------

    def _sign(self, s: "_Session", tx: str, register_wh: int, ms: int) -> SentRecord | None:
        """The connector's meter signs a ``tx`` reading (None: no meter, or the charger sends no record)."""
        if s.conn.meter is None:
            return None
        sent = s.conn.meter.sign(tx, register_wh, ms, self._id_tag(s))
        if sent is not None:
            s.signed.append(sent)
        return sent

    @staticmethod
    def _signed_of(s: "_Session", tx: str) -> SentRecord | None:
        return next((r for r in s.signed if r.tx == tx), None)

    async def _signed_begin(self, s: "_Session") -> None:
        """OCPP 1.6: the signed Begin in a MeterValues right after the start (it needs the transactionId)."""
        sent = self._sign(s, TX_BEGIN, s.meter_start, s.start_ms)
        if sent is not None:
            await self._signed_meter_values(s, sent, "Transaction.Begin", s.start_ms, s.meter_start)

    async def _signed_end_without_stop(self, s: "_Session") -> None:
        """A charger that never sends StopTransaction still has its meter sign the end (the cable pulled)."""
        ms = now_ms()
        sent = self._sign(s, TX_END, s.conn.register_wh, ms)
        if sent is not None:
            await self._signed_meter_values(s, sent, "Transaction.End", ms, s.conn.register_wh)

    async def _signed_meter_values(self, s: "_Session", sent: SentRecord, context: str, ms: int, register_wh: int) -> None:
        """MeterValues with the register reading at ``context`` and, beside it, its signed record."""
        value = with_signed_16(lives.meter_value(self.profile, ms, register_wh, None, None, context), sent)
        await self.link.call("MeterValues", {"connectorId": s.conn.number, "transactionId": s.tx, "meterValue": [value]})

    async def _end_now(self, s: "_Session") -> None:
        """The run ends while the session is open: the driver stops it (at once, or never for NEVER_STOPS)."""
        if s.expected:
            return
        self._accrue(s, s.power_now)
        if self.profile.has(Quirk.NEVER_STOPS):
            await self._meter_values(s, 0)
            await self._signed_end_without_stop(s)
            await self._status(s.conn.number, "Available", conn=s.conn)
            self._expect(s, reason="", stop_status="Available", closed_by="available", ending=Ending.CABLE_PULLED)
            return
        s.transition = s.transition or "Finishing"
        await self._status(s.conn.number, "Finishing", self._finishing_fault(), conn=s.conn)
        await self._stop(s, "Local")
        self._expect(s, reason="Local", stop_status=s.transition, closed_by="stop_transaction", ending=Ending.USER_STOP)

    async def _end_after_power_loss(self, s: "_Session") -> None:
        self._accrue(s, s.power_now)
        await self._rebooted.wait()
        transition = s.transition or "Available"  # after the reboot: Charging -> Available
        if s.expected:
            await self._status(s.conn.number, "Available", conn=s.conn)
            return
        if s.stop_reason:  # the stop went out before the power did; only its transition is missing
            await self._status(s.conn.number, "Available", conn=s.conn)
            self._expect(s, reason=s.stop_reason, stop_status=transition, closed_by="stop_transaction")
            return
        cut_ms = self.cut_ms
        if self.profile.status_after_stop:
            await self._stop(s, "PowerLoss", at_ms=cut_ms)
            await self._status(s.conn.number, "Available", conn=s.conn)
        else:
            await self._status(s.conn.number, "Available", conn=s.conn)
            await self._stop(s, "PowerLoss", at_ms=cut_ms)
        s.transition = transition
        self._expect(s, reason="PowerLoss", stop_status=transition, closed_by="stop_transaction", ending=Ending.POWER_LOSS)

    def _expect(self, s: "_Session", *, reason: str, stop_status: str, closed_by: str, ending: Ending | None = None,
                into_faulted: bool | None = None) -> None:
        """What the pipeline must make of ``s`` (``into_faulted``: the EVSE went Faulted at the stop; default: the
        status it went to from Charging is Faulted)."""
        s.expected = True
        kind = ending or s.plan.ending
        self.ledger.endings[kind.value] += 1
        attempt = s.conn.attempt
        if attempt is not None and attempt.transaction_id == str(s.tx):
            energy = s.conn.register_wh - s.meter_start
            attempt.delivered = attempt.first_charging_ms is not None or energy > 0
            stopped = closed_by == "stop_transaction"
            attempt.failure = incidents.transaction_failure(delivered=attempt.delivered, stopped=stopped, reason=reason,
                                                            into_faulted=stop_status == "Faulted" if into_faulted is None
                                                            else into_faulted)
            attempt.ended_ok = attempt.failure == ""
            attempt.stopped_ms = s.stopped_ms if stopped else None
            attempt.closed = True
            if attempt.available_ms is not None or not stopped:
                s.conn.attempt = None  # Available came first (the cable pulled): nothing blocks the bay
        energy_wh = float(s.conn.register_wh - s.meter_start)
        expected = ExpectedSession(
            charge_point_id=self.profile.charge_point_id, connector_id=s.conn.number, transaction_id=str(s.tx),
            id_tag=self._id_tag(s), energy_wh=energy_wh, stop_reason=reason,
            stop_status=self._stop_status(stop_status), closed_by=closed_by, ending=kind.value,
            quirks=sorted(self.profile.quirks), ocpp_version=self.OCPP_VERSION,
            **signed_truth.expected_signatures(s.signed, energy_wh),
        )
        self.ledger.sessions.append(expected)
        s.conn.closed_by_available = (expected, now_ms()) if closed_by == "available" else None

    @staticmethod
    def _replugged(conn: _Connector) -> None:
        """A plug-in that leads to a start: note on the session its Available closed how soon it came."""
        if conn.closed_by_available is not None:
            expected, available_ms = conn.closed_by_available
            expected.replugged_after_s = (now_ms() - available_ms) / 1000
            conn.closed_by_available = None

    def _id_tag(self, s: "_Session") -> str:
        return s.plan.id_tag

    def _stop_status(self, transition: str) -> str:
        """The expected ``stop_status`` of a transition out of Charging (a 1.6 status)."""
        return transition

    # --- power ------------------------------------------------------------------------------------

    async def _power_loss(self, reboot_s: float) -> None:
        self.ledger.power_losses += 1
        self.cut_ms = now_ms()
        self.epoch += 1
        self._rebooted.clear()
        self._cut.set()
        self.link.cut_power()
        await asyncio.sleep(self.timing.real(reboot_s))
        self._cut.clear()
        self.link.restore_power()
        await self._boot_after_power_loss()
        self._rebooted.set()

    async def _boot_after_power_loss(self) -> None:
        await self._boot_notification()
        await self._status(0, "Available")

    def _check_power(self, epoch: int) -> None:
        if self.epoch != epoch:
            raise PowerCut()

    # --- helpers ----------------------------------------------------------------------------------

    async def _wait(self, simulated_s: float, *, closing_ok: bool = False, stoppable: bool = True) -> None:
        """Sleep ``simulated_s``; a power cut raises :class:`PowerCut`, the end of the run :class:`Closing`
        (or, with ``closing_ok``, just ends the wait: what follows is quick and must still be sent), the station's
        emergency stop :class:`EmergencyStopped` (unless ``stoppable`` is false: the station's own waits)."""
        if self.closing.is_set():
            if closing_ok:
                return
            raise Closing()
        if self._cut.is_set():
            raise PowerCut()
        if stoppable and self._estop.is_set():
            raise EmergencyStopped()
        sleeper = asyncio.ensure_future(asyncio.sleep(self.timing.real(simulated_s)))
        cut = asyncio.ensure_future(self._cut.wait())
        closing = asyncio.ensure_future(self.closing.wait())
        waits = [sleeper, cut, closing] + ([asyncio.ensure_future(self._estop.wait())] if stoppable else [])
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waits:
                future.cancel()
        if self._cut.is_set():
            raise PowerCut()
        if self.closing.is_set() and not closing_ok:
            raise Closing()
        if stoppable and self._estop.is_set():
            raise EmergencyStopped()

    async def _status(self, connector: int, status: str, fault: tuple[str, str, str] | None = None, *,
                      conn: _Connector | None = None, at_ms: int | None = None) -> None:
        answer = await self.link.call("StatusNotification",
                                      lives.status_payload(self.profile, connector, status, at_ms or now_ms(), fault))
        if answer is not None:
            self._reported(connector, status, fault, conn)
        if conn is None:
            return
        conn.status = status
        faulty = status == "Faulted" or fault is not None
        if conn.fault is not None and (not faulty or (fault and fault[0] != conn.fault.error_code)):
            conn.fault.cleared = True
            conn.fault = None
        if faulty and conn.fault is None:
            conn.fault = self._record_fault(connector, (fault or ("NoError", "", ""))[0])

    def _reported(self, connector: int, status: str, fault: tuple[str, str, str] | None, conn: _Connector | None) -> None:
        """Ground truth of a status the central system received just now (``status`` in 1.6 terms): the port
        is known from now, a Faulted / Unavailable interval begins or ends, a plug-in begins or ends an attempt."""
        at = now_ms()
        if connector >= 1 and connector not in self.ports_seen:
            self.ports_seen.add(connector)
            self.ledger.ports.append(ExpectedPort(self.profile.charge_point_id, connector, at, self.OCPP_VERSION))
        down = status if status in ("Faulted", "Unavailable") else ""
        current = self.open_downs.get(connector)
        if current is not None and current.status != down:  # Faulted -> Faulted (another code) goes on
            current.ended_ms = at
            del self.open_downs[connector]
            current = None
        if down and current is None:
            faulted = down == "Faulted"
            vendor_code = (fault or ("", "", ""))[1] if faulted and self.OCPP_VERSION == "ocpp1.6" else ""
            self.open_downs[connector] = ExpectedDown(self.profile.charge_point_id, connector, down, at, None,
                                                      self._down_error_code(fault) if faulted else "", vendor_code,
                                                      self.OCPP_VERSION)
            self.ledger.downs.append(self.open_downs[connector])
        if conn is None:
            return
        if status == "Preparing" and conn.plugged_ms is None and conn.attempt is None:
            conn.plugged_ms = at
        elif status == "Available":
            if conn.plugged_ms is not None:  # plugged in and out without a start
                self.ledger.attempts.append(ExpectedAttempt(
                    self.profile.charge_point_id, connector, AttemptKind.PLUGIN_WITHOUT_START, conn.plugged_ms,
                    failure="plugin_no_start", closed=True, ocpp_version=self.OCPP_VERSION))
                conn.plugged_ms = None
            attempt = conn.attempt
            if attempt is not None:
                if attempt.available_ms is None:
                    attempt.available_ms = at
                if attempt.closed:
                    conn.attempt = None

    def _down_error_code(self, fault: tuple[str, str, str] | None) -> str:
        """The ``error_code`` a fault status gives its outage (1.6: the errorCode)."""
        return (fault or ("NoError", "", ""))[0]

    # --- incidents --------------------------------------------------------------------------------

    async def _authorize(self, id_tag: str) -> bool:
        """Authorize the driver's card; True when accepted."""
        answer = await self.link.call("Authorize", lives.authorize_payload(id_tag))
        info = answer.get("idTagInfo") if isinstance(answer, dict) else None
        return isinstance(info, dict) and info.get("status") == "Accepted"

    async def _authorize_only(self) -> None:
        """A driver presents a card at the charger and leaves without plugging in (accepted or not)."""
        card = lives.driver_card(self.rng)
        accepted = await self._authorize(card)
        self.ledger.attempts.append(ExpectedAttempt(
            self.profile.charge_point_id, 0, AttemptKind.AUTHORIZE_WITHOUT_START, now_ms(), id_tag=card,
            failure="authorize_no_start" if accepted else "authorize_rejected", closed=True, ocpp_version=self.OCPP_VERSION))

    async def _offline_life(self) -> None:
        """The charger's network goes now and then; the connector lives go on (their messages queue)."""
        while not self.closing.is_set():
            plan = incidents.plan_offline(self.incident_rng, self.behaviours)
            if plan is None:
                return
            try:
                await self._wait(plan.after_s)
            except PowerCut:
                await self._rebooted.wait()
                continue
            except Closing:
                return
            self.ledger.offline_periods += 1
            await self.link.go_offline(plan.how)
            try:
                await self._wait(plan.lasts_s, closing_ok=True)
            except PowerCut:
                pass  # the network comes back whatever the power does (the reboot needs it)
            finally:
                await self.link.go_online()

    async def _station_life(self) -> None:
        """Now and then the whole station is down: OCPP 1.6 connector 0 Unavailable (maintenance) or Faulted; an
        OCPP 2.0.1 station says so as its AvailabilityState, and its Faulted is the emergency stop
        (:class:`~simulator.charger_v201.Charger201`)."""
        while not self.closing.is_set():
            plan = incidents.plan_station_outage(self.incident_rng, self.behaviours)
            if plan is None or not self._has_station_status():
                return
            try:
                await self._wait(plan.after_s, stoppable=False)
                self.ledger.station_outages += 1
                self._station_up.clear()
                await self._station_down(plan.status)
                await self._wait(plan.lasts_s, closing_ok=True, stoppable=False)
                await self._station_back()
            except PowerCut:
                await self._rebooted.wait()  # the boot reported connector 0 Available
                await self._station_back_after_power_loss()
            except Closing:
                return
            finally:
                self._station_up.set()

    async def _station_down(self, status: str) -> None:
        fault = incidents.STATION_FAULT if status == "Faulted" else None
        await self._status(0, status, fault)
        if fault is not None:
            self._record_fault(0, fault[0])  # connector 0 faults clear with its next status

    async def _station_back(self) -> None:
        await self._status(0, "Available")

    async def _station_back_after_power_loss(self) -> None:
        """(OCPP 1.6: the boot reported connector 0 Available.)"""

    async def _flush_backlog(self, conn: _Connector) -> None:
        """The session made before the first connection (:attr:`Behaviours.backlog_share`), its messages sent now
        from the queue with the times they were made (:mod:`simulator.backlog`)."""
        if self.profile.has(Quirk.REGISTER_PER_SESSION):
            conn.register_wh, conn.energy_f = 0, 0.0
        plan = backlog.plan_backlog(self.rng, self.profile, now_ms(), conn.register_wh)
        started_ms = now_ms()
        started = await self._backlog_start(conn, plan)
        if started is None:
            return
        s, charging_ms = started
        self.ledger.started += 1
        conn.attempt = ExpectedAttempt(
            self.profile.charge_point_id, conn.number, AttemptKind.START_TRANSACTION, started_ms=started_ms,
            transaction_id=str(s.tx), id_tag=self._id_tag(s), first_charging_ms=charging_ms, ocpp_version=self.OCPP_VERSION,
            available_ms=started_ms)  # the connector said Available at the boot: nothing blocks the bay after the stop
        self.ledger.attempts.append(conn.attempt)
        await self._signed_begin(s)
        await self._backlog_samples(s, plan)
        conn.register_wh = plan.meter_stop
        s.transition = s.transition or "Finishing"
        await self._stop(s, "Local", at_ms=plan.stop_ms)
        self._expect(s, reason="Local", stop_status=self._backlog_stop_status(s), closed_by="stop_transaction",
                     ending=Ending.USER_STOP)
        self.ledger.sessions[-1].backlog = True

    async def _backlog_start(self, conn: _Connector, plan: "backlog.Backlog") -> "tuple[_Session, int | None] | None":
        """OCPP 1.6: StartTransaction as it was made (its id comes with the answer now); no status says Charging.
        The session, and when the pipeline saw it charging (None: never)."""
        payload = lives.start_payload(self.profile, conn.number, plan.plan, plan.meter_start, plan.start_ms)
        answer = await self.link.call("StartTransaction", payload)
        if not answer or not isinstance(answer.get("transactionId"), int):
            self.ledger.start_refused += 1
            return None
        return _Session(conn, plan.plan, answer["transactionId"], plan.meter_start, plan.start_ms, self.epoch), None

    async def _backlog_samples(self, s: "_Session", plan: "backlog.Backlog") -> None:
        for at_ms, register_wh in plan.samples:
            await self.link.call("MeterValues", {"connectorId": s.conn.number, "transactionId": s.tx, "meterValue": [
                lives.meter_value(self.profile, at_ms, register_wh, s.plan.power_w, None)]})

    def _backlog_stop_status(self, s: "_Session") -> str:
        """OCPP 1.6 queues no StatusNotification (the spec: no historical status changes): no move out of Charging."""
        return ""

    async def _end_after_emergency_stop(self, s: "_Session") -> None:
        """(OCPP 2.0.1 stations only: :class:`~simulator.charger_v201.Charger201`.)"""

    def _has_station_status(self) -> bool:
        return True

    def _record_fault(self, connector: int, error_code: str, *, cleared: bool | None = None) -> ExpectedFault:
        fault = ExpectedFault(self.profile.charge_point_id, connector, error_code,
                              cleared=connector == 0 if cleared is None else cleared, ocpp_version=self.OCPP_VERSION)
        self.ledger.faults.append(fault)
        return fault


@dataclass
class _Session:
    conn: _Connector
    plan: SessionPlan
    tx: int | str  # 1.6: the central system's int; 2.0.1: the charger's UUID
    meter_start: int
    start_ms: int
    epoch: int
    last_ms: int = 0
    power_now: float = 0.0
    transition: str = ""  # the status the connector went to from Charging
    stop_reason: str = ""  # set once StopTransaction was answered
    stopped_ms: int | None = None  # when the stop was answered (this side's clock)
    expected: bool = False
    # OCPP 2.0.1 only
    token: dict[str, str] | None = None  # the idToken the transaction started with
    charging_state: str = ""  # the last chargingState sent
    charged_ms: int = 0  # time spent in Charging before charging_since_ms
    charging_since_ms: int | None = None  # in Charging since (real ms)
    last_update: dict[str, Any] | None = None  # the last periodic Updated (UPDATED_AFTER_ENDED replays it)
    signed: list[SentRecord] = field(default_factory=list)  # the signed records sent for it, in order

    def __post_init__(self) -> None:
        self.last_ms = self.start_ms
