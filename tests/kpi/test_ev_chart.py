"""The EV-ChART export: quarters, the stations file (with its default payment method), the coded values of
module 2 (payment_method from the token type, session_error from the charge attempt), the cells, and the three
modules written from a database. That every file validates is tests/kpi/test_ev_chart_validator.py."""

from __future__ import annotations

import csv
import re
import uuid
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import clickhouse
from kpi.errors import ExportFailed, InvalidPeriod, StationsFileError
from kpi.ev_chart import MODULE2_COLUMNS, MODULE3_COLUMNS, MODULE4_COLUMNS, PAGE_ROWS, Quarter, export
from kpi.ev_chart_codes import (
    NO_ERROR,
    NOT_REPORTED,
    SESSION_ERRORS,
    TOKEN_PAYMENTS,
    Payment,
    PaymentMethod,
    PaymentSource,
    SessionError,
    payment_of,
    session_error,
)
from kpi.ev_chart_rows import (
    Module2Counts, SessionFacts, _energy_and_power, decimal, ev_session_id, failure_of, session_end_ms, text,
)
from kpi.source import ClientSource
from kpi.stations import load_stations, parse_stations
from schemas.records import EV_CHART_CODES, ChargeAttempt, ExclusionReason, Session
from schemas.tables import CHARGE_ATTEMPTS, SESSIONS
from tests.kpi.helpers import (
    attempt, insert_attempts, insert_exclusions, insert_outages, insert_sessions, insert_status, ms, outage, session,
)
from tests.kpi.test_exclusions import excl

KPIS_MD = Path(__file__).resolve().parents[2] / "KPIS.md"

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
CARD = Payment(PaymentMethod.CREDIT_CARD)


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


# --- the one table of excluded-outage reason codes, and KPIS.md's copy of it ------------------------------------


def kpis_table(first_column: str) -> list[list[str]]:
    """The rows of the KPIS.md table whose header starts with ``first_column`` (cells without backquotes)."""
    lines = KPIS_MD.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows


def test_reason_codes_follow_680_116_b_and_kpis_md_says_the_same() -> None:
    """23 CFR 680.116(b) lists the excluded outages: utility interruption, vehicle, scheduled maintenance,
    vandalism, natural disaster, outside operating hours; the codes are that order."""
    assert [r.value for r in sorted(EV_CHART_CODES, key=EV_CHART_CODES.__getitem__)] == [
        "utility_interruption", "vehicle_caused", "scheduled_maintenance", "vandalism", "natural_disaster",
        "outside_operating_hours"]
    assert sorted(EV_CHART_CODES.values()) == [1, 2, 3, 4, 5, 6] and set(EV_CHART_CODES) == set(ExclusionReason)
    assert {int(row[0]): row[1] for row in kpis_table("excluded_outage_reason")} == {
        code: reason.value for reason, code in EV_CHART_CODES.items()}


def test_kpis_md_token_type_table_is_the_code_s() -> None:
    documented = {}
    for token_types, method, other in (row[:3] for row in kpis_table("idToken.type")):
        for token_type in token_types.split(", "):
            documented[token_type] = (method, other)
    told = {t: (p.method.value, p.other) for t, p in TOKEN_PAYMENTS.items()}
    assert {t: v for t, v in documented.items() if t in told} == told
    assert set(documented) - set(told) == {"Local", "empty (1.6)", "any other"}  # the station's default


# --- payment_method -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token_type, default, expected, source", [
    ("ISO14443", None, Payment(PaymentMethod.RFID_CARD), PaymentSource.TOKEN),
    ("ISO15693", CARD, Payment(PaymentMethod.RFID_CARD), PaymentSource.TOKEN),  # the charger told: no default
    ("Central", None, Payment(PaymentMethod.MOBILE_APP), PaymentSource.TOKEN),
    ("eMAID", None, Payment(PaymentMethod.PLUG_AND_CHARGE), PaymentSource.TOKEN),
    ("NoAuthorization", CARD, Payment(PaymentMethod.FREE), PaymentSource.TOKEN),  # 2.0.1, or a 1.6 empty idTag
    ("KeyCode", None, TOKEN_PAYMENTS["KeyCode"], PaymentSource.TOKEN),
    ("MacAddress", None, TOKEN_PAYMENTS["MacAddress"], PaymentSource.TOKEN),
    ("Local", CARD, CARD, PaymentSource.STATION_DEFAULT),  # an id the station made up says nothing
    ("", CARD, CARD, PaymentSource.STATION_DEFAULT),  # OCPP 1.6
    ("DirectPayment", CARD, CARD, PaymentSource.STATION_DEFAULT),  # a type not in the table
    ("", None, NOT_REPORTED, PaymentSource.NOT_REPORTED),
    ("Local", None, NOT_REPORTED, PaymentSource.NOT_REPORTED),
])
def test_payment_method_comes_from_the_token_type_else_the_station(token_type: str, default: Payment | None,
                                                                  expected: Payment, source: PaymentSource) -> None:
    assert payment_of(token_type, default) == (expected, source)


def test_payment_other_is_filled_exactly_when_the_method_is_other() -> None:
    for payment in (*TOKEN_PAYMENTS.values(), NOT_REPORTED):
        assert (payment.method == PaymentMethod.OTHER) == bool(payment.other)
    with pytest.raises(ValueError):
        Payment(PaymentMethod.OTHER)
    with pytest.raises(ValueError):
        Payment(PaymentMethod.FREE, "free on Sundays")


# --- session_error ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure, reason, error_code, expected", [
    ("", "Local", "NoError", SessionError(NO_ERROR)),  # ended as the driver meant
    ("", "EVDisconnected", "", SessionError(NO_ERROR)),
    ("no_energy", "Local", "", SessionError("no_energy")),
    ("faulted", "Local", "GroundFailure", SessionError("faulted")),
    ("stop_missing", "", "", SessionError("stop_missing")),
    ("stop_emergency_stop", "EmergencyStop", "", SessionError("stop_emergency_stop")),
    ("stop_power_loss", "PowerLoss", "", SessionError("stop_power_loss")),
    ("stop_ground_fault", "GroundFault", "", SessionError("stop_ground_fault")),  # 2.0.1 reason
    ("stop_other", "Other", "", SessionError("other", "stopped with reason 'Other'")),
    ("stop_other", "Other", "OtherError", SessionError("other", "stopped with reason 'Other', error code 'OtherError'")),
    ("stop_battery_fire", "BatteryFire", "", SessionError("other", "stopped with reason 'BatteryFire'")),  # not OCPP's
    ("stop_", "", "", SessionError("other", "failure stop_")),
])
def test_session_error_is_the_attempt_s_failure_or_other(failure: str, reason: str, error_code: str,
                                                         expected: SessionError) -> None:
    assert session_error(failure, reason, error_code) == expected


def test_session_error_codes_are_the_attempt_failures_of_a_transaction() -> None:
    assert {"no_energy", "faulted", "stop_missing", "stop_emergency_stop", "stop_de_authorized", "stop_hard_reset",
            "stop_soc_limit_reached", "stop_ev_disconnected"} - SESSION_ERRORS == {"stop_ev_disconnected"}
    assert all(re.fullmatch(r"[a-z_]{1,60}", code) for code in SESSION_ERRORS)


def facts(**overrides) -> SessionFacts:
    values = dict(charge_point_id="CP-1", connector_id=1, session_id="0123456789abcdef", transaction_id="7",
                  start_ms=ms(100), stopped_ms=ms(160), received_ms=ms(160), duration_s=3600.0, clock_skew=False,
                  energy_wh=21_345.6, peak_power_w=7400.0, charging_s=3000.0, failure="")
    return SessionFacts(**(values | overrides))


@pytest.mark.parametrize("overrides, expected", [
    ({}, ""),
    ({"failure": "stop_power_loss"}, "stop_power_loss"),  # the attempt row's
    # No attempt row (data older than the KPIs): the attempt rule on the session's own row.
    ({"failure": None, "stop_reason": "Local"}, ""),
    ({"failure": None, "energy_wh": 0.0, "charging_s": None}, "no_energy"),
    ({"failure": None, "energy_wh": None, "charging_s": 60.0}, ""),  # it charged
    ({"failure": None, "stop_status": "Faulted"}, "faulted"),
    ({"failure": None, "faulted_at_stop": True}, "faulted"),
    ({"failure": None, "closed_by": "timeout"}, "stop_missing"),
    ({"failure": None, "stop_reason": "Remote"}, ""),
    ({"failure": None, "stop_reason": "EmergencyStop"}, "stop_emergency_stop"),
])
def test_a_session_s_failure(overrides: dict, expected: str) -> None:
    assert failure_of(facts(**overrides)) == expected


# --- times, energy, ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, end_minutes", [
    ({}, 160),  # the charger's stop
    ({"clock_skew": True, "start_ms": ms(130), "duration_s": 1800.0}, 160),  # skewed: start + gateway duration
    ({"stopped_ms": None, "duration_s": 1200.0}, 120),  # closed on a guess
    ({"stopped_ms": ms(90)}, 160),  # stop before start: start + duration
    ({"stopped_ms": ms(90), "duration_s": None, "received_ms": ms(150)}, 150),
    ({"stopped_ms": None, "duration_s": None, "received_ms": ms(50)}, 100),  # never before the start
])
def test_session_end(overrides: dict, end_minutes: float) -> None:
    s = facts(**overrides)
    assert session_end_ms(s) == ms(end_minutes) and session_end_ms(s) >= s.start_ms


@pytest.mark.parametrize("overrides, energy, power, counted", [
    ({}, "21.35", "7.40", {}),
    ({"peak_power_w": None}, "21.35", "25.61", {"power_from_average": 1}),  # 21.3456 kWh over 3000 s charging
    ({"peak_power_w": None, "charging_s": None}, "21.35", "21.35", {"power_from_average": 1}),  # over its hour
    ({"peak_power_w": None, "energy_wh": 0.0}, "0.00", "0.00", {}),
    ({"peak_power_w": None, "energy_wh": None}, "0.00", "0.00", {"energy_unknown": 1, "power_unknown": 1}),
    ({"energy_wh": None}, "0.00", "7.40", {"energy_unknown": 1}),
    ({"energy_wh": -500.0}, "0.00", "7.40", {"energy_unknown": 1}),  # not a reading
    ({"energy_wh": 1e12}, "0.00", "7.40", {"energy_unknown": 1}),  # beyond DECIMAL(7,2): not written as if it fit
    ({"energy_wh": 99_999_994.0}, "99999.99", "7.40", {}),
    ({"peak_power_w": float("nan"), "charging_s": None, "duration_s": None}, "21.35", "0.00", {"power_unknown": 1}),
])
def test_energy_and_power(overrides: dict, energy: str, power: str, counted: dict[str, int]) -> None:
    counts = Module2Counts()
    assert _energy_and_power(facts(**overrides), counts) == (energy, power)
    assert {k: getattr(counts, k) for k in ("energy_unknown", "power_from_average", "power_unknown")
            if getattr(counts, k)} == counted


@pytest.mark.parametrize("session_id, transaction_id, expected", [
    ("0123456789abcdef", "7", "0123456789abcdef"),
    ("", "1234", "1234"),  # a row older than session ids: its transaction id
    ("", "4c1d3b8e-8f4a-4a55-9d0e-3a1f7f2b6c01", "4c1d3b8e-8f4a-4a55-9d0e-3a1f7f2b6c01"),  # 36: fits
    ("", "x" * 37, "tx-"),  # too long: a digest
    ("", "a,b\nc", "tx-"),  # not one clean line: a digest
])
def test_session_ids(session_id: str, transaction_id: str, expected: str) -> None:
    got = ev_session_id(facts(session_id=session_id, transaction_id=transaction_id))
    assert got == expected if expected != "tx-" else (got.startswith("tx-") and len(got) == 19)


@pytest.mark.parametrize("value, limit, expected", [
    (1.005, 10, "1.00"), (0.0, 10, "0.00"), (9.994, 9.99, "9.99"), (9.996, 9.99, None), (-0.01, 10, None),
    (None, 10, None), (float("nan"), 10, None), (float("inf"), 10, None),
])
def test_decimal_cells(value: float | None, limit: float, expected: str | None) -> None:
    assert decimal(value, limit) == expected


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_a_text_cell_is_one_printable_line_within_its_size(value: str, size: int) -> None:
    cell = text(value, size)
    assert len(cell) <= size and cell.isprintable() and cell == cell.strip() and len(cell.splitlines()) <= 1


# --- the stations file ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("charge_point_id,connector_id,station_id\nCP-1,1,S", "missing columns port_id, network_provider"),
    (STATIONS + "CP-2,1,,P,net\n", "line 4: empty station_id"),
    (STATIONS + "CP-2,x,S,P,net\n", "line 4: connector_id 'x' is not a number"),
    (STATIONS + "CP-2,0,S,P,net\n", "line 4: connector_id 0"),
    (STATIONS + "CP-1,1,S,P,net\n", "line 4: CP-1 connector 1 is listed twice"),
    (STATIONS + f"CP-2,1,{'S' * 37},P,net\n", "station_id longer than 36"),
    (STATIONS + "CP-2,1,ST-1,ST-1-A,acme_network\n", "line 4: station ST-1 port ST-1-A .* already line 2's"),
    (STATIONS + f"{'C' * 40},1,S,P,net\n", "charger_id longer than 36 .*give one"),
    (STATIONS + "CP-2,1,S\tX,P,net\n", "line 4: station_id: control characters"),
    (STATIONS.replace("network_provider\n", "network_provider,payment\n"), "unknown column payment"),
])
def test_bad_stations_files_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(StationsFileError, match=message):
        parse_stations(text)


HEADER = "charge_point_id,connector_id,station_id,port_id,network_provider,default_payment_method,default_payment_other\n"


@pytest.mark.parametrize("row, message", [
    ("CP-1,1,S,P,net,visa,", "default_payment_method 'visa' is not one of credit_card, debit_card"),
    ("CP-1,1,S,P,net,other,", "default_payment_method other needs default_payment_other"),
    ("CP-1,1,S,P,net,credit_card,a card", "default_payment_other describes default_payment_method other only"),
    ("CP-1,1,S,P,net,,a card", "default_payment_other describes"),
    (f"CP-1,1,S,P,net,other,{'x' * 256}", "default_payment_other longer than 255"),
])
def test_bad_default_payment_methods_are_refused(row: str, message: str) -> None:
    with pytest.raises(StationsFileError, match=f"line 2: {message}"):
        parse_stations(HEADER + row + "\n")


def test_a_station_s_default_payment_method() -> None:
    ports = parse_stations(HEADER + "CP-1,1,S,P-A,net,credit_card,\nCP-1,2,S,P-B,net,other,parking ticket\n"
                                    "CP-2,1,T,P-A,net,,\n").ports
    assert ports[("CP-1", 1)].default_payment == CARD
    assert ports[("CP-1", 2)].default_payment == Payment(PaymentMethod.OTHER, "parking ticket")
    assert ports[("CP-2", 1)].default_payment is None


def test_no_stations_file_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(StationsFileError, match="station_id, port_id and network_provider.*--stations"):
        load_stations(None)
    with pytest.raises(StationsFileError, match="cannot read"):
        load_stations(tmp_path / "absent.csv")
    (tmp_path / "bom.csv").write_text("\ufeff" + STATIONS, encoding="utf-8")  # saved by a spreadsheet
    assert len(load_stations(tmp_path / "bom.csv").ports) == 2


# --- the export, from a database ----------------------------------------------------------------------------------


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def row(cp: str, connector: int | None, start: float, end: float, energy_wh: float | None, session_id: str,
        **fields) -> Session:
    return session(cp, connector, start, end, energy_wh, session_id).model_copy(update=fields)


def test_export_writes_the_three_modules(chdb_client, database: str, tmp_path: Path) -> None:
    insert_status(chdb_client, database, "CP-1", 1, -60 * 24 * 30)  # seen a month before the quarter
    insert_status(chdb_client, database, "CP-1", 2, 60)
    insert_sessions(chdb_client, database, [
        row("CP-1", 1, 100, 160, 21_345.6, "s1", id_token_type="ISO14443"),
        row("CP-1", None, 100, 160, 1000.0, "s2"),  # no port known: left out, and said
        row("CP-1", 2, -10, 50, 5000.0, "s3"),  # started before the quarter
        row("CP-1", 2, 200, 230, 800.0, "s4", id_token_type="", peak_power_w=None),  # 1.6: the station's default
        row("CP-1", 2, 300, 310, None, "s5", id_token_type="NoAuthorization", stop_reason="Other",
            energy_source="none", peak_power_w=None),
    ])
    insert_attempts(chdb_client, database, [
        attempt("CP-1", 1, 99, delivered=True, ended_ok=False, attempt_id="s1", failure="stop_emergency_stop"),
        attempt("CP-1", 2, 199, delivered=True, ended_ok=True, attempt_id="s4")])
    insert_outages(chdb_client, database, [
        outage("CP-1", 1, 200, 230, outage_id="o1"),
        outage("CP-1", 2, 300, None, outage_id="o2"),  # still open
        outage("CP-1", 1, -500, -400, outage_id="o0"),  # before the quarter: module 3 only
    ])
    insert_exclusions(chdb_client, database, [excl(1, 220, 240, ExclusionReason.VANDALISM, note="cable cut\nby night")])
    quarter = Quarter.parse("2026Q3")
    stations = parse_stations("charge_point_id,connector_id,station_id,port_id,network_provider,default_payment_method\n"
                              "CP-1,1,ST-1,ST-1-A,acme_network,\nCP-1,2,ST-1,ST-1-B,acme_network,credit_card\n")
    done = export(ClientSource(chdb_client), database, quarter, tmp_path / "out", stations, ms(1300))
    assert (done.sessions, done.ports, done.outages, done.sessions_without_port) == (3, 2, 2, 1)
    m2, m3, m4 = (read(p) for p in done.files)
    assert [p.name for p in done.files] == ["module2_sessions_2026Q3.csv", "module3_uptime_2026Q3.csv",
                                            "module4_outages_2026Q3.csv"]
    assert m2[0] == {"station_id": "ST-1", "port_id": "ST-1-A", "network_provider": "acme_network", "charger_id": "CP-1",
                     "session_id": "s1", "connector_id": "1", "session_start": "2026-07-01T01:40:00Z",
                     "session_end": "2026-07-01T02:40:00Z", "session_error": "stop_emergency_stop", "error_other": "",
                     "energy_kwh": "21.35", "power_kw": "7.40", "payment_method": "rfid_card", "payment_other": ""}
    assert [(r["session_id"], r["session_start"], r["session_end"], r["session_error"], r["error_other"],
             r["energy_kwh"], r["power_kw"], r["payment_method"], r["payment_other"]) for r in m2[1:]] == [
        ("s4", "2026-07-01T03:20:00Z", "2026-07-01T03:50:00Z", "no_error", "", "0.80", "1.60", "credit_card", ""),
        # No attempt row: its own row says it delivered nothing (energy unknown, no time charging).
        ("s5", "2026-07-01T05:00:00Z", "2026-07-01T05:10:00Z", "no_energy", "", "0.00", "0.00", "free", "")]
    assert [(r["port_id"], r["uptime_reporting_start"], r["uptime_reporting_end"], r["total_outage"],
             r["total_outage_excl"]) for r in m3] == [
        ("ST-1-A", "2026-06-01T00:00:00Z", "2026-07-01T21:40:00Z", "130.00", "10.00"),
        ("ST-1-B", "2026-07-01T01:00:00Z", "2026-07-01T21:40:00Z", "1000.00", "0.00")]
    assert m3[0]["uptime"] == f"{(44380 - 120) / 44380 * 100:.2f}"  # 30 d 21 h 40 min, 120 min not excluded
    assert m4 == [
        {"station_id": "ST-1", "port_id": "ST-1-A", "network_provider": "acme_network",
         "outage_id": "2026-07-01T03:20:00Z", "outage_duration": "30.00", "excluded_outage": "True",
         "excluded_outage_reason": "4", "excluded_outage_notes": "cable cut by night"},  # one line
        {"station_id": "ST-1", "port_id": "ST-1-B", "network_provider": "acme_network",
         "outage_id": "2026-07-01T05:00:00Z", "outage_duration": "1000.00", "excluded_outage": "False",
         "excluded_outage_reason": "", "excluded_outage_notes": ""}]
    summary = done.describe().splitlines()
    assert summary[0].startswith("EV-ChART export: 3 sessions (module 2), 2 ports (module 3), 2 outages (module 4) in ")
    assert summary[1:] == [
        "  payment_method: 2 from the driver's token type, 1 the stations file's default_payment_method, 0 'other' "
        f"({NOT_REPORTED.other})",
        "  energy_kwh: 1 sessions without a usable meter reading are written as 0.00 (sessions.energy_wh NULL)",
        "  power_kw: 1 sessions without a power sample have their average power (energy / charging time)",
        "  power_kw: 1 sessions with neither are written as 0.00",
        "  1 sessions of the quarter are left out: their connector is unknown (EV-ChART needs a port_id)"]


@pytest.mark.parametrize("counts, page_rows, pages", [
    ([], 10, []),
    ([(0, 3), (1, 4), (5, 3)], 10, [(0, 5)]),
    ([(0, 3), (1, 4), (5, 3)], 7, [(0, 1), (5, 5)]),
    ([(0, 30), (1, 4), (2, 4)], 10, [(0, 0), (1, 2)]),  # an hour over the page is a page of its own
    ([(0, 1), (1, 1), (2, 1)], 1, [(0, 0), (1, 1), (2, 2)]),
])
def test_session_pages_follow_the_hours(counts, page_rows: int, pages) -> None:
    from kpi.ev_chart import _pages

    assert _pages(counts, page_rows) == pages


def test_the_sessions_are_read_in_pages_the_read_path_allows(chdb_client, database: str, tmp_path: Path) -> None:
    """One session per page: the files are the same as from one query (and every query returned at most one row
    of sessions)."""
    insert_status(chdb_client, database, "CP-1", 1, 0)
    insert_sessions(chdb_client, database, [row("CP-1", 1, 60 * h + 5, 60 * h + 50, 1000.0 * h, f"s{h}")
                                            for h in range(0, 240, 7)] + [row("CP-1", None, 30, 40, 5.0, "x")])
    source = ClientSource(chdb_client)
    seen: list[int] = []

    class Counting:
        def rows(self, sql: str):
            rows = source.rows(sql)
            if "LEFT JOIN" in sql:
                seen.append(len(rows))
            return rows

    one = export(source, database, Quarter.parse("2026Q3"), tmp_path / "one", parse_stations(STATIONS), ms(99_999))
    paged = export(Counting(), database, Quarter.parse("2026Q3"), tmp_path / "paged", parse_stations(STATIONS),
                   ms(99_999), page_rows=1)
    assert [f.read_text() for f in paged.files] == [f.read_text() for f in one.files]
    assert (paged.sessions, paged.sessions_without_port, seen) == (35, 1, [1] * 35)


# A session id is unique per charger only (SESSIONS.md): two OCPP 1.6 chargers whose StartTransactions the gateway
# stamps in the same millisecond get the same transactionId (its second) and so the same session id; 2.0.1
# stations that number transactions per EVSE share ids too. Each session is its own row, with its own attempt.
CHARGERS = ("CP-1", "CP-2", "CP-3")
CHARGER_STATIONS = parse_stations("charge_point_id,connector_id,station_id,port_id,network_provider\n" + "".join(
    f"{cp},{c},ST-{cp},ST-{cp}-{c},acme_network\n" for cp in CHARGERS for c in (1, 2)))


@pytest.fixture(scope="module")
def sessions_database(chdb_client) -> str:
    """One migrated database for the cases below (a migration per case would cost more than the cases)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    clickhouse.migrate(chdb_client, name)
    return name


def export_sessions(client, database: str, out: Path, sessions: list[Session], attempts: list[ChargeAttempt],
                    page_rows: int = PAGE_ROWS):
    for t in (SESSIONS, CHARGE_ATTEMPTS):
        client.command(f"TRUNCATE TABLE `{database}`.`{t.name}`")
    insert_sessions(client, database, sessions)
    insert_attempts(client, database, attempts)
    return export(ClientSource(client), database, Quarter.parse("2026Q3"), out, CHARGER_STATIONS, ms(5 * 24 * 60),
                  page_rows=page_rows)


@pytest.mark.parametrize("sessions, attempts, expected", [
    pytest.param([("CP-1", 1, "s1"), ("CP-2", 1, "s1")], [("CP-1", "s1", ""), ("CP-2", "s1", "stop_emergency_stop")],
                 [("ST-CP-1-1", "s1", "no_error"), ("ST-CP-2-1", "s1", "stop_emergency_stop")],
                 id="two chargers, one id, an attempt each"),
    pytest.param([("CP-1", 1, "s1"), ("CP-2", 2, "s1"), ("CP-3", 1, "s1")],
                 [("CP-1", "s1", "faulted"), ("CP-2", "s1", "no_energy"), ("CP-3", "s1", "")],
                 [("ST-CP-1-1", "s1", "faulted"), ("ST-CP-2-2", "s1", "no_energy"), ("ST-CP-3-1", "s1", "no_error")],
                 id="three chargers, one id"),
    pytest.param([("CP-1", 1, "s1"), ("CP-2", 1, "s1")], [("CP-1", "s1", "faulted")],
                 [("ST-CP-1-1", "s1", "faulted"), ("ST-CP-2-1", "s1", "no_error")],
                 id="only one of them has an attempt: the other's own row says how it ended"),
    pytest.param([("CP-1", 1, "s1")], [("CP-2", "s1", "stop_power_loss")], [("ST-CP-1-1", "s1", "no_error")],
                 id="the attempt of another charger's session (of another quarter) is not this one's"),
    pytest.param([("CP-1", 1, "s1"), ("CP-1", 2, "s2")], [("CP-1", "s1", "no_energy"), ("CP-1", "s2", "")],
                 [("ST-CP-1-1", "s1", "no_energy"), ("ST-CP-1-2", "s2", "no_error")], id="one charger, two ids"),
])
def test_a_session_id_two_chargers_share_is_one_row_each_with_its_own_attempt(
        chdb_client, sessions_database: str, tmp_path: Path, sessions: list[tuple[str, int, str]],
        attempts: list[tuple[str, str, str]], expected: list[tuple[str, str, str]]) -> None:
    done = export_sessions(
        chdb_client, sessions_database, tmp_path,
        [row(cp, c, 100 + 10 * i, 150 + 10 * i, 1000.0, sid) for i, (cp, c, sid) in enumerate(sessions)],
        [attempt(cp, 1, 99, delivered=True, ended_ok=not failure, attempt_id=sid, failure=failure)
         for cp, sid, failure in attempts])
    m2 = read(done.files[0])
    assert sorted((r["port_id"], r["session_id"], r["session_error"]) for r in m2) == expected
    assert done.sessions == len(sessions)


@st.composite
def shared_id_histories(draw: st.DrawFn) -> tuple[list[Session], dict[tuple[str, str], str], int]:
    """Sessions of three chargers whose ids come from a small pool (unique per charger, as the pipeline's), attempts
    of some of them and of sessions outside the quarter, and the read path's page size."""
    keys = draw(st.lists(st.tuples(st.sampled_from(CHARGERS), st.sampled_from(["s1", "s2", "s3"])), unique=True,
                         min_size=1, max_size=9))
    sessions = [row(cp, draw(st.sampled_from([1, 2])), start, start + 30, 1000.0, sid)
                for cp, sid in keys for start in [draw(st.integers(0, 3 * 24 * 60))]]
    others = draw(st.lists(st.tuples(st.sampled_from(CHARGERS), st.sampled_from(["s1", "s2", "s3"])), unique=True))
    failures = st.sampled_from(["", *sorted(SESSION_ERRORS)])
    attempts = {key: draw(failures) for key in [*keys, *others] if draw(st.booleans())}
    return sessions, attempts, draw(st.sampled_from([1, 2, PAGE_ROWS]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(history=shared_id_histories())
def test_every_session_is_one_module_2_row_with_its_own_attempt_s_error(
        chdb_client, sessions_database: str, tmp_path: Path, history) -> None:
    sessions, attempts, page_rows = history
    done = export_sessions(chdb_client, sessions_database, tmp_path / "out", sessions,
                           [attempt(cp, 1, -60, delivered=True, ended_ok=not failure, attempt_id=sid, failure=failure)
                            for (cp, sid), failure in attempts.items()], page_rows)
    rows = sorted((r["port_id"], r["session_id"], r["session_error"]) for r in read(done.files[0]))
    # A delivered session stopped by its charger ends ok by its own row when it has no attempt.
    assert rows == sorted((f"ST-{s.charge_point_id}-{s.connector_id}", s.session_id,
                           attempts.get((s.charge_point_id, s.session_id)) or NO_ERROR) for s in sessions)


def test_a_quarter_without_sessions_or_outages_has_a_no_data_row_per_port(chdb_client, database: str,
                                                                          tmp_path: Path) -> None:
    """EV-ChART refuses a module file without rows: the ports are named, with nothing to report."""
    insert_status(chdb_client, database, "CP-1", 1, 0)
    insert_status(chdb_client, database, "CP-1", 2, 0)
    done = export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path, parse_stations(STATIONS),
                  ms(100))
    m2, m3, m4 = (read(p) for p in done.files)
    assert (done.sessions, done.ports, done.outages, done.no_data_rows) == (0, 2, 0, (2, 2))
    assert [(r["port_id"], set(r.values()) - {"ST-1", r["port_id"], "acme_network"}) for r in m2 + m4] == [
        ("ST-1-A", {""}), ("ST-1-B", {""})] * 2
    assert "module 2: nothing this quarter, one no-data row per port (2)" in done.describe()


def test_a_port_known_only_from_its_sessions_has_its_uptime_row(chdb_client, database: str, tmp_path: Path) -> None:
    insert_sessions(chdb_client, database, [row("CP-1", 2, 200, 230, 800.0, "s4")])
    done = export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path, parse_stations(STATIONS),
                  ms(1440))
    (uptime,) = read(done.files[1])
    assert (uptime["port_id"], uptime["uptime_reporting_start"], uptime["uptime"]) == (
        "ST-1-B", "2026-07-01T03:20:00Z", "100.00")


def test_nothing_to_report_is_said_before_anything_is_written(chdb_client, database: str, tmp_path: Path) -> None:
    with pytest.raises(ExportFailed, match="nothing to report for 2026Q3"):
        export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path / "out",
               parse_stations(STATIONS), ms(100))
    assert not (tmp_path / "out").exists()


def test_a_port_missing_from_the_stations_file_stops_the_export_before_writing(chdb_client, database: str,
                                                                                tmp_path: Path) -> None:
    insert_status(chdb_client, database, "CP-1", 1, 0)
    insert_status(chdb_client, database, "CP-9", 3, 0)
    with pytest.raises(StationsFileError, match="1 port in the data: CP-9 connector 3"):
        export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path / "out",
               parse_stations(STATIONS), ms(100))
    assert not (tmp_path / "out").exists()


def test_an_unwritable_folder_is_a_clear_error(chdb_client, database: str, tmp_path: Path) -> None:
    insert_status(chdb_client, database, "CP-1", 1, 0)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ExportFailed, match="cannot write the EV-ChART files"):
        export(ClientSource(chdb_client), database, Quarter.parse("2026Q3"), tmp_path / "file" / "out",
               parse_stations(STATIONS), ms(100))


def test_the_readme_s_stations_file_is_read() -> None:
    readme = (KPIS_MD.parent / "README.md").read_text()
    block = readme[readme.index("```\ncharge_point_id,connector_id"):]
    ports = parse_stations(block[4:block.index("```", 4)]).ports
    assert {key: (p.port_id, p.default_payment) for key, p in ports.items()} == {
        ("CP-0001", 1): ("ST-SPRINGFIELD-01-A", CARD), ("CP-0001", 2): ("ST-SPRINGFIELD-01-B", CARD)}
