"""Every module file the EV-ChART export writes passes EV-ChART's validator, as ``../shared/evchart/README.md``
states its rules, over the official definitions read from ``../shared/evchart`` (tests/kpi/evchart_rules.py):
for hand-made quarters, and for any quarter of histories (hypothesis), from plain facts and through the database.

The rules are first shown to refuse what EV-ChART refuses, so that a file passing them means something."""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi.errors import ExportFailed
from kpi.ev_chart import ExportFacts, Quarter, build_modules, export, write_modules
from kpi.ev_chart_codes import PaymentMethod
from kpi.ev_chart_rows import MODULE2_COLUMNS, MODULE3_COLUMNS, MODULE4_COLUMNS, SessionFacts
from kpi.exclusions import new_exclusion
from kpi.source import ClientSource
from kpi.stations import parse_stations
from kpi.uptime import OutageSpan, Port, UptimeInputs
from processors.clickhouse_sink import ClickHouseSink
from processors.settings import CorrelatorConfig
from processors.pipeline import FrameProcessor
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import ExclusionReason
from schemas.tables import CHARGE_ATTEMPTS, CONNECTOR_STATUS, OUTAGE_EXCLUSIONS, PORT_OUTAGES, SESSIONS
from tests.kpi import evchart_rules as rules
from tests.kpi.helpers import (
    T0, at, attempt, insert_attempts, insert_exclusions, insert_outages, insert_sessions, insert_status, ms, outage,
    session,
)
from tests.processors.script import T0_MS, Script, energy, iso

QUARTER = Quarter.parse("2026Q3")  # tests.kpi.helpers.T0 is its first minute
QUARTER_MINUTES = 92 * 24 * 60
CPS = ("CP-1", "CP-2", "CP-ÉLAN-3")
STATIONS = parse_stations(
    "charge_point_id,connector_id,station_id,port_id,network_provider,charger_id,default_payment_method,"
    "default_payment_other\n"
    + "".join(f"{cp},{c},ST-{i},ST-{i}-{c},acme_network,,{method},{other}\n"
              for i, cp in enumerate(CPS) for c, (method, other) in
              zip((1, 2, 3), (("credit_card", ""), ("", ""), ("other", "parking\tticket, \"validated\"")))
              ).replace("\t", " "))


# --- the rules, read from ../shared/evchart, refuse what EV-ChART refuses ------------------------------------------


def test_the_definitions_are_read_from_shared_evchart_and_agree_with_the_module_files() -> None:
    assert rules.EVCHART.parts[-2:] == ("shared", "evchart") and (rules.EVCHART / "README.md").is_file()
    for module, columns in ((2, MODULE2_COLUMNS), (3, MODULE3_COLUMNS), (4, MODULE4_COLUMNS)):
        assert set(columns) - set(rules.definitions(module)) == {"station_id", "network_provider"}
    for module in (2, 3):  # the central config and module{2,3}.json agree field for field (the README)
        for name, spec in rules.module_json(module).items():
            assert {k: v for k, v in spec.items() if k != "is_nullable"} == {
                k: v for k, v in rules.definitions(module)[name].items() if k != "is_nullable"}
    assert set(rules.definitions(4)) - set(rules.module_json(4)) == {
        "excluded_outage", "excluded_outage_reason", "excluded_outage_notes"}
    assert rules.unique_key(2) == ("station_uuid", "port_id", "session_id")


M2 = ",".join(MODULE2_COLUMNS)
M2_ROW = "S,P,net,C,s1,1,2026-07-01T00:00:00Z,2026-07-01T01:00:00Z,no_error,,1.00,1.00,free,"
M4 = ",".join(MODULE4_COLUMNS)


@pytest.mark.parametrize("module, text, column, what", [
    (2, f"{M2}\n{M2_ROW}\n", None, None),  # valid
    (2, f"\ufeff{M2}\n{M2_ROW}\n", None, None),  # a byte order mark is dropped
    (2, f"{M2}\nS,P,net,,,,,,,,,,,\n", None, None),  # a no-data row
    (2, f"{M2}\n", "", "no rows"),
    (2, f"{M2.replace('station_id', 'station')}\n{M2_ROW}\n", "station_id", "column missing"),
    (2, f"{M2.replace(',power_kw', '')}\n{M2_ROW.replace(',1.00,free', ',free')}\n", "power_kw", "required column"),
    (2, f"{M2},tariff\n{M2_ROW},x\n", "tariff", "unknown column"),
    (2, f"{M2},payment_other\n{M2_ROW},\n", "payment_other", "column twice"),
    (2, f"{M2}\n{M2_ROW.replace('s1', 's' * 37)}\n", "session_id", "longer than 36"),
    (2, f"{M2}\n{M2_ROW.replace(',no_error,', ',,')}\n", "session_error", "empty in a session row"),
    (2, f"{M2}\n{M2_ROW.replace(',free,', ',,')}\n", "payment_method", "empty in a session row"),
    (2, f"{M2}\n{M2_ROW.replace(',free,', ',  ,')}\n", "payment_method", "only whitespace"),
    (2, f"{M2}\n{M2_ROW.replace('01:00:00Z', '01:00Z')}\n", "session_end", "not YYYY-MM-DD"),
    (2, f"{M2}\n{M2_ROW.replace('2026-07-01T00', '2026-07-01 00')}\n", "session_start", "not YYYY-MM-DD"),
    (2, f"{M2}\n{M2_ROW.replace('2026-07-01T00', '2026-13-01T00')}\n", "session_start", "not an ISO 8601"),
    (2, f"{M2}\n{M2_ROW.replace('1.00,1.00', '1.005,1.00')}\n", "energy_kwh", "more than 2 decimals"),
    (2, f"{M2}\n{M2_ROW.replace('1.00,1.00', '100000.00,1.00')}\n", "energy_kwh", "more than 5 digits"),
    (2, f"{M2}\n{M2_ROW.replace('1.00,1.00', '-1.00,1.00')}\n", "energy_kwh", "below 0"),
    (2, f"{M2}\n{M2_ROW.replace('1.00,1.00', '1.00,fast')}\n", "power_kw", "not a decimal"),
    (2, f"{M2}\n{M2_ROW}\n{M2_ROW}\n", "station_id,network_provider,port_id,session_id", "same key"),
    (2, f"{M2}\n{M2_ROW}\nS,P,net\n", "", "3 cells"),
    (2, f"{M2}\n{M2_ROW}\r\n\n,,,,,,,,,,,,,\n", None, None),  # blank rows are dropped
    (3, "station_id,port_id,network_provider,uptime_reporting_start,uptime_reporting_end,uptime,total_outage,"
        "total_outage_excl\nS,P,net,2026-01-01T00:00:00Z,2026-04-01T00:00:00Z,100.00,,0.00\n", "total_outage",
     "required value empty"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,10.00,TRUE,4,note\n", None, None),
    (4, f"{M4}\nS,P,net,,,,,\n", None, None),  # no outage
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,,,,\n", "outage_id", "go together"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,0.00,FALSE,,\n", "outage_duration", "below 0.01"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,1.00,yes,,\n", "excluded_outage", "not TRUE or FALSE"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,1.00,True,7,\n", "excluded_outage_reason", "above 6"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,1.00,True,four,\n", "excluded_outage_reason", "not an integer"),
    (4, f"{M4}\nS,P,net,2026-07-01T00:00:00Z,1.00,True,4,{'n' * 256}\n", "excluded_outage_notes", "longer than 255"),
])
def test_the_rules_refuse_what_ev_chart_refuses(module: int, text: str, column: str | None, what: str | None) -> None:
    problems = rules.validate(module, text)
    if column is None:
        assert problems == []
    else:
        assert any(p.column == column and what in p.what for p in problems), problems


def assert_valid(files: tuple[Path, ...] | list[Path]) -> None:
    assert [rules.module_of(f) for f in files] == [2, 3, 4]
    problems = rules.problems_in(files)
    assert not problems, "\n".join(map(str, problems[:20]))


# --- hand-made quarters through the database ---------------------------------------------------------------------


def test_a_quarter_of_every_kind_of_session_validates(chdb_client, database: str, tmp_path: Path) -> None:
    for cp in CPS:
        for connector in (1, 2, 3):
            insert_status(chdb_client, database, cp, connector, -60 * 24 * 400)  # operating for over a year
    weird = "Stop,\"now\"\n\u2028" + "x" * 300
    rows = [
        session("CP-1", 1, 100, 160, 21_345.6, "a1").model_copy(update={"id_token_type": "ISO14443"}),
        session("CP-1", 2, 200, 260, None, "a2", peak_power_w=None).model_copy(update={"stop_reason": weird}),
        session("CP-1", 3, 300, 310, 1e12, "a3").model_copy(update={"id_token_type": "KeyCode"}),
        session("CP-2", 1, 400, 460, 5000.0, "").model_copy(update={"transaction_id": "x" * 60}),  # legacy, long id
        session("CP-2", 1, 500, 400, 7000.0, "a5"),  # stopped before it started (charger clock)
        session("CP-2", 2, 600, 700, 900.0, "a6").model_copy(update={"started_at": None, "flags": ["stop_without_start"]}),
        session("CP-2", 3, 700, 800, 900.0, "a7").model_copy(update={"flags": ["clock_skew"], "duration_s": 3000.0}),
        session("CP-ÉLAN-3", 1, 800, 900, 9000.0, "a8").model_copy(update={"id_token_type": "\u0000weird\n"}),
    ]
    insert_sessions(chdb_client, database, rows)
    insert_attempts(chdb_client, database, [
        attempt("CP-1", 1, 99, delivered=True, ended_ok=False, attempt_id="a1", failure="stop_emergency_stop"),
        attempt("CP-1", 2, 199, delivered=True, ended_ok=False, attempt_id="a2", failure="stop_" + "y" * 48)])
    insert_outages(chdb_client, database, [
        outage("CP-1", 1, 10, 20, outage_id="o1"), outage("CP-1", 1, 10.001, 30, outage_id="o1b"),  # same second
        outage("CP-1", 1, 10, 25, outage_id="o1c"),  # same millisecond as o1: one outage
        outage("CP-2", 2, QUARTER_MINUTES - 1, None, outage_id="o2"),  # open at the quarter's end
        outage("CP-2", 3, 50, 50.0005, outage_id="o3"),  # shorter than 0.01 minute
        outage("CP-2", 1, 60, 60 + 2_000_000, outage_id="o4"),  # longer than DECIMAL(8,2) minutes
    ])
    insert_exclusions(chdb_client, database, [new_exclusion(
        "CP-1", 0, at(0), at(15), ExclusionReason.UTILITY_INTERRUPTION, "line1\r\nline2 " + "z" * 240, recorded_at=T0,
        recorded_by="ops")])
    done = export(ClientSource(chdb_client), database, QUARTER, tmp_path, STATIONS, ms(QUARTER_MINUTES + 10))
    assert (done.sessions, done.outages) == (8, 5)
    assert_valid(done.files)


# --- any quarter of histories: plain facts (many), and through the database (a few) -------------------------------

PORTS = [(cp, c) for cp in CPS for c in (1, 2, 3)]
minutes = st.floats(min_value=-QUARTER_MINUTES, max_value=2 * QUARTER_MINUTES, allow_nan=False)
texts = st.text(max_size=300)
numbers = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=0, max_value=1e9)
token_types = st.sampled_from(["", "ISO14443", "ISO15693", "Central", "eMAID", "KeyCode", "Local", "MacAddress",
                               "NoAuthorization", "DirectPayment"]) | st.text(max_size=20)
failures = st.none() | st.sampled_from(["", "no_energy", "faulted", "stop_missing", "stop_emergency_stop",
                                        "stop_other"]) | st.text(max_size=60)


@st.composite
def session_facts(draw: st.DrawFn) -> SessionFacts:
    cp, connector = draw(st.sampled_from(PORTS))
    start = draw(st.integers(min_value=QUARTER.span.start_ms, max_value=QUARTER.span.end_ms - 1))
    stopped = draw(st.none() | st.integers(min_value=start - 10**9, max_value=start + 10**10))
    return SessionFacts(
        charge_point_id=cp, connector_id=connector, session_id=draw(st.sampled_from(["", "s1", "s2"]) | texts),
        transaction_id=draw(texts), start_ms=start, stopped_ms=stopped,
        received_ms=draw(st.integers(min_value=start - 10**9, max_value=start + 10**10)),
        duration_s=draw(numbers), clock_skew=draw(st.booleans()), energy_wh=draw(numbers),
        peak_power_w=draw(numbers), charging_s=draw(numbers), failure=draw(failures), stop_reason=draw(texts),
        stop_error_code=draw(texts), stop_status=draw(st.sampled_from(["", "Faulted", "Available"])),
        closed_by=draw(st.sampled_from(["stop_transaction", "timeout", "available"])),
        faulted_at_stop=draw(st.booleans()), id_token_type=draw(token_types))


@st.composite
def outage_spans(draw: st.DrawFn) -> OutageSpan:
    cp, connector = draw(st.sampled_from(PORTS))
    start = ms(draw(minutes))
    end = draw(st.none() | st.integers(min_value=start - 1000, max_value=start + 10**12))
    reason = draw(st.sampled_from(["", *ExclusionReason]) | st.text(max_size=30))  # as port_outages_with_exclusions
    return OutageSpan(cp, connector, start, end, draw(st.text(max_size=16)), reason, draw(texts))


@st.composite
def exclusions(draw: st.DrawFn):
    start = draw(minutes)
    return new_exclusion(draw(st.sampled_from(CPS)), draw(st.integers(0, 3)), at(start),
                         at(start + draw(st.floats(min_value=0.001, max_value=QUARTER_MINUTES))),
                         draw(st.sampled_from(list(ExclusionReason))), draw(st.text(max_size=255)), recorded_at=T0,
                         recorded_by="ops")


@st.composite
def export_facts(draw: st.DrawFn) -> ExportFacts:
    ports = [Port(cp, c, ms(draw(minutes))) for cp, c in draw(st.lists(st.sampled_from(PORTS), max_size=6))]
    return ExportFacts(draw(st.lists(session_facts(), max_size=12)),
                       UptimeInputs(ports, draw(st.lists(outage_spans(), max_size=10)),
                                    draw(st.lists(exclusions(), max_size=4))))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=export_facts(), now_minutes=minutes)
def test_any_quarter_of_facts_gives_files_that_validate(facts: ExportFacts, now_minutes: float) -> None:
    try:
        modules = build_modules(facts, QUARTER, STATIONS, ms(now_minutes))
    except ExportFailed as exc:  # only when no port has a figure to report
        assert "nothing to report" in str(exc)
        return
    with tempfile.TemporaryDirectory() as out:
        assert_valid(write_modules(modules, Path(out)))
    assert len(modules.sessions.rows) - modules.sessions.no_data_rows == len(facts.sessions)  # no session lost


@st.composite
def histories(draw: st.DrawFn) -> dict:
    """Rows as the worker writes them (and as older versions left them), for a few ports of CPS."""
    sessions = []
    for i in range(draw(st.integers(0, 6))):
        cp, connector = draw(st.sampled_from(PORTS))
        start = draw(minutes)
        end = start + draw(st.floats(min_value=-60, max_value=3000))
        row = session(cp, draw(st.sampled_from([connector, None])), start, end, draw(numbers.filter(
            lambda x: x is None or abs(x) < 1e15)), draw(st.sampled_from([f"s{i}", ""])))
        sessions.append(row.model_copy(update={
            "id_token_type": draw(token_types), "stop_reason": draw(st.sampled_from(["Local", "Other", "PowerLoss"])
                                                                     | st.text(max_size=40)),
            "flags": draw(st.lists(st.sampled_from(["clock_skew", "faulted_at_stop", "energy_implausible"]),
                                   max_size=2, unique=True)),
            "started_at": None if draw(st.booleans()) and i % 3 == 0 else row.started_at,
            "transaction_id": draw(st.sampled_from([f"{i}", "4c1d3b8e-8f4a"]) | st.text(max_size=50)),
        }))
    attempts = [attempt(s.charge_point_id, s.connector_id or 0, 0, delivered=True, ended_ok=False,
                        attempt_id=s.session_id, failure=draw(failures.filter(lambda f: f is not None)))
                for s in sessions if s.session_id and draw(st.booleans())]
    outages = [outage(cp, c, start, None if length is None else start + length, outage_id=f"o{i}")
               for i, ((cp, c), start, length) in enumerate(draw(st.lists(st.tuples(
                   st.sampled_from(PORTS), minutes, st.none() | st.floats(0, 10 * QUARTER_MINUTES)), max_size=6)))]
    statuses = draw(st.lists(st.tuples(st.sampled_from(PORTS), minutes), max_size=6))
    return {"sessions": sessions, "attempts": attempts, "outages": outages, "statuses": statuses,
            "exclusions": draw(st.lists(exclusions(), max_size=3)), "now": draw(minutes)}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_quarter_of_histories_in_the_database_gives_files_that_validate(chdb_client, database: str,
                                                                           history: dict) -> None:
    for t in (SESSIONS, CHARGE_ATTEMPTS, PORT_OUTAGES, CONNECTOR_STATUS, OUTAGE_EXCLUSIONS):
        chdb_client.command(f"TRUNCATE TABLE `{database}`.`{t.name}`")
    insert_sessions(chdb_client, database, history["sessions"])
    insert_attempts(chdb_client, database, history["attempts"])
    insert_outages(chdb_client, database, history["outages"])
    for (cp, c), minute in history["statuses"]:
        insert_status(chdb_client, database, cp, c, minute)
    insert_exclusions(chdb_client, database, history["exclusions"])
    with tempfile.TemporaryDirectory() as out:
        try:
            done = export(ClientSource(chdb_client), database, QUARTER, Path(out), STATIONS, ms(history["now"]))
        except ExportFailed as exc:
            assert "nothing to report" in str(exc)
            return
        assert_valid(done.files)
        with_port = [s for s in history["sessions"] if s.connector_id is not None]
        assert done.sessions + done.sessions_without_port <= len(history["sessions"])
        assert done.sessions <= len(with_port)


def test_the_payment_methods_of_the_stations_file_are_ev_chart_strings() -> None:
    assert all(len(m.value) <= 255 and m.value.strip() for m in PaymentMethod)


# --- frames through the worker's processor and sink, exported ------------------------------------------------------


def station_event(seq: int, at_s: float, event_type: str, **fields) -> FrameEnvelope:
    """A 2.0.1 TransactionEvent of station CS-1, EVSE 1."""

    payload = {"eventType": event_type, "timestamp": iso(at_s), "seqNo": seq, "triggerReason": "Authorized",
               "transactionInfo": {"transactionId": "cs1-tx-1", **fields.pop("info", {})},
               "evse": {"id": 1, "connectorId": 1}, **fields}
    return FrameEnvelope(
        charge_point_id="CS-1", direction=Direction.IN, gateway_ts_ms=T0_MS + int(at_s * 1000),
        frame=json.dumps([2, f"e{seq}", "TransactionEvent", payload]), ocpp_version="ocpp2.0.1", gateway_id="gw",
        connection_id="c", seq=seq, message_type=MessageType.CALL, action="TransactionEvent", message_id=f"e{seq}")


def register(wh: float, context: str) -> list[dict]:
    return [{"timestamp": "2025-11-24T16:00:00Z", "sampledValue": [
        {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}]}]


def test_frames_through_the_worker_export_as_ev_chart_expects(chdb_client, database: str, tmp_path: Path) -> None:
    """OCPP 1.6 and 2.0.1 frames through the worker's frame processor and ClickHouse sink (the worker's code,
    without its Kafka shell), then the export: the token type reaches payment_method, the attempt session_error."""
    one = Script("CP-1")  # OCPP 1.6: its idTags say nothing of how the driver paid
    one.at(0).status(1, "Available").status(2, "Available")
    one.at(10).status(1, "Preparing").authorize("TAG-1").at(12).start(1, 7, id_tag="TAG-1", meter_start=1000)
    one.at(13).status(1, "Charging").at(30).status(2, "Preparing").at(31).start(2, 8, id_tag="", meter_start=0)
    one.at(32).status(2, "Charging").at(600).meter(1, 7, energy(4000)).meter(2, 8, energy(2500))
    one.at(900).status(2, "Finishing").at(901).stop(8, 3000, reason="EmergencyStop").at(960).status(2, "Available")
    one.at(1200).status(1, "Finishing").at(1201).stop(7, 9000, reason="Local").at(1260).status(1, "Available")
    two = [station_event(0, 5, "Started", idToken={"idToken": "04A2B3C4", "type": "ISO14443"},
                         meterValue=register(500, "Transaction.Begin"), info={"chargingState": "Charging"}),
           station_event(1, 700, "Ended", meterValue=register(12_500, "Transaction.End"),
                         info={"stoppedReason": "EVDisconnected", "chargingState": "Idle"})]
    processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
    for offset, envelope in enumerate(sorted(one.envelopes + two, key=lambda e: e.gateway_ts_ms)):
        processor.process(0, offset, envelope.key(), envelope.model_dump_json().encode())
    processor.advance(0, T0_MS + 7_200_000)  # the worker's idle clock: every window has passed
    asyncio.run(ClickHouseSink(chdb_client, database).write(processor.take().rows, token="e2e"))

    stations = parse_stations("charge_point_id,connector_id,station_id,port_id,network_provider,default_payment_method\n"
                              "CP-1,1,ST-1,ST-1-1,acme_network,credit_card\nCP-1,2,ST-1,ST-1-2,acme_network,credit_card\n"
                              "CS-1,1,ST-2,ST-2-1,acme_network,\n")
    done = export(ClientSource(chdb_client), database, Quarter.parse("2025Q4"), tmp_path, stations, T0_MS + 86_400_000)
    assert_valid(done.files)
    with done.files[0].open(newline="") as handle:
        m2 = {(r["port_id"]): r for r in csv.DictReader(handle)}
    assert {port: (r["session_error"], r["payment_method"], r["energy_kwh"]) for port, r in m2.items()} == {
        "ST-1-1": ("no_error", "credit_card", "8.00"),  # 1.6 idTag: the stations file's default
        "ST-1-2": ("stop_emergency_stop", "free", "3.00"),  # 1.6 start with an empty idTag
        "ST-2-1": ("no_error", "rfid_card", "12.00"),  # 2.0.1 ISO14443
    }
    assert (done.sessions, done.ports, done.outages, done.no_data_rows) == (3, 3, 0, (0, 3))
