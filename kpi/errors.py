"""Errors of the reports.

    KpiError                  a report or an exclusion cannot be made from what was given
    ├── InvalidExclusion      an exclusion's fields are wrong (window, reason, port)
    ├── InvalidPeriod         a report period cannot be read (dates, quarter)
    ├── StationsFileError     the EV-ChART stations file is missing, malformed, or lacks ports or fields
    └── ExportFailed          the EV-ChART files could not be written

None is retriable: the input has to change.
"""

from __future__ import annotations


class KpiError(ValueError):
    retriable = False


class InvalidExclusion(KpiError):
    pass


class InvalidPeriod(KpiError):
    pass


class StationsFileError(KpiError):
    pass


class ExportFailed(KpiError):
    pass
