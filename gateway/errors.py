"""Errors of the gateway.

    GatewayError
    ├── OcppError                 a frame the gateway answers with CALLERROR; ``code`` is the OCPP-J code
    │   ├── FormationViolation    not a well-formed OCPP-J message
    │   ├── ProtocolError         a message type or id OCPP-J does not allow
    │   ├── ActionNotImplemented  an action the backend does not implement (code NotImplemented)
    │   ├── NotSupported          an action the backend knows but does not accept from a charger
    │   ├── TypeConstraintViolation / PropertyConstraintViolation / OccurenceConstraintViolation
    │   └── InternalError         the backend could not handle it now (e.g. Kafka did not acknowledge)
    ├── HandshakeRefused          a WebSocket upgrade the gateway refuses; ``status`` is the HTTP status
    └── PublishError              Kafka did not acknowledge a frame in time (``retriable``)
"""

from __future__ import annotations

from http import HTTPStatus


class GatewayError(Exception):
    retriable: bool = False


class OcppError(GatewayError):
    """A CALLERROR answer. ``message_id`` is the id of the CALL, ``"-1"`` when it could not be read
    (the convention OCPP 2.0.1 fixes for OCPP-J RPC errors; 1.6 leaves the case open)."""

    code = "GenericError"

    def __init__(self, description: str, message_id: str = "-1") -> None:
        super().__init__(description)
        self.description = description
        self.message_id = message_id


class FormationViolation(OcppError):
    code = "FormationViolation"


class ProtocolError(OcppError):
    code = "ProtocolError"


class ActionNotImplemented(OcppError):
    code = "NotImplemented"


class NotSupported(OcppError):
    code = "NotSupported"


class TypeConstraintViolation(OcppError):
    code = "TypeConstraintViolation"


class PropertyConstraintViolation(OcppError):
    code = "PropertyConstraintViolation"


class OccurenceConstraintViolation(OcppError):
    code = "OccurenceConstraintViolation"  # sic: the OCPP 1.6 spelling


class InternalError(OcppError):
    code = "InternalError"


class HandshakeRefused(GatewayError):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PublishError(GatewayError):
    retriable = True
