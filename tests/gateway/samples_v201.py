"""One valid OCPP 2.0.1 request per charger-initiated action (checked against the ``ocpp`` package's
request schemas in ``test_actions.py``), and what the gateway answers to each: written out here, not
derived from :mod:`gateway.actions`, so the tests say what the spec expects."""

from __future__ import annotations

TS = "2025-11-24T16:00:00Z"
NOW_ISO = "2025-11-24T16:00:00.123Z"  # tests.gateway.test_handler.NOW as the gateway writes it
TAG = {"idToken": "TAG1", "type": "ISO14443"}

REQUESTS: dict[str, dict] = {
    "Authorize": {"idToken": TAG},
    "BootNotification": {"chargingStation": {"model": "M1", "vendorName": "V1"}, "reason": "PowerUp"},
    "ClearedChargingLimit": {"chargingLimitSource": "EMS", "evseId": 1},
    "DataTransfer": {"vendorId": "acme", "messageId": "x", "data": "payload"},
    "FirmwareStatusNotification": {"status": "Installed", "requestId": 1},
    "Get15118EVCertificate": {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AAAA"},
    "GetCertificateStatus": {"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "ab", "issuerKeyHash": "cd",
                                                 "serialNumber": "01", "responderURL": "http://ocsp.example.com"}},
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Uploaded", "requestId": 2},
    "MeterValues": {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": 1500.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}]}]},
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": False}, "evseId": 1},
    "NotifyCustomerInformation": {"data": "none", "seqNo": 0, "generatedAt": TS, "requestId": 3},
    "NotifyDisplayMessages": {"requestId": 4},
    "NotifyEVChargingNeeds": {"chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase", "acChargingParameters": {
        "energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 32, "evMaxVoltage": 400}}, "evseId": 1},
    "NotifyEVChargingSchedule": {"timeBase": TS, "evseId": 1, "chargingSchedule": {
        "id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}},
    "NotifyEvent": {"generatedAt": TS, "seqNo": 0, "eventData": [{
        "eventId": 1, "timestamp": TS, "trigger": "Delta", "actualValue": "Faulted", "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}, "variable": {"name": "AvailabilityState"}}]},
    "NotifyMonitoringReport": {"requestId": 5, "seqNo": 0, "generatedAt": TS},
    "NotifyReport": {"requestId": 6, "generatedAt": TS, "seqNo": 0, "reportData": [
        {"component": {"name": "ChargingStation"}, "variable": {"name": "Model"}, "variableAttribute": [{"value": "M1"}]}]},
    "PublishFirmwareStatusNotification": {"status": "Published", "location": ["http://fw.example.com/f.bin"], "requestId": 7},
    "ReportChargingProfiles": {"requestId": 8, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [{
        "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "startSchedule": TS, "chargingRateUnit": "W",
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}]}]},
    "ReservationStatusUpdate": {"reservationId": 9, "reservationUpdateStatus": "Expired"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----",
                        "certificateType": "ChargingStationCertificate"},
    "StatusNotification": {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    "TransactionEvent": {"eventType": "Started", "timestamp": TS, "triggerReason": "Authorized", "seqNo": 0,
                         "transactionInfo": {"transactionId": "tx-1", "chargingState": "EVConnected"},
                         "evse": {"id": 1, "connectorId": 1}, "idToken": TAG},
}

# The answer to each request above, with AnswerPolicy() (every idToken accepted, interval 300 s).
ANSWERS: dict[str, dict] = {
    "Authorize": {"idTokenInfo": {"status": "Accepted"}},
    "BootNotification": {"status": "Accepted", "currentTime": NOW_ISO, "interval": 300},
    "DataTransfer": {"status": "UnknownVendorId"},
    "Get15118EVCertificate": {"status": "Failed", "exiResponse": ""},
    "GetCertificateStatus": {"status": "Failed"},
    "Heartbeat": {"currentTime": NOW_ISO},
    "NotifyEVChargingNeeds": {"status": "Rejected"},
    "NotifyEVChargingSchedule": {"status": "Accepted"},
    "SignCertificate": {"status": "Rejected"},
    "TransactionEvent": {"idTokenInfo": {"status": "Accepted"}},
}
ANSWERS |= {action: {} for action in REQUESTS if action not in ANSWERS}

# Answered only after Kafka acknowledged the frame (DESIGN.md, durability rule).
DURABLE = frozenset({"TransactionEvent", "MeterValues"})

UPDATED = {"eventType": "Updated", "timestamp": TS, "triggerReason": "MeterValuePeriodic", "seqNo": 1,
           "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
           "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 2500}]}]}
ENDED = {"eventType": "Ended", "timestamp": TS, "triggerReason": "EVCommunicationLost", "seqNo": 2,
         "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "EVDisconnected"}}
