"""``ocpp-pipeline report success``: attempts and the ChargeX success rates (KPIS.md, Attempts).

ClickHouse counts (``charge_attempts FINAL``, attempts that started in ``[from, to)``, grouped by port,
charger or fleet) and computes the start-delay quantiles; the rates are derived here from the counts:

- charge-start success = deliveries / attempts;
- charge-end success = ok stops / deliveries;
- session success = ok stops / attempts.

A rate whose denominator is 0 is None (printed empty / null), never 0 or 100. Attempts that named no
port (an Authorize without a start) are port 0 in ``--by port``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from kpi.intervals import Span
from kpi.source import RowSource, table
from schemas.tables import CHARGE_ATTEMPTS


class Grouping(StrEnum):
    PORT = "port"
    CHARGER = "charger"
    FLEET = "fleet"

    @property
    def key_columns(self) -> tuple[str, ...]:
        return {"port": ("charge_point_id", "connector_id"), "charger": ("charge_point_id",), "fleet": ()}[self.value]


@dataclass(frozen=True)
class AttemptCounts:
    attempts: int
    deliveries: int
    ok_stops: int
    start_delay_p50_s: float | None
    start_delay_p90_s: float | None


@dataclass(frozen=True)
class SuccessRates:
    charge_start_success_pct: float | None
    charge_end_success_pct: float | None
    session_success_pct: float | None

    @classmethod
    def of(cls, counts: AttemptCounts) -> SuccessRates:
        return cls(percent(counts.deliveries, counts.attempts), percent(counts.ok_stops, counts.deliveries),
                   percent(counts.ok_stops, counts.attempts))


def percent(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole * 100, 2)


@dataclass(frozen=True)
class SuccessRow:
    key: tuple[object, ...]  # the grouping's key values (charge point, port), () for the fleet
    counts: AttemptCounts

    @property
    def rates(self) -> SuccessRates:
        return SuccessRates.of(self.counts)

    def as_dict(self, grouping: Grouping) -> dict[str, object]:
        c = self.counts
        return {**dict(zip(grouping.key_columns, self.key)), "attempts": c.attempts, "deliveries": c.deliveries,
                "ok_stops": c.ok_stops, **asdict(self.rates), "start_delay_p50_s": c.start_delay_p50_s,
                "start_delay_p90_s": c.start_delay_p90_s}


def columns(grouping: Grouping) -> list[str]:
    return [*grouping.key_columns, "attempts", "deliveries", "ok_stops", *SuccessRates.__dataclass_fields__,
            "start_delay_p50_s", "start_delay_p90_s"]


def counts_sql(database: str, period: Span, grouping: Grouping) -> str:
    keys = list(grouping.key_columns)
    key_sql = "".join(f"{k}, " for k in keys)
    group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
    # quantileExact over a Nullable column skips NULLs (attempts that never charged); with no value at
    # all it returns NULL, which the row keeps as None.
    return (
        f"SELECT {key_sql}count(), countIf(delivered), countIf(delivered AND ended_ok), "
        f"quantileExact(0.5)(start_delay_s), quantileExact(0.9)(start_delay_s) "
        f"FROM {table(database, CHARGE_ATTEMPTS.name)} FINAL "
        f"WHERE started_at >= fromUnixTimestamp64Milli({period.start_ms}, 'UTC') "
        f"AND started_at < fromUnixTimestamp64Milli({period.end_ms}, 'UTC'){group}"
    )


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if number != number else round(number, 1)  # NaN: no value (older engines)


def success_rows(rows: Sequence[Sequence[object]], grouping: Grouping) -> list[SuccessRow]:
    """Rows of :func:`counts_sql` as :class:`SuccessRow`; the fleet with no attempt is one row of zeros."""
    width = len(grouping.key_columns)
    out = [SuccessRow(tuple(r[:width]), AttemptCounts(int(r[width]), int(r[width + 1]), int(r[width + 2]),  # type: ignore[call-overload]
                                                       _seconds(r[width + 3]), _seconds(r[width + 4])))
           for r in rows]
    return [r for r in out if r.counts.attempts or grouping is Grouping.FLEET]


def success_report(source: RowSource, database: str, period: Span, grouping: Grouping) -> list[SuccessRow]:
    return success_rows(source.rows(counts_sql(database, period, grouping)), grouping)
