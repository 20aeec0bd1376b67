"""EV-ChART's coded module 2 values from what the pipeline knows: ``payment_method`` / ``payment_other`` from the
driver's token type, ``session_error`` / ``error_other`` from the session's charge attempt (KPIS.md, EV-ChART
export, where both tables are). Pure.

EV-ChART's validator requires both on every session row (``validate_m2.validate_empty_session``) and checks only
that they are filled strings of at most 255 characters; its definitions add ``other`` with a description in
``payment_other`` / ``error_other`` for what the recommended categories do not name. Those categories are in the
Joint Office's Data Format and Preparation Guidance, which is not part of the open-source repository: the values
here are this pipeline's, one table each (:data:`TOKEN_PAYMENTS`, :data:`SESSION_ERRORS`), where a reporting
agency's other spellings would go. The excluded-outage reason codes of module 4 are
:data:`schemas.records.EV_CHART_CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ocpp.v16.enums import Reason
from ocpp.v201.enums import IdTokenEnumType, ReasonEnumType

from schemas.attempt_failure import OK_STOP_REASONS, AttemptFailure, stop_failure

MAX_TEXT = 255  # session_error, error_other, payment_method, payment_other: VARCHAR(255)


class PaymentMethod(StrEnum):
    """EV-ChART ``payment_method``: how the driver paid for the session."""

    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    RFID_CARD = "rfid_card"  # the network's (or a roaming partner's) card
    MOBILE_APP = "mobile_app"  # started from the network's app, web page or SMS
    PLUG_AND_CHARGE = "plug_and_charge"  # ISO 15118: the car's contract certificate
    FREE = "free"
    OTHER = "other"  # payment_other says what


@dataclass(frozen=True)
class Payment:
    """``payment_method`` and its ``payment_other`` (filled exactly when the method is ``other``)."""

    method: PaymentMethod
    other: str = ""

    def __post_init__(self) -> None:
        if (self.method == PaymentMethod.OTHER) != bool(self.other.strip()):
            raise ValueError("payment_other is the description of payment_method 'other', and only of it")


TOKEN_PAYMENTS: MappingProxyType[str, Payment] = MappingProxyType({
    IdTokenEnumType.iso14443.value: Payment(PaymentMethod.RFID_CARD),
    IdTokenEnumType.iso15693.value: Payment(PaymentMethod.RFID_CARD),
    IdTokenEnumType.central.value: Payment(PaymentMethod.MOBILE_APP),
    IdTokenEnumType.e_maid.value: Payment(PaymentMethod.PLUG_AND_CHARGE),
    IdTokenEnumType.no_authorization.value: Payment(PaymentMethod.FREE),
    IdTokenEnumType.key_code.value: Payment(PaymentMethod.OTHER, "key code entered at the charger (OCPP KeyCode)"),
    IdTokenEnumType.mac_address.value: Payment(PaymentMethod.OTHER, "Autocharge: the car identified by its MAC address "
                                                                    "(OCPP MacAddress)"),
})
"""The payment a token type tells (``sessions.id_token_type``: OCPP 2.0.1 IdTokenEnumType; a 1.6 start with an
empty idTag is NoAuthorization). ``Local`` (an id the station made up: free vend, a local list, a payment
terminal), an empty type (OCPP 1.6 idTags) and types this table does not know tell nothing: the station's
default applies."""

NOT_REPORTED = Payment(PaymentMethod.OTHER, "not reported: the charger does not say how the driver paid "
                                            "(set default_payment_method in the stations file)")


class PaymentSource(StrEnum):
    """Where a row's payment came from (the export counts them)."""

    TOKEN = "token"
    STATION_DEFAULT = "station_default"
    NOT_REPORTED = "not_reported"


def payment_of(id_token_type: str, station_default: Payment | None) -> tuple[Payment, PaymentSource]:
    """The session's payment: its token type's, else the station's default, else :data:`NOT_REPORTED`."""
    told = TOKEN_PAYMENTS.get(id_token_type)
    if told is not None:
        return told, PaymentSource.TOKEN
    if station_default is not None:
        return station_default, PaymentSource.STATION_DEFAULT
    return NOT_REPORTED, PaymentSource.NOT_REPORTED


NO_ERROR = "no_error"
"""``session_error`` of a session that ended as the driver meant (the charge attempt's ``failure`` is empty)."""
OTHER_ERROR = "other"

_UNNAMED_REASON = "Other"  # OCPP's stop reason "Other": the charger named none
SESSION_ERRORS: frozenset[str] = frozenset(
    {AttemptFailure.NO_ENERGY.value, AttemptFailure.FAULTED.value, AttemptFailure.STOP_MISSING.value}
    | {stop_failure(r) for r in {*(r.value for r in Reason), *(r.value for r in ReasonEnumType)}
       if r not in OK_STOP_REASONS and r != _UNNAMED_REASON}
)
"""The ``session_error`` codes besides :data:`NO_ERROR` and ``other``: the charge attempt's ``failure`` codes
(KPIS.md, Attempts) of a transaction, one per OCPP 1.6 / 2.0.1 stop reason that is a failure."""


@dataclass(frozen=True)
class SessionError:
    code: str  # session_error
    other: str = ""  # error_other: filled exactly when code is "other"


def session_error(failure: str, stop_reason: str, stop_error_code: str) -> SessionError:
    """``session_error`` from the attempt's ``failure`` ('' when it ended ok): a code of :data:`SESSION_ERRORS`
    as it is; a stop reason OCPP does not define, or its reason "Other", is ``other`` with what the charger
    said (its reason and the connector's error code at the stop) in ``error_other``."""
    if not failure:
        return SessionError(NO_ERROR)
    if failure in SESSION_ERRORS:
        return SessionError(failure)
    said = [f"stopped with reason {stop_reason.strip()!r}" if stop_reason.strip() else f"failure {failure}"]
    if stop_error_code.strip() and stop_error_code.strip() != "NoError":
        said.append(f"error code {stop_error_code.strip()!r}")
    return SessionError(OTHER_ERROR, ", ".join(said))
