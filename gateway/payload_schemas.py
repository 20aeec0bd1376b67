"""OCPP payload validation with the official JSON schemas, compiled once per schema.

The schemas are the ones the ``ocpp`` package ships: ``ocpp/v16/schemas/<Action>.json`` and
``ocpp/v201/schemas/<Action>Request.json``. Its own validation runs jsonschema per message on a thread
(about 11k StopTransaction/s per core); fastjsonschema compiles each schema to Python code once and
validates in the event loop. Which schemas are compiled follows :mod:`gateway.actions`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import fastjsonschema

from gateway.actions import OCPP16, OCPP201, VERSIONS
from gateway.errors import (
    FormationViolation,
    OccurenceConstraintViolation,
    OcppError,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)

# Where each version keeps its schemas in the ``ocpp`` package: folder, request and response file names.
SCHEMA_FILES: dict[str, tuple[str, str, str]] = {
    OCPP16: ("v16", "{action}.json", "{action}Response.json"),
    OCPP201: ("v201", "{action}Request.json", "{action}Response.json"),
}

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


def load_schema(version: str, action: str, *, response: bool = False) -> dict[str, Any]:
    """The JSON schema of ``action``'s request (or response) in OCPP ``version`` (a subprotocol)."""
    folder, request_name, response_name = SCHEMA_FILES[version]
    name = (response_name if response else request_name).format(action=action)
    text = (resources.files("ocpp") / folder / "schemas" / name).read_text(encoding="utf-8")
    schema = json.loads(text)
    if not isinstance(schema, dict):
        raise ValueError(f"the OCPP {version} schema {name} is not a JSON object")
    return schema


def compile_validators(version: str = OCPP16, actions: tuple[str, ...] | None = None) -> dict[str, Validator]:
    """One compiled validator per request schema of ``version``'s charger actions.

    ``use_default=False``: the 2.0.1 schemas declare defaults (a sampled value's unit, context, ...);
    validation must not write them into the payload it checks."""
    names = tuple(VERSIONS[version].actions) if actions is None else actions
    return {action: fastjsonschema.compile(load_schema(version, action), use_default=False) for action in names}


def violation(exc: fastjsonschema.JsonSchemaValueException, message_id: str) -> OcppError:
    """The OCPP-J CALLERROR a schema violation maps to (OCPP-J 1.6 4.2.3, 2.0.1 4.3)."""
    error = _RULE_TO_ERROR.get(exc.rule or "", FormationViolation)
    return error(exc.message, message_id)


def violation_flag(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """A short, stable code for a schema violation, e.g. ``schema:meterStop:type``."""
    field = (exc.name or "data").removeprefix("data").lstrip(".") or "payload"
    # Array positions vary from frame to frame; the field path is what an analyst groups by.
    field = "".join(ch for ch in field if not ch.isdigit()).replace("[]", "[*]")
    return f"schema:{field}:{exc.rule}"
