"""The command line: documented settings, DDL rendering, the broker status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocpp_pipeline.settings_doc import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting() -> None:
    assert settings_table() in (ROOT / "README.md").read_text()


def test_print_ddl_renders_both_dialects() -> None:
    embedded = subprocess.run(
        [sys.executable, "-m", "ocpp_pipeline", "db", "migrate", "--print-ddl"], capture_output=True, text=True, check=True
    ).stdout
    cluster = subprocess.run(
        [sys.executable, "-m", "ocpp_pipeline", "db", "migrate", "--print-ddl", "--cluster", "prod"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "ReplacingMergeTree(version)" in embedded and "ON CLUSTER" not in embedded
    assert "ON CLUSTER 'prod'" in cluster and "Distributed('prod'" in cluster


def test_kafka_status_reports_the_running_broker(kafka_bootstrap: str) -> None:
    """The suite's own broker, found by `kafka status` through the environment the suite set."""
    out = subprocess.run(
        [sys.executable, "-m", "ocpp_pipeline", "kafka", "status"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0 and "running" in out.stdout and kafka_bootstrap in out.stdout, out.stdout + out.stderr


def test_the_suite_never_uses_make_runs_broker_or_data(kafka_bootstrap: str, suite_home: Path) -> None:
    """make run's broker answers on 127.0.0.1:9092 with its data in .local/: the suite's is elsewhere,
    and every process a test starts inherits a home under the session's temporary folder."""
    import os

    from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings

    project_local = (ROOT / ".local").resolve()
    assert kafka_bootstrap != "127.0.0.1:9092"
    assert KafkaSettings().bootstrap_servers == kafka_bootstrap
    assert project_local not in LocalKafkaSettings().run_dir.parents
    assert project_local not in Path(ClickHouseSettings().resolved_dsn().removeprefix("chdb://")).parents
    assert Path(os.environ["OCPP_HOME"]) == suite_home


def test_every_setting_reads_from_the_environment_as_text() -> None:
    """The environment only holds strings: each setting must accept its documented default as text
    (a Literal[0, 1, 2, 3] once refused OCPP_GATEWAY_SECURITY_PROFILE=2 and the gateway would not start)."""
    import os

    from ocpp_pipeline.settings_doc import SETTINGS_CLASSES, _variable

    for cls in SETTINGS_CLASSES:
        for name, field in cls.model_fields.items():
            if field.default_factory is not None:
                continue  # computed (host name, OCPP_HOME): no fixed text to give
            value = field.get_default()
            if value is None or isinstance(value, (tuple, Path)):
                continue  # tuples are JSON lists in the environment; paths are resolved
            text = str(value).lower() if isinstance(value, bool) else str(value)
            variable = _variable(cls, name)
            old = os.environ.get(variable)
            os.environ[variable] = text
            try:
                assert getattr(cls(), name) == value, variable
            finally:
                if old is None:
                    del os.environ[variable]
                else:
                    os.environ[variable] = old
    os.environ["OCPP_GATEWAY_SECURITY_PROFILE"] = "3"
    try:
        import pytest
        from pydantic import ValidationError

        from gateway.settings import GatewaySettings

        with pytest.raises(ValidationError, match="OCPP_GATEWAY_TLS_CERT_FILE"):
            GatewaySettings()
    finally:
        del os.environ["OCPP_GATEWAY_SECURITY_PROFILE"]


@pytest.mark.parametrize("argv, ocpp, mix", [
    (["dev"], "1.6", "1.6:0.5,2.0.1:0.5"),  # make run shows a network migrating to 2.0.1
    (["dev", "--ocpp", "2.0.1"], "2.0.1", None),  # a version for the whole fleet drops the default mix
    (["dev", "--ocpp-mix", "1.6:1"], "1.6", "1.6:1"),
    (["simulate"], "1.6", None),
])
def test_the_simulated_fleet_speaks_the_protocols_asked_for(argv: list[str], ocpp: str, mix: str | None) -> None:
    from ocpp_pipeline.cli import build_parser, simulator_settings
    from ocpp_pipeline.dev import DEV_SIMULATOR_DEFAULTS

    settings = simulator_settings(build_parser().parse_args(argv), DEV_SIMULATOR_DEFAULTS if argv[0] == "dev" else None)
    assert (settings.ocpp, settings.ocpp_mix) == (ocpp, mix)


# --- reliability reports (KPIS.md): outages exclude, report uptime | success | ev-chart ---------------------


@pytest.fixture
def kpi_env(monkeypatch: pytest.MonkeyPatch, chdb_settings, database: str) -> str:
    """The commands, run in this process, on the test's migrated database in the session's chDB folder;
    no worker publishes a read endpoint there, so they read the folder directly (read-only)."""
    monkeypatch.setenv("OCPP_HOME", str(chdb_settings.home))
    monkeypatch.setenv("OCPP_CLICKHOUSE_DATABASE", database)
    return database


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from ocpp_pipeline.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_uptime_with_an_exclusion_in_every_format(kpi_env: str, chdb_client, capsys) -> None:
    import json

    from kpi.exclusions import new_exclusion
    from ocpp_pipeline.reports import parse_timestamp
    from tests.kpi.helpers import T0, insert_exclusions, insert_outages, insert_status, outage

    insert_status(chdb_client, kpi_env, "CP-1", 1, -60)
    insert_outages(chdb_client, kpi_env, [outage("CP-1", 1, 60, 204, outage_id="a")])  # 01:00-03:24 on 2026-07-01
    # What the worker stores of `outages exclude --from 2026-07-01T03:00 --to 2026-07-01T06:00+02:00` (live: test_read_path)
    insert_exclusions(chdb_client, kpi_env, [new_exclusion(
        "CP-1", 0, parse_timestamp("2026-07-01T03:00", "--from"), parse_timestamp("2026-07-01T06:00+02:00", "--to"),
        "utility_interruption", "grid", recorded_at=T0, recorded_by="ops")]) 
    code, out, _ = run_cli(capsys, "report", "uptime", "--from", "2026-07-01", "--to", "2026-07-02", "--format", "json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"charge_point_id": "CP-1", "connector_id": 1, "period_minutes": 1440.0, "outage_minutes": 144.0,
         "excluded_minutes": 24.0, "uptime_pct": 91.667}]
    code, out, _ = run_cli(capsys, "report", "uptime", "--from", "2026-07-01", "--to", "2026-07-02", "--format", "csv")
    assert out.splitlines() == ["charge_point_id,connector_id,period_minutes,outage_minutes,excluded_minutes,uptime_pct",
                                "CP-1,1,1440,144,24,91.667"]
    code, out, _ = run_cli(capsys, "report", "uptime", "--from", "2026-07-01", "--to", "2026-07-02")
    lines = [[cell.strip() for cell in line.split("│")] for line in out.splitlines()]
    assert lines[0] == ["charge_point_id", "connector_id", "period_minutes", "outage_minutes", "excluded_minutes",
                        "uptime_pct"]
    assert lines[2] == ["CP-1", "1", "1440", "144", "24", "91.667"] and lines[-1] == ["(1 row)"]


def test_report_success_by_charger(kpi_env: str, chdb_client, capsys) -> None:
    import json

    from tests.kpi.helpers import attempt, insert_attempts

    insert_attempts(chdb_client, kpi_env, [attempt("CP-1", 1, 10, delivered=True, ended_ok=True, delay_s=12.0),
                                           attempt("CP-1", 2, 20, delivered=False, ended_ok=False)])
    code, out, _ = run_cli(capsys, "report", "success", "--from", "2026-07-01", "--to", "2026-07-02", "--by", "charger",
                           "--format", "json")
    assert code == 0 and json.loads(out) == {
        "charge_point_id": "CP-1", "attempts": 2, "deliveries": 1, "ok_stops": 1, "charge_start_success_pct": 50.0,
        "charge_end_success_pct": 100.0, "session_success_pct": 50.0, "start_delay_p50_s": 12.0,
        "start_delay_p90_s": 12.0}


def test_report_ev_chart_writes_csv_files(kpi_env: str, chdb_client, capsys, tmp_path: Path) -> None:
    from tests.kpi.helpers import insert_status

    insert_status(chdb_client, kpi_env, "CP-1", 1, 0)
    stations = tmp_path / "stations.csv"
    stations.write_text("charge_point_id,connector_id,station_id,port_id,network_provider\nCP-1,1,ST-1,ST-1-A,acme\n")
    code, out, _ = run_cli(capsys, "report", "ev-chart", "--quarter", "2026Q3", "--out", str(tmp_path / "q3"),
                           "--stations", str(stations))
    assert code == 0 and "0 sessions (module 2), 1 ports (module 3), 0 outages (module 4)" in out
    assert sorted(p.name for p in (tmp_path / "q3").iterdir()) == [
        "module2_sessions_2026Q3.csv", "module3_uptime_2026Q3.csv", "module4_outages_2026Q3.csv"]
    code, _, err = run_cli(capsys, "report", "ev-chart", "--quarter", "2026Q3", "--out", str(tmp_path / "q3"))
    assert code == 2 and "--stations FILE" in err


@pytest.mark.parametrize("argv, message", [
    (["outages", "exclude", "--charge-point", "CP-1", "--from", "2026-07-02", "--to", "2026-07-01",
      "--reason", "vandalism"], "window is empty"),
    (["outages", "exclude", "--charge-point", "CP-1", "--from", "yesterday", "--to", "2026-07-01",
      "--reason", "vandalism"], "--from 'yesterday' is not an ISO 8601 time"),
    (["outages", "exclude", "--charge-point", "CP-1", "--connector", "-2", "--from", "2026-07-01", "--to",
      "2026-07-02", "--reason", "vandalism"], "numbered from 1"),
    (["report", "uptime", "--from", "2026-07-02", "--to", "2026-07-01"], "must be after --from"),
    (["report", "success", "--from", "2026-13-01", "--to", "2026-07-01"], "is not a date"),
    (["report", "ev-chart", "--quarter", "2026Q9", "--out", "x", "--stations", "x"], "not like 2026Q3"),
])
def test_bad_report_and_exclusion_arguments_are_clear_errors(kpi_env: str, capsys, argv: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err


def test_an_unknown_exclusion_reason_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli(capsys, "outages", "exclude", "--charge-point", "CP-1", "--from", "2026-07-01", "--to", "2026-07-02",
                "--reason", "bad_weather")
    assert "invalid choice: 'bad_weather'" in capsys.readouterr().err


# --- the read path's one-line refusals (the CLI in a process of its own: one chDB folder per process) ------------


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocpp_pipeline", *argv], cwd=ROOT, env=env, capture_output=True, text=True)


def one_line_refusal(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2 and fragment in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.fixture
def holder(tmp_path: Path):
    """A process that holds a chDB folder (migrated) and serves nothing, as a hung or starting worker would."""
    home = tmp_path / "home"
    code = ("import sys; from infra import clickhouse; from infra.settings import ClickHouseSettings; "
            f"c = clickhouse.connect(ClickHouseSettings(home={str(home)!r})); clickhouse.migrate(c, 'ocpp'); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield home, proc
    proc.stdin.close()
    proc.wait(30)
    proc.stdout.close()


def test_a_folder_held_by_a_worker_that_does_not_answer_is_a_one_line_refusal(holder) -> None:
    import os

    from infra import read_endpoint
    from tests.conftest import free_port

    home, proc = holder
    env = {**os.environ, "OCPP_HOME": str(home)}
    one_line_refusal(cli(env, "sql", "SELECT 1"), f"is held by process {proc.pid} (one process per chDB folder)")
    folder = Path(os.path.realpath(home / "clickhouse"))
    read_endpoint.publish(folder, read_endpoint.Endpoint("127.0.0.1", free_port(), str(folder), "ocpp", proc.pid,
                                                         read_endpoint.process_started(proc.pid), "token"))
    one_line_refusal(cli(env, "sql", "SELECT 1"), f"the worker (pid {proc.pid}) holds {folder} but its read endpoint")
    one_line_refusal(cli(env, "report", "uptime", "--from", "2026-07-01", "--to", "2026-07-02"), "does not answer")


def test_a_stale_endpoint_file_is_passed_over_and_an_unmigrated_folder_refused(tmp_path: Path) -> None:
    import os

    from infra import read_endpoint

    home = tmp_path / "home"
    env = {**os.environ, "OCPP_HOME": str(home)}
    one_line_refusal(cli(env, "sql", "SELECT 1"), "no ClickHouse data in")
    subprocess.run([sys.executable, "-c", "from infra import clickhouse; from infra.settings import ClickHouseSettings; "
                    f"clickhouse.connect(ClickHouseSettings(home={str(home)!r})).command('CREATE DATABASE other')"], cwd=ROOT, check=True)
    one_line_refusal(cli(env, "sql", "SELECT 1"), "database ocpp in")
    one_line_refusal(cli(env, "outages", "exclude", "--charge-point", "CP-1", "--from", "2026-07-01", "--to",
                         "2026-07-02", "--reason", "vandalism"), "never migrated")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = Path(os.path.realpath(home / "clickhouse"))
    read_endpoint.publish(folder, read_endpoint.Endpoint("127.0.0.1", 1, str(folder), "ocpp", gone.pid, None, "t"))
    assert cli(env, "db", "migrate").returncode == 0
    answered = cli(env, "sql", "SELECT count() AS n FROM ocpp.sessions", "--format", "csv")
    assert answered.returncode == 0 and answered.stdout.split() == ["n", "0"], answered.stderr


def test_server_mode_never_reads_with_the_ingest_dsn(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "OCPP_CLICKHOUSE_DSN": "http://ingest:secret@127.0.0.1:1/ocpp"}
    done = cli(env, "sql", "SELECT 1")
    one_line_refusal(done, "set OCPP_CLICKHOUSE_READ_DSN")
    assert "secret" not in done.stderr
