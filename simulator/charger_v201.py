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
  the register and time of the moment the power went;
- the station as a whole: maintenance as its ``AvailabilityState`` (Unavailable, then Available); its Faulted is the
  emergency stop: NotifyEvent ``ChargingStation`` ``Problem`` "true", every EVSE in use or free Faulted, every
  transaction Ended with ``EmergencyStop``; released: "false", every EVSE Available;
- PER_EVSE_TRANSACTION_IDS: transaction ids "1", "2", ... per EVSE and seqNo per transaction;
- a session queued before the first connection (``Behaviours.backlog_share``) goes out after the first boot as
  TransactionEvents with their old times and without the ``offline`` flag (a firmware that does not set it);
- a signing charger's meter signs the Transaction.Begin / .End register values of the Started / Ended events: the
  record rides beside the value as its ``signedMeterValue`` (:mod:`simulator.ocmf_meter`).

Every TransactionEvent takes the charger's next ``seqNo``, assigned when the event is made, just before
the link queues it (the link sends in that order: one CALL in flight).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from signed_meter.model import TX_BEGIN, TX_END
from simulator import backlog, v201
from simulator.charger import Charger, _Connector, _Session, now_ms
from simulator.lives import Ending, ExpectedFault, Quirk, SessionPlan
from simulator.ocmf_meter import with_signed_201


class Charger201(Charger):
    OCPP_VERSION = v201.SUBPROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seq_no = 0  # TransactionEvent.seqNo: +1 for every TransactionEvent this charger makes
        self.tx_seq_nos: dict[str, int] = {}  # PER_EVSE_TRANSACTION_IDS: the next seqNo of each transaction
        self.evse_tx: dict[int, int] = {}  # PER_EVSE_TRANSACTION_IDS: the last transaction number of each EVSE
        self.event_id = 0  # NotifyEvent eventId
        self.faults: dict[int, tuple[str, str, str]] = {}  # EVSE -> the fault NotifyEvent reported
        self.station_down = ""  # the station's AvailabilityState while not Available (Faulted: the emergency stop)
        self.estop_faults: dict[int, ExpectedFault] = {}  # EVSE -> the fault the emergency stop gave it

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
        return True  # as the station's AvailabilityState and its emergency stop (no connector 0 status in 2.0.1)

    # --- the station as a whole -------------------------------------------------------------------

    async def _station_down(self, status: str) -> None:
        self.event_id += 1
        if status != "Faulted":
            answer = await self.link.call("NotifyEvent", v201.station_availability(self.profile, now_ms(), self.event_id, status))
        else:
            answer = await self.link.call("NotifyEvent", v201.station_problem(self.profile, now_ms(), self.event_id, active=True))
            self._record_fault(0, v201.STATION_PROBLEM)  # cleared when it is released
        if answer is not None:
            self._reported(0, status, None, None)
        self.station_down = status
        if status == "Faulted":
            await self._emergency_stop()

    async def _emergency_stop(self) -> None:
        """Every transaction ends (its connector's coroutine sends the Ended: :meth:`_end_after_emergency_stop`); every
        EVSE in use or free goes Faulted. An EVSE already Faulted or Unavailable says nothing new; one whose car is
        still in the bay after its stop stays as it is (its stop went into no fault)."""
        self._released.clear()
        self._estop.set()
        for conn in self.connectors:
            attempt = conn.attempt
            waiting_for_unplug = attempt is not None and attempt.closed and attempt.available_ms is None
            if conn.status in ("Faulted", "Unavailable") or waiting_for_unplug:
                continue
            await self._status(conn.number, "Faulted", conn=conn)
            self.estop_faults[conn.number] = self._record_fault(conn.number, v201.STATION_PROBLEM, cleared=False)

    async def _station_back(self) -> None:
        if not self.station_down:
            return
        self.event_id += 1
        if self.station_down != "Faulted":
            answer = await self.link.call("NotifyEvent", v201.station_availability(self.profile, now_ms(), self.event_id, "Available"))
        else:
            answer = await self.link.call("NotifyEvent", v201.station_problem(self.profile, now_ms(), self.event_id, active=False))
        if answer is not None:
            self._reported(0, "Available", None, None)
        if self.station_down == "Faulted":
            self._estop.clear()
            for conn in self.connectors:  # released: every EVSE the stop took down is free (faults of their own end too)
                if conn.status != "Available":
                    await self._status(conn.number, "Available", conn=conn)
                fault = self.estop_faults.pop(conn.number, None)
                if fault is not None:
                    fault.cleared = True
            self._released.set()
        self.station_down = ""

    async def _station_back_after_power_loss(self) -> None:
        await self._station_back()  # the station says again that it is up (no connector 0 status at its boot)

    async def _end_after_emergency_stop(self, s: _Session) -> None:
        """The emergency stop ended the transaction: an Ended with ``EmergencyStop``, its EVSE Faulted."""
        if s.expected:
            return  # the stop had gone out (the car waiting to be unplugged)
        if s.stop_reason:  # the Ended went out, its status gap was cut short
            self._expect(s, reason=s.stop_reason, stop_status=s.transition, closed_by="stop_transaction", into_faulted=True)
            return
        s.transition = s.transition or "Faulted"  # the EV is still plugged in (EVConnected)
        await self._stop(s, "EmergencyStop")
        self._expect(s, reason="EmergencyStop", stop_status=s.transition, closed_by="stop_transaction",
                     ending=Ending.EMERGENCY_STOP, into_faulted=True)

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
        s = _Session(conn, plan, self._new_transaction_id(conn), meter_start, start_ms, epoch, token=token)
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
            replay = s.last_update | {"seqNo": self._next_seq_no(s), "offline": True}
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

    # --- the session queued before the first connection -------------------------------------------

    async def _backlog_start(self, conn: _Connector, plan: backlog.Backlog) -> tuple[_Session, int | None] | None:
        """Started and the Updated that says Charging, as they were made (the pipeline sees Charging now)."""
        s = _Session(conn, plan.plan, self._new_transaction_id(conn), plan.meter_start, plan.start_ms, self.epoch,
                     token=v201.id_token(self.profile, plan.plan))
        meter = v201.meter_value(self.profile, plan.start_ms, plan.meter_start, None, None, "Transaction.Begin")
        await self._send(s, "Started", "CablePluggedIn", ms=plan.start_ms, state="EVConnected", meter=meter, offline=False)
        s.charging_since_ms = plan.start_ms + 2000
        await self._send(s, "Updated", "ChargingStateChanged", ms=s.charging_since_ms, state="Charging", offline=False)
        return s, now_ms()

    async def _backlog_samples(self, s: _Session, plan: backlog.Backlog) -> None:
        for at_ms, register_wh in plan.samples:
            meter = v201.meter_value(self.profile, at_ms, register_wh, s.plan.power_w, None)
            await self._send(s, "Updated", "MeterValuePeriodic", ms=at_ms, meter=meter, offline=False)

    def _backlog_stop_status(self, s: _Session) -> str:
        return s.transition  # the Ended's chargingState (EVConnected) after the Updated that said Charging

    # --- helpers ----------------------------------------------------------------------------------

    def _id_tag(self, s: _Session) -> str:
        return (s.token or {}).get("idToken", "")

    def _stop_status(self, transition: str) -> str:
        return v201.charging_state(transition)

    def _new_transaction_id(self, conn: _Connector) -> str:
        """A UUID; PER_EVSE_TRANSACTION_IDS: the EVSE's next number, the same ids on every EVSE."""
        if not self.profile.has(Quirk.PER_EVSE_TRANSACTION_IDS):
            return str(uuid.uuid4())
        self.evse_tx[conn.number] = self.evse_tx.get(conn.number, 0) + 1
        return str(self.evse_tx[conn.number])

    def _next_seq_no(self, s: _Session | None = None) -> int:
        """The station's next seqNo; PER_EVSE_TRANSACTION_IDS: the transaction's own (each starts at 0)."""
        if s is not None and self.profile.has(Quirk.PER_EVSE_TRANSACTION_IDS):
            key = f"{s.conn.number}/{s.tx}"
            seq_no = self.tx_seq_nos.get(key, 0)
            self.tx_seq_nos[key] = seq_no + 1
            return seq_no
        seq_no, self.seq_no = self.seq_no, self.seq_no + 1
        return seq_no

    async def _signed_begin(self, s: _Session) -> None:
        """(The Started event carries the signed Begin: :meth:`_signed_meter`.)"""

    def _signed_meter(self, s: _Session, meter: dict[str, Any], ms: int) -> dict[str, Any]:
        """The meter value of a Started / Ended with its register reading signed (other contexts: as it is)."""
        context = meter["sampledValue"][0].get("context")
        if context == "Transaction.Begin":
            sent = self._sign(s, TX_BEGIN, s.meter_start, ms)
        elif context == "Transaction.End":
            sent = self._sign(s, TX_END, s.conn.register_wh, ms)
        else:
            return meter
        return meter if sent is None else with_signed_201(meter, sent)

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
        if meter is not None and s.conn.meter is not None:
            meter = self._signed_meter(s, meter, ms)
        payload = v201.transaction_event(
            self.profile, event_type=event_type, ms=ms, trigger=trigger, seq_no=self._next_seq_no(s), transaction_id=str(s.tx),
            evse=s.conn.number, token=s.token, charging_state=state, stopped_reason=stopped_reason,
            time_spent_charging_s=None if event_type == "Started" else self._time_spent_charging_s(s, ms),
            meter=meter, offline=(not self.link.online) if offline is None else offline,
        )
        await self.link.call("TransactionEvent", payload)
        return payload

