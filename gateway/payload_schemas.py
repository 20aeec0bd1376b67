"""OCPP 1.6 payload validation with the official JSON schemas, compiled once.

The schemas are the ones the ``ocpp`` package ships (``ocpp/v16/schemas``). Its own validation
runs jsonschema per message on a thread (about 11k StopTransaction/s per core); fastjsonschema
compiles each schema to Python code once and validates in the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import fastjsonschema

from gateway.errors import (
    FormationViolation,
    OccurenceConstraintViolation,
    OcppError,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)

# Charger-to-backend actions of OCPP 1.6 (Core, Firmware Management): the CALLs a backend answers.
CHARGER_ACTIONS: tuple[str, ...] = (
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)

_RULE_TO_ERROR: dict[str, type[OcppError]] = {
    "type": TypeConstraintViolation,
    "required": OccurenceConstraintViolation,
    "minItems": OccurenceConstraintViolation,
    "maxItems": OccurenceConstraintViolation,
    "enum": PropertyConstraintViolation,
    "maxLength": PropertyConstraintViolation,
    "minLength": PropertyConstraintViolation,
    "format": PropertyConstraintViolation,
    "additionalProperties": PropertyConstraintViolation,
    "minimum": PropertyConstraintViolation,
    "maximum": PropertyConstraintViolation,
}

Validator = Callable[[Any], Any]


def _load(name: str) -> dict[str, Any]:
    text = (resources.files("ocpp") / "v16" / "schemas" / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def compile_validators(actions: tuple[str, ...] = CHARGER_ACTIONS) -> dict[str, Validator]:
    """One compiled validator per request schema."""
    return {action: fastjsonschema.compile(_load(action)) for action in actions}


def violation(exc: fastjsonschema.JsonSchemaValueException, message_id: str) -> OcppError:
    """The OCPP-J CALLERROR a schema violation maps to (OCPP-J 1.6, 4.2.3)."""
    error = _RULE_TO_ERROR.get(exc.rule or "", FormationViolation)
    return error(exc.message, message_id)


def violation_flag(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """A short, stable code for a schema violation, e.g. ``schema:meterStop:type``."""
    field = (exc.name or "data").removeprefix("data").lstrip(".") or "payload"
    # Array positions vary from frame to frame; the field path is what an analyst groups by.
    field = "".join(ch for ch in field if not ch.isdigit()).replace("[]", "[*]")
    return f"schema:{field}:{exc.rule}"
