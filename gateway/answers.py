"""What the backend answers to each charger CALL of OCPP 1.6 (section 6: the .conf payloads), and what
both versions share: the answer policy, the time format, the context an answer gets.

Pure: every answer is ``answer(context, payload, now_ms) -> payload`` (:data:`Answer`); the time and
the transactionId allocator come in as arguments. Which answer goes with which action is declared
in :mod:`gateway.actions`; the OCPP 2.0.1 answers live in :mod:`gateway.answers_v201`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Any

from gateway.transaction_ids import TransactionIdAllocator


@lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def iso_utc(now_ms: int) -> str:
    """``2024-03-01T12:00:00.123Z``: the dateTime form every charger parses."""
    second, ms = divmod(now_ms, 1000)
    return f"{_iso_second(second)}.{ms:03d}Z"


@dataclass(frozen=True)
class AnswerPolicy:
    """Backend decisions the gateway makes without a database."""

    heartbeat_interval_s: int = 300
    # None: every idTag is Accepted (authorization belongs to a CSMS behind the pipeline).
    authorized_id_tags: frozenset[str] | None = None

    def id_tag_info(self, id_tag: object) -> dict[str, str]:
        """OCPP 1.6 IdTagInfo for an idTag (compared as given)."""
        if self.authorized_id_tags is None:
            return {"status": "Accepted"}
        # isinstance first: a lenient StartTransaction may carry any JSON value as its idTag.
        return {"status": "Accepted" if isinstance(id_tag, str) and id_tag in self.authorized_id_tags else "Invalid"}

    @cached_property
    def _authorized_casefolded(self) -> frozenset[str]:
        return frozenset(tag.casefold() for tag in self.authorized_id_tags or ())

    def id_token_info(self, id_token: object) -> dict[str, str]:
        """OCPP 2.0.1 IdTokenInfoType for an IdTokenType ``{"idToken": ..., "type": ...}``.

        IdTokens are case insensitive (2.0.1, IdTokenType). A token of type ``NoAuthorization`` (a
        start button, free vend) needs no authorization and is Accepted; a token not in the list is
        ``Unknown`` ("identifier is unknown, not allowed for charging")."""
        if self.authorized_id_tags is None:
            return {"status": "Accepted"}
        # A lenient TransactionEvent may carry anything here: never raise.
        if isinstance(id_token, dict):
            if id_token.get("type") == "NoAuthorization":
                return {"status": "Accepted"}
            id_token = id_token.get("idToken")
        known = isinstance(id_token, str) and id_token.casefold() in self._authorized_casefolded
        return {"status": "Accepted" if known else "Unknown"}


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What an answer may use besides the payload and the time: one per connection."""

    policy: AnswerPolicy
    charge_point_id: str
    transaction_ids: TransactionIdAllocator


Payload = dict[str, Any]
Answer = Callable[[AnswerContext, Payload, int], Payload]


def boot_notification(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # The same three fields in 1.6 (6.4) and 2.0.1 (BootNotificationResponse).
    return {"status": "Accepted", "currentTime": iso_utc(now_ms), "interval": context.policy.heartbeat_interval_s}


def heartbeat(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    return {"currentTime": iso_utc(now_ms)}


def authorize(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    return {"idTagInfo": context.policy.id_tag_info(payload.get("idTag"))}


def start_transaction(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    transaction_id = context.transaction_ids.allocate(context.charge_point_id, start_key(payload), now_ms)
    return {"transactionId": transaction_id, "idTagInfo": context.policy.id_tag_info(payload.get("idTag"))}


def stop_transaction(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # idTagInfo is optional, and only meaningful when the stop names an idTag.
    if "idTag" in payload:
        return {"idTagInfo": context.policy.id_tag_info(payload["idTag"])}
    return {}


def data_transfer(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    # The pipeline implements no vendor extension; this is the honest answer (OCPP 1.6, 6.17;
    # OCPP 2.0.1, DataTransferStatusEnumType).
    return {"status": "UnknownVendorId"}


def empty(context: AnswerContext, payload: Payload, now_ms: int) -> Payload:
    """MeterValues, StatusNotification, Diagnostics- and FirmwareStatusNotification, and the 2.0.1
    notifications: an empty answer."""
    return {}


def start_key(payload: Payload) -> tuple[str, ...]:
    """What identifies a StartTransaction's content, to give a resent one its id back."""
    return tuple(repr(payload.get(k)) for k in ("connectorId", "idTag", "meterStart", "timestamp"))
