"""The OCPP versions the processors read, as facts: the subprotocol each is negotiated as (recorded on every row
as ``ocpp_version``) and how it says what the rules need. Each version's normalizer (:mod:`processors.ocpp16`,
:mod:`processors.ocpp201`) turns its frames into the same domain inputs; what still differs after that is a fact
here, so the trackers and the correlator ask for the fact and never name a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Protocol:
    version: str  # the subprotocol (``ocpp1.6``): the rows' ``ocpp_version``
    # What the EV does during a transaction is said by the transaction's own chargingState (2.0.1), not by the
    # connector's status (1.6): the status then says nothing of the session's phase, and a chargingState ends with
    # its transaction (the next one starts unknown).
    charging_state_in_transaction: bool


OCPP16: Final = Protocol("ocpp1.6", charging_state_in_transaction=False)
OCPP201: Final = Protocol("ocpp2.0.1", charging_state_in_transaction=True)
KNOWN: Final = {p.version: p for p in (OCPP16, OCPP201)}
DEFAULT: Final = OCPP16
"""A frame of a subprotocol the processors do not read is read as OCPP 1.6 (the gateway negotiates none other)."""


def protocol_of(version: str) -> Protocol:
    """The facts of ``version``; a version the processors do not read has 1.6's, under its own name (a row
    keeps the version it was recorded with)."""
    known = KNOWN.get(version)
    return known if known is not None else Protocol(version, charging_state_in_transaction=False)
