"""What the backend answers to each charger CALL (OCPP 1.6, section 6: the .conf payloads).

Pure: the time and the transactionId come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any


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
        if self.authorized_id_tags is None:
            return {"status": "Accepted"}
        return {"status": "Accepted" if id_tag in self.authorized_id_tags else "Invalid"}


def boot_notification(policy: AnswerPolicy, now_ms: int) -> dict[str, Any]:
    return {"status": "Accepted", "currentTime": iso_utc(now_ms), "interval": policy.heartbeat_interval_s}


def heartbeat(now_ms: int) -> dict[str, Any]:
    return {"currentTime": iso_utc(now_ms)}


def authorize(policy: AnswerPolicy, payload: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": policy.id_tag_info(payload.get("idTag"))}


def start_transaction(policy: AnswerPolicy, payload: dict[str, Any], transaction_id: int) -> dict[str, Any]:
    return {"transactionId": transaction_id, "idTagInfo": policy.id_tag_info(payload.get("idTag"))}


def stop_transaction(policy: AnswerPolicy, payload: dict[str, Any]) -> dict[str, Any]:
    # idTagInfo is optional, and only meaningful when the stop names an idTag.
    if "idTag" in payload:
        return {"idTagInfo": policy.id_tag_info(payload["idTag"])}
    return {}


def data_transfer() -> dict[str, Any]:
    # The pipeline implements no vendor extension; this is the honest answer (OCPP 1.6, 6.17).
    return {"status": "UnknownVendorId"}


def empty() -> dict[str, Any]:
    """MeterValues, StatusNotification, Diagnostics- and FirmwareStatusNotification: an empty .conf."""
    return {}


def start_key(payload: dict[str, Any]) -> tuple[str, ...]:
    """What identifies a StartTransaction's content, to give a resent one its id back."""
    return tuple(repr(payload.get(k)) for k in ("connectorId", "idTag", "meterStart", "timestamp"))
