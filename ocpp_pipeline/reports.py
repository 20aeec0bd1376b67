"""``ocpp-pipeline outages exclude`` and ``ocpp-pipeline report uptime|success|ev-chart``: flags, and the
shell between them and :mod:`kpi` (settings in, clients opened and closed, rows printed).

Reports read through ``sql``'s read path (:mod:`infra.read_path`). Recording an exclusion writes nothing to
ClickHouse: it checks the exclusion against the data through the same read path (unless ``--force``) and sends it
as an event to ``ocpp.exclusions.v1``, which the worker stores; so it works while the worker runs, embedded or not.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
from datetime import datetime, timezone
from pathlib import Path

from infra.settings import ClickHouseSettings, KafkaSettings, SqlSettings
from kpi.errors import InvalidExclusion
from ocpp_pipeline.output import FORMATS, Rows, print_rows
from schemas.base import datetime_to_ms
from schemas.records import ExclusionReason

_TS_HELP = "ISO 8601 time, UTC when it names no zone (2026-07-01T08:00, 2026-07-01T08:00:00+02:00, 2026-07-01)"


def add_outages_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    outages = sub.add_parser("outages", help="port outages: record operator exclusions (EV-ChART reasons)")
    actions = outages.add_subparsers(dest="action", required=True, metavar="ACTION")
    exclude = actions.add_parser("exclude", help="outage time of a port (or every port) inside a window does not "
                                                 "count against uptime")
    exclude.add_argument("--charge-point", required=True, metavar="ID")
    exclude.add_argument("--connector", type=int, default=0, metavar="N", help="the port (default: every port)")
    exclude.add_argument("--from", dest="from_ts", required=True, metavar="TS", help=_TS_HELP)
    exclude.add_argument("--to", dest="to_ts", required=True, metavar="TS", help="end of the window (exclusive)")
    exclude.add_argument("--reason", required=True, choices=[r.value for r in ExclusionReason])
    exclude.add_argument("--note", default="", help="free text kept with the exclusion (EV-ChART notes)")
    exclude.add_argument("--by", dest="recorded_by", metavar="NAME", help="who records it (default: the OS user)")
    exclude.add_argument("--reference", default="", metavar="TEXT",
                         help="the operator's reference: a ticket, a utility notice, the evidence")
    exclude.add_argument("--force", action="store_true",
                         help="skip the bounds checks (a charge point and port the pipeline has seen, a window "
                              "between its first frame and now); the exclusion is marked forced")
    return outages


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    report = sub.add_parser("report", help="reliability reports: port uptime (NEVI), charge success, EV-ChART export")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    uptime = kinds.add_parser("uptime", help="per port: period, outage and excluded minutes, uptime %%")
    success = kinds.add_parser("success", help="attempts, deliveries, ok stops, success rates, start delay")
    for parser in (uptime, success):
        parser.add_argument("--from", dest="from_date", required=True, metavar="DATE", help="first day (UTC)")
        parser.add_argument("--to", dest="to_date", required=True, metavar="DATE", help="day after the last (exclusive)")
        parser.add_argument("--format", choices=FORMATS, default="table")
    success.add_argument("--by", choices=["port", "charger", "fleet"], default="port")
    ev_chart = kinds.add_parser("ev-chart", help="EV-ChART modules 2, 3 and 4 of a quarter as CSV files")
    ev_chart.add_argument("--quarter", required=True, help="e.g. 2026Q3")
    ev_chart.add_argument("--out", required=True, type=Path, metavar="DIR")
    ev_chart.add_argument("--stations", type=Path, metavar="FILE",
                          help="CSV mapping ports to EV-ChART station_id / port_id / network_provider, and each "
                               "port's default_payment_method (see README)")
    return report


def parse_timestamp(text: str, flag: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidExclusion(f"{flag} {text!r} is not an ISO 8601 time ({_TS_HELP})") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def record_exclusion_from_args(args: argparse.Namespace, ch: ClickHouseSettings, sql: SqlSettings,
                               kafka: KafkaSettings) -> str:
    from kpi.exclusions import check_bounds, fetch_lifetime, new_exclusion
    from kpi.recorder import publish
    from kpi.source import ReadPathSource

    now = datetime.now(timezone.utc)
    exclusion = new_exclusion(args.charge_point, args.connector, parse_timestamp(args.from_ts, "--from"),
                              parse_timestamp(args.to_ts, "--to"), args.reason, args.note, recorded_at=now,
                              recorded_by=args.recorded_by or _os_user(), reference=args.reference, forced=args.force)
    if not args.force:
        lifetime = fetch_lifetime(ReadPathSource(ch, sql), ch.database, exclusion.charge_point_id, exclusion.connector_id)
        check_bounds(exclusion, lifetime, datetime_to_ms(now))
    recorded = asyncio.run(publish(kafka, exclusion))
    return recorded.describe() + "; the worker stores it in outage_exclusions"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the author must be given
        return ""


def run_report(args: argparse.Namespace, ch: ClickHouseSettings, sql: SqlSettings) -> None:
    from kpi.period import parse_date, period_of_dates
    from kpi.source import ReadPathSource

    source = ReadPathSource(ch, sql)
    now_ms = int(time.time() * 1000)
    if args.report == "ev-chart":
        from kpi.ev_chart import Quarter, export
        from kpi.stations import load_stations

        quarter = Quarter.parse(args.quarter)
        stations = load_stations(args.stations)
        print(export(source, ch.database, quarter, args.out, stations, now_ms, page_rows=sql.max_result_rows).describe())
        return
    period = period_of_dates(parse_date(args.from_date, "--from"), parse_date(args.to_date, "--to"))
    if args.report == "uptime":
        from kpi.uptime import COLUMNS, row_values, uptime_report

        print_rows(Rows(COLUMNS, row_values(uptime_report(source, ch.database, period, now_ms))), args.format)
    else:
        from kpi.success import Grouping, columns, success_report

        grouping = Grouping(args.by)
        rows = success_report(source, ch.database, period, grouping)
        names = columns(grouping)
        print_rows(Rows(names, [list(r.as_dict(grouping).values()) for r in rows]), args.format)
