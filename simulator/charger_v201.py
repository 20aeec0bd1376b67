"""A simulated charger living its :mod:`simulator.lives` life in OCPP 2.0.1 (:mod:`simulator.v201`).

Same plans, same waits, same endings as the 1.6 :class:`~simulator.charger.Charger` (it draws the
same random numbers in the same order); the moments whose messages differ are overridden:

- boot: BootNotification (reason PowerUp, also after a power loss), StatusNotification Available per EVSE;
- status: connector statuses map to Available / Occupied / Faulted; a fault is StatusNotification
  Faulted plus NotifyEvent ``Problem`` "true", and NotifyEvent "false" before the EVSE leaves Faulted;
- a session: Occupied, Authorize (not for a start button), TransactionEvent Started (EVConnected,
  Transaction.Begin register), Updated Charging, periodic Updated, the transition out of Charging as a
  chargingState (an Updated before the Ended, or only in the Ended: the firmware's order), Ended with
  stoppedReason and the Transaction.End register, then Available when the cable goes;
- a power loss: after the reboot the Ended that could not be sent goes out with ``offline`` true and
  the register and time of the moment the power went.

Every TransactionEvent takes the charger's next ``seqNo``, assigned when the event is made, just before
the link queues it (the link sends in that order: one CALL in flight).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from simulator import v201
from simulator.charger import Charger, _Connector, _Session, now_ms
from simulator.lives import Ending, Quirk, SessionPlan


class Charger201(Charger):
    OCPP_VERSION = v201.SUBPROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seq_no = 0  # TransactionEvent.seqNo: +1 for every TransactionEvent this charger makes
        self.event_id = 0  # NotifyEvent eventId
        self.faults: dict[int, tuple[str, str, str]] = {}  # EVSE -> the fault NotifyEvent reported

    # --- boot and status --------------------------------------------------------------------------

    async def _boot_notification(self) -> None:
        while await self.link.call("BootNotification", v201.boot_payload(self.profile)) is None:
            await asyncio.sleep(5)

    async def _boot(self) -> None:
        await self._boot_notification()
        for connector in self.connectors:
            await self._status(connector.number, "Available", conn=connector)

    async def _boot_after_power_loss(self) -> None:
        await self._boot_notification()  # each EVSE says Available when it is free again

    async def _status(self, connector: int, status: str, fault: tuple[str, str, str] | None = None, *,
                      conn: _Connector | None = None, at_ms: int | None = None) -> None:
        """``status`` (a 1.6 status) as 2.0.1 says it. Faults are NotifyEvent problems: begun after the
        StatusNotification Faulted, cleared before the EVSE reports anything else."""
        if connector == 0:
            return  # the station as a whole: no EVSE status in this simulation
        ms = at_ms or now_ms()
        if conn is not None and conn.fault is not None and status != "Faulted":
            await self.link.call("NotifyEvent", self._notify(connector, self.faults.pop(connector), active=False))
            conn.fault.cleared = True
            conn.fault = None
        answer = await self.link.call("StatusNotification",
                                      v201.status_payload(self.profile, connector, v201.CONNECTOR_STATUS[status], ms))
        if answer is not None:
            self._reported(connector, status, fault, conn)
        if conn is None:
            return
        conn.status = status
        if status == "Faulted" and fault is not None and conn.fault is None:
            self.faults[connector] = fault
            await self.link.call("NotifyEvent", self._notify(connector, fault, active=True, ms=ms))
            conn.fault = self._record_fault(connector, v201.fault_error_code(fault), cleared=False)

    def _down_error_code(self, fault: tuple[str, str, str] | None) -> str:
        return v201.fault_error_code(fault) if fault is not None else ""

    def _has_station_status(self) -> bool:
        return False  # 2.0.1 has no connector 0 status

    async def _authorize(self, id_tag: str) -> bool:
        answer = await self.link.call("Authorize", v201.authorize_payload({"idToken": id_tag, "type": "ISO14443"}))
        info = answer.get("idTokenInfo") if isinstance(answer, dict) else None
        return isinstance(info, dict) and info.get("status") == "Accepted"

    def _notify(self, evse: int, fault: tuple[str, str, str], *, active: bool, ms: int | None = None) -> dict[str, Any]:
        self.event_id += 1
        return v201.notify_event(self.profile, ms or now_ms(), self.event_id, evse, fault, active=active)

    # --- a session --------------------------------------------------------------------------------

    async def _start(self, conn: _Connector, plan: SessionPlan) -> _Session | None:
        epoch = self.epoch
        self._replugged(conn)
        await self._status(conn.number, "Preparing", conn=conn)  # Occupied: the cable is in
        await self._wait(self.rng.uniform(5, 40))  # the driver's card, the cable locked
        token = v201.id_token(self.profile, plan)
        trigger = "CablePluggedIn"
        if token["type"] != "NoAuthorization":
            answer = await self.link.call("Authorize", v201.authorize_payload(token))
            info = answer.get("idTokenInfo") if isinstance(answer, dict) else None
            if not isinstance(info, dict) or info.get("status") != "Accepted":
                return None  # not authorized: no transaction
            self._check_power(epoch)
            trigger = "Authorized"
        meter_start, start_ms = conn.register_wh, now_ms()
        s = _Session(conn, plan, str(uuid.uuid4()), meter_start, start_ms, epoch, token=token)
        meter = v201.meter_value(self.profile, start_ms, meter_start, None, None, "Transaction.Begin")
        await self._send(s, "Started", trigger, ms=start_ms, state="EVConnected", meter=meter)
        return s

    async def _charging_started(self, s: _Session) -> None:
        s.charging_since_ms = now_ms()
        await self._send(s, "Updated", "ChargingStateChanged", state="Charging")

    async def _leave_charging(self, s: _Session, status: str) -> None:
        self._stop_clock(s)
        s.transition = status
        await self._send(s, "Updated", "ChargingStateChanged", state=v201.charging_state(status))

    async def _meter_values(self, s: _Session, power_w: float, context: str = "Sample.Periodic") -> None:
        meter = v201.meter_value(self.profile, now_ms(), s.conn.register_wh, power_w, self._soc(s), context)
        s.last_update = await self._send(s, "Updated", "MeterValuePeriodic", meter=meter)

    async def _stop_with_status(self, s: _Session, status: str, reason: str, fault: tuple[str, str, str] | None) -> None:
        """The transition and the Ended, in this firmware's order: the chargingState in an Updated a few
        seconds before the Ended, or only in the Ended (then a fault is reported after it)."""
        s.transition = s.transition or status
        state = v201.charging_state(s.transition)
        if self.profile.status_after_stop:
            await self._stop(s, reason)
            await self._wait(s.plan.status_gap_s, closing_ok=True)
            if status == "Faulted":
                await self._status(s.conn.number, "Faulted", fault, conn=s.conn)
        else:
            if status == "Faulted":
                await self._status(s.conn.number, "Faulted", fault, conn=s.conn)
            if s.charging_state != state:
                self._stop_clock(s)
                trigger = {"Faulted": "AbnormalCondition", "Available": "EVCommunicationLost"}.get(status, "ChargingStateChanged")
                await self._send(s, "Updated", trigger, state=state)
            await self._wait(s.plan.status_gap_s, closing_ok=True)
            await self._stop(s, reason)
        if status == "Available":
            await self._status(s.conn.number, "Available", conn=s.conn)  # the cable is out
        self._expect(s, reason=reason, stop_status=s.transition, closed_by="stop_transaction")

    async def _stop(self, s: _Session, reason: str, at_ms: int | None = None, *, offline: bool | None = None) -> None:
        """TransactionEvent Ended: the stop reason, the Transaction.End register, the transition's chargingState."""
        self._accrue(s, s.power_now)
        ms = at_ms or now_ms()
        self._stop_clock(s, ms)
        meter = v201.meter_value(self.profile, ms, s.conn.register_wh, None, None, "Transaction.End")
        await self._send(s, "Ended", v201.ENDED_TRIGGER[reason], ms=ms, state=v201.charging_state(s.transition or "Finishing"),
                         stopped_reason=reason, meter=meter, offline=offline)
        s.stopped_ms = now_ms()
        s.stop_reason = reason
        if self.profile.has(Quirk.UPDATED_AFTER_ENDED) and s.last_update is not None:
            # lbbrhzn/ocpp #2141: an Updated still in the offline queue goes out after the Ended.
            replay = s.last_update | {"seqNo": self._next_seq_no(), "offline": True}
            await self.link.call("TransactionEvent", replay)

    async def _end_now(self, s: _Session) -> None:
        """The run ends while the session is open: the driver stops it at once."""
        if s.expected:
            return
        s.transition = s.transition or "Finishing"
        await self._stop(s, "Local")
        self._expect(s, reason="Local", stop_status=s.transition, closed_by="stop_transaction", ending=Ending.USER_STOP)

    async def _end_after_power_loss(self, s: _Session) -> None:
        self._accrue(s, s.power_now)
        await self._rebooted.wait()
        if s.expected:
            await self._status(s.conn.number, "Available", conn=s.conn)
            return
        s.transition = s.transition or "Available"  # the power went while charging: Idle
        if s.stop_reason:  # the Ended went out before the power did
            await self._status(s.conn.number, "Available", conn=s.conn)
            self._expect(s, reason=s.stop_reason, stop_status=s.transition, closed_by="stop_transaction")
            return
        # The Ended was made while the power was off: from the offline queue, at the moment of the cut.
        await self._stop(s, "PowerLoss", at_ms=self.cut_ms, offline=True)
        await self._status(s.conn.number, "Available", conn=s.conn)
        self._expect(s, reason="PowerLoss", stop_status=s.transition, closed_by="stop_transaction", ending=Ending.POWER_LOSS)

    # --- helpers ----------------------------------------------------------------------------------

    def _id_tag(self, s: _Session) -> str:
        return (s.token or {}).get("idToken", "")

    def _stop_status(self, transition: str) -> str:
        return v201.charging_state(transition)

    def _next_seq_no(self) -> int:
        seq_no, self.seq_no = self.seq_no, self.seq_no + 1
        return seq_no

    def _stop_clock(self, s: _Session, at_ms: int | None = None) -> None:
        """Charging stops: bank the time spent charging (timeSpentCharging)."""
        if s.charging_since_ms is not None:
            until = self.cut_ms if self.epoch != s.epoch else (at_ms or now_ms())
            s.charged_ms += max(0, until - s.charging_since_ms)
            s.charging_since_ms = None

    def _time_spent_charging_s(self, s: _Session, ms: int) -> int:
        running = max(0, ms - s.charging_since_ms) if s.charging_since_ms is not None else 0
        return (s.charged_ms + running) // 1000

    async def _send(self, s: _Session, event_type: str, trigger: str, *, ms: int | None = None, state: str | None = None,
                    stopped_reason: str | None = None, meter: dict[str, Any] | None = None,
                    offline: bool | None = None) -> dict[str, Any]:
        """Make the next TransactionEvent of ``s`` and send it (kept and resent by the link until answered).
        ``offline``: made while the charger was offline (default: the link is down right now)."""
        ms = ms or now_ms()
        if state is not None:
            s.charging_state = state
        payload = v201.transaction_event(
            self.profile, event_type=event_type, ms=ms, trigger=trigger, seq_no=self._next_seq_no(), transaction_id=str(s.tx),
            evse=s.conn.number, token=s.token, charging_state=state, stopped_reason=stopped_reason,
            time_spent_charging_s=None if event_type == "Started" else self._time_spent_charging_s(s, ms),
            meter=meter, offline=(not self.link.online) if offline is None else offline,
        )
        await self.link.call("TransactionEvent", payload)
        return payload

