"""A frame to the domain inputs it carries, read by the normalizer of its OCPP version (the subprotocol the gateway
negotiated, ``ocpp_version``): :mod:`processors.ocpp16` or :mod:`processors.ocpp201`. The only place that picks a
normalizer; above it, nothing knows which version a charger speaks (the facts that still differ are its
:class:`~processors.protocols.Protocol`'s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from processors import ocpp16, ocpp201
from processors.inputs import DomainInput, Frame
from processors.protocols import DEFAULT, OCPP16, OCPP201, Protocol

Normalizer = Callable[[Frame], list[DomainInput]]

NORMALIZERS: Final[dict[str, tuple[Protocol, Normalizer]]] = {
    OCPP16.version: (OCPP16, ocpp16.normalize),
    OCPP201.version: (OCPP201, ocpp201.normalize),
}
_DEFAULT = NORMALIZERS[DEFAULT.version]


def reader(envelope: Frame) -> tuple[Protocol, Normalizer]:
    """The protocol of ``envelope`` and its normalizer (a subprotocol the processors do not read: OCPP 1.6's)."""
    return NORMALIZERS.get(envelope.ocpp_version, _DEFAULT)
