"""The read path and operator writes against a running worker (SECURITY.md's attack catalogue): every attack on
/sql is refused with a clear one-line error, and the worker goes on ingesting; ``sql`` finds the worker through the
file it published; ``outages exclude`` works while the worker runs, and a replay rebuilds the exclusions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from infra import read_endpoint
from infra.read_path import FOLDER_HEADER
from infra.topic_admin import ensure_topics
from tests.processors.test_worker_live import WorkerProcess, expected_outputs, fleet, produce, worker_env

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocpp_pipeline", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True)


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_attacks_are_refused_and_ingestion_goes_on(kafka_settings, unique: str, tmp_path: Path) -> None:
    env = worker_env(kafka_settings, tmp_path / "home", unique, OCPP_WORKER_SQL_MAX_MEMORY_MB="256")
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    asyncio.run(ensure_topics(kafka))
    first = asyncio.run(produce(kafka, fleet()[:2]))
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_for("SELECT count() FROM ocpp.frames FINAL", [[len(first)]])
        endpoint = read_endpoint.read(worker.folder)
        assert endpoint is not None and endpoint.token and endpoint.pid == worker.proc.pid
        assert (worker.folder / read_endpoint.FILE_NAME).stat().st_mode & 0o077 == 0
        auth = {"Authorization": f"Bearer {endpoint.token}", FOLDER_HEADER: str(worker.folder)}
        outfile = tmp_path / "written.txt"
        attacks = [
            (f"SELECT 'x' INTO OUTFILE '{outfile}'", auth, "POST", 400, "INTO OUTFILE"),
            ("INSERT INTO ocpp.frames (raw) VALUES ('x')", auth, "POST", 400, "this is an INSERT"),
            ("SELECT 1; DROP TABLE ocpp.sessions", auth, "POST", 400, "Multi-statements are not allowed"),
            ("SELECT 1 /* unterminated", auth, "POST", 400, "Multiline comment is not closed"),
            ("SELECT 1 SETTINGS max_memory_usage = 0, readonly = 0", auth, "POST", 400, "SETTINGS"),
            ("SELECT * FROM file('/etc/hostname', 'LineAsString')", auth, "POST", 400, "table function file()"),
            ("SELECT * FROM url('http://127.0.0.1:1/', 'CSV')", auth, "POST", 400, "table function url()"),
            ("SELECT file('/etc/hostname')", auth, "POST", 400, "reads files"),
            ("SELECT count() FROM numbers(1000000000) AS a CROSS JOIN numbers(1000000000) AS b", auth, "POST", 400,
             "MEMORY_LIMIT_EXCEEDED"),
            ("SELECT count() FROM ocpp.sessions", {}, "POST", 401, "bearer token is required"),
            ("SELECT count() FROM ocpp.sessions", {**auth, "Authorization": "Bearer wrong"}, "POST", 401, "bearer token"),
            ("SELECT count() FROM ocpp.sessions", auth, "GET", 405, "Method Not Allowed"),
            ("SELECT count() FROM ocpp.sessions", {**auth, FOLDER_HEADER: str(tmp_path / "other")}, "POST", 409,
             "this worker serves"),
        ]
        for query, headers, method, status, message in attacks:
            code, body = post(endpoint.url, query.encode(), headers, method)
            assert (code, message in body) == (status, True), (query, code, body)
        assert not outfile.exists()
        refused = cli(env, "sql", "DROP TABLE ocpp.sessions")
        assert refused.returncode == 2 and "this is a DROP" in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1

        # Ingestion went on: frames sent after the attacks become sessions.
        rest = asyncio.run(produce(kafka, fleet()[2:]))
        expected = expected_outputs(first + rest)
        worker.wait_for("SELECT count() FROM ocpp.sessions FINAL", [[len(expected.sessions)]])
        answered = cli(env, "sql", "SELECT count() AS n FROM ocpp.sessions FINAL", "--format", "json")
        assert answered.returncode == 0 and json.loads(answered.stdout) == {"n": len(expected.sessions)}

        # An exclusion while the worker runs: checked against the data, an event, stored, naming the outages.
        (first_ms, last_ms), = worker.query("SELECT toUnixTimestamp64Milli(min(received_at)), "
                                            "toUnixTimestamp64Milli(max(received_at)) FROM ocpp.frames WHERE charge_point_id = 'CP-0'")
        from datetime import datetime, timezone

        window = [datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat() for ms in (first_ms, last_ms + 1)]
        unseen = cli(env, "outages", "exclude", "--charge-point", "CP-404", "--from", window[0], "--to", window[1],
                     "--reason", "vandalism")
        assert unseen.returncode == 2 and "never seen charge point 'CP-404'" in unseen.stderr and "--force" in unseen.stderr
        done = cli(env, "outages", "exclude", "--charge-point", "CP-0", "--from", window[0], "--to", window[1],
                   "--reason", "utility_interruption", "--by", "grid-desk", "--reference", "UTIL-7", "--note", "feeder")
        assert done.returncode == 0, done.stderr
        assert "recorded" in done.stdout and "by grid-desk, reference UTIL-7" in done.stdout
        worker.wait_for("SELECT recorded_by, reference, forced FROM ocpp.outage_exclusions FINAL", [["grid-desk", "UTIL-7", False]])
        named = worker.query("SELECT DISTINCT excluded_reason FROM ocpp.port_outages_with_exclusions "
                             "WHERE charge_point_id = 'CP-0'")
        assert named == [["utility_interruption"]]
        assert worker.query("SELECT count() FROM ocpp.port_outages_with_exclusions WHERE charge_point_id = 'CP-1' "
                            "AND excluded_reason != ''") == [[0]]
    finally:
        worker.stop()
    assert not (worker.folder / read_endpoint.FILE_NAME).exists()  # withdrawn on a clean stop

    # No worker: sql reads the folder itself; a replay rebuilds the exclusions from their topic.
    direct = cli(env, "sql", "SELECT count() AS n FROM ocpp.outage_exclusions FINAL", "--format", "csv")
    assert direct.returncode == 0 and direct.stdout.split() == ["n", "1"], direct.stderr
    replayed = cli(env, "replay", "--database", "rebuilt", "--quiet")
    assert replayed.returncode == 0 and "1 exclusions" in replayed.stdout, replayed.stderr
    rebuilt = cli(env, "sql", "SELECT recorded_by, reference FROM rebuilt.outage_exclusions FINAL", "--format", "csv")
    assert rebuilt.stdout.split() == ["recorded_by,reference", "grid-desk,UTIL-7"]
