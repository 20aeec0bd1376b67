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


def test_kafka_status_reports_the_running_broker(kafka_bootstrap: str, local_kafka_settings) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ocpp_pipeline", "kafka", "status"], capture_output=True, text=True, cwd=ROOT
    )
    from infra.local_kafka import LocalBroker

    if LocalBroker(local_kafka_settings).pid() is None:
        pytest.skip("the broker in use was not started from this checkout's folder")
    assert out.returncode == 0 and "running" in out.stdout and kafka_bootstrap in out.stdout
