"""``ocpp-pipeline dev``: the main job on one machine. A charger (the ``ocpp`` library's ChargePoint)
talks to the gateway it started; the session shows up through ``ocpp-pipeline sql``; SIGTERM
stops every process it started."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Reason
from websockets.asyncio.client import connect

from infra import local_kafka
from infra.settings import LocalKafkaSettings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


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
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=1000, timestamp=now()))
        await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.charging, timestamp=now()))
        await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.finishing, timestamp=now()))
        await cp.call(call.StopTransaction(meter_stop=8500, timestamp=now(), transaction_id=start.transaction_id, reason=Reason.local))
        listener.cancel()
        return start.transaction_id


def test_dev_runs_the_pipeline_and_stops_everything(tmp_path: Path, local_kafka_settings: LocalKafkaSettings, unique: str) -> None:
    home = tmp_path / "home"
    jars = LocalKafkaSettings(home=home).libs_dir
    local_kafka.fetch(local_kafka_settings)
    jars.parent.mkdir(parents=True)
    jars.symlink_to(local_kafka_settings.libs_dir)
    gateway_port, web_port, kafka_port = free_port(), free_port(), free_port()
    env = {**os.environ, "OCPP_HOME": str(home), "OCPP_LOCAL_KAFKA_PORT": str(kafka_port),
           "OCPP_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()), "OCPP_GATEWAY_HOST": "127.0.0.1",
           "OCPP_GATEWAY_PORT": str(gateway_port), "OCPP_WORKER_WEB_PORT": str(web_port),
           "OCPP_WORKER_APP_ID": f"dev{unique}", "OCPP_WORKER_STATUS_WINDOW_S": "5", "OCPP_KAFKA_PARTITIONS": "2"}
    dev = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "dev"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in dev.stdout:
            lines.append(line)
            if line.startswith("running;"):
                break
        output = "".join(lines)
        assert "ready in" in output, output
        pids = [int(p) for p in re.findall(r"(?:gateway|worker) pid (\d+)", output)]
        broker_pid = local_kafka.LocalBroker(LocalKafkaSettings(home=home, port=kafka_port)).pid()
        assert len(pids) == 2 and broker_pid is not None
        tx = asyncio.run(charge(gateway_port))
        deadline, rows = time.monotonic() + 90, ""
        while time.monotonic() < deadline:
            rows = subprocess.run(
                [sys.executable, "-m", "ocpp_pipeline", "sql",
                 "SELECT transaction_id, energy_wh, stop_status FROM ocpp.sessions FINAL", "--format", "csv"],
                cwd=ROOT, env=env, capture_output=True, text=True).stdout
            if str(tx) in rows:
                break
            time.sleep(0.5)
        assert rows.splitlines()[1:] == [f"{tx},7500,Finishing"], rows
    finally:
        dev.send_signal(signal.SIGTERM)
        rest = dev.communicate(timeout=120)[0]
    assert dev.returncode == 0, rest
    assert "kafka stopped" in rest and "stopped" in rest
    for pid in pids + [broker_pid]:
        assert not _alive(pid)
