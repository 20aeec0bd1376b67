"""The rows of EV-ChART modules 2 (sessions), 3 (uptime) and 4 (outages), from facts already read: pure.

Every cell is written so that EV-ChART's validator accepts it (its module definitions: types, lengths, decimal
precision and scale, ranges; module 2's complete-row rule; module 4's outage pair; the unique keys), whatever the
tables hold: free text is cut to its column's size and kept on one line, figures beyond a column's precision are
not written as if they fit, and two rows never share a key. KPIS.md (EV-ChART export) says what each column is.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kpi.ev_chart_codes import MAX_TEXT, PaymentSource, payment_of, session_error
from kpi.intervals import MS_PER_MINUTE, Span
from kpi.stations import StationPort, Stations
from kpi.uptime import OutageSpan, PortKey, PortUptime
from schemas.attempt_failure import transaction_failure
from schemas.records import EV_CHART_CODES, ClosedBy

STATION_COLUMNS = ("station_id", "port_id", "network_provider")
MODULE2_COLUMNS = STATION_COLUMNS + (
    "charger_id", "session_id", "connector_id", "session_start", "session_end", "session_error", "error_other",
    "energy_kwh", "power_kw", "payment_method", "payment_other")
MODULE3_COLUMNS = STATION_COLUMNS + (
    "uptime_reporting_start", "uptime_reporting_end", "uptime", "total_outage", "total_outage_excl")
MODULE4_COLUMNS = STATION_COLUMNS + (
    "outage_id", "outage_duration", "excluded_outage", "excluded_outage_reason", "excluded_outage_notes")

MAX_ID = 36  # session_id, connector_id: VARCHAR(36)
MAX_KW_KWH = 99_999.99  # energy_kwh, power_kw: DECIMAL(7,2)
MAX_MINUTES = 999_999.99  # total_outage, total_outage_excl, outage_duration: DECIMAL(8,2)
MAX_UPTIME = 100.0  # uptime: DECIMAL(5,2), a percentage
MIN_OUTAGE_MINUTES = 0.01  # outage_duration's smallest value
_LAST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: the last time a datetime cell holds
_FAULTED = "Faulted"

Row = list[str]


@dataclass(frozen=True)
class SessionFacts:
    """A ``sessions FINAL`` row as the export needs it (times in epoch milliseconds)."""

    charge_point_id: str
    connector_id: int
    session_id: str  # '' for rows written before sessions had one (migration 3)
    transaction_id: str
    start_ms: int  # the start the quarter is chosen by (kpi.ev_chart.START_MS): charger clock, else gateway's
    stopped_ms: int | None  # charger clock
    received_ms: int  # gateway clock of the frame that closed it
    duration_s: float | None
    clock_skew: bool
    energy_wh: float | None
    peak_power_w: float | None
    charging_s: float | None
    failure: str | None  # its charge attempt's; None when it has no attempt row (data older than the KPIs)
    stop_reason: str = ""
    stop_error_code: str = ""
    stop_status: str = ""
    closed_by: str = ClosedBy.STOP_TRANSACTION
    faulted_at_stop: bool = False
    id_token_type: str = ""

    @property
    def key(self) -> PortKey:
        return self.charge_point_id, self.connector_id


@dataclass
class Module2Counts:
    """What the rows of module 2 were written from, for the export's summary."""

    payments: Counter[PaymentSource] = field(default_factory=Counter)
    energy_unknown: int = 0  # energy_kwh written 0.00: the charger reported no usable reading
    power_from_average: int = 0  # power_kw is the session's average (no power sample)
    power_unknown: int = 0  # power_kw written 0.00: neither a peak nor an average is known


# --- cells ----------------------------------------------------------------------------------------------------


def text(value: str, max_length: int = MAX_TEXT) -> str:
    """Free text as one EV-ChART cell: every character that would end a line (EV-ChART splits the file with
    ``str.splitlines``) or is not printable becomes a space, then it is trimmed and cut to ``max_length``."""
    if not value:
        return ""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value)
    return value.strip()[:max_length].strip()


def timestamp(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC), the form EV-ChART's datetime check matches."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))  # a third of datetime.strftime's time


def timestamp_ms(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``: two outages of a port in one second still have two ids."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ms // 1000)) + f"{ms % 1000:03d}Z"


def decimal(value: float | None, limit: float) -> str | None:
    """``value`` with 2 decimals, or ``None`` when it is unknown, not a finite number, negative or beyond the
    column's ``limit``: it cannot be written as what it is."""
    if value is None or value != value or value < 0:
        return None
    rounded = round(value, 2)
    return None if rounded > limit else f"{rounded:.2f}"


def station_columns(port: StationPort) -> Row:
    return [text(port.station_id, MAX_ID), text(port.port_id, MAX_ID), text(port.network_provider, 30)]


def no_data_row(port: StationPort, columns: Sequence[str]) -> Row:
    """EV-ChART's "no data" row: the port named, every other cell empty (the validator takes it as the port
    having nothing to report this quarter: ``validate_m2.is_valid_empty_row``, ``validate_empty_outage``)."""
    return station_columns(port) + [""] * (len(columns) - len(STATION_COLUMNS))


# --- module 2 -------------------------------------------------------------------------------------------------


def session_end_ms(s: SessionFacts) -> int:
    """The charger's stop time when its clock is trusted and it is not before the start; else the start plus the
    session's duration (the gateway's for a skewed clock: the row's ``duration_s``); else its close (gateway);
    never before the start, nor past what a datetime holds."""
    start = s.start_ms
    if s.stopped_ms is not None and not s.clock_skew and start <= s.stopped_ms <= _LAST_MS:
        return s.stopped_ms
    if s.duration_s is not None and 0 <= s.duration_s <= (_LAST_MS - start) / 1000:
        return start + round(s.duration_s * 1000)
    return s.received_ms if start <= s.received_ms <= _LAST_MS else start


def failure_of(s: SessionFacts) -> str:
    """The charge attempt's ``failure``; for a session without an attempt row, the same rule on its own row
    (:func:`schemas.attempt_failure.transaction_failure`, delivered = energy or time spent charging)."""
    if s.failure is not None:
        return s.failure
    delivered = (s.energy_wh or 0) > 0 or (s.charging_s or 0) > 0
    return transaction_failure(delivered=delivered, into_faulted=s.stop_status == _FAULTED or s.faulted_at_stop,
                               stopped=s.closed_by == ClosedBy.STOP_TRANSACTION, reason=s.stop_reason)


def ev_session_id(s: SessionFacts) -> str:
    """``session_id``: the pipeline's; for a row older than it, the transaction id; either as it is when it fits
    EV-ChART's 36 characters on one clean line, else ``tx-`` and a digest of it."""
    own = s.session_id or s.transaction_id
    if own and len(own) <= MAX_ID and text(own, MAX_ID) == own:
        return own
    return "tx-" + hashlib.sha256(f"{s.charge_point_id}|{s.transaction_id}|{s.session_id}".encode()).hexdigest()[:16]


def _energy_and_power(s: SessionFacts, counts: Module2Counts) -> tuple[str, str]:
    energy = decimal(None if s.energy_wh is None else s.energy_wh / 1000, MAX_KW_KWH)
    if energy is None:
        counts.energy_unknown += 1
    power = decimal(None if s.peak_power_w is None else s.peak_power_w / 1000, MAX_KW_KWH)
    if power is None and energy is not None and s.energy_wh is not None:
        hours = next((h for t in (s.charging_s, s.duration_s) if t is not None and (h := t / 3600) > 0), None)
        if s.energy_wh == 0:
            power = "0.00"
        else:  # no power sample: its average over the time it charged (a lower bound of its peak)
            power = decimal(None if hours is None else s.energy_wh / 1000 / hours, MAX_KW_KWH)
            counts.power_from_average += power is not None
    if power is None:
        counts.power_unknown += 1
    return energy or "0.00", power or "0.00"


def module2_rows(sessions: Iterable[SessionFacts], stations: Stations) -> tuple[list[Row], Module2Counts]:
    """One complete row per session (``validate_m2.validate_empty_session``: session_id, session_start,
    session_end, session_error, energy_kwh, power_kw and payment_method all filled)."""
    counts = Module2Counts()
    rows: list[Row] = []
    used: set[tuple[PortKey, str]] = set()  # (port, session_id): a port is one EV-ChART port (kpi.stations)
    ports: dict[PortKey, tuple[StationPort, Row]] = {}
    for s in sorted(sessions, key=lambda s: (s.charge_point_id, s.connector_id, s.start_ms, s.session_id,
                                             s.transaction_id)):
        key = s.key
        if key not in ports:
            port = stations.ports[key]
            ports[key] = port, station_columns(port) + [text(port.charger_id, MAX_ID)]
        port, cells = ports[key]
        session_id = ev_session_id(s)
        if (key, session_id) in used:  # a digest when two rows of a port would share an id
            session_id = "dup-" + hashlib.sha256(
                f"{s.charge_point_id}|{s.transaction_id}|{s.session_id}|{s.start_ms}|{len(used)}".encode()).hexdigest()[:16]
        used.add((key, session_id))
        error = session_error(failure_of(s), s.stop_reason, s.stop_error_code)
        payment, source = payment_of(s.id_token_type, port.default_payment)
        counts.payments[source] += 1
        energy, power = _energy_and_power(s, counts)
        # The codes are this module's vocabulary (already EV-ChART cells); only the descriptions are free text.
        rows.append(cells + [session_id, str(s.connector_id), timestamp(s.start_ms), timestamp(session_end_ms(s)),
                             error.code, text(error.other), energy, power, payment.method.value, text(payment.other)])
    return rows, counts


# --- module 3 -------------------------------------------------------------------------------------------------


def module3_rows(uptimes: Iterable[PortUptime], stations: Stations) -> list[Row]:
    """One row per port: its part of the trailing 12 months, uptime % and outage minutes (``report uptime``'s
    figures, exact in milliseconds, rounded to EV-ChART's 2 decimals)."""
    rows = []
    for u in uptimes:
        f = u.figures
        pct = min(MAX_UPTIME, max(0.0, f.uptime_pct if f.uptime_pct is not None else MAX_UPTIME))
        rows.append(station_columns(stations.ports[u.port.key]) + [
            timestamp(u.span.start_ms), timestamp(u.span.end_ms), f"{round(pct, 2):.2f}",
            _minutes(f.outage_ms), _minutes(f.excluded_ms)])
    return rows


def _minutes(ms: int) -> str:
    return decimal(ms / MS_PER_MINUTE, MAX_MINUTES) or f"{MAX_MINUTES:.2f}"  # past 694 days: the column's most


# --- module 4 -------------------------------------------------------------------------------------------------


def module4_rows(outages: Iterable[OutageSpan], quarter: Span, now_ms: int, stations: Stations) -> list[Row]:
    """One row per outage that began in ``quarter`` (an open one lasts until the quarter's end or ``now_ms``).
    ``outage_id`` is its start (EV-ChART's definition), to the second, to the millisecond when another outage of
    the port began in the same second; two rows of a port that began at the same millisecond are one outage
    (the longest). ``excluded_outage*`` from the exclusion that names it (``port_outages_with_exclusions``, KPIS.md
    Exclusions); a reason EV-ChART does not know (a row typed in by hand) excludes nothing, as in the uptime."""
    chosen: dict[tuple[PortKey, int], tuple[OutageSpan, int]] = {}
    for o in outages:
        if not quarter.start_ms <= o.started_ms < quarter.end_ms:
            continue
        end = o.ended_ms if o.ended_ms is not None else min(quarter.end_ms, now_ms)
        if end <= o.started_ms:
            continue
        key = ((o.charge_point_id, o.connector_id), o.started_ms)
        if key not in chosen or end > chosen[key][1]:
            chosen[key] = (o, end)
    seconds = Counter((port, start // 1000) for port, start in chosen)
    rows = []
    for (port, start), (o, end) in sorted(chosen.items()):
        code = _REASON_CODES.get(o.excluded_reason)
        minutes = max(MIN_OUTAGE_MINUTES, round((end - start) / MS_PER_MINUTE, 2))  # EV-ChART's smallest: 0.01
        rows.append(station_columns(stations.ports[port]) + [
            timestamp_ms(start) if seconds[(port, start // 1000)] > 1 else timestamp(start),
            f"{min(minutes, MAX_MINUTES):.2f}", "False" if code is None else "True",
            "" if code is None else str(code), "" if code is None else text(o.excluded_note)])
    return rows


_REASON_CODES = {reason.value: code for reason, code in EV_CHART_CODES.items()}
