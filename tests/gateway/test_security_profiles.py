"""Security profiles 0-3 enforced on real sockets (OCPP 1.6 Security Whitepaper):
1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS with the certificate bound to the charge point."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from gateway.credentials import Credentials
from infra.settings import KafkaSettings
from tests.gateway.live import exchange, gateway_settings, running_gateway

SECRET = "0123456789abcdef0123"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and client certificates for CP-1 and CP-2."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    for name, subject, ext in (
        ("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("CP-1", "/CN=CP-1", "subjectAltName=DNS:CP-1"),
        ("CP-2", "/CN=CP-2", "subjectAltName=DNS:CP-2"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    Credentials.set_entry(d / "credentials.json", "CP-1", SECRET)
    return d


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def client_tls(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return context


async def outcome(uri: str, **kwargs) -> int | str:
    """200-ish 'open' if the WebSocket opened and a Heartbeat was answered, else the HTTP status or error."""
    try:
        async with connect(uri, subprotocols=["ocpp1.6"], **kwargs) as ws:
            reply = await exchange(ws, '[2,"h","Heartbeat",{}]')
            return "open" if reply[0] == 3 else "refused-frame"
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code
    except (ssl.SSLError, ConnectionError, websockets.exceptions.InvalidHandshake, websockets.exceptions.ConnectionClosed) as exc:
        return type(exc).__name__


def test_profile_1_basic_auth(kafka_settings: KafkaSettings, unique: str, pki: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = gateway_settings(security_profile=1, credentials_file=pki / "credentials.json")

    async def run():
        async with running_gateway(settings, kafka_settings, f"test.sec.{unique}") as gw:
            uri = f"ws://127.0.0.1:{gw.port}/ocpp/CP-1"
            return (
                await outcome(uri, additional_headers=basic("CP-1", SECRET)),
                await outcome(uri),
                await outcome(uri, additional_headers=basic("CP-1", "wrong-secret")),
                await outcome(f"ws://127.0.0.1:{gw.port}/ocpp/CP-2", additional_headers=basic("CP-1", SECRET)),
            )

    caplog.set_level(logging.DEBUG)
    assert asyncio.run(run()) == ("open", 401, 401, 401)
    assert SECRET not in caplog.text and "wrong-secret" not in caplog.text


def test_profile_2_tls_and_basic_auth(kafka_settings: KafkaSettings, unique: str, pki: Path) -> None:
    settings = gateway_settings(
        security_profile=2, credentials_file=pki / "credentials.json",
        tls_cert_file=pki / "server.pem", tls_key_file=pki / "server.key",
    )

    async def run():
        async with running_gateway(settings, kafka_settings, f"test.sec.{unique}") as gw:
            uri = f"wss://127.0.0.1:{gw.port}/ocpp/CP-1"
            return (
                await outcome(uri, ssl=client_tls(pki), additional_headers=basic("CP-1", SECRET)),
                await outcome(uri, ssl=client_tls(pki)),
                await outcome(f"ws://127.0.0.1:{gw.port}/ocpp/CP-1", additional_headers=basic("CP-1", SECRET)),
            )

    opened, no_auth, plain = asyncio.run(run())
    assert opened == "open" and no_auth == 401
    assert plain != "open"  # plain WebSocket on a TLS port never opens


def test_profile_3_client_certificate_bound_to_the_charge_point(kafka_settings: KafkaSettings, unique: str, pki: Path) -> None:
    settings = gateway_settings(
        security_profile=3, tls_cert_file=pki / "server.pem", tls_key_file=pki / "server.key",
        tls_client_ca_file=pki / "ca.pem",
    )

    async def run():
        async with running_gateway(settings, kafka_settings, f"test.sec.{unique}") as gw:
            base = f"wss://127.0.0.1:{gw.port}/ocpp/"
            return (
                await outcome(base + "CP-1", ssl=client_tls(pki, "CP-1")),
                await outcome(base + "CP-1", ssl=client_tls(pki, "CP-2")),  # someone else's certificate
                await outcome(base + "CP-1", ssl=client_tls(pki)),  # no certificate at all
            )

    own, other, none = asyncio.run(run())
    assert own == "open" and other == 403
    assert none != "open"


def test_profiles_refuse_to_start_without_their_material() -> None:
    with pytest.raises(ValueError, match="OCPP_GATEWAY_CREDENTIALS_FILE"):
        gateway_settings(security_profile=1)
    with pytest.raises(ValueError, match="OCPP_GATEWAY_TLS_CLIENT_CA_FILE"):
        gateway_settings(security_profile=3, tls_cert_file="a", tls_key_file="b")
