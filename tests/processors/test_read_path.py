"""``ocpp-pipeline sql``: read-only through both paths (direct and via the worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processors.test_worker_live import WorkerProcess, worker_env

ROOT = Path(__file__).resolve().parents[2]


def sql(env: dict[str, str], query: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", query, *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True)


WRITES = ["INSERT INTO ocpp.frames (raw) VALUES ('x')", "DROP TABLE ocpp.sessions", "ALTER TABLE ocpp.sessions DELETE WHERE 1"]


def test_the_sql_command_refuses_writes_with_and_without_a_worker(kafka_settings, unique: str, tmp_path: Path) -> None:
    env = worker_env(kafka_settings, tmp_path / "home", unique)
    created = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "db", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    for write in WRITES:
        direct = sql(env, write)
        assert direct.returncode == 2 and "readonly" in direct.stderr.lower(), (write, direct.stderr)
    worker = WorkerProcess(env, tmp_path / "worker.log")  # one worker for every write (a start is ~10 s)
    try:
        worker.wait_for("SELECT 1", [[1]])
        for write in WRITES:
            via_worker = sql(env, write)
            assert via_worker.returncode == 2 and "readonly" in via_worker.stderr.lower(), (write, via_worker.stderr)
        answered = sql(env, "SELECT count() AS n FROM ocpp.sessions")
        assert answered.returncode == 0 and answered.stdout.splitlines()[0].strip() == "n"
    finally:
        worker.stop()
    assert sql(env, "SELECT count() FROM ocpp.sessions", "--format", "csv").stdout.splitlines() == ["count()", "0"]
