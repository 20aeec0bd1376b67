"""What the backend answers to the OCPP 2.0.1 charger CALLs that differ from 1.6 (OCPP 2.0.1 Part 2,
the ``*Response`` messages). BootNotification, Heartbeat, DataTransfer and the empty answers are
shared with 1.6 (:mod:`gateway.answers`).

The gateway is a CSMS without a PKI and without smart charging: it answers certificate requests with
the failure the schema allows (the charger keeps its certificate and retries later, ISO 15118 Plug &
Charge falls back to other authorization), and EV charging needs with "no schedule from us".
"""

from __future__ import annotations

from gateway.answers import AnswerContext, Payload


def authorize(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    return {"idTokenInfo": context.policy.id_token_info(payload.get("idToken"))}


def transaction_event(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # TransactionEventResponse.idTokenInfo "is required when the transactionEventRequest contained an idToken";
    # transactionInfo.transactionId is the charger's own: nothing to allocate, unlike 1.6.
    if "idToken" in payload:
        return {"idTokenInfo": context.policy.id_token_info(payload["idToken"])}
    return {}


def sign_certificate(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # Use cases A02/A03: Rejected tells the charger that no CertificateSigned will follow.
    return {"status": "Rejected"}


def get_15118_ev_certificate(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # Use cases M01/M02: exiResponse is required even when status is Failed; there is no EXI message to relay.
    return {"status": "Failed", "exiResponse": ""}


def get_certificate_status(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # Use case M06: no OCSP responder behind the gateway (ocspResult may be omitted when not Accepted).
    return {"status": "Failed"}


def notify_ev_charging_needs(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # NotifyEVChargingNeedsStatusEnumType: Rejected = "service not available", no schedule will come from us.
    return {"status": "Rejected"}


def notify_ev_charging_schedule(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # NotifyEVChargingScheduleResponse.status: processed; "it does not imply any approval of the charging schedule".
    return {"status": "Accepted"}
