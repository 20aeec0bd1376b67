"""OCPP 2.0.1 frames to domain inputs (:mod:`processors.inputs`), parsed once, never raising.

The mapping, field by field, is the table in SESSIONS.md ("OCPP 2.0.1"). In short:
- TransactionEvent (2.0.1 part 2, E01-E15): ``Started`` → :class:`TransactionStarted` (the charger names
  the transaction: ``transactionInfo.transactionId``); ``Updated`` → :class:`MeterSamples`, and
  :class:`TokenPresented` when it names an ``idToken`` (a transaction started at plug-in); ``Ended`` →
  :class:`TransactionStopped` (``stoppedReason``, the Transaction.End register as meterStop, and where its meter
  series says the transaction started: TxEndedMeasurands' Transaction.Begin value, else its first sample). Every
  event's ``transactionInfo.chargingState`` → :class:`ChargingStateChanged` (before the stop, so the move out of
  Charging is known when the stop is). ``evse.id`` is the domain connector (an EVSE is what a 1.6
  connector was: one transaction at a time), and names the transaction with its id (stations number per EVSE);
  later events may omit ``evse`` (EVerest #1835, E01.FR.16).
- StatusNotification (``connectorStatus`` on ``evseId``) → :class:`StatusReported` without an error code (Faulted
  is a fault whose code a problem names: :mod:`processors.evse_faults`); NotifyEvent ``Problem``-like variables →
  :class:`ProblemReported` (none on an EVSE: the station's, connector 0); the station's ``AvailabilityState`` →
  connector 0's :class:`StatusReported`.
- MeterValues (``evseId``, 0 = the station) → :class:`MeterSamples`; BootNotification → :class:`Booted`;
  Authorize (``idToken.idToken``) and its answer (``idTokenInfo.status``) → :class:`AuthorizeRequested` /
  :class:`AuthorizeAnswered` (charge attempts).
A ``signedMeterValue`` (issue 25) → :class:`SignedSamples` beside the event's samples (an Ended's ride on its
:class:`TransactionStopped`); its ``value`` is still a register sample.
Sampled values are numbers with ``unitOfMeasure {unit, multiplier}``; they are read by the same meter
reader as 1.6 (:mod:`processors.meter`) after the unit and multiplier are applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ocpp.v201.enums import Action, AuthorizationStatusEnumType, ReadingContextEnumType, TransactionEventEnumType

from processors import frame_json, values
from processors.inputs import (
    DEFAULT_STOP_REASON,
    MAX_TOKEN_TYPE,
    NO_ERROR,
    AuthorizeAnswered,
    AuthorizeRequested,
    Booted,
    ChargingStateChanged,
    DomainInput,
    EventSequenced,
    Frame,
    MeterSamples,
    ProblemReported,
    SignedSamples,
    StartDetails,
    StatusReported,
    TokenPresented,
    TransactionStarted,
    TransactionStopped,
)
from processors.meter import ENERGY_REGISTER, MeterReport, Reading, read_meter_values
from processors.protocols import OCPP201
from processors.signed_values import signed_values_201
from processors.timestamps import parse_charger_time
from processors.vocabulary import Status, status_of
from schemas.envelope import Direction, MessageType
from schemas.flags import Flag

VERSION = OCPP201.version
MAX_ID_LENGTH = 36  # transactionId is identifierString maxLength 36
# NotifyEvent variables whose value "true" means a component is in trouble (2.0.1 part 2, N07 / appendix).
PROBLEM_VARIABLES = frozenset({"Problem", "Fault", "Tripped", "Overload"})
_FALSE = frozenset({"false", "0", "", "off", "inactive", "cleared"})
_EMERGENCY_STOP = "EmergencyStop"  # a sensor component whose "Active" is the button pressed
STATION_COMPONENT, AVAILABILITY_STATE = "ChargingStation", "AvailabilityState"
_STATION_STATES = frozenset({Status.AVAILABLE, Status.OCCUPIED, Status.RESERVED, Status.UNAVAILABLE, Status.FAULTED})


def normalize(envelope: Frame) -> list[DomainInput]:
    """The domain inputs one envelope carries (none for most frames)."""
    if envelope.direction == Direction.OUT and envelope.action == Action.authorize:
        return _authorize_answer(envelope)  # the only 2.0.1 answer the correlator reads (charge attempts)
    if envelope.message_type != MessageType.CALL or envelope.direction != Direction.IN:
        return []
    reader = _CALLS.get(envelope.action or "")
    if reader is None:
        return []  # nothing the sessions need (a Heartbeat, a certificate request): not parsed
    try:
        message = frame_json.loads(envelope.frame)
    except ValueError:
        return []
    if not isinstance(message, list) or len(message) < 4 or not isinstance(message[3], dict):
        return []
    return reader(envelope, message[3])


def _authorize(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    token = _object(payload.get("idToken"))
    return [AuthorizeRequested(env.gateway_ts_ms, env.event_id(), values.text(env.message_id),
                               values.text(token.get("idToken")))]


def _authorize_answer(env: Frame) -> list[DomainInput]:
    """Accepted or not (``None``: a CALLERROR, or no readable ``idTokenInfo.status``)."""
    try:
        message = frame_json.loads(env.frame)
    except ValueError:
        return []
    if not isinstance(message, list) or len(message) < 3:
        return []
    accepted = None
    if env.message_type == MessageType.CALL_RESULT and isinstance(message[2], dict):
        info = message[2].get("idTokenInfo")
        status = info.get("status") if isinstance(info, dict) else None
        accepted = status == AuthorizationStatusEnumType.accepted if isinstance(status, str) else None
    elif env.message_type != MessageType.CALL_ERROR:
        return []
    return [AuthorizeAnswered(env.gateway_ts_ms, env.event_id(), values.text(env.message_id), accepted)]


def _object(value: Any) -> dict[str, Any]:
    """A JSON object where the spec wants one; ``{}`` for anything else (absent, null, a list, a string)."""
    return value if isinstance(value, dict) else {}


def _evse_id(raw: Any) -> int | None:
    return values.in_range(values.integer(raw), 0, values.INT32_MAX)


def transaction_id(raw: Any) -> str | None:
    """A 2.0.1 transactionId: a non-empty string (identifierString); an integer is read as its digits."""
    if isinstance(raw, str):
        text = values.text(raw).strip()
        return text[:MAX_ID_LENGTH] if text else None
    number = values.integer(raw)
    return str(number) if number is not None else None


def meter_report(meter_values: Any) -> MeterReport:
    """2.0.1 ``meterValue`` read with the 1.6 reader: each value scaled by its ``unitOfMeasure``."""
    if not isinstance(meter_values, list):
        return read_meter_values(meter_values)
    converted: list[Any] = []
    for meter_value in meter_values:
        if not isinstance(meter_value, dict) or not isinstance(meter_value.get("sampledValue"), list):
            converted.append(meter_value)
            continue
        samples = [_as_16(sample) for sample in meter_value["sampledValue"]]
        converted.append({"timestamp": meter_value.get("timestamp"), "sampledValue": samples})
    return read_meter_values(converted)


def _as_16(sample: Any) -> Any:
    """A 2.0.1 sampledValue in the 1.6 shape: the value as a decimal string with the multiplier applied."""
    if not isinstance(sample, dict):
        return sample
    unit = _object(sample.get("unitOfMeasure"))
    value = sample.get("value")
    multiplier = values.integer(unit.get("multiplier", 0))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            value = str(exact.scaleb(multiplier or 0)) if -9 <= (multiplier or 0) <= 9 else value
        except (InvalidOperation, ValueError):
            pass  # NaN / Infinity: the meter reader flags it unreadable
    out = {k: sample.get(k) for k in ("measurand", "phase", "location", "context") if sample.get(k) is not None}
    out["value"] = value
    if unit.get("unit") is not None:
        out["unit"] = unit.get("unit")
    return out


def _register(report: MeterReport, context: str) -> tuple[float | None, tuple[Reading, ...]]:
    """The register reading taken at ``context`` (Transaction.Begin / .End), and the other readings."""
    chosen = next((r for r in report.readings if r.measurand == ENERGY_REGISTER and r.context == context), None)
    return (chosen.value if chosen else None), tuple(r for r in report.readings if r is not chosen)


def _start_reading(readings: tuple[Reading, ...]) -> float | None:
    """Where the Ended's meter series (TxEndedMeasurands) says the transaction started: its Transaction.Begin
    register value, else its first register sample."""
    registers = [r for r in readings if r.measurand == ENERGY_REGISTER]
    begin = next((r for r in registers if r.context == ReadingContextEnumType.transaction_begin), None)
    first = begin or (registers[0] if registers else None)
    return first.value if first is not None else None


def _transaction_event(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    flags = set(env.content_flags())
    info = _object(payload.get("transactionInfo"))
    tx = transaction_id(info.get("transactionId"))
    event_type = values.text(payload.get("eventType"))
    evse = _object(payload.get("evse"))
    connector = _evse_id(evse.get("id"))
    if connector == 0:
        connector = None  # a transaction runs on an EVSE, never on the station
    at_ms, time_flags = parse_charger_time(payload.get("timestamp"))
    flags |= time_flags
    if payload.get("offline") is True:
        flags.add(Flag.OFFLINE_EVENT)
    if "triggerReason" not in payload:
        flags.add(Flag.TRIGGER_REASON_MISSING)  # MicroOcpp #405: answered, used, flagged
    report = meter_report(payload.get("meterValue"))
    flags |= report.flags
    signed, dropped = signed_values_201(payload.get("meterValue"))
    signed_flags = frozenset({Flag.SIGNED_VALUES_DROPPED}) if dropped else frozenset()
    gw, event_id = env.gateway_ts_ms, env.event_id()
    out: list[DomainInput] = []
    if tx is None:
        flags.add(Flag.TRANSACTION_ID_INVALID)
        out = [MeterSamples(gw, event_id, connector, None, report.readings, frozenset(flags))] if report.readings else []
        return out + ([SignedSamples(gw, event_id, connector, None, signed, signed_flags)] if signed else [])
    state = info.get("chargingState")
    if isinstance(state, str) and state:
        text = values.text(state)
        out.append(ChargingStateChanged(gw, event_id, connector, tx, status_of(text), text, at_ms, frozenset(flags)))
    fingerprint = json.dumps([event_type, tx, payload.get("seqNo"), payload.get("timestamp")], sort_keys=True)
    id_token = _object(payload.get("idToken"))
    token = values.text(id_token.get("idToken"))
    token_type = values.text(id_token.get("type"))[:MAX_TOKEN_TYPE]  # how the driver identified (EV-ChART payment)
    if event_type == TransactionEventEnumType.started:
        meter_start, others = _register(report, ReadingContextEnumType.transaction_begin)
        if connector is None:
            flags.add(Flag.CONNECTOR_ID_INVALID)
        start = StartDetails(connector, token, meter_start, at_ms, fingerprint, frozenset(flags), token_type)
        out.insert(0, TransactionStarted(gw, event_id, tx, start))  # the session exists before its state moves
        if others:
            out.append(MeterSamples(gw, event_id, connector, tx, others, frozenset(flags)))
        if signed:
            out.append(SignedSamples(gw, event_id, connector, tx, signed, signed_flags))
    elif event_type == TransactionEventEnumType.ended:
        meter_stop, others = _register(report, ReadingContextEnumType.transaction_end)
        out.append(TransactionStopped(
            gw, event_id, tx, tx, token, meter_stop, meter_stop is not None, at_ms,
            values.text(info.get("stoppedReason")) or DEFAULT_STOP_REASON, others, fingerprint,
            frozenset(flags | signed_flags), connector, _start_reading(others), signed,
        ))
    else:
        if token:
            out.append(TokenPresented(gw, event_id, tx, token, token_type, connector))
        if report.readings:
            out.append(MeterSamples(gw, event_id, connector, tx, report.readings, frozenset(flags)))
        if signed:
            out.append(SignedSamples(gw, event_id, connector, tx, signed, signed_flags))
    seq_no = values.integer(payload.get("seqNo"))
    if seq_no is not None:
        # After the start (the session must exist to carry it), before everything else of the event.
        opens = event_type == TransactionEventEnumType.started
        out.insert(1 if opens else 0, EventSequenced(gw, event_id, tx, seq_no, connector, opens))
    return out


def _status(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    flags = set(env.content_flags())
    evse = _evse_id(payload.get("evseId"))
    occurred_ms, time_flags = parse_charger_time(payload.get("timestamp"))
    flags |= time_flags - {Flag.TIMESTAMP_MISSING}
    if evse is None:
        flags.add(Flag.CONNECTOR_ID_INVALID)
        evse = -1  # nothing to put on a timeline; the frame row keeps what was sent
    status = values.text(payload.get("connectorStatus"))
    return [StatusReported(env.gateway_ts_ms, env.event_id(), evse, status_of(status), status, NO_ERROR,
                           "", "", "", occurred_ms, frozenset(flags), has_error_code=False)]


def _notify_event(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    """Component problems (:data:`PROBLEM_VARIABLES`; an emergency-stop sensor's ``Active``) → :class:`ProblemReported`
    on their EVSE (none: the station, 0); the station's ``AvailabilityState`` → its status (connector 0)."""
    events = payload.get("eventData")
    if not isinstance(events, list):
        return []
    out: list[DomainInput] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        component = _object(event.get("component"))
        variable = _object(event.get("variable"))
        variable_name, component_name = values.text(variable.get("name")), values.text(component.get("name"))
        if variable_name == AVAILABILITY_STATE and component_name == STATION_COMPONENT:
            out.extend(_station_availability(env, event))
            continue
        if variable_name not in PROBLEM_VARIABLES and not (variable_name == "Active" and _EMERGENCY_STOP in component_name):
            continue  # other monitored values (temperatures, counters) are not faults
        evse = _object(component.get("evse"))
        connector = _evse_id(evse.get("id")) or 0
        occurred_ms, time_flags = parse_charger_time(event.get("timestamp"))
        actual = values.text(event.get("actualValue")).strip()
        # A boolean as the spec wants ("true" / "false"), or a code where a station says what the problem is; the
        # monitor's "cleared" says the situation is over whatever the value.
        active = event.get("cleared") is not True and actual.lower() not in _FALSE
        out.append(ProblemReported(
            env.gateway_ts_ms, env.event_id(), connector, f"{component_name}/{variable_name}", active,
            f"{values.text(event.get('trigger'))} {actual}".strip(),
            values.text(event.get("techCode")), occurred_ms, time_flags | env.content_flags(),
        ))
    return out


def _station_availability(env: Frame, event: dict[str, Any]) -> list[DomainInput]:
    """The station's ``AvailabilityState`` (Available, Occupied, Reserved, Unavailable, Faulted): the status of
    connector 0, as 1.6 reports it (2.0.1 has no StatusNotification for the station as a whole)."""
    status = values.text(event.get("actualValue")).strip()
    if status not in _STATION_STATES:
        return []
    occurred_ms, time_flags = parse_charger_time(event.get("timestamp"))
    flags = (time_flags - {Flag.TIMESTAMP_MISSING}) | env.content_flags()
    return [StatusReported(env.gateway_ts_ms, env.event_id(), 0, status_of(status), status, NO_ERROR, "", "", "",
                           occurred_ms, flags, has_error_code=False)]


def _meter_values(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    evse = _evse_id(payload.get("evseId"))
    report = meter_report(payload.get("meterValue"))
    flags = env.content_flags() | report.flags
    out: list[DomainInput] = [MeterSamples(env.gateway_ts_ms, env.event_id(), evse or None, None, report.readings,
                                           frozenset(flags))]
    signed, dropped = signed_values_201(payload.get("meterValue"))
    if signed:
        out.append(SignedSamples(env.gateway_ts_ms, env.event_id(), evse or None, None, signed,
                                 frozenset({Flag.SIGNED_VALUES_DROPPED}) if dropped else frozenset()))
    return out


def _boot(env: Frame, payload: dict[str, Any]) -> list[DomainInput]:
    station = _object(payload.get("chargingStation"))
    return [Booted(env.gateway_ts_ms, env.event_id(), values.text(station.get("firmwareVersion")))]


_CALLS: dict[str, Callable[[Frame, dict[str, Any]], list[DomainInput]]] = {
    Action.transaction_event: _transaction_event,
    Action.status_notification: _status,
    Action.notify_event: _notify_event,
    Action.meter_values: _meter_values,
    Action.boot_notification: _boot,
    Action.authorize: _authorize,
}
