"""The same simulated lives in OCPP 2.0.1: pure payload builders and the mapping from 1.6 terms.

A 2.0.1 charger lives exactly the plans of :mod:`simulator.lives`; only the wire differs
(OCPP 2.0.1 part 2, the JSON schemas of the ``ocpp`` package). The mapping, which the processors'
normalizer (``processors/ocpp201.py``, SESSIONS.md "OCPP 2.0.1") maps back the same way:

- connector *i* of the profile is EVSE *i* with one connector (``connectorId`` 1); the expected
  ``connector_id`` is the EVSE id;
- plug-in: StatusNotification ``Occupied``; with a card, Authorize, then TransactionEvent ``Started``
  (``Authorized``; a start button: ``CablePluggedIn`` and idToken ``""`` of type ``NoAuthorization``)
  in ``EVConnected`` with the Transaction.Begin register; then ``Updated`` ``Charging``
  (``ChargingStateChanged``); periodic ``Updated`` (``MeterValuePeriodic``, Sample.Periodic);
- the 1.6 transition out of Charging becomes a ``chargingState`` (:data:`CHARGING_STATE`): Finishing →
  EVConnected, SuspendedEV / SuspendedEVSE → the same, Available → Idle, Faulted → EVConnected with the
  EVSE Faulted (StatusNotification + NotifyEvent ``Problem`` "true"; "false" when it clears);
- ``Ended`` carries the stop reason as ``stoppedReason`` (:data:`ENDED_TRIGGER` gives its
  ``triggerReason``), the Transaction.End register and the transition's ``chargingState``;
  StatusNotification ``Available`` follows when the cable goes.

``seqNo`` is the charger's (+1 for every TransactionEvent; per transaction for PER_EVSE_TRANSACTION_IDS);
``transactionId`` is a UUID the charger makes (PER_EVSE_TRANSACTION_IDS: "1", "2", ... per EVSE). Faults are
NotifyEvent component problems: the expected ``error_code`` is ``Component/Problem``. The station as a whole
(2.0.1 has no connector 0 status) says its maintenance as its ``AvailabilityState`` and its emergency stop as a
``ChargingStation`` ``Problem`` (:data:`STATION_PROBLEM`); the EVSEs it takes down go Faulted under that code.
"""

from __future__ import annotations

from typing import Any

from simulator.lives import FAULT_CODES, Profile, Quirk, SessionPlan, timestamp

SUBPROTOCOL = "ocpp2.0.1"
FIRMWARE = "2.0.1-sim"

# The 1.6 status a connector goes to from Charging -> the 2.0.1 chargingState of that moment.
CHARGING_STATE: dict[str, str] = {
    "Charging": "Charging",
    "Finishing": "EVConnected",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "Available": "Idle",  # the cable pulled: no EV any more
    "Faulted": "EVConnected",  # the EVSE is Faulted; the EV is still plugged in
}

# The 1.6 connector status -> the 2.0.1 connectorStatus (the charging detail lives in chargingState).
CONNECTOR_STATUS: dict[str, str] = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}

# stoppedReason (the 1.6 reasons of the endings are all 2.0.1 ReasonEnumType values) -> Ended's triggerReason.
ENDED_TRIGGER: dict[str, str] = {
    "Local": "StopAuthorized",  # the driver presents the card again
    "Remote": "RemoteStop",
    "EVDisconnected": "EVCommunicationLost",  # the cable pulled
    "PowerLoss": "AbnormalCondition",
    "Other": "AbnormalCondition",  # the fault
    "EmergencyStop": "AbnormalCondition",  # 2.0.1 has no trigger of its own for the button
}

# The 1.6 fault of a plan (errorCode, vendorErrorCode, info) -> the 2.0.1 component that has the Problem
# (standardized component names, OCPP 2.0.1 part 2 appendix 3).
FAULT_COMPONENT: dict[tuple[str, str, str], str] = dict(zip(FAULT_CODES, (
    "GroundIsolationProtection",  # GroundFailure
    "OverCurrentProtection",  # OverCurrentFailure
    "TemperatureSensor",  # HighTemperature
    "CPPWMController",  # EVCommunicationError: the control pilot line
    "ConnectorPlugRetentionLock",  # ConnectorLockFailure
    "RCD",  # OtherError "RCD tripped"
    "PowerContactor",  # OtherError "contactor welded"
)))
PROBLEM = "Problem"
STATION = "ChargingStation"
STATION_PROBLEM = f"{STATION}/{PROBLEM}"  # the expected error_code of an emergency stop, on connector 0 and every EVSE


def charging_state(transition: str) -> str:
    """The chargingState of a 1.6 transition out of Charging (the expected ``stop_status``)."""
    return CHARGING_STATE[transition]


def fault_component(fault: tuple[str, str, str]) -> str:
    return FAULT_COMPONENT.get(fault, "EVSE")


def fault_error_code(fault: tuple[str, str, str]) -> str:
    """The expected ``error_code`` of a fault: the NotifyEvent component and variable."""
    return f"{fault_component(fault)}/{PROBLEM}"


def id_token(profile: Profile, plan: SessionPlan) -> dict[str, str]:
    """The driver's token; a start button (NO_AUTHORIZATION) sends an empty one (the expected ``id_tag`` is ``""``)."""
    if profile.has(Quirk.NO_AUTHORIZATION):
        return {"idToken": "", "type": "NoAuthorization"}
    return {"idToken": plan.id_tag, "type": "ISO14443"}


def boot_payload(profile: Profile, reason: str = "PowerUp") -> dict[str, Any]:
    return {"reason": reason, "chargingStation": {"model": profile.model, "vendorName": profile.vendor,
                                                  "serialNumber": f"SN{profile.number:08d}", "firmwareVersion": FIRMWARE}}


def status_payload(profile: Profile, evse: int, connector_status: str, ms: int) -> dict[str, Any]:
    return {"timestamp": timestamp(ms, profile), "connectorStatus": connector_status, "evseId": evse, "connectorId": 1}


def authorize_payload(token: dict[str, str]) -> dict[str, Any]:
    return {"idToken": dict(token)}


def meter_value(profile: Profile, ms: int, register_wh: int, power_w: float | None, soc: float | None,
                context: str = "Sample.Periodic") -> dict[str, Any]:
    """One ``meterValue`` element: the energy register (a number; kWh for KWH_REGISTER), power and SoC."""
    if profile.has(Quirk.KWH_REGISTER):
        register: dict[str, Any] = {"value": round(register_wh / 1000, 3), "unitOfMeasure": {"unit": "kWh"}}
    else:
        register = {"value": register_wh, "unitOfMeasure": {"unit": "Wh"}}
    samples = [register | {"context": context, "measurand": "Energy.Active.Import.Register", "location": "Outlet"}]
    if power_w is not None:
        samples.append({"value": int(power_w), "context": context, "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "W"}})
    if soc is not None:
        samples.append({"value": round(soc, 1), "context": context, "measurand": "SoC", "location": "EV",
                        "unitOfMeasure": {"unit": "Percent"}})
    return {"timestamp": timestamp(ms, profile), "sampledValue": samples}


def transaction_event(profile: Profile, *, event_type: str, ms: int, trigger: str, seq_no: int, transaction_id: str,
                      evse: int, token: dict[str, str] | None, charging_state: str | None = None,
                      stopped_reason: str | None = None, time_spent_charging_s: int | None = None,
                      meter: dict[str, Any] | None = None, offline: bool = False) -> dict[str, Any]:
    """A TransactionEvent, quirks applied: ``evse`` in every event (EVSE_ONLY_ON_START: in Started only),
    ``idToken`` in Started (ID_TOKEN_EVERY_EVENT: in every event), no ``triggerReason`` on Ended
    (ENDED_WITHOUT_TRIGGER)."""
    info: dict[str, Any] = {"transactionId": transaction_id}
    if charging_state is not None:
        info["chargingState"] = charging_state
    if time_spent_charging_s is not None:
        info["timeSpentCharging"] = time_spent_charging_s
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
    payload: dict[str, Any] = {"eventType": event_type, "timestamp": timestamp(ms, profile), "triggerReason": trigger,
                               "seqNo": seq_no, "transactionInfo": info}
    if event_type == "Ended" and profile.has(Quirk.ENDED_WITHOUT_TRIGGER):
        del payload["triggerReason"]
    if offline:
        payload["offline"] = True
    if event_type == "Started" or not profile.has(Quirk.EVSE_ONLY_ON_START):
        payload["evse"] = {"id": evse, "connectorId": 1}
    if token is not None and (event_type == "Started" or profile.has(Quirk.ID_TOKEN_EVERY_EVENT)):
        payload["idToken"] = dict(token)
    if meter is not None:
        payload["meterValue"] = [meter]
    return payload


def notify_event(profile: Profile, ms: int, event_id: int, evse: int, fault: tuple[str, str, str], *,
                 active: bool) -> dict[str, Any]:
    """A component's ``Problem`` on an EVSE: ``actualValue`` "true" when it begins, "false" (cleared) when it ends."""
    _, vendor_code, info = fault
    event: dict[str, Any] = {
        "eventId": event_id, "timestamp": timestamp(ms, profile), "trigger": "Alerting" if active else "Delta",
        "actualValue": "true" if active else "false",
        "component": {"name": fault_component(fault), "evse": {"id": evse, "connectorId": 1}},
        "variable": {"name": PROBLEM}, "eventNotificationType": "HardWiredNotification",
    }
    if vendor_code:
        event["techCode"] = vendor_code
    if info:
        event["techInfo"] = info
    if not active:
        event["cleared"] = True
    return {"generatedAt": timestamp(ms, profile), "seqNo": 0, "tbc": False, "eventData": [event]}


def station_problem(profile: Profile, ms: int, event_id: int, *, active: bool) -> dict[str, Any]:
    """The emergency stop pressed (``active``) or released: a ``Problem`` of the station as a whole (no EVSE)."""
    event: dict[str, Any] = {
        "eventId": event_id, "timestamp": timestamp(ms, profile), "trigger": "Alerting" if active else "Delta",
        "actualValue": "true" if active else "false", "component": {"name": STATION}, "variable": {"name": PROBLEM},
        "eventNotificationType": "HardWiredNotification", "techCode": "EmergencyStop",
    }
    if not active:
        event["cleared"] = True
    return {"generatedAt": timestamp(ms, profile), "seqNo": 0, "tbc": False, "eventData": [event]}


def station_availability(profile: Profile, ms: int, event_id: int, state: str) -> dict[str, Any]:
    """The station's ``AvailabilityState`` (Unavailable for maintenance, Available again)."""
    event = {"eventId": event_id, "timestamp": timestamp(ms, profile), "trigger": "Delta", "actualValue": state,
             "component": {"name": STATION}, "variable": {"name": "AvailabilityState"},
             "eventNotificationType": "HardWiredNotification"}
    return {"generatedAt": timestamp(ms, profile), "seqNo": 0, "tbc": False, "eventData": [event]}
