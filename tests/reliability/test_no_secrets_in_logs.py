"""Credentials never reach a log or Kafka: a gateway *process* at debug level with security
profile 1 sees right and wrong passwords (also in a raw, hand-made upgrade request); then every
byte it logged, and every frame it wrote to Kafka, is scanned for them in
plain text, base64 and percent-encoded forms."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from gateway.credentials import Credentials
from infra.settings import KafkaSettings
from tests.conftest import free_port, wait_listening
from tests.gateway.live import read_envelopes
from tests.gateway.test_security_profiles import basic, outcome
from tests.reliability import adversarial

ROOT = Path(__file__).resolve().parents[2]
RIGHT = "Right-Secret-7f3a9c"
WRONG = ["Wrong-Secret-41d2", "Wrong:With:Colons-88"]


def forms(secret: str) -> set[str]:
    return {secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe="")} | {
        base64.b64encode(f"{user}:{secret}".encode()).decode() for user in ("CP-1", "CP-2")}


def test_no_password_in_any_log_or_frame(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    Credentials.set_entry(tmp_path / "credentials.json", "CP-1", RIGHT)
    port = free_port()
    prefix = f"t{unique}."
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "OCPP_KAFKA_TOPIC_PREFIX": prefix,
           "OCPP_KAFKA_PARTITIONS": "2", "OCPP_GATEWAY_SECURITY_PROFILE": "1",
           "OCPP_GATEWAY_CREDENTIALS_FILE": str(tmp_path / "credentials.json"), "OCPP_LOG_FORMAT": "json"}
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:
        gateway = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway", "--host", "127.0.0.1", "--port", str(port),
                                    "--log-level", "debug"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while b"listening" not in log_path.read_bytes():
            assert gateway.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        wait_listening(port)  # the line can come before every process of the gateway accepts
        uri = f"ws://127.0.0.1:{port}/ocpp"

        async def attempts():
            results = [await outcome(f"{uri}/CP-1", additional_headers=basic("CP-1", RIGHT))]
            for wrong in WRONG:
                results.append(await outcome(f"{uri}/CP-1", additional_headers=basic("CP-1", wrong)))
                results.append(await outcome(f"{uri}/CP-2", additional_headers=basic("CP-2", wrong)))
            results.append(await outcome(f"{uri}/CP-3"))  # no credentials at all
            request = adversarial.handshake_request(random.Random(1), "/ocpp/CP-1", port)
            # Credentials smuggled after a header line break, in the raw request.
            request = request.replace(b"\r\n\r\n", f"\r\nX-Forwarded-For: 10.0.0.1\r\nAuthorization: Basic "
                                                   f"{base64.b64encode(f'CP-1:{WRONG[1]}'.encode()).decode()}\r\n\r\n".encode())
            results.append(await adversarial.handshake(port, request))
            return results

        results = asyncio.run(attempts())
        assert results[0] == "open" and all(r in (401, 400, 404) for r in results[1:-1]), results
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)
    logged = log_path.read_text()
    assert "DEBUG" in logged.upper() or '"level": "debug"' in logged  # the verbose level really ran
    envelopes = asyncio.run(read_envelopes(kafka_settings.model_copy(update={"topic_prefix": prefix}),
                                           f"{prefix}ocpp.frames.v1", lambda e: len(e) >= 2, timeout_s=20))
    written = logged + "".join(e.model_dump_json() for e in envelopes)
    for secret in [RIGHT, *WRONG]:
        for form in forms(secret):
            assert form not in written, f"{form!r} (a form of a password) was logged or written"
