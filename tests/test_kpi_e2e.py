"""Reliability KPIs end to end: a small mixed fleet (OCPP 1.6 and 2.0.1) that goes offline (sockets
closed and dropped), faults, goes Unavailable (connectors and, in 1.6, the station), has drivers
who only present a card or only plug in, sessions that end badly and cars that stay in the bay, runs
through the real gateway, broker and worker (``ocpp-pipeline dev``). What the chargers did (the
simulator's ground truth, ``--expected``) must be what ``port_outages``, ``charge_attempts`` and the
sessions' ``blocked_after_stop_s`` say, the uptime and success rates must follow, and a replay of the
frames topic must rebuild the same rows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from datetime import datetime, timedelta, timezone
from pathlib import Path

from infra import local_kafka
from infra.settings import LocalKafkaSettings
from simulator import expectations
from simulator import kpi_expectations as kpi
from simulator.incidents import AttemptKind, OfflineHow
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
FLEET = ["--chargers", "16", "--duration", "25", "--time-scale", "400", "--quirky", "0.2", "--seed", "15",
         "--ocpp-mix", "1.6:0.5,2.0.1:0.5",
         # Idle gaps of ~3 real s (OCPP_SIMULATOR_IDLE_MEAN_S below); incidents often enough that 25 s show each kind.
         "--offline-every", "4000", "--offline-for", "800", "--offline-drop-share", "0.5", "--station-every", "8000",
         "--maintenance-share", "0.12", "--maintenance-for", "1200", "--authorize-only-share", "0.12",
         "--plugin-only-share", "0.12", "--idle-fault-share", "0.15", "--blocked-share", "0.4", "--blocked-for", "2400",
         # Sessions queued before a charger's first connection (issue #23): old timestamps, no close seen before them.
         "--backlog-share", "0.3"]
# The worker settings a short run needs: the status window after a stop, and (when the worker has one)
# the window after which an Authorize without a start is an attempt (KPIS.md: 300 s of gateway time).
STATUS_WINDOW_S = 5.0
WORKER_ENV = {"OCPP_WORKER_STATUS_WINDOW_S": str(STATUS_WINDOW_S), "OCPP_WORKER_AUTHORIZE_WINDOW_S": "5", "OCPP_SIMULATOR_IDLE_MEAN_S": "1200"}
AUTHORIZE_WINDOW_S = 5.0


def sql_json(query: str, env: dict[str, str]) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", query, "--format", "json"],
                         cwd=ROOT, env=env, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def poll(check, timeout_s: float = 60.0) -> list:
    """``check()`` until it finds no mismatch or the time is up; the last mismatches."""
    deadline, problems = time.monotonic() + timeout_s, ["not checked"]
    while problems and time.monotonic() < deadline:
        problems = check()
        if problems:
            time.sleep(1)
    return problems


def report(kind: str, env: dict[str, str], *args: str) -> list[dict] | None:
    """``ocpp-pipeline report KIND ... --format json`` as rows; None when this build has no such report."""
    today = datetime.now(timezone.utc).date()
    done = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "report", kind, "--from", str(today),
                           "--to", str(today + timedelta(days=1)), *args, "--format", "json"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode == 2 and "invalid choice" in done.stderr:
        return None
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_uptime_and_success_of_a_misbehaving_fleet_are_what_its_chargers_did(
        tmp_path: Path, local_kafka_settings: LocalKafkaSettings, unique: str) -> None:
    home = tmp_path / "home"
    local_kafka.fetch(local_kafka_settings)
    LocalKafkaSettings(home=home).libs_dir.parent.mkdir(parents=True)
    LocalKafkaSettings(home=home).libs_dir.symlink_to(local_kafka_settings.libs_dir)
    gateway_port, kafka_port = free_port(), free_port()
    expected_path = tmp_path / "expected.jsonl"
    env = {**os.environ, "OCPP_HOME": str(home), "OCPP_LOCAL_KAFKA_PORT": str(kafka_port),
           "OCPP_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()), "OCPP_GATEWAY_HOST": "127.0.0.1",
           "OCPP_GATEWAY_PORT": str(gateway_port), "OCPP_WORKER_WEB_PORT": str(free_port()), "OCPP_WORKER_SQL_PORT": "0",
           "OCPP_WORKER_APP_ID": f"kpi{unique}", "OCPP_KAFKA_PARTITIONS": "2", **WORKER_ENV}
    dev = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "dev", *FLEET, "--expected", str(expected_path)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in dev.stdout:
            lines.append(line)
            if line.startswith("running;"):
                break
        assert "ready in" in "".join(lines), "".join(lines)
        assert len(re.findall(r"(?:gateway|worker|simulator) pid (\d+)", "".join(lines))) == 3

        deadline = time.monotonic() + 120
        while not expected_path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert expected_path.exists(), (home / "logs" / "simulator.log").read_text()
        truth = kpi.load_truth(expected_path)
        did_each_kind(truth)
        sessions, _ = expectations.load(expected_path)
        assert {s["ocpp_version"] for s in sessions if s["backlog"]} == {"ocpp1.6", "ocpp2.0.1"}, "no queued session"

        # The last frame of the run, give or take: what the pipeline can have decided by then.
        as_of_ms = max(c.closed_ms or c.opened_ms for c in truth.connections)
        decided_after = as_of_ms / 1000 + AUTHORIZE_WINDOW_S + 2
        while time.time() < decided_after:
            time.sleep(0.5)
        sim = "charge_point_id LIKE 'SIM-%'"

        # Sessions stay exact when their charger goes offline mid-transaction (messages queued, 2.0.1 ``offline``), and
        # when they were queued before its first connection.
        problems = poll(lambda: expectations.session_mismatches(
            sessions, sql_json(f"SELECT * FROM ocpp.sessions FINAL WHERE {sim}", env), status_window_s=STATUS_WINDOW_S))
        assert problems == [], "\n".join(problems)

        problems = poll(lambda: kpi.outage_mismatches(truth, sql_json(f"SELECT * FROM ocpp.port_outages FINAL WHERE {sim}", env)))
        assert problems == [], "\n".join(map(str, problems))
        attempts_query = f"SELECT * FROM ocpp.charge_attempts FINAL WHERE {sim}"
        problems = poll(lambda: kpi.attempt_mismatches(truth, sql_json(attempts_query, env), as_of_ms=as_of_ms + 1,
                                                       authorize_window_s=AUTHORIZE_WINDOW_S))
        assert problems == [], "\n".join(map(str, problems))
        sessions_query = (f"SELECT charge_point_id, connector_id, transaction_id, blocked_after_stop_s FROM ocpp.sessions FINAL "
                          f"WHERE {sim}")
        problems = poll(lambda: kpi.blocked_mismatches(truth, sql_json(sessions_query, env)))
        assert problems == [], "\n".join(map(str, problems))

        # The rates: the rows' equal the truth's (Authorizes the pipeline could not yet decide aside), and the
        # reports' equal the rows' (when this build has the reports).
        rows = sql_json(attempts_query, env)
        want = kpi.success_rates(kpi.decided_attempts(truth, as_of_ms, AUTHORIZE_WINDOW_S, rows))
        decided_rows = [r for r in rows if r["kind"] != AttemptKind.AUTHORIZE_WITHOUT_START
                        or kpi.to_ms(r["started_at"]) + AUTHORIZE_WINDOW_S * 1000 <= as_of_ms]
        assert kpi.success_rates(decided_rows) == want
        assert 0 < want.delivered < want.attempts and 0 < want.ended_ok < want.delivered, want
        check_reports(truth, kpi.success_rates(rows), env)
        check_ev_chart(env, tmp_path)

        # Replay == live: the topic rebuilt into another ClickHouse folder gives the same rows.
        replay_env = {**env, "OCPP_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'replayed'}",
                      "OCPP_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}"}  # dev's broker, not the default one
        replayed = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "replay", "--quiet"], cwd=ROOT, env=replay_env,
                                  capture_output=True, text=True, timeout=300)
        assert replayed.returncode == 0, replayed.stderr
        for query in (f"SELECT * EXCEPT version FROM ocpp.port_outages FINAL WHERE {sim} ORDER BY ALL",
                      f"SELECT * EXCEPT version FROM ocpp.charge_attempts FINAL WHERE {sim} ORDER BY ALL",
                      f"SELECT charge_point_id, session_id, charging_s, suspended_ev_s, suspended_evse_s, blocked_after_stop_s "
                      f"FROM ocpp.sessions FINAL WHERE {sim} ORDER BY ALL"):
            assert sql_json(query, replay_env) == sql_json(query, env), query
    finally:
        dev.send_signal(signal.SIGTERM)
        rest = dev.communicate(timeout=120)[0]
    assert dev.returncode == 0, rest


def did_each_kind(truth: kpi.Truth) -> None:
    """The run is only a test of the KPIs if the fleet did each kind of thing they count."""
    closes = {c.how for c in truth.connections}
    assert {OfflineHow.CLOSED, OfflineHow.DROPPED, OfflineHow.RUN_END} <= closes, closes
    downs = {(d.connector_id == 0, d.status, d.ocpp_version) for d in truth.downs}
    assert {(False, "Faulted", "ocpp1.6"), (False, "Unavailable", "ocpp1.6"), (True, "Unavailable", "ocpp1.6")} <= downs, downs
    assert (True, "Faulted", "ocpp2.0.1") in downs, downs  # a 2.0.1 station's emergency stop (issue #23)
    assert {d.ocpp_version for d in truth.downs if d.connector_id} == {"ocpp1.6", "ocpp2.0.1"}
    assert {a.kind for a in truth.attempts} == set(AttemptKind)
    assert {a.ocpp_version for a in truth.attempts if a.kind != AttemptKind.START_TRANSACTION} == {"ocpp1.6", "ocpp2.0.1"}
    failures = {a.failure for a in truth.attempts}
    assert {"", "plugin_no_start", "authorize_no_start"} <= failures, failures
    assert failures - {"", "plugin_no_start", "authorize_no_start"}, failures  # a session ended badly
    blocked = [kpi.expected_blocked_s(a) for a in truth.attempts]
    assert any(b is not None and b > 3 for b in blocked), blocked


def check_reports(truth: kpi.Truth, stored: kpi.SuccessRates, env: dict[str, str]) -> None:
    """``report success --by fleet`` against the stored attempts and ``report uptime`` against the truth,
    when the CLI has them."""
    fleet = report("success", env, "--by", "fleet")
    if fleet is None:
        import warnings
        warnings.warn("this build has no `ocpp-pipeline report`: the report figures were not checked")
        return
    (row,) = fleet  # the simulated chargers are all the fleet there is
    assert (row["attempts"], row["deliveries"], row["ok_stops"]) == (stored.attempts, stored.delivered, stored.ended_ok), row
    assert abs(row["session_success_pct"] - stored.session_pct) < 0.01, row
    now_ms = int(time.time() * 1000)
    rows = report("uptime", env) or []
    midnight = int(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    expected = kpi.uptime(truth, midnight, now_ms)
    outages = kpi._by_port(kpi.expected_outages(truth))
    got = {(r["charge_point_id"], int(r["connector_id"])): float(r["uptime_pct"]) for r in rows
           if r["charge_point_id"].startswith("SIM-")}
    assert got.keys() == expected.keys()
    for port, truth_port in expected.items():
        slack = kpi.uptime_tolerance_pct(truth_port, len(outages.get(port, []))) + 0.01
        assert abs(got[port] - truth_port.uptime_pct) <= slack, (port, got[port], truth_port)


def check_ev_chart(env: dict[str, str], tmp_path: Path) -> None:
    """``report ev-chart`` of this quarter: the files pass EV-ChART's rules (tests/kpi/evchart_rules.py), every
    session is a row, and its payment_method is what its charger said (2.0.1 token types; 1.6: the default)."""
    import csv

    from kpi.ev_chart import Quarter
    from tests.kpi import evchart_rules

    today = datetime.now(timezone.utc).date()
    quarter = Quarter.parse(f"{today.year}Q{(today.month - 1) // 3 + 1}")
    ports = sql_json("SELECT DISTINCT charge_point_id, toUInt32(connector_id) AS c FROM ocpp.connector_status "
                     "WHERE connector_id >= 1 UNION DISTINCT SELECT DISTINCT charge_point_id, toUInt32(connector_id) "
                     "FROM ocpp.port_outages UNION DISTINCT SELECT DISTINCT charge_point_id, "
                     "toUInt32(assumeNotNull(connector_id)) FROM ocpp.sessions WHERE connector_id >= 1", env)
    stations = tmp_path / "stations.csv"
    stations.write_text("charge_point_id,connector_id,station_id,port_id,network_provider,default_payment_method\n"
                        + "".join(f"{p['charge_point_id']},{p['c']},ST-{p['charge_point_id']},"
                                  f"ST-{p['charge_point_id']}-{p['c']},acme_network,credit_card\n" for p in ports))
    done = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "report", "ev-chart", "--quarter", quarter.label,
                           "--out", str(tmp_path / "ev-chart"), "--stations", str(stations)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "ev-chart").iterdir())
    problems = evchart_rules.problems_in(files)
    assert problems == [], "\n".join(map(str, problems[:20]))
    # A session id is unique per charger only (two chargers started in the same gateway millisecond share one):
    # a session is its port's row.
    with files[0].open(newline="") as handle:
        found = [((r["port_id"], r["session_id"]), r) for r in csv.DictReader(handle) if r["session_id"]]
    rows = dict(found)
    assert len(rows) == len(found), sorted(key for key, _ in found)  # one row per session
    sessions = {(f"ST-{s['charge_point_id']}-{s['c']}", s["session_id"]): s for s in sql_json(
        "SELECT charge_point_id, toUInt32(connector_id) AS c, session_id, ocpp_version, id_token_type "
        "FROM ocpp.sessions FINAL WHERE connector_id >= 1 AND session_id != ''", env)}
    assert rows.keys() == sessions.keys()
    paid = {(s["ocpp_version"], s["id_token_type"], rows[key]["payment_method"]) for key, s in sessions.items()}
    assert paid <= {("ocpp1.6", "", "credit_card"), ("ocpp1.6", "NoAuthorization", "free"),
                    ("ocpp2.0.1", "ISO14443", "rfid_card"), ("ocpp2.0.1", "NoAuthorization", "free")}, paid
    assert {v for v, _, _ in paid} == {"ocpp1.6", "ocpp2.0.1"} and ("ocpp2.0.1", "ISO14443", "rfid_card") in paid
