"""How long each class of table keeps its rows: a value the DDL renders as ClickHouse TTLs.

Four classes (a table names its own in :mod:`schemas.tables`):

- ``RAW``: ``frames``, every frame as on the wire: by far the largest table (~400 million rows a day at 100k
  chargers), kept for audits and disputes, not for the reports (those read the derived tables).
- ``STATUS``: ``connector_status``, the status timeline: the evidence behind an outage, kept as long as the
  uptime it explains is reported on (NEVI: the trailing 12 months).
- ``COMPLIANCE``: sessions, fault events, outages, exclusions, attempts, the daily aggregates: billing and
  federal reporting rest on them; kept forever unless an operator sets a period (never below
  :data:`COMPLIANCE_FLOOR_DAYS`).
- ``REGISTRY``: ``meter_keys``, the keys signed readings are verified with: a key registered when a meter was
  installed verifies its readings for as long as it measures (years), so no setting expires it; always kept.

``None`` days means kept forever (no TTL). The settings (``OCPP_CLICKHOUSE_*_TTL_DAYS``) live in
:class:`infra.settings.ClickHouseSettings`; every migration run makes the tables' TTLs equal to them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The trailing 12 months NEVI uptime is computed over (23 CFR 680.116), plus a month to report it: a
# compliance table must hold at least this, or the pipeline's own reports would lose their data.
COMPLIANCE_FLOOR_DAYS = 400


class TableClass(enum.StrEnum):
    RAW = "raw"
    STATUS = "status"
    COMPLIANCE = "compliance"
    REGISTRY = "registry"


@dataclass(frozen=True)
class Retention:
    """Days each table class keeps its rows; ``None``: kept forever."""

    raw_days: int | None = None
    status_days: int | None = None
    compliance_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("raw_days", "status_days", "compliance_days"):
            days = getattr(self, name)
            if days is not None and days < 1:
                raise ValueError(f"{name}: a retention is at least one day (None keeps rows forever), got {days}")
        if self.compliance_days is not None and self.compliance_days < COMPLIANCE_FLOOR_DAYS:
            raise ValueError(f"compliance_days: at least {COMPLIANCE_FLOOR_DAYS} (the trailing 12 months of NEVI "
                             f"uptime and its reporting month), got {self.compliance_days}")

    def days(self, table_class: TableClass) -> int | None:
        return {TableClass.RAW: self.raw_days, TableClass.STATUS: self.status_days,
                TableClass.COMPLIANCE: self.compliance_days, TableClass.REGISTRY: None}[table_class]


KEEP_EVERYTHING = Retention()
