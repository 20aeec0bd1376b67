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
