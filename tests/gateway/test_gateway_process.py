"""``ocpp-pipeline gateway`` as a process: serves chargers, and on SIGTERM stops accepting,
closes connections with 1001 and flushes Kafka before it exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from websockets.asyncio.client import connect

from infra.settings import KafkaSettings
from tests.conftest import free_port
from tests.gateway.live import exchange

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_closes_connections_with_1001_and_exits_cleanly(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "OCPP_KAFKA_PARTITIONS": "2",
           "OCPP_GATEWAY_ID": "gw-proc", "OCPP_LOG_FORMAT": "json"}
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_pipeline", "gateway", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )

    async def run():
        for _ in range(200):
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/ocpp/CP-SIG", subprotocols=["ocpp1.6"])
                break
            except OSError:
                await asyncio.sleep(0.1)
        reply = await exchange(ws, '[2,"h","Heartbeat",{}]')
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(ws.wait_closed(), 30)
        return reply, ws.close_code

    try:
        reply, code = asyncio.run(run())
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "gateway.log").read_text()
    assert reply[0] == 3
    assert code == 1001, output
    assert rc == 0, output
    # JSON logs: every line one object a log collector ingests as is.
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any("flushing Kafka" in r["message"] for r in records)
