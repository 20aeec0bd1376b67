"""``ocpp-pipeline dev``, end to end: the main job on one machine with its simulated fleet, half of it
speaking OCPP 2.0.1.

The simulator writes what its chargers did (``--expected``); the sessions in ClickHouse must be
exactly those — energy, stop reason, the status out of Charging, quirky chargers included — and
the faults must arrive on ``ocpp.faults.v1``. An independent client (the ``ocpp`` library's
ChargePoint) charges beside the fleet. SIGTERM stops every process ``dev`` started.

``dev`` secures its broker (``kafka start --secure``): gateway and worker run as their own Kafka identities,
the faults are read as the alerting reader and the replay runs as the worker, from the credentials ``dev``
says it wrote."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Reason
from websockets.asyncio.client import connect

from infra import local_kafka
from infra.kafka_acls import ALERTING, WORKER
from infra.local_credentials import LocalCredentials, env_values
from infra.settings import LocalKafkaSettings
from ocpp_pipeline.dev import simulated_clock_env
from processors.settings import WorkerSettings
from signed_meter.registry import parse_key_file
from simulator import expectations, lives
from simulator.settings import SimulatorSettings
from tests.conftest import free_port
from tests.processors.test_worker_live import read_topic

ROOT = Path(__file__).resolve().parent.parent

STATUS_WINDOW_S = 5  # the worker's, short for a short run (the expectations need it: expected_closed_by)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/cmdline").read_bytes() != b""


async def charge(port: int) -> int:
    async with connect(f"ws://127.0.0.1:{port}/ocpp/DEV-1", subprotocols=["ocpp1.6"]) as ws:
        cp = ChargePoint("DEV-1", ws)
        listener = asyncio.create_task(cp.start())
        now = lambda: datetime.now(timezone.utc).isoformat()  # noqa: E731
        await cp.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.preparing, timestamp=now()))
        # Started four minutes ago by the charger's clock (within the skew limit): 7.5 kWh in that time is
        # plausible; in the milliseconds the test takes it would not be (energy_implausible).
        started = (datetime.now(timezone.utc) - timedelta(minutes=4)).isoformat()
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=1000, timestamp=started))
        await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.charging, timestamp=now()))
        await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.finishing, timestamp=now()))
        await cp.call(call.StopTransaction(meter_stop=8500, timestamp=now(), transaction_id=start.transaction_id, reason=Reason.local))
        listener.cancel()
        return start.transaction_id


def sql_json(query: str, env: dict[str, str]) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "sql", query, "--format", "json"],
                         cwd=ROOT, env=env, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]  # JSON lines


def test_dev_with_the_simulator_lands_exactly_the_expected_sessions_and_faults(
        tmp_path: Path, local_kafka_settings: LocalKafkaSettings, unique: str) -> None:
    home = tmp_path / "home"
    jars = LocalKafkaSettings(home=home).libs_dir
    local_kafka.fetch(local_kafka_settings)
    jars.parent.mkdir(parents=True)
    jars.symlink_to(local_kafka_settings.libs_dir)
    gateway_port, web_port, kafka_port, tls_port = free_port(), free_port(), free_port(), free_port()
    expected_path = tmp_path / "expected.jsonl"
    env = {**os.environ, "OCPP_HOME": str(home), "OCPP_LOCAL_KAFKA_PORT": str(kafka_port),
           "OCPP_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()), "OCPP_LOCAL_KAFKA_TLS_PORT": str(tls_port),
           "OCPP_GATEWAY_HOST": "127.0.0.1",
           "OCPP_GATEWAY_PORT": str(gateway_port), "OCPP_WORKER_WEB_PORT": str(web_port), "OCPP_WORKER_SQL_PORT": "0",
           "OCPP_WORKER_APP_ID": f"dev{unique}", "OCPP_WORKER_STATUS_WINDOW_S": str(STATUS_WINDOW_S), "OCPP_KAFKA_PARTITIONS": "2"}
    # Half the fleet speaks OCPP 2.0.1, half of it quirky; 300x time: sessions of real minutes take seconds.
    dev = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "dev", "--chargers", "12", "--duration", "25",
                            "--time-scale", "300", "--quirky", "0.5", "--seed", "7", "--ocpp-mix", "1.6:0.5,2.0.1:0.5",
                            "--backlog-share", "0.3", "--signing-share", "0.5",
                            "--expected", str(expected_path)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in dev.stdout:
            lines.append(line)
            if line.startswith("running;"):
                break
        output = "".join(lines)
        assert "ready in" in output, output
        (folder,) = re.findall(r"credentials \(owner-only\) in (\S+)/:", output)
        identities = LocalCredentials(Path(folder))
        pids = [int(p) for p in re.findall(r"(?:gateway|worker|simulator) pid (\d+)", output)]
        broker_pid = local_kafka.LocalBroker(LocalKafkaSettings(home=home, port=kafka_port)).pid()
        assert len(pids) == 3 and broker_pid is not None
        # Half the fleet signs its readings: their meters' keys are where dev says, for `keys import`.
        (keys_path,) = re.findall(r"meter keys +(\S+) \((\d+) signing chargers", output)
        assert Path(keys_path[0]) == (home / "simulator" / "meter-keys.csv").resolve() and keys_path[1] == "6", output
        # ... and registered by dev before the worker and the fleet started (keys import, as the operator).
        assert re.search(r"meter keys registered \d+ keys of 6 signing chargers", output), output
        tx = asyncio.run(charge(gateway_port))

        deadline = time.monotonic() + 120
        while not expected_path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert expected_path.exists(), (home / "logs" / "simulator.log").read_text()
        sessions, faults = expectations.load(expected_path)
        assert len(sessions) >= 10 and any(s["quirks"] for s in sessions), sessions
        versions = {v: [s for s in sessions if s["ocpp_version"] == v] for v in ("ocpp1.6", "ocpp2.0.1")}
        assert all(len(of_version) >= 3 for of_version in versions.values()), sessions
        # Issue #23's stations are in the fleet: sessions queued before a first connection, and a 2.0.1 station that
        # numbers its transactions per EVSE (the same id on two EVSEs).
        assert any(s["backlog"] for s in sessions), sessions
        # The signing chargers' sessions say what the pipeline must make of their signed readings (issue 25), each
        # by its charger's signing fault (this seed: two honest meters, a flipped signature, a key only in the frames,
        # a reading changed after signing), both OCPP versions among them.
        registered = {e.key.charge_point_id for e in parse_key_file(Path(keys_path[0]).read_text())}
        verdict = {(): "verified", ("signature_byte_flipped",): "invalid", ("payload_changed_after_signing",): "invalid",
                   ("key_only_in_frame",): "verified_with_frame_key"}
        signed = [s for s in sessions if s["charge_point_id"] in registered or "key_only_in_frame" in s["quirks"]]
        for s in signed:
            fault = tuple(q for q in s["quirks"] if q in {q.value for q in lives.SIGNING_QUIRKS})
            assert s["signature_status"] == verdict[fault] and s["signed_start"].startswith("OCMF|"), s
        assert all(s["signature_status"] == "unsigned" for s in sessions if s not in signed)
        assert {"verified", "invalid"} <= {s["signature_status"] for s in signed}, signed
        assert {s["ocpp_version"] for s in signed} == {"ocpp1.6", "ocpp2.0.1"}, signed
        per_evse = {(s["charge_point_id"], s["transaction_id"]): s["connector_id"] for s in sessions
                    if "per_evse_transaction_ids" in s["quirks"] and s["connector_id"] == 1}
        assert any(per_evse.get((s["charge_point_id"], s["transaction_id"])) == 1 for s in sessions
                   if "per_evse_transaction_ids" in s["quirks"] and s["connector_id"] == 2), sessions

        deadline, problems = time.monotonic() + 90, ["not queried"]
        while problems and time.monotonic() < deadline:
            rows = sql_json("SELECT * FROM ocpp.sessions FINAL WHERE charge_point_id LIKE 'SIM-%'", env)
            problems = expectations.session_mismatches(sessions, rows, status_window_s=STATUS_WINDOW_S)
            if problems:
                time.sleep(1)
        assert problems == [], "\n".join(problems)
        listed = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "keys", "list", "--format", "json"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert {json.loads(r)["charge_point_id"] for r in listed.stdout.splitlines() if r.startswith("{")} == registered, \
            listed.stdout
        assert {r["ocpp_version"] for r in rows} == {"ocpp1.6", "ocpp2.0.1"}

        independent = sql_json(f"SELECT transaction_id, energy_wh, stop_status FROM ocpp.sessions FINAL "
                               f"WHERE charge_point_id = 'DEV-1'", env)
        assert independent == [{"transaction_id": str(tx), "energy_wh": 7500.0, "stop_status": "Finishing"}]

        wanted = sum(1 + f["cleared"] for f in faults)
        alerting = identities.sasl_settings(ALERTING, f"127.0.0.1:{kafka_port}")
        events = asyncio.run(read_topic(alerting, "ocpp.faults.v1", wanted))
        assert expectations.fault_mismatches(faults, events) == []

        # Replay == live for the mixed fleet: the topic rebuilt into another ClickHouse folder (the worker
        # holds its own) gives the same sessions, revision by revision.
        replay_env = {**env, "OCPP_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'replayed'}",  # as the worker, on dev's broker
                      **env_values(identities.sasl_settings(WORKER, f"127.0.0.1:{kafka_port}"))}
        replayed = subprocess.run([sys.executable, "-m", "ocpp_pipeline", "replay", "--quiet"], cwd=ROOT, env=replay_env,
                                  capture_output=True, text=True, timeout=300)
        assert replayed.returncode == 0, replayed.stderr
        query = ("SELECT charge_point_id, session_id, transaction_id, revision, energy_wh, stop_status, stop_reason, "
                 "closed_by, ocpp_version, flags FROM ocpp.sessions FINAL WHERE charge_point_id LIKE 'SIM-%' ORDER BY ALL")
        assert sql_json(query, replay_env) == sql_json(query, env)
    finally:
        dev.send_signal(signal.SIGTERM)
        rest = dev.communicate(timeout=120)[0]
    assert dev.returncode == 0, rest
    assert "simulator finished" in rest and "kafka stopped" in rest and "stopped" in rest
    simulator_log = (home / "logs" / "simulator.log").read_text()
    assert f"6 signing chargers' meters in {keys_path[0]}" in simulator_log, simulator_log  # simulate says it too
    assert "signed    6 signing chargers (3 with signing faults)" in simulator_log, simulator_log
    for pid in pids + [broker_pid]:
        assert not _alive(pid)


def test_dev_gives_the_worker_the_authorize_window_in_the_simulated_clock(monkeypatch) -> None:
    monkeypatch.delenv("OCPP_WORKER_AUTHORIZE_WINDOW_S", raising=False)
    fast = SimulatorSettings(time_scale=120)
    assert simulated_clock_env(WorkerSettings(), fast) == {"OCPP_WORKER_AUTHORIZE_WINDOW_S": "2.5"}
    assert simulated_clock_env(WorkerSettings(), None) == {}  # no simulator: real chargers, real clock
    monkeypatch.setenv("OCPP_WORKER_AUTHORIZE_WINDOW_S", "30")
    assert simulated_clock_env(WorkerSettings(), fast) == {}  # said explicitly: left alone
