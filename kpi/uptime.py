"""``ocpp-pipeline report uptime``: per port, minutes of the period, of outage, of excluded outage, and
NEVI's uptime (KPIS.md, Uptime; 23 CFR 680.112(b)).

Ports and their first report come from ``connector_status`` (connector ids >= 1) and ``port_outages``;
outages from ``port_outages_with_exclusions`` (the newest version of each, with the exclusion that names it by
KPIS.md's rule, derived at read time: the EV-ChART export reports it); excluded minutes from
``outage_exclusions FINAL``, intersected here with the outages. :func:`uptime_rows` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from kpi.exclusions import exclusion_from_row
from kpi.intervals import MS_PER_MINUTE, Span, UptimeFigures, uptime_figures
from kpi.source import RowSource, table
from schemas.base import datetime_to_ms, ms_to_datetime
from schemas.exclusions import covers_port
from schemas.records import OutageExclusion
from schemas.tables import CONNECTOR_STATUS, OUTAGE_EXCLUSIONS, PORT_OUTAGES, PORT_OUTAGES_WITH_EXCLUSIONS

PortKey = tuple[str, int]  # (charge_point_id, connector_id)


@dataclass(frozen=True)
class Port:
    charge_point_id: str
    connector_id: int
    first_seen_ms: int  # gateway clock of its first report

    @property
    def key(self) -> PortKey:
        return self.charge_point_id, self.connector_id


@dataclass(frozen=True)
class OutageSpan:
    charge_point_id: str
    connector_id: int
    started_ms: int
    ended_ms: int | None  # None while open
    outage_id: str = ""
    excluded_reason: str = ""  # the exclusion that names it (port_outages_with_exclusions), '' if none
    excluded_note: str = ""


@dataclass(frozen=True)
class UptimeInputs:
    ports: list[Port]
    outages: list[OutageSpan]
    exclusions: list[OutageExclusion]  # ordered as kpi.exclusions.ordered


@dataclass(frozen=True)
class PortUptime:
    """One port over its part of the period, exact (milliseconds)."""

    port: Port
    span: Span
    figures: UptimeFigures


@dataclass(frozen=True)
class UptimeRow:
    """A line of the report: minutes rounded to 2 decimals, uptime to 3 (so 96.999 never shows as 97)."""

    charge_point_id: str
    connector_id: int
    period_minutes: float
    outage_minutes: float
    excluded_minutes: float
    uptime_pct: float

    @classmethod
    def of(cls, port: PortUptime) -> UptimeRow:
        f = port.figures
        return cls(port.port.charge_point_id, port.port.connector_id, minutes(f.period_ms), minutes(f.outage_ms),
                   minutes(f.excluded_ms), round(f.uptime_pct if f.uptime_pct is not None else 100.0, 3))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


COLUMNS = tuple(UptimeRow.__dataclass_fields__)


def minutes(ms: int) -> float:
    return round(ms / MS_PER_MINUTE, 2)


def port_uptimes(inputs: UptimeInputs, period: Span, now_ms: int) -> list[PortUptime]:
    """Each port's figures over ``[max(period start, first report), min(period end, now))``; ports whose
    span is empty (first seen after it, or a period in the future) are left out. Sorted by port."""
    outages: dict[PortKey, list[Span]] = defaultdict(list)
    for o in inputs.outages:
        outages[(o.charge_point_id, o.connector_id)].append(Span(o.started_ms, period.end_ms if o.ended_ms is None
                                                                 else o.ended_ms))
    exclusions: dict[str, list[OutageExclusion]] = defaultdict(list)
    for e in inputs.exclusions:
        exclusions[e.charge_point_id].append(e)
    out = []
    for port in sorted(merge_ports(inputs.ports), key=lambda p: p.key):
        span = Span(max(period.start_ms, port.first_seen_ms), min(period.end_ms, now_ms))
        if span.empty:
            continue
        covering = [Span(datetime_to_ms(e.from_at), datetime_to_ms(e.to_at))
                    for e in exclusions.get(port.charge_point_id, ())
                    if covers_port(e, port.connector_id)]
        out.append(PortUptime(port, span, uptime_figures(span, outages.get(port.key, ()), covering)))
    return out


def uptime_rows(inputs: UptimeInputs, period: Span, now_ms: int) -> list[UptimeRow]:
    return [UptimeRow.of(p) for p in port_uptimes(inputs, period, now_ms)]


def merge_ports(ports: Iterable[Port]) -> list[Port]:
    """One port per key, with its earliest first report."""
    first: dict[PortKey, int] = {}
    for p in ports:
        first[p.key] = min(first.get(p.key, p.first_seen_ms), p.first_seen_ms)
    return [Port(cp, connector, ms) for (cp, connector), ms in first.items()]


def fetch_inputs(source: RowSource, database: str, period: Span) -> UptimeInputs:
    """What :func:`uptime_rows` needs for ``period``: three queries."""
    start, end = period.start_ms, period.end_ms
    in_window = f"fromUnixTimestamp64Milli({start}, 'UTC')", f"fromUnixTimestamp64Milli({end}, 'UTC')"
    ports_sql = (
        f"SELECT charge_point_id, toUInt32(connector_id), toInt64(min(toUnixTimestamp64Milli(received_at))) "
        f"FROM {table(database, CONNECTOR_STATUS.name)} WHERE connector_id >= 1 AND received_at < {in_window[1]} "
        f"GROUP BY charge_point_id, connector_id "
        f"UNION ALL SELECT charge_point_id, toUInt32(connector_id), toInt64(min(toUnixTimestamp64Milli(started_at))) "
        f"FROM {table(database, PORT_OUTAGES.name)} FINAL WHERE connector_id >= 1 AND started_at < {in_window[1]} "
        f"GROUP BY charge_point_id, connector_id"
    )
    outages_sql = (
        f"SELECT charge_point_id, toUInt32(connector_id), toUnixTimestamp64Milli(started_at), "
        f"if(ended_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(ended_at))), outage_id, excluded_reason, "
        f"excluded_note FROM {table(database, PORT_OUTAGES_WITH_EXCLUSIONS.name)} "
        f"WHERE connector_id >= 1 AND started_at < {in_window[1]} "
        f"AND (ended_at IS NULL OR ended_at > {in_window[0]}) ORDER BY charge_point_id, connector_id, started_at"
    )
    exclusions_sql = (
        f"SELECT exclusion_id, charge_point_id, toUInt32(connector_id), toUnixTimestamp64Milli(from_at), "
        f"toUnixTimestamp64Milli(to_at), reason, note, toUnixTimestamp64Milli(recorded_at), recorded_by, reference, forced "
        f"FROM {table(database, OUTAGE_EXCLUSIONS.name)} FINAL "
        f"WHERE from_at < {in_window[1]} AND to_at > {in_window[0]} ORDER BY charge_point_id, from_at, exclusion_id"
    )
    return UptimeInputs(
        ports=[Port(str(r[0]), int(r[1]), int(r[2])) for r in source.rows(ports_sql)],
        outages=[OutageSpan(str(r[0]), int(r[1]), int(r[2]), None if r[3] is None else int(r[3]), str(r[4]), str(r[5]),
                            str(r[6])) for r in source.rows(outages_sql)],
        exclusions=[e for r in source.rows(exclusions_sql) if (e := exclusion_from_row({
            "exclusion_id": str(r[0]), "charge_point_id": str(r[1]), "connector_id": int(r[2]),
            "from_at": ms_to_datetime(int(r[3])), "to_at": ms_to_datetime(int(r[4])), "reason": str(r[5]), "note": str(r[6]),
            "recorded_at": ms_to_datetime(int(r[7])), "recorded_by": str(r[8]), "reference": str(r[9]),
            "forced": bool(r[10])})) is not None],
    )


def uptime_report(source: RowSource, database: str, period: Span, now_ms: int) -> list[UptimeRow]:
    return uptime_rows(fetch_inputs(source, database, period), period, now_ms)


def row_values(rows: Sequence[UptimeRow]) -> list[list[object]]:
    return [list(r.as_dict().values()) for r in rows]
