"""Errors of the gateway.

    GatewayError
    ├── OcppError                 a frame the gateway answers with CALLERROR; ``code`` is the OCPP-J 1.6
    │   │                         code, ``code_v201`` the OCPP-J 2.0.1 one (section 4.3, Table 8)
    │   ├── FormationViolation    a payload that is not well formed (2.0.1: FormatViolation)
    │   │   └── RpcFrameworkError not a readable OCPP-J message, e.g. no message id (1.6: FormationViolation)
    │   ├── ProtocolError         a message OCPP-J does not allow
    │   │   └── MessageTypeNotSupported  an unknown message type id (1.6: ProtocolError)
    │   ├── ActionNotImplemented  an action the backend does not implement (code NotImplemented)
    │   ├── NotSupported          an action the backend knows but does not accept from a charger
    │   ├── TypeConstraintViolation / PropertyConstraintViolation
    │   ├── OccurenceConstraintViolation  (1.6 spelling; 2.0.1: OccurrenceConstraintViolation)
    │   └── InternalError         the backend could not handle it now (e.g. Kafka did not acknowledge)
    ├── HandshakeRefused          a WebSocket upgrade the gateway refuses; ``status`` is the HTTP status the
    │                             client sees, ``kind`` (a :class:`RefusalKind`) why, for metrics and logs only
    ├── WeakPassword              a Basic-auth secret outside the rule of the OCPP security profiles
    │                             (:mod:`gateway.password_policy`), refused by ``credentials add``
    ├── ListenError               a port the gateway cannot listen on (taken, not allowed)
    └── PublishError              Kafka did not acknowledge a frame in time (``retriable``)
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus


class GatewayError(Exception):
    retriable: bool = False


class OcppError(GatewayError):
    """A CALLERROR answer. ``message_id`` is the id of the CALL, ``"-1"`` when it could not be read
    (the convention OCPP 2.0.1 fixes for OCPP-J RPC errors; 1.6 leaves the case open)."""

    code = "GenericError"  # OCPP-J 1.6, section 4.2.3
    code_v201 = "GenericError"  # OCPP-J 2.0.1, section 4.3

    def __init_subclass__(cls, **kwargs: object) -> None:
        # A subclass that sets only ``code`` has the same code in both versions.
        super().__init_subclass__(**kwargs)
        if "code_v201" not in cls.__dict__ and "code" in cls.__dict__:
            cls.code_v201 = cls.code

    def __init__(self, description: str, message_id: str = "-1") -> None:
        super().__init__(description)
        self.description = description
        self.message_id = message_id


class FormationViolation(OcppError):
    code = "FormationViolation"
    code_v201 = "FormatViolation"  # renamed in OCPP-J 2.0.1


class RpcFrameworkError(FormationViolation):
    """Not a valid RPC message at all (no readable message id, not a JSON array, ...): OCPP-J 2.0.1
    has a code for it; 1.6 calls it a FormationViolation."""

    code_v201 = "RpcFrameworkError"


class ProtocolError(OcppError):
    code = "ProtocolError"


class MessageTypeNotSupported(ProtocolError):
    """A message type id other than 2, 3, 4: OCPP-J 2.0.1 has a code for it; 1.6 a ProtocolError."""

    code_v201 = "MessageTypeNotSupported"


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
    code_v201 = "OccurrenceConstraintViolation"  # corrected in OCPP-J 2.0.1


class InternalError(OcppError):
    code = "InternalError"


class RefusalKind(StrEnum):
    """Why an upgrade was refused: the label of ``ocpp_gateway_access_refusals_total``. The client is
    never told more than the HTTP status and its fixed text: every kind of login failure (no, malformed
    or wrong credentials, an unknown charge point, a throttled attempt, a weak password) is the same 401."""

    NOT_OCPP_PATH = "not_ocpp_path"  # 404: not <prefix>/<chargePointId> (the admin paths included)
    BAD_CHARGE_POINT_ID = "bad_charge_point_id"  # 400
    NO_SUBPROTOCOL = "no_subprotocol"  # 400: no supported OCPP version offered
    CONNECTION_CAP = "connection_cap"  # 429: this address holds OCPP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS
    NO_CREDENTIALS = "no_credentials"  # 401 challenge: no Authorization header (not a failed login)
    BAD_CREDENTIALS = "bad_credentials"  # 401: not Basic, not base64, no colon, user is not the path's id
    UNKNOWN_CHARGE_POINT = "unknown_charge_point"  # 401
    WRONG_PASSWORD = "wrong_password"  # 401
    WEAK_PASSWORD = "weak_password"  # 401: right, but outside the policy (OCPP_GATEWAY_WEAK_PASSWORDS=refuse)
    THROTTLED_CHARGE_POINT = "throttled_charge_point"  # 401: password not even checked
    THROTTLED_ADDRESS = "throttled_address"  # 401: password not even checked
    NO_CERTIFICATE = "no_certificate"  # 401 (profile 3)
    WRONG_CERTIFICATE = "wrong_certificate"  # 403 (profile 3): another charge point's certificate


class HandshakeRefused(GatewayError):
    def __init__(self, status: HTTPStatus, reason: str, kind: RefusalKind, *, blocked_for_s: float = 0.0) -> None:
        """``blocked_for_s``: this failed login blocked its charge point or address for that long."""
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind
        self.blocked_for_s = blocked_for_s


class WeakPassword(GatewayError, ValueError):
    """``str(error)`` says which rule the secret breaks, never the secret."""


class ListenError(GatewayError):
    pass


class PublishError(GatewayError):
    retriable = True
