"""The EV-ChART export: quarters, the stations file, and the three modules written from a database."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from kpi.errors import InvalidPeriod, StationsFileError
from kpi.ev_chart import MODULE2_COLUMNS, MODULE3_COLUMNS, MODULE4_COLUMNS, Quarter, export
from kpi.source import ClientSource
from kpi.stations import load_stations, parse_stations
from schemas.records import EV_CHART_CODES, ExclusionReason
from tests.kpi.helpers import (
    attempt, insert_attempts, insert_exclusions, insert_outages, insert_sessions, insert_status, ms, outage, session,
)
from tests.kpi.test_exclusions import excl

# EV-ChART's module definitions (US-JOET/ev-chart-open-source, module_definitions/module{2,3,4}.json and the
# module 4 exclusion columns), after the station_id / port_id / network_provider every upload begins with.
EV_CHART_FIELDS = {
    2: ["charger_id", "session_id", "connector_id", "session_start", "session_end", "session_error", "error_other",
        "energy_kwh", "power_kw", "payment_method", "payment_other"],
    3: ["uptime_reporting_start", "uptime_reporting_end", "uptime", "total_outage", "total_outage_excl"],
    4: ["outage_id", "outage_duration", "excluded_outage", "excluded_outage_reason", "excluded_outage_notes"],
}

STATIONS = """charge_point_id,connector_id,station_id,port_id,network_provider
CP-1,1,ST-1,ST-1-A,acme_network
CP-1,2,ST-1,ST-1-B,acme_network
"""


@pytest.mark.parametrize("text, start, end, label", [
    ("2026Q3", date(2026, 7, 1), date(2026, 10, 1), "2026Q3"),
    ("2026q4", date(2026, 10, 1), date(2027, 1, 1), "2026Q4"),
    ("2025-Q1", date(2025, 1, 1), date(2025, 4, 1), "2025Q1"),
])
def test_quarters(text: str, start: date, end: date, label: str) -> None:
    q = Quarter.parse(text)
    assert (q.start, q.end, q.label) == (start, end, label)


@pytest.mark.parametrize("text", ["2026Q5", "Q3", "2026-07", ""])
def test_bad_quarters_are_refused(text: str) -> None:
    with pytest.raises(InvalidPeriod, match="2026Q3"):
        Quarter.parse(text)


def test_module_columns_are_ev_chart_s() -> None:
    for module, columns in ((2, MODULE2_COLUMNS), (3, MODULE3_COLUMNS), (4, MODULE4_COLUMNS)):
        assert list(columns) == ["station_id", "port_id", "network_provider", *EV_CHART_FIELDS[module]]


def test_reason_codes_cover_every_reason_once() -> None:
    assert sorted(EV_CHART_CODES.values()) == [1, 2, 3, 4, 5, 6] and set(EV_CHART_CODES) == set(ExclusionReason)


@pytest.mark.parametrize("text, message", [
    ("charge_point_id,connector_id,station_id\nCP-1,1,S", "missing columns port_id, network_provider"),
    (STATIONS + "CP-2,1,,P,net\n", "line 4: empty station_id"),
    (STATIONS + "CP-2,x,S,P,net\n", "line 4: connector_id 'x' is not a number"),
    (STATIONS + "CP-2,0,S,P,net\n", "line 4: connector_id 0"),
    (STATIONS + "CP-1,1,S,P,net\n", "line 4: CP-1 connector 1 is listed twice"),
    (STATIONS + f"CP-2,1,{'S' * 37},P,net\n", "station_id longer than 36"),
])
def test_bad_stations_files_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(StationsFileError, match=message):
        parse_stations(text)


def test_no_stations_file_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(StationsFileError, match="station_id, port_id and network_provider.*--stations"):
        load_stations(None)
    with pytest.raises(StationsFileError, match="cannot read"):
        load_stations(tmp_path / "absent.csv")
    (tmp_path / "bom.csv").write_text("\ufeff" + STATIONS, encoding="utf-8")  # saved by a spreadsheet
    assert len(load_stations(tmp_path / "bom.csv").ports) == 2


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_writes_the_three_modules(chdb_client, database: str, tmp_path: Path) -> None:
    insert_status(chdb_client, database, "CP-1", 1, -60 * 24 * 30)  # seen a month before the quarter
    insert_status(chdb_client, database, "CP-1", 2, 60)
    insert_sessions(chdb_client, database, [
        session("CP-1", 1, 100, 160, 21_345.6, "s1"),
        session("CP-1", None, 100, 160, 1000.0, "s2"),  # no port known: left out
        session("CP-1", 2, -10, 50, 5000.0, "s3"),  # started before the quarter
    ])
    insert_attempts(chdb_client, database, [attempt("CP-1", 1, 99, delivered=True, ended_ok=False, attempt_id="s1",
                                                    failure="stop_emergency_stop")])
    insert_outages(chdb_client, database, [
        outage("CP-1", 1, 200, 230, outage_id="o1"),
        outage("CP-1", 2, 300, None, outage_id="o2"),  # still open
        outage("CP-1", 1, -500, -400, outage_id="o0"),  # before the quarter: module 3 only
    ])
    insert_exclusions(chdb_client, database, [excl(1, 220, 240, ExclusionReason.VANDALISM, note="cable cut")])
    quarter = Quarter.parse("2026Q3")
    now = ms(1300)
    done = export(ClientSource(chdb_client), database, quarter, tmp_path / "out", parse_stations(STATIONS), now)
    assert (done.sessions, done.ports, done.outages) == (1, 2, 2)
    m2, m3, m4 = (read(p) for p in done.files)
    assert [p.name for p in done.files] == ["module2_sessions_2026Q3.csv", "module3_uptime_2026Q3.csv",
                                            "module4_outages_2026Q3.csv"]
    assert m2 == [{"station_id": "ST-1", "port_id": "ST-1-A", "network_provider": "acme_network", "charger_id": "CP-1",
                   "session_id": "s1", "connector_id": "1", "session_start": "2026-07-01T01:40:00Z",
                   "session_end": "2026-07-01T02:40:00Z", "session_error": "stop_emergency_stop", "error_other": "",
                   "energy_kwh": "21.35", "power_kw": "7.40", "payment_method": "", "payment_other": ""}]
    assert [(r["port_id"], r["uptime_reporting_start"], r["uptime_reporting_end"], r["total_outage"],
             r["total_outage_excl"]) for r in m3] == [
        ("ST-1-A", "2026-06-01T00:00:00Z", "2026-07-01T21:40:00Z", "130.00", "10.00"),
        ("ST-1-B", "2026-07-01T01:00:00Z", "2026-07-01T21:40:00Z", "1000.00", "0.00")]
    assert m3[0]["uptime"] == f"{(44380 - 120) / 44380 * 100:.2f}"  # 30 d 21 h 40 min, 120 min not excluded
    assert m4 == [
        {"station_id": "ST-1", "port_id": "ST-1-A", "network_provider": "acme_network",
         "outage_id": "2026-07-01T03:20:00Z", "outage_duration": "30.00", "excluded_outage": "True",
         "excluded_outage_reason": "4", "excluded_outage_notes": "cable cut"},
        {"station_id": "ST-1", "port_id": "ST-1-B", "network_provider": "acme_network",
         "outage_id": "2026-07-01T05:00:00Z", "outage_duration": "1000.00", "excluded_outage": "False",
         "excluded_outage_reason": "", "excluded_outage_notes": ""}]


def test_a_port_missing_from_the_stations_file_stops_the_export_before_writing(chdb_client, database: str,
                                                                                tmp_path: Path) -> None:
    insert_status(chdb_client, database, "CP-1", 1, 0)
    insert_status(chdb_client, database, "CP-9", 3, 0)
    with pytest.raises(StationsFileError, match="1 port in the data: CP-9 connector 3"):
        export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path / "out",
               parse_stations(STATIONS), ms(100))
    assert not (tmp_path / "out").exists()


def test_an_unwritable_folder_is_a_clear_error(chdb_client, database: str, tmp_path: Path) -> None:
    from kpi.errors import ExportFailed

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ExportFailed, match="cannot write the EV-ChART files"):
        export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path / "file" / "out",
               parse_stations(STATIONS), ms(100))
