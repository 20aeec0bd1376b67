"""``ocpp-pipeline gateway --processes 2`` as real processes: one chargers' port and one admin port
(SO_REUSEPORT) served by both, one /metrics view for the host on the admin port (the chargers' port
refuses it), probes for the whole, transactionIds of disjoint classes, a killed process replaced,
SIGTERM drains every process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from infra.settings import KafkaSettings
from tests.conftest import free_port
from tests.gateway.live import exchange

ROOT = Path(__file__).resolve().parents[2]
CHARGERS = 40


def http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def wait_for(condition, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gateway_children(pid: int) -> list[int]:
    """The gateway processes the supervisor spawned (not multiprocessing's resource tracker)."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # gone between the two reads (the killed process, reaped): not a gateway process any more
                continue
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return sorted(found)


def sockets_of(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


def metric(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


@pytest.fixture
def two_processes(kafka_settings: KafkaSettings, tmp_path: Path, unique: str) -> Iterator[tuple[subprocess.Popen, int, int, Path]]:
    port, admin = free_port(), free_port()
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "OCPP_KAFKA_PARTITIONS": "2",
           "OCPP_KAFKA_TOPIC_PREFIX": f"t{unique}.", "OCPP_GATEWAY_ID": "gw-multi", "OCPP_GATEWAY_PING_INTERVAL_S": "0"}
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocpp_pipeline", "gateway", "--host", "127.0.0.1", "--port", str(port), "--processes", "2",
             "--admin-port", str(admin), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: http(admin, "/readyz")[0] == 200, what="both processes ready")
        yield proc, port, admin, log_path
    finally:
        if proc.poll() is None:
            proc.kill()  # the supervisor only: its children are stopped below, by pid
            proc.wait()
        for child in gateway_children(proc.pid) if proc.poll() is None else []:
            os.kill(child, signal.SIGKILL)


def test_two_processes_serve_one_port_answer_for_the_host_and_drain_on_sigterm(two_processes) -> None:
    proc, port, admin, log_path = two_processes
    children = gateway_children(proc.pid)
    assert len(children) == 2
    sockets_before = {pid: sockets_of(pid) for pid in children}

    async def run() -> tuple[list[int], list[tuple[int, str]], set[int | None]]:
        sockets = [await connect(f"ws://127.0.0.1:{port}/ocpp/CP-M{i}", subprotocols=["ocpp1.6"]) for i in range(CHARGERS)]
        ids = []
        for i, ws in enumerate(sockets):
            reply = await exchange(ws, f'[2,"s{i}","StartTransaction",{{"connectorId":1,"idTag":"T","meterStart":0,'
                                       f'"timestamp":"2025-11-24T16:00:00Z"}}]')
            ids.append(reply[2]["transactionId"])
        spread = {pid: sockets_of(pid) - before for pid, before in sockets_before.items()}
        scrapes = [http(admin, "/metrics") for _ in range(6)]  # any process answers: all say the same
        assert all(spread[pid] > 0 for pid in spread), spread
        assert http(admin, "/healthz")[0] == 200 and http(admin, "/readyz")[0] == 200
        assert {http(port, path)[0] for path in ("/healthz", "/readyz", "/metrics") for _ in range(3)} == {404}
        proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.wait_for(ws.wait_closed(), 30) for ws in sockets))
        return ids, scrapes, {ws.close_code for ws in sockets}

    ids, scrapes, close_codes = asyncio.run(run())
    rc = proc.wait(60)
    output = log_path.read_text()
    assert {status for status, _ in scrapes} == {200}
    assert {metric(text, "ocpp_gateway_open_connections") for _, text in scrapes} == {CHARGERS}
    assert {metric(text, "ocpp_gateway_kafka_up") for _, text in scrapes} == {1}
    # Each process gives ids of its own class (mod 2): both classes appear, so both processes allocated.
    assert {i % 2 for i in ids} == {0, 1}
    assert close_codes == {1001}, output
    assert rc == 0, output
    assert not any(Path(f"/proc/{pid}").exists() and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in children)


def test_a_killed_process_is_replaced_and_the_host_is_unhealthy_meanwhile(two_processes) -> None:
    proc, port, admin, log_path = two_processes
    first, second = gateway_children(proc.pid)
    os.kill(first, signal.SIGKILL)
    statuses: list[int] = []

    def replaced() -> bool:
        statuses.append(http(admin, "/healthz")[0])
        children = gateway_children(proc.pid)
        return len(children) == 2 and first not in children and statuses[-1] == 200

    wait_for(replaced, what="the killed process replaced")
    assert 503 in statuses, statuses  # /healthz said so while one process was missing
    assert second in gateway_children(proc.pid)
    wait_for(lambda: http(admin, "/readyz")[0] == 200, what="ready again")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_path.read_text()
