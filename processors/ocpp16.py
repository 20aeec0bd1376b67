"""OCPP 1.6J frames to domain inputs (:mod:`processors.inputs`), parsed once, never raising.

Which frames matter (OCPP 1.6 edition 2, section numbers of the spec):
- StartTransaction.req (6.45) → :class:`StartRequested`; its CALLRESULT (the gateway's answer, with the
  transactionId) → :class:`StartAnswered`; a CALLERROR → :class:`StartAnswered` without an id;
- StopTransaction.req (6.47) → :class:`TransactionStopped` (transactionData read as meter samples);
- MeterValues.req (6.31) → :class:`MeterSamples`, and :class:`SignedSamples` for its ``format: SignedData`` values
  (a stop's signed values ride on its :class:`TransactionStopped`);
- StatusNotification.req (6.48) → :class:`StatusReported` (a missing errorCode reads as NoError, flagged);
- BootNotification.req (6.3) → :class:`Booted`;
- Authorize.req (6.2) → :class:`AuthorizeRequested`; its answer → :class:`AuthorizeAnswered` (charge attempts).
Everything else yields nothing (it is kept in the frames table all the same).

Gateway flags that concern the content (``schema_violation``, ``schema:<field>:<rule>``) travel on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ocpp.v16.enums import Action, AuthorizationStatus

from processors import frame_json, values
from processors.inputs import (
    DEFAULT_STOP_REASON,
    NO_AUTHORIZATION,
    NO_ERROR,
    AuthorizeAnswered,
    AuthorizeRequested,
    Booted,
    DomainInput,
    Frame,
    MeterSamples,
    SignedSamples,
    StartAnswered,
    StartDetails,
    StartRequested,
    StatusReported,
    TransactionStopped,
)
from processors.meter import read_meter_values
from processors.protocols import OCPP16
from processors.signed_values import signed_values_16
from processors.timestamps import parse_charger_time
from processors.vocabulary import status_of
from schemas.envelope import Direction, MessageType
from schemas.flags import Flag

VERSION = OCPP16.version
# OCPP 1.6 transactionId and connectorId are JSON integers; a 1.6 transactionId is int32 > 0.
MAX_CONNECTOR_ID = values.INT32_MAX


def normalize(envelope: Frame) -> list[DomainInput]:
    """The domain inputs one envelope carries (none for most frames)."""
    action = envelope.action or ""
    call_in = envelope.direction == Direction.IN and envelope.message_type == MessageType.CALL
    reader = _CALLS.get(action) if call_in else None
    answer = _ANSWERS.get(action) if envelope.direction == Direction.OUT else None
    if reader is None and answer is None:
        return []  # nothing the sessions need (a Heartbeat, most answers, an unparseable frame): not parsed
    try:
        message = frame_json.loads(envelope.frame)
    except ValueError:  # includes integers beyond Python's digit limit
        return []
    if not isinstance(message, list) or len(message) < 3:
        return []
    if reader is not None:
        payload = message[3] if len(message) > 3 and isinstance(message[3], dict) else {}
        item = reader(envelope, payload)
        signed = _signed_samples(envelope, payload, item) if isinstance(item, MeterSamples) else None
        return [item] if signed is None else [item, signed]
    assert answer is not None
    result = message[2] if envelope.message_type == MessageType.CALL_RESULT and isinstance(message[2], dict) else None
    if result is None and envelope.message_type != MessageType.CALL_ERROR:
        return []
    return [answer(envelope, values.text(envelope.message_id), result)]


def _start_answer(env: Frame, message_id: str, result: dict[str, Any] | None) -> DomainInput:
    """The transactionId the answer to a StartTransaction gave, or none (CALLERROR)."""
    tx = transaction_id(result.get("transactionId")) if result is not None else None
    return StartAnswered(env.gateway_ts_ms, env.event_id(), message_id, tx)


def _authorize_answer(env: Frame, message_id: str, result: dict[str, Any] | None) -> DomainInput:
    """Whether the answer to an Authorize accepted the idTag (None: a CALLERROR or no readable status)."""
    info = result.get("idTagInfo") if result is not None else None
    status = info.get("status") if isinstance(info, dict) else None
    accepted = None if not isinstance(status, str) else status == AuthorizationStatus.accepted
    return AuthorizeAnswered(env.gateway_ts_ms, env.event_id(), message_id, accepted)


def transaction_id(raw: Any) -> str | None:
    """A 1.6 transactionId that names a transaction: an int32 > 0 (-1 and 0 name none: OCPP-QUIRKS.md)."""
    tx = values.in_range(values.integer(raw), 1, values.INT32_MAX)
    return str(tx) if tx is not None else None


def connector_id(raw: Any) -> int | None:
    return values.in_range(values.integer(raw), 0, MAX_CONNECTOR_ID)


def _start(env: Frame, payload: dict[str, Any]) -> StartRequested:
    details = start_details(payload, env.content_flags())
    return StartRequested(env.gateway_ts_ms, env.event_id(), values.text(env.message_id), details)


def start_details(payload: dict[str, Any], gateway_flags: frozenset[str]) -> StartDetails:
    """What a StartTransaction.req says (also read by :mod:`processors.legacy_state`)."""
    flags = set(gateway_flags)
    connector = connector_id(payload.get("connectorId"))
    if connector is None or connector < 1:
        flags.add(Flag.CONNECTOR_ID_INVALID)
        connector = None
    started_ms, time_flags = parse_charger_time(payload.get("timestamp"))
    flags |= time_flags
    meter_start = values.number(payload.get("meterStart"))
    if "meterStart" in payload and meter_start is None:
        flags.add(Flag.METER_START_INVALID)
    # A resend after a lost answer repeats these four exactly (steve #1294).
    fingerprint = json.dumps([repr(payload.get(k)) for k in ("connectorId", "idTag", "meterStart", "timestamp")])
    id_tag = values.text(payload.get("idTag"))
    # 1.6 carries no token type; a start that names no idTag started without authorization (free vend).
    token_type = "" if id_tag.strip() else NO_AUTHORIZATION
    return StartDetails(connector, id_tag, meter_start, started_ms, fingerprint, frozenset(flags), token_type)


def _stop(env: Frame, payload: dict[str, Any]) -> TransactionStopped:
    flags = set(env.content_flags())
    raw_tx = payload.get("transactionId")
    tx = transaction_id(raw_tx)
    if tx is None:
        flags.add(Flag.TRANSACTION_ID_INVALID)
    stopped_ms, time_flags = parse_charger_time(payload.get("timestamp"))
    flags |= time_flags
    meter_stop = values.number(payload.get("meterStop"))
    if "meterStop" in payload and payload.get("meterStop") is not None and meter_stop is None:
        flags.add(Flag.METER_STOP_INVALID)
    report = read_meter_values(payload.get("transactionData"))
    flags |= report.flags
    signed, dropped = signed_values_16(payload.get("transactionData"))
    if dropped:
        flags.add(Flag.SIGNED_VALUES_DROPPED)
    # The first worker's digest of a stop, kept so that stops it remembered are still recognised.
    fingerprint = json.dumps([payload.get(k) for k in ("transactionId", "meterStop", "timestamp", "reason")], sort_keys=True)
    return TransactionStopped(
        env.gateway_ts_ms, env.event_id(), tx, values.text(raw_tx)[:64], values.text(payload.get("idTag")),
        meter_stop, payload.get("meterStop") is not None, stopped_ms,
        values.text(payload.get("reason")) or DEFAULT_STOP_REASON, report.readings, fingerprint, frozenset(flags),
        signed=signed,
    )


def _meter_values(env: Frame, payload: dict[str, Any]) -> MeterSamples:
    flags = set(env.content_flags())
    connector = connector_id(payload.get("connectorId"))
    if connector is None:
        flags.add(Flag.CONNECTOR_ID_INVALID)
    tx = transaction_id(payload.get("transactionId")) if payload.get("transactionId") is not None else None
    report = read_meter_values(payload.get("meterValue"))
    flags |= report.flags
    return MeterSamples(env.gateway_ts_ms, env.event_id(), connector, tx, report.readings, frozenset(flags))


def _signed_samples(env: Frame, payload: dict[str, Any], samples: MeterSamples) -> SignedSamples | None:
    """The ``format: SignedData`` values of a MeterValues.req, for the connector and transaction its samples name."""
    signed, dropped = signed_values_16(payload.get("meterValue"))
    if not signed:
        return None
    flags = frozenset({Flag.SIGNED_VALUES_DROPPED}) if dropped else frozenset()
    return SignedSamples(env.gateway_ts_ms, env.event_id(), samples.connector_id, samples.transaction_id, signed, flags)


def _status(env: Frame, payload: dict[str, Any]) -> StatusReported:
    flags = set(env.content_flags())
    connector = connector_id(payload.get("connectorId"))
    occurred_ms, time_flags = parse_charger_time(payload.get("timestamp"))
    # The timestamp is optional in StatusNotification: its absence is no doubt.
    flags |= time_flags - {Flag.TIMESTAMP_MISSING}
    error_code = values.text(payload.get("errorCode"))
    if not error_code:
        error_code = NO_ERROR  # required by the schema; a charger that leaves it out reports no error
        flags.add(Flag.ERROR_CODE_MISSING)
    if connector is None:
        flags.add(Flag.CONNECTOR_ID_INVALID)
        connector = -1  # the correlator records nothing for it; the frame row keeps what was sent
    status = values.text(payload.get("status"))
    return StatusReported(
        env.gateway_ts_ms, env.event_id(), connector, status_of(status), status, error_code,
        values.text(payload.get("info")), values.text(payload.get("vendorId")),
        values.text(payload.get("vendorErrorCode")), occurred_ms, frozenset(flags),
    )


def _authorize(env: Frame, payload: dict[str, Any]) -> AuthorizeRequested:
    return AuthorizeRequested(env.gateway_ts_ms, env.event_id(), values.text(env.message_id),
                              values.text(payload.get("idTag")))


def _boot(env: Frame, payload: dict[str, Any]) -> Booted:
    return Booted(env.gateway_ts_ms, env.event_id(), values.text(payload.get("firmwareVersion")))


_CALLS: dict[str, Callable[[Frame, dict[str, Any]], DomainInput]] = {
    Action.start_transaction: _start,
    Action.stop_transaction: _stop,
    Action.meter_values: _meter_values,
    Action.status_notification: _status,
    Action.boot_notification: _boot,
    Action.authorize: _authorize,
}
# Answers (the gateway's CALLRESULT / CALLERROR, direction out) that carry what the correlator needs.
_ANSWERS: dict[str, Callable[[Frame, str, dict[str, Any] | None], DomainInput]] = {
    Action.start_transaction: _start_answer,
    Action.authorize: _authorize_answer,
}
