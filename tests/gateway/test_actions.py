"""The per-version action tables against the ``ocpp`` package: every charger-initiated action is
answered, every answer is valid against the official response schema (checked with jsonschema, not
with the gateway's own compiled validators), and the durable / lenient sets are the ones DESIGN.md names."""

from __future__ import annotations

import json
from importlib import resources

import fastjsonschema
import jsonschema
import pytest

from gateway.actions import (
    CHARGER_ACTIONS,
    OCPP16,
    OCPP16_ACTIONS,
    OCPP16_BACKEND_ACTIONS,
    OCPP201,
    OCPP201_ACTIONS,
    OCPP201_BACKEND_ACTIONS,
    SUPPORTED_SUBPROTOCOLS,
    VERSIONS,
)
from gateway.answers import AnswerPolicy
from gateway.metrics import GatewayMetrics
from gateway.payload_schemas import load_schema
from tests.gateway import samples_v201
from tests.gateway.test_handler import NOW, TS, call, make_handler


def check(schema: dict, payload: dict) -> None:
    """Validate with jsonschema (the ``ocpp`` library's own validator), and with fastjsonschema, which
    also checks ``date-time`` formats (jsonschema needs an extra package for that)."""
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(payload)
    fastjsonschema.validate(schema, payload, use_default=False)


def schema_names(folder: str) -> set[str]:
    files = (resources.files("ocpp") / folder / "schemas").iterdir()
    return {f.name.removesuffix(".json").removesuffix("Request").removesuffix("Response") for f in files}


def test_the_201_tables_cover_every_action_of_the_ocpp_package() -> None:
    # Every 2.0.1 message is either initiated by the charging station (answered) or by the CSMS.
    assert set(OCPP201_ACTIONS) | OCPP201_BACKEND_ACTIONS == schema_names("v201")
    assert set(OCPP201_ACTIONS).isdisjoint(OCPP201_BACKEND_ACTIONS)
    assert len(OCPP201_ACTIONS) == 25 and set(OCPP201_ACTIONS) == set(samples_v201.REQUESTS)


def test_the_16_tables_name_actions_of_the_ocpp_package() -> None:
    assert set(OCPP16_ACTIONS) | OCPP16_BACKEND_ACTIONS <= schema_names("v16")
    assert set(OCPP16_ACTIONS).isdisjoint(OCPP16_BACKEND_ACTIONS)


@pytest.mark.parametrize(
    "version, durable, lenient",
    [
        (OCPP16, {"StartTransaction", "StopTransaction", "MeterValues"},
         {"StartTransaction", "StopTransaction", "MeterValues", "StatusNotification"}),
        (OCPP201, {"TransactionEvent", "MeterValues"}, {"TransactionEvent", "MeterValues", "StatusNotification"}),
    ],
)
def test_durable_and_lenient_actions(version: str, durable: set[str], lenient: set[str]) -> None:
    assert VERSIONS[version].durable_actions == durable
    assert VERSIONS[version].lenient_actions == lenient


def test_supported_subprotocols_and_metric_labels_come_from_the_tables() -> None:
    assert SUPPORTED_SUBPROTOCOLS == ("ocpp1.6", "ocpp2.0.1")
    assert set(CHARGER_ACTIONS) == set(OCPP16_ACTIONS) | set(OCPP201_ACTIONS)
    for action in CHARGER_ACTIONS:
        assert GatewayMetrics.action_label(action) == action
    assert GatewayMetrics.action_label("RequestStartTransaction") == "other"
    assert GatewayMetrics.action_label(None) == "unparsed"


@pytest.mark.parametrize("action", sorted(samples_v201.REQUESTS))
def test_the_201_samples_are_valid_requests(action: str) -> None:
    check(load_schema(OCPP201, action), samples_v201.REQUESTS[action])


POLICIES = [AnswerPolicy(), AnswerPolicy(heartbeat_interval_s=60, authorized_id_tags=frozenset({"OTHER"}))]


@pytest.mark.parametrize("policy", POLICIES, ids=["accept-all", "id-list"])
@pytest.mark.parametrize("action", sorted(OCPP201_ACTIONS))
def test_every_201_answer_is_valid_against_its_response_schema(action: str, policy: AnswerPolicy) -> None:
    reaction = make_handler(policy, version=OCPP201).receive(call(action, samples_v201.REQUESTS[action]), NOW)
    reply = json.loads(reaction.reply)
    assert reply[:2] == [3, "m1"], reply
    check(load_schema(OCPP201, action, response=True), reply[2])


SAMPLES_16 = {
    "Authorize": {"idTag": "TAG"},
    "BootNotification": {"chargePointVendor": "V", "chargePointModel": "M"},
    "DataTransfer": {"vendorId": "X"},
    "DiagnosticsStatusNotification": {"status": "Idle"},
    "FirmwareStatusNotification": {"status": "Idle"},
    "Heartbeat": {},
    "MeterValues": {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]},
    "StartTransaction": {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": TS},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    "StopTransaction": {"transactionId": 5, "meterStop": 10, "timestamp": TS, "idTag": "TAG"},
}


@pytest.mark.parametrize("policy", POLICIES, ids=["accept-all", "id-list"])
@pytest.mark.parametrize("action", sorted(OCPP16_ACTIONS))
def test_every_16_answer_is_valid_against_its_response_schema(action: str, policy: AnswerPolicy) -> None:
    check(load_schema(OCPP16, action), SAMPLES_16[action])
    reaction = make_handler(policy).receive(call(action, SAMPLES_16[action]), NOW)
    reply = json.loads(reaction.reply)
    assert reply[:2] == [3, "m1"], reply
    check(load_schema(OCPP16, action, response=True), reply[2])
