"""What the gateway does with each charger-initiated action: one table per OCPP version.

Each row is an :class:`ActionFacts`:

- ``answer``: the CALLRESULT payload (:mod:`gateway.answers`, :mod:`gateway.answers_v201`);
- ``durable``: answered only after Kafka acknowledged the frame (DESIGN.md, durability rule);
- ``lenient``: never refused for content: a schema violation is answered and flagged in the envelope,
  because a CALLERROR there makes the charger retry forever and blocks the connector (DESIGN.md).

Everything else is derived from the tables: the handler's dispatch, which request schemas are compiled
(:mod:`gateway.payload_schemas`), the metric labels (:data:`CHARGER_ACTIONS`), the supported
subprotocols. Adding an action is one line. Actions a backend sends (``backend_actions``) get
``NotSupported`` when a charger sends them; any other unknown action ``NotImplemented``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway import answers, answers_v201
from gateway.answers import Answer
from gateway.errors import OcppError

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"


@dataclass(frozen=True, slots=True)
class ActionFacts:
    answer: Answer
    durable: bool = False
    lenient: bool = False


# OCPP 1.6 (Core and Firmware Management profiles): the .req a charge point sends.
OCPP16_ACTIONS: Mapping[str, ActionFacts] = MappingProxyType({
    "Authorize": ActionFacts(answers.authorize),
    "BootNotification": ActionFacts(answers.boot_notification),
    "DataTransfer": ActionFacts(answers.data_transfer),
    "DiagnosticsStatusNotification": ActionFacts(answers.empty),
    "FirmwareStatusNotification": ActionFacts(answers.empty),
    "Heartbeat": ActionFacts(answers.heartbeat),
    "MeterValues": ActionFacts(answers.empty, durable=True, lenient=True),
    "StartTransaction": ActionFacts(answers.start_transaction, durable=True, lenient=True),
    "StatusNotification": ActionFacts(answers.empty, lenient=True),
    "StopTransaction": ActionFacts(answers.stop_transaction, durable=True, lenient=True),
})

# OCPP 1.6 actions a central system sends, never answers.
OCPP16_BACKEND_ACTIONS = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
    "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction",
    "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
    "UnlockConnector", "UpdateFirmware",
})

# OCPP 2.0.1: every message a Charging Station initiates (Part 2, the requests whose receiver is the CSMS).
OCPP201_ACTIONS: Mapping[str, ActionFacts] = MappingProxyType({
    "Authorize": ActionFacts(answers_v201.authorize),
    "BootNotification": ActionFacts(answers.boot_notification),
    "ClearedChargingLimit": ActionFacts(answers.empty),
    "DataTransfer": ActionFacts(answers.data_transfer),
    "FirmwareStatusNotification": ActionFacts(answers.empty),
    "Get15118EVCertificate": ActionFacts(answers_v201.get_15118_ev_certificate),
    "GetCertificateStatus": ActionFacts(answers_v201.get_certificate_status),
    "Heartbeat": ActionFacts(answers.heartbeat),
    "LogStatusNotification": ActionFacts(answers.empty),
    "MeterValues": ActionFacts(answers.empty, durable=True, lenient=True),
    "NotifyChargingLimit": ActionFacts(answers.empty),
    "NotifyCustomerInformation": ActionFacts(answers.empty),
    "NotifyDisplayMessages": ActionFacts(answers.empty),
    "NotifyEVChargingNeeds": ActionFacts(answers_v201.notify_ev_charging_needs),
    "NotifyEVChargingSchedule": ActionFacts(answers_v201.notify_ev_charging_schedule),
    "NotifyEvent": ActionFacts(answers.empty),
    "NotifyMonitoringReport": ActionFacts(answers.empty),
    "NotifyReport": ActionFacts(answers.empty),
    "PublishFirmwareStatusNotification": ActionFacts(answers.empty),
    "ReportChargingProfiles": ActionFacts(answers.empty),
    "ReservationStatusUpdate": ActionFacts(answers.empty),
    "SecurityEventNotification": ActionFacts(answers.empty),
    "SignCertificate": ActionFacts(answers_v201.sign_certificate),
    "StatusNotification": ActionFacts(answers.empty, lenient=True),
    "TransactionEvent": ActionFacts(answers_v201.transaction_event, durable=True, lenient=True),
})

# OCPP 2.0.1 actions a CSMS sends, never answers.
OCPP201_BACKEND_ACTIONS = frozenset({
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache", "ClearChargingProfile",
    "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated", "CustomerInformation", "DeleteCertificate",
    "GetBaseReport", "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages", "GetInstalledCertificateIds",
    "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport", "GetTransactionStatus", "GetVariables",
    "InstallCertificate", "PublishFirmware", "RequestStartTransaction", "RequestStopTransaction", "ReserveNow", "Reset",
    "SendLocalList", "SetChargingProfile", "SetDisplayMessage", "SetMonitoringBase", "SetMonitoringLevel",
    "SetNetworkProfile", "SetVariableMonitoring", "SetVariables", "TriggerMessage", "UnlockConnector",
    "UnpublishFirmware", "UpdateFirmware",
})


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """One OCPP version as the gateway speaks it; the key of :data:`VERSIONS` is its subprotocol."""

    actions: Mapping[str, ActionFacts]
    backend_actions: frozenset[str]
    # The CALLERROR code of an OcppError in this version (OCPP-J 1.6 4.2.3; OCPP-J 2.0.1 4.3).
    error_code: Callable[[OcppError], str]

    @property
    def durable_actions(self) -> frozenset[str]:
        return frozenset(a for a, facts in self.actions.items() if facts.durable)

    @property
    def lenient_actions(self) -> frozenset[str]:
        return frozenset(a for a, facts in self.actions.items() if facts.lenient)


VERSIONS: Mapping[str, VersionFacts] = MappingProxyType({
    OCPP16: VersionFacts(OCPP16_ACTIONS, OCPP16_BACKEND_ACTIONS, operator.attrgetter("code")),
    OCPP201: VersionFacts(OCPP201_ACTIONS, OCPP201_BACKEND_ACTIONS, operator.attrgetter("code_v201")),
})
SUPPORTED_SUBPROTOCOLS: tuple[str, ...] = tuple(VERSIONS)

# Every charger action of any version: the bounded set of metric labels (anything else is "other").
CHARGER_ACTIONS: tuple[str, ...] = tuple(sorted({a for v in VERSIONS.values() for a in v.actions}))

