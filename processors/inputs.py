"""The typed domain inputs of the correlator: what a charger said, parsed once, version-neutral.

Each OCPP version has a normalizer (:mod:`processors.ocpp16`, :mod:`processors.ocpp201`) that turns a frame
envelope into zero or more of these. Values are already validated: ids are ``str`` (OCPP 2.0.1 ids are
strings; 1.6 integers are written in decimal), connector ids are ints in range or ``None``, times are
milliseconds inside what ``DateTime64(3)`` holds or ``None``, statuses are the domain's
(:class:`~processors.vocabulary.Status`, with the text as sent beside it where a row repeats it), and every
doubt found on the way is in ``flags`` (members of :class:`~schemas.flags.Flag`, and the gateway's
``schema*`` codes the frame came with). The correlator (:mod:`processors.correlator`) reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ocpp.v16.enums import ChargePointErrorCode, Reason
from ocpp.v201.enums import IdTokenEnumType

from processors.meter import Reading
from processors.vocabulary import Status
from schemas.envelope import ConnectionEvent, Direction, MessageType
from signed_meter.arrival import SignedValue

NO_ERROR = ChargePointErrorCode.no_error.value
DEFAULT_STOP_REASON = Reason.local.value  # OCPP 1.6, 6.46: an absent reason means Local
# The driver's token type (2.0.1 IdTokenEnumType, the wire strings) of a start that named no driver: 2.0.1 says
# it; a 1.6 StartTransaction with an empty idTag means the same (1.6 has no token type otherwise).
NO_AUTHORIZATION = IdTokenEnumType.no_authorization.value
MAX_TOKEN_TYPE = 20  # the longest IdTokenEnumType is 15 characters: room for a newer one, bounded

_NO_FLAGS: frozenset[str] = frozenset()


class Frame(Protocol):
    """A frame envelope as the processors read it, whichever decoder made it (:class:`schemas.envelope.FrameEnvelope`
    or the worker's fast one, :class:`processors.envelope_decode.Envelope`): the fields and derived facts of
    ``ocpp.frames.v1``'s envelope, read only."""

    @property
    def charge_point_id(self) -> str: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def gateway_ts_ms(self) -> int: ...
    @property
    def frame(self) -> str: ...
    @property
    def ocpp_version(self) -> str: ...
    @property
    def gateway_id(self) -> str: ...
    @property
    def connection_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def message_type(self) -> MessageType | None: ...
    @property
    def action(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def flags(self) -> tuple[str, ...]: ...
    @property
    def event(self) -> ConnectionEvent | None: ...
    @property
    def close_code(self) -> int | None: ...

    def event_id(self) -> str: ...

    def content_flags(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Input:
    """What every input knows about the frame it came from."""

    gw_ms: int  # gateway clock of the frame: the correlator's time
    event_id: str  # connection id / sequence number: stable across replays


@dataclass(frozen=True, slots=True)
class StartDetails:
    """What a transaction's start says (OCPP 1.6 StartTransaction.req, 2.0.1 TransactionEvent Started)."""

    connector_id: int | None
    id_tag: str
    meter_start: float | None  # Wh as sent (-1 kept: the energy rules flag it); None if absent or not a number
    started_ms: int | None  # charger clock
    fingerprint: str  # the start's content: a resend has the same one
    flags: frozenset[str] = _NO_FLAGS
    id_token_type: str = ""  # 2.0.1 idToken.type as sent; 1.6: NO_AUTHORIZATION for an empty idTag, else ''


@dataclass(frozen=True, slots=True)
class StartRequested(Input):
    """A start whose transaction id the central system gives in its answer (OCPP 1.6)."""

    message_id: str
    start: StartDetails


@dataclass(frozen=True, slots=True)
class StartAnswered(Input):
    """The answer to a :class:`StartRequested`; ``transaction_id`` ``None`` when it named none (CALLERROR)."""

    message_id: str
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class TransactionStarted(Input):
    """A start that names its transaction."""

    transaction_id: str
    start: StartDetails


@dataclass(frozen=True, slots=True)
class TransactionStopped(Input):
    """A transaction's stop (OCPP 1.6 StopTransaction.req). ``transaction_id`` ``None``: no usable id
    (-1, 0, not an integer): ``raw_transaction_id`` is what was sent."""

    transaction_id: str | None
    raw_transaction_id: str
    id_tag: str
    meter_stop: float | None  # Wh as sent (-1 kept); None if absent or not a number
    has_meter_stop: bool
    stopped_ms: int | None
    reason: str
    readings: tuple[Reading, ...]  # transactionData
    fingerprint: str  # the stop's content: a resend has the same one
    flags: frozenset[str] = _NO_FLAGS
    connector_id: int | None = None  # OCPP 2.0.1 names the EVSE in the Ended; 1.6 never does
    # The transaction's start register as the stop reports it (OCPP 2.0.1: the Ended's Transaction.Begin value, else
    # the first sample of its series): a session known only from its stop starts there.
    meter_start: float | None = None
    # Signed values the stop carries (1.6 transactionData ``format: SignedData``, the 2.0.1 Ended's
    # ``signedMeterValue``): the session's, once the stop has found it (processors.signed_samples).
    signed: tuple[SignedValue, ...] = ()


@dataclass(frozen=True, slots=True)
class MeterSamples(Input):
    """Meter readings for a connector and, if named, a transaction."""

    connector_id: int | None
    transaction_id: str | None
    readings: tuple[Reading, ...]
    flags: frozenset[str] = _NO_FLAGS


@dataclass(frozen=True, slots=True)
class SignedSamples(Input):
    """Signed meter values (Eichrecht, OCMF) for a connector and, if named, a transaction: OCPP 1.6 sampled values
    with ``format: SignedData``, 2.0.1 ``signedMeterValue`` (:mod:`signed_meter.arrival` read them; nothing is
    verified yet). Beside, not instead of, the :class:`MeterSamples` of the same frame: its numbers stay readings."""

    connector_id: int | None
    transaction_id: str | None
    values: tuple[SignedValue, ...]
    flags: frozenset[str] = _NO_FLAGS  # signed_values_dropped: the frame carried more than the cap


@dataclass(frozen=True, slots=True)
class StatusReported(Input):
    """A connector's status (``connector_id`` 0: the whole charge point): ``status`` its meaning, ``status_text``
    what the charger sent (the status timeline repeats it)."""

    connector_id: int
    status: Status
    status_text: str
    error_code: str
    info: str
    vendor_id: str
    vendor_error_code: str
    occurred_ms: int | None  # charger clock; None when absent or unreadable
    flags: frozenset[str] = _NO_FLAGS
    # OCPP 1.6: Faulted or an errorCode is a fault (processors.faults). OCPP 2.0.1's statuses carry no error code:
    # Faulted begins a fault that a NotifyEvent problem (:class:`ProblemReported`) names (processors.evse_faults).
    has_error_code: bool = True


@dataclass(frozen=True, slots=True)
class ChargingStateChanged(Input):
    """What the EV is doing on a connector during a transaction (OCPP 2.0.1 ``chargingState``: Charging,
    SuspendedEV, SuspendedEVSE, EVConnected, Idle). Its moves out of Charging are the session's
    ``stop_status``, as 1.6's StatusNotification moves out of Charging are."""

    connector_id: int | None  # None: the transaction's connector
    transaction_id: str | None
    state: Status
    state_text: str  # as sent: a move out of Charging is the session's ``stop_status``, as the station said it
    occurred_ms: int | None
    flags: frozenset[str] = _NO_FLAGS


@dataclass(frozen=True, slots=True)
class EventSequenced(Input):
    """A transaction's event carried this sequence number (OCPP 2.0.1 TransactionEvent ``seqNo``)."""

    transaction_id: str
    seq_no: int
    connector_id: int | None = None  # the EVSE, when the event names it
    opens: bool = False  # the transaction's first event (Started)


@dataclass(frozen=True, slots=True)
class ProblemReported(Input):
    """A component's problem began (``active``) or ended (OCPP 2.0.1 NotifyEvent on a ``Problem`` or
    ``Fault``-like variable). ``code`` names it: ``Component/Variable``."""

    connector_id: int  # 0: the whole charging station
    code: str
    active: bool
    info: str
    vendor_code: str  # techCode
    occurred_ms: int | None
    flags: frozenset[str] = _NO_FLAGS


@dataclass(frozen=True, slots=True)
class AuthorizeRequested(Input):
    """A driver presented an id (OCPP 1.6 Authorize.req ``idTag``, 2.0.1 ``idToken.idToken``)."""

    message_id: str
    id_tag: str


@dataclass(frozen=True, slots=True)
class AuthorizeAnswered(Input):
    """The central system's answer to an :class:`AuthorizeRequested`: ``accepted`` ``None`` when it
    said nothing readable (a CALLERROR)."""

    message_id: str
    accepted: bool | None


@dataclass(frozen=True, slots=True)
class TokenPresented(Input):
    """A 2.0.1 transaction learnt its driver's idToken after it started (an Updated naming it: a station that
    starts transactions at plug-in, TxStartPoint EVConnected, gets the card after the Started)."""

    transaction_id: str
    id_tag: str
    id_token_type: str = ""  # its idToken.type
    connector_id: int | None = None  # the EVSE, when the event names it


@dataclass(frozen=True, slots=True)
class Booted(Input):
    """The charger (re)booted (BootNotification)."""

    firmware_version: str = ""
    flags: frozenset[str] = field(default=_NO_FLAGS)


DomainInput = (StartRequested | StartAnswered | TransactionStarted | TransactionStopped | MeterSamples | StatusReported
               | ChargingStateChanged | EventSequenced | ProblemReported | AuthorizeRequested | AuthorizeAnswered
               | TokenPresented | Booted | SignedSamples)
