"""``ocpp-pipeline report ev-chart``: the quarterly NEVI submission's modules 2 (charging sessions),
3 (uptime) and 4 (outages) as CSV, one file per module.

Columns, order and types follow EV-ChART's published module definitions (the Joint Office's open-source
EV-ChART, ``module_definitions/module2.json`` ... ``module4.json`` and the module 4 exclusion columns):
every module begins with ``station_id``, ``port_id``, ``network_provider`` (from the operator's
stations file, :mod:`kpi.stations`); datetimes are ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ``; decimals have
2 places; durations are minutes.

- Module 2: one row per session that started in the quarter (``sessions FINAL``; the charger's start
  time, or the gateway's when the charger clock is off, as the daily aggregates do). ``session_error`` is
  the attempt's ``failure`` code (``charge_attempts``); ``payment_method`` is left empty (OCPP does not
  say how a driver paid; EV-ChART allows it empty). Sessions with no known connector are left out.
- Module 3: one row per port, the trailing 12 months ending with the quarter (NEVI computes uptime over
  12 months), from the port's first report if later; the same figures as ``report uptime``.
- Module 4: one row per outage that began in the quarter; ``outage_id`` is its start (EV-ChART's
  definition), ``outage_duration`` runs to the end of the quarter (or now) for an outage still open;
  ``excluded_outage`` / ``excluded_outage_reason`` (EV-ChART's code 1-6) / ``excluded_outage_notes``
  from the exclusion that names it (``port_outages_with_exclusions``: KPIS.md's rule, at read time).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kpi.errors import ExportFailed
from kpi.exclusions import from_ms
from kpi.intervals import MS_PER_MINUTE, Span
from kpi.period import day_start_ms, quarter_dates, years_before
from kpi.source import RowSource, table
from kpi.stations import StationPort, Stations
from kpi.uptime import OutageSpan, PortUptime, UptimeInputs, fetch_inputs, port_uptimes
from schemas.records import EV_CHART_CODES, ExclusionReason
from schemas.tables import CHARGE_ATTEMPTS, SESSIONS

STATION_COLUMNS = ("station_id", "port_id", "network_provider")
MODULE2_COLUMNS = STATION_COLUMNS + (
    "charger_id", "session_id", "connector_id", "session_start", "session_end", "session_error", "error_other",
    "energy_kwh", "power_kw", "payment_method", "payment_other")
MODULE3_COLUMNS = STATION_COLUMNS + (
    "uptime_reporting_start", "uptime_reporting_end", "uptime", "total_outage", "total_outage_excl")
MODULE4_COLUMNS = STATION_COLUMNS + (
    "outage_id", "outage_duration", "excluded_outage", "excluded_outage_reason", "excluded_outage_notes")

MAX_NOTE = 255  # excluded_outage_notes VARCHAR(255)


@dataclass(frozen=True)
class Quarter:
    label: str  # "2026Q3"
    start: date
    end: date  # exclusive

    @classmethod
    def parse(cls, text: str) -> Quarter:
        start, end, label = quarter_dates(text)
        return cls(label, start, end)

    @property
    def span(self) -> Span:
        return Span(day_start_ms(self.start), day_start_ms(self.end))

    @property
    def uptime_span(self) -> Span:
        """The trailing 12 months ending with the quarter."""
        return Span(day_start_ms(years_before(self.end, 1)), day_start_ms(self.end))


@dataclass(frozen=True)
class SessionFacts:
    charge_point_id: str
    connector_id: int
    session_id: str
    started_ms: int | None
    stopped_ms: int | None
    energy_wh: float | None
    peak_power_w: float | None
    failure: str


def timestamp(ms: int | None) -> str:
    return "" if ms is None else from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal(value: float | None, scale: float = 1.0, limit: float | None = None) -> str:
    """``value / scale`` with 2 decimals; empty when unknown, negative or beyond the column's precision."""
    if value is None or value != value or value < 0:
        return ""
    scaled = round(value / scale, 2)
    return "" if limit is not None and scaled > limit else f"{scaled:.2f}"


def station_columns(port: StationPort) -> list[str]:
    return [port.station_id, port.port_id, port.network_provider]


def module2_rows(sessions: Sequence[SessionFacts], stations: Stations) -> list[list[str]]:
    rows = []
    for s in sessions:
        port = stations.ports[(s.charge_point_id, s.connector_id)]
        rows.append(station_columns(port) + [
            port.charger_id, s.session_id[:36], str(s.connector_id), timestamp(s.started_ms), timestamp(s.stopped_ms),
            s.failure, "", decimal(s.energy_wh, 1000, 99_999.99), decimal(s.peak_power_w, 1000, 99_999.99), "", ""])
    return rows


def module3_rows(uptimes: Sequence[PortUptime], stations: Stations) -> list[list[str]]:
    rows = []
    for u in uptimes:
        f = u.figures
        pct = f.uptime_pct if f.uptime_pct is not None else 100.0
        rows.append(station_columns(stations.ports[u.port.key]) + [
            timestamp(u.span.start_ms), timestamp(u.span.end_ms), f"{round(pct, 2):.2f}",
            decimal(f.outage_ms, MS_PER_MINUTE), decimal(f.excluded_ms, MS_PER_MINUTE)])
    return rows


def module4_rows(outages: Sequence[OutageSpan], quarter: Span, now_ms: int, stations: Stations) -> list[list[str]]:
    """Outages that began in ``quarter``; an open one lasts until the quarter's end or ``now_ms``."""
    rows = []
    for o in sorted(outages, key=lambda o: (o.charge_point_id, o.connector_id, o.started_ms)):
        if not quarter.start_ms <= o.started_ms < quarter.end_ms:
            continue
        end = o.ended_ms if o.ended_ms is not None else min(quarter.end_ms, now_ms)
        if end <= o.started_ms:
            continue
        excluded = bool(o.excluded_reason)
        # EV-ChART's smallest duration is 0.01 minute: a shorter outage is reported as that.
        duration = max(0.01, round((end - o.started_ms) / MS_PER_MINUTE, 2))
        rows.append(station_columns(stations.ports[(o.charge_point_id, o.connector_id)]) + [
            timestamp(o.started_ms), f"{duration:.2f}", "True" if excluded else "False",
            str(EV_CHART_CODES[ExclusionReason(o.excluded_reason)]) if excluded else "",
            o.excluded_note[:MAX_NOTE] if excluded else ""])
    return rows


def fetch_sessions(source: RowSource, database: str, quarter: Span) -> list[SessionFacts]:
    started = "if(s.started_at IS NULL OR has(s.flags, 'clock_skew'), s.received_at, assumeNotNull(s.started_at))"
    sql = (
        f"SELECT s.charge_point_id, toUInt32(assumeNotNull(s.connector_id)), if(s.session_id = '', s.transaction_id, "
        f"s.session_id), if(s.started_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(s.started_at))), "
        f"if(s.stopped_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(s.stopped_at))), s.energy_wh, "
        f"s.peak_power_w, a.failure "
        f"FROM {table(database, SESSIONS.name)} AS s FINAL "
        f"LEFT JOIN (SELECT attempt_id, failure FROM {table(database, CHARGE_ATTEMPTS.name)} FINAL) AS a "
        f"ON a.attempt_id = s.session_id "
        f"WHERE s.connector_id IS NOT NULL AND s.connector_id >= 1 "
        f"AND {started} >= fromUnixTimestamp64Milli({quarter.start_ms}, 'UTC') "
        f"AND {started} < fromUnixTimestamp64Milli({quarter.end_ms}, 'UTC') "
        f"ORDER BY s.charge_point_id, s.connector_id, {started}"
    )
    return [SessionFacts(str(r[0]), int(r[1]), str(r[2]), _int(r[3]), _int(r[4]), _float(r[5]), _float(r[6]),
                         str(r[7] or "")) for r in source.rows(sql)]


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Export:
    files: tuple[Path, ...]
    sessions: int
    ports: int
    outages: int

    def describe(self) -> str:
        return (f"EV-ChART export: {self.sessions} sessions (module 2), {self.ports} ports (module 3), "
                f"{self.outages} outages (module 4) in " + ", ".join(str(f) for f in self.files))


def export(source: RowSource, database: str, quarter: Quarter, out_dir: Path, stations: Stations,
           now_ms: int) -> Export:
    """Query, check that every port is in the stations file (before writing anything), write the three CSVs."""
    sessions = fetch_sessions(source, database, quarter.span)
    inputs: UptimeInputs = fetch_inputs(source, database, quarter.uptime_span)
    uptimes = port_uptimes(inputs, quarter.uptime_span, now_ms)
    stations.require({(s.charge_point_id, s.connector_id) for s in sessions}
                     | {u.port.key for u in uptimes}
                     | {(o.charge_point_id, o.connector_id) for o in inputs.outages})
    modules = {
        f"module2_sessions_{quarter.label}.csv": (MODULE2_COLUMNS, module2_rows(sessions, stations)),
        f"module3_uptime_{quarter.label}.csv": (MODULE3_COLUMNS, module3_rows(uptimes, stations)),
        f"module4_outages_{quarter.label}.csv": (MODULE4_COLUMNS, module4_rows(inputs.outages, quarter.span, now_ms,
                                                                               stations)),
    }
    files = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, (columns, rows) in modules.items():
            path = out_dir / name
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows(rows)
            files.append(path)
    except OSError as exc:
        raise ExportFailed(f"cannot write the EV-ChART files in {out_dir}: {exc.strerror or exc}") from None
    return Export(tuple(files), len(modules[f"module2_sessions_{quarter.label}.csv"][1]),
                  len(uptimes), len(modules[f"module4_outages_{quarter.label}.csv"][1]))
