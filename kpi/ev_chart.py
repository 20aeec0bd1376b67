"""``ocpp-pipeline report ev-chart``: the quarterly NEVI submission's modules 2 (charging sessions),
3 (uptime) and 4 (outages) as CSV, one file per module, that EV-ChART's validator accepts.

Columns, order and types follow EV-ChART's published module definitions (the Joint Office's open-source
EV-ChART: ``module_definitions/module2.json`` ... ``module4.json`` and the module 4 exclusion columns of its
central config); every module begins with ``station_id``, ``port_id``, ``network_provider`` (from the
operator's stations file, :mod:`kpi.stations`). The rows are :mod:`kpi.ev_chart_rows` (pure); the values of
``payment_method`` and ``session_error`` are :mod:`kpi.ev_chart_codes`. KPIS.md (EV-ChART export) is the
reference:

- Module 2: one row per session that started in the quarter (:data:`START_MS`), with a known connector.
- Module 3: one row per port, the trailing 12 months ending with the quarter (NEVI computes uptime over
  12 months), from the port's first report if later; the same figures as ``report uptime``.
- Module 4: one row per outage that began in the quarter, excluded by the exclusion that names it
  (``port_outages_with_exclusions``, KPIS.md Exclusions).

The sessions are read in pages that fit the read path's result limit (``OCPP_WORKER_SQL_MAX_RESULT_ROWS``).

EV-ChART refuses a module file without rows: a module with nothing to report this quarter gets one "no data"
row per port (the port named, every other cell empty).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kpi.errors import ExportFailed
from kpi.ev_chart_codes import NOT_REPORTED, PaymentSource
from kpi.ev_chart_rows import (
    MODULE2_COLUMNS,
    MODULE3_COLUMNS,
    MODULE4_COLUMNS,
    Module2Counts,
    Row,
    SessionFacts,
    module2_rows,
    module3_rows,
    module4_rows,
    no_data_row,
)
from kpi.intervals import Span
from kpi.period import day_start_ms, quarter_dates, years_before
from kpi.source import RowSource, string, table
from kpi.stations import Stations
from kpi.uptime import Port, PortUptime, UptimeInputs, fetch_inputs, port_uptimes
from schemas.flags import Flag
from schemas.tables import CHARGE_ATTEMPTS, SESSIONS

__all__ = ["MODULE2_COLUMNS", "MODULE3_COLUMNS", "MODULE4_COLUMNS", "Export", "Quarter", "export"]

_SKEWED = f"has(flags, {string(Flag.CLOCK_SKEW)})"
START_MS = (
    f"multiIf(started_at IS NOT NULL AND NOT {_SKEWED}, toUnixTimestamp64Milli(assumeNotNull(started_at)), "
    f"duration_s IS NOT NULL AND duration_s >= 0, "
    f"toUnixTimestamp64Milli(received_at) - toInt64(round(assumeNotNull(duration_s) * 1000)), "
    f"toUnixTimestamp64Milli(received_at))"
)
"""A session's start for EV-ChART (``session_start``, and the quarter it belongs to): the charger's start time;
when the charger's clock was off (``clock_skew``) the gateway's, its close less its gateway-clock duration; a
session whose start was never seen, its close. Epoch milliseconds, over ``sessions``' columns."""


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
class ExportFacts:
    """What the three modules are written from."""

    sessions: list[SessionFacts]  # started in the quarter, connector known
    uptime: UptimeInputs  # over the trailing 12 months
    sessions_without_port: int = 0  # started in the quarter, connector unknown: EV-ChART needs a port_id


@dataclass(frozen=True)
class Module:
    name: str
    columns: tuple[str, ...]
    rows: list[Row]
    no_data_rows: int  # of ``rows``


@dataclass(frozen=True)
class Modules:
    sessions: Module
    uptime: Module
    outages: Module
    counts: Module2Counts

    @property
    def all(self) -> tuple[Module, Module, Module]:
        return self.sessions, self.uptime, self.outages


def build_modules(facts: ExportFacts, quarter: Quarter, stations: Stations, now_ms: int) -> Modules:
    """The three modules' rows (pure). :class:`ExportFailed` when no port has anything to report: EV-ChART
    refuses empty module files, and a module 3 row needs a port's figures."""
    uptimes = port_uptimes(_with_session_ports(facts), quarter.uptime_span, now_ms)
    stations.require({s.key for s in facts.sessions} | {u.port.key for u in uptimes}
                     | {(o.charge_point_id, o.connector_id) for o in facts.uptime.outages})
    if not uptimes:
        raise ExportFailed(f"nothing to report for {quarter.label}: no port reported in the 12 months ending with it "
                           f"(EV-ChART refuses module files without rows)")
    sessions, counts = module2_rows(facts.sessions, stations)
    outages = module4_rows(facts.uptime.outages, quarter.span, now_ms, stations)
    return Modules(
        _module(f"module2_sessions_{quarter.label}.csv", MODULE2_COLUMNS, sessions, uptimes, stations),
        _module(f"module3_uptime_{quarter.label}.csv", MODULE3_COLUMNS, module3_rows(uptimes, stations), uptimes,
                stations),
        _module(f"module4_outages_{quarter.label}.csv", MODULE4_COLUMNS, outages, uptimes, stations),
        counts,
    )


def _with_session_ports(facts: ExportFacts) -> UptimeInputs:
    """The uptime inputs plus the ports known only from their sessions (a charger that never reported their
    status): each has a module 3 row, from its first session of the quarter. A port with a status or an outage
    keeps ``report uptime``'s figures."""
    known = {p.key for p in facts.uptime.ports}
    return UptimeInputs(facts.uptime.ports + [Port(s.charge_point_id, s.connector_id, s.start_ms)
                                              for s in facts.sessions if s.key not in known],
                        facts.uptime.outages, facts.uptime.exclusions)


def _module(name: str, columns: tuple[str, ...], rows: list[Row], uptimes: Sequence[PortUptime],
            stations: Stations) -> Module:
    if rows:
        return Module(name, columns, rows, 0)
    return Module(name, columns, [no_data_row(stations.ports[u.port.key], columns) for u in uptimes], len(uptimes))


def write_modules(modules: Modules, out_dir: Path) -> tuple[Path, ...]:
    """The CSV files (UTF-8, no byte order mark, ``\\n`` line ends, quoted only where a cell needs it)."""
    files = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for module in modules.all:
            path = out_dir / module.name
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(module.columns)
                writer.writerows(module.rows)
            files.append(path)
    except OSError as exc:
        raise ExportFailed(f"cannot write the EV-ChART files in {out_dir}: {exc.strerror or exc}") from None
    return tuple(files)


PAGE_ROWS = 100_000  # the read path's default OCPP_WORKER_SQL_MAX_RESULT_ROWS
_HOUR_MS = 3_600_000


def fetch_facts(source: RowSource, database: str, quarter: Quarter, page_rows: int = PAGE_ROWS) -> ExportFacts:
    """The quarter's sessions, in pages of at most ``page_rows`` rows (the read path refuses larger results), then
    the trailing year's ports, outages and exclusions (:func:`kpi.uptime.fetch_inputs`).

    A first query counts the sessions of each hour of the quarter; consecutive hours make a page while their sessions
    fit ``page_rows`` (an hour with more is a page of its own: the read path says so if it is too many)."""
    span = quarter.span
    with_port = "connector_id IS NOT NULL AND connector_id >= 1"
    sessions = table(database, SESSIONS.name)
    hours = source.rows(
        f"SELECT intDiv({START_MS} - {span.start_ms}, {_HOUR_MS}) AS hour, countIf({with_port}), "
        f"countIf(NOT ({with_port})) FROM {sessions} FINAL WHERE {_between(span.start_ms, span.end_ms)} "
        f"GROUP BY hour ORDER BY hour")
    facts: list[SessionFacts] = []
    for first, last in _pages([(int(h), int(n)) for h, n, _ in hours if int(n)], page_rows):
        page = Span(span.start_ms + first * _HOUR_MS, min(span.end_ms, span.start_ms + (last + 1) * _HOUR_MS))
        facts += _session_page(source, database, page, with_port)
    return ExportFacts(facts, fetch_inputs(source, database, quarter.uptime_span), sum(int(r[2]) for r in hours))


def _between(start_ms: int, end_ms: int) -> str:
    return f"{START_MS} >= {start_ms} AND {START_MS} < {end_ms}"


def _pages(counts: list[tuple[int, int]], page_rows: int) -> list[tuple[int, int]]:
    """``(first hour, last hour)`` of consecutive hours whose counts add up to at most ``page_rows`` (or one hour)."""
    pages: list[tuple[int, int]] = []
    total = 0
    for hour, n in counts:
        if pages and total + n <= page_rows:
            pages[-1] = (pages[-1][0], hour)
            total += n
        else:
            pages.append((hour, hour))
            total = n
    return pages


def _session_page(source: RowSource, database: str, page: Span, with_port: str) -> list[SessionFacts]:
    sessions = table(database, SESSIONS.name)
    in_page = _between(page.start_ms, page.end_ms)
    sql = (
        f"SELECT charge_point_id, toUInt32(assumeNotNull(connector_id)), session_id, transaction_id, {START_MS}, "
        f"if(stopped_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(stopped_at))), "
        f"toUnixTimestamp64Milli(received_at), duration_s, {_SKEWED}, energy_wh, peak_power_w, charging_s, "
        f"a.attempt_id != '', a.failure, stop_reason, stop_error_code, stop_status, closed_by, "
        f"has(flags, {string(Flag.FAULTED_AT_STOP)}), id_token_type "
        f"FROM {sessions} AS s FINAL "
        # A transaction's attempt is keyed by its charger and session id (charge_attempts' key); rows older than
        # session ids have no attempt. A session id is unique per charger only (SESSIONS.md): two chargers that
        # start in the same gateway millisecond can get the same 1.6 transactionId, and so the same session id.
        f"LEFT JOIN (SELECT charge_point_id AS attempt_charge_point_id, attempt_id, failure "
        f"FROM {table(database, CHARGE_ATTEMPTS.name)} FINAL WHERE attempt_id != '' AND (charge_point_id, attempt_id) "
        f"IN (SELECT charge_point_id, session_id FROM {sessions} WHERE {in_page})) AS a "
        f"ON a.attempt_charge_point_id = s.charge_point_id AND a.attempt_id = s.session_id "
        f"WHERE {with_port} AND {in_page} ORDER BY charge_point_id, connector_id, {START_MS}, session_id"
    )
    return [SessionFacts(
        charge_point_id=str(r[0]), connector_id=int(r[1]), session_id=str(r[2]), transaction_id=str(r[3]),
        start_ms=int(r[4]), stopped_ms=_int(r[5]), received_ms=int(r[6]), duration_s=_float(r[7]),
        clock_skew=bool(r[8]), energy_wh=_float(r[9]), peak_power_w=_float(r[10]), charging_s=_float(r[11]),
        failure=str(r[13] or "") if r[12] else None, stop_reason=str(r[14]), stop_error_code=str(r[15]),
        stop_status=str(r[16]), closed_by=str(r[17]), faulted_at_stop=bool(r[18]), id_token_type=str(r[19]),
    ) for r in source.rows(sql)]


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
    counts: Module2Counts
    no_data_rows: tuple[int, int] = (0, 0)  # modules 2 and 4
    sessions_without_port: int = 0

    def describe(self) -> str:
        """The first line says what was written; the next ones what the operator may want to look at."""
        lines = [f"EV-ChART export: {self.sessions} sessions (module 2), {self.ports} ports (module 3), "
                 f"{self.outages} outages (module 4) in " + ", ".join(str(f) for f in self.files)]
        for module, n in zip((2, 4), self.no_data_rows):
            if n:
                lines.append(f"  module {module}: nothing this quarter, one no-data row per port ({n})")
        payments = self.counts.payments
        if payments[PaymentSource.STATION_DEFAULT] or payments[PaymentSource.NOT_REPORTED]:
            lines.append(f"  payment_method: {payments[PaymentSource.TOKEN]} from the driver's token type, "
                         f"{payments[PaymentSource.STATION_DEFAULT]} the stations file's default_payment_method, "
                         f"{payments[PaymentSource.NOT_REPORTED]} '{NOT_REPORTED.method}' ({NOT_REPORTED.other})")
        if self.counts.energy_unknown:
            lines.append(f"  energy_kwh: {self.counts.energy_unknown} sessions without a usable meter reading are "
                         f"written as 0.00 (sessions.energy_wh NULL)")
        if self.counts.power_from_average:
            lines.append(f"  power_kw: {self.counts.power_from_average} sessions without a power sample have their "
                         f"average power (energy / charging time)")
        if self.counts.power_unknown:
            lines.append(f"  power_kw: {self.counts.power_unknown} sessions with neither are written as 0.00")
        if self.sessions_without_port:
            lines.append(f"  {self.sessions_without_port} sessions of the quarter are left out: their connector is "
                         f"unknown (EV-ChART needs a port_id)")
        return "\n".join(lines)


def export(source: RowSource, database: str, quarter: Quarter, out_dir: Path, stations: Stations,
           now_ms: int, page_rows: int = PAGE_ROWS) -> Export:
    """Query (no result over ``page_rows`` rows), check that every port is in the stations file (before writing
    anything), write the three CSVs."""
    facts = fetch_facts(source, database, quarter, page_rows)
    modules = build_modules(facts, quarter, stations, now_ms)
    files = write_modules(modules, out_dir)
    return Export(files, len(modules.sessions.rows) - modules.sessions.no_data_rows, len(modules.uptime.rows),
                  len(modules.outages.rows) - modules.outages.no_data_rows, modules.counts,
                  (modules.sessions.no_data_rows, modules.outages.no_data_rows), facts.sessions_without_port)
