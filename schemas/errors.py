"""Errors of the contracts.

    ContractError               a declaration, or a value said to follow one, does not
    ├── ColumnTypeError         a record field whose ClickHouse column type cannot be told
    ├── EnvelopeDrift           a fast (msgspec) form of the envelope differs from :class:`~schemas.envelope.FrameEnvelope`
    ├── InvalidExclusionEvent   a record of ``ocpp.exclusions.v1`` that is not an exclusion event
    └── InvalidMeterKeyEvent    a record of ``ocpp.meter_keys.v1`` that is not a meter key event

None is retriable: the declaration or the record has to change.
"""

from __future__ import annotations


class ContractError(ValueError):
    retriable = False


class ColumnTypeError(ContractError):
    pass


class EnvelopeDrift(ContractError):
    pass


class InvalidExclusionEvent(ContractError):
    pass


class InvalidMeterKeyEvent(ContractError):
    pass
