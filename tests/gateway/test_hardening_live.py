"""Gateway hardening on real sockets: throttled logins look exactly like failed ones and are counted by kind;
the per-address connection cap, with the client address taken from a proxy header only when the proxy is
trusted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from gateway.credentials import Credentials
from infra.settings import KafkaSettings
from tests.gateway.live import gateway_settings, http_get, running_gateway

RIGHT = "Right-Password-0123"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def attempt(uri: str, headers: dict[str, str] | None = None) -> ClientConnection | tuple[int, list[tuple[str, str]], bytes]:
    """The open connection, or what the refusal looked like: status, headers (but Date) and body."""
    try:
        return await connect(uri, subprotocols=["ocpp1.6"], additional_headers=headers or {}, open_timeout=30)
    except websockets.exceptions.InvalidStatus as refused:
        response = refused.response
        shown = sorted((k, v) for k, v in response.headers.raw_items() if k.lower() != "date")
        return response.status_code, shown, response.body


def counters(text: str, name: str) -> dict[str, float]:
    """``{label value: count}`` of a one-label counter in a Prometheus text exposition."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            label, value = line[len(name) + 1:].split("}")
            found[label.split('"')[1]] = float(value)
    return found


def test_throttled_logins_look_like_failed_ones_and_are_counted_by_kind(kafka_settings: KafkaSettings, unique: str,
                                                                       tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Credentials.set_entry(tmp_path / "credentials.json", "CP-1", RIGHT)
    Credentials.set_entry(tmp_path / "credentials.json", "CP-OLD", "old-pw")  # stored before the policy existed
    # Two free failures, then a block far longer than the test: the right password must then be refused unchecked.
    settings = gateway_settings(security_profile=1, credentials_file=tmp_path / "credentials.json",
                                login_free_failures_per_charge_point=2, login_backoff_base_s=600, login_backoff_max_s=600)

    async def run():
        async with running_gateway(settings, kafka_settings, f"test.hard.{unique}") as gateway:
            uri = f"ws://127.0.0.1:{gateway.port}/ocpp/"
            for charge_point, password in (("CP-1", RIGHT), ("CP-OLD", "old-pw"), ("CP-OLD", "old-pw")):
                opened = await attempt(uri + charge_point, basic(charge_point, password))
                assert not isinstance(opened, tuple), opened
                await opened.close()
            unknown = await attempt(uri + "CP-404", basic("CP-404", RIGHT))
            wrong = [await attempt(uri + "CP-1", basic("CP-1", f"Wrong-Password-{n:04d}")) for n in range(3)]
            throttled = await attempt(uri + "CP-1", basic("CP-1", RIGHT))
            challenge = await attempt(uri + "CP-1")
            metrics = (await asyncio.to_thread(http_get, gateway.admin_port, "/metrics"))[2]
            return unknown, wrong, throttled, challenge, metrics

    unknown, wrong, throttled, challenge, metrics = asyncio.run(run())
    assert unknown[0] == 401 and 'WWW-Authenticate' in dict(unknown[1])
    # Byte for byte the same answer (but the Date header): no oracle in status, headers or body.
    assert unknown == wrong[0] == wrong[1] == wrong[2] == throttled == challenge
    kinds = counters(metrics, "ocpp_gateway_access_refusals_total")
    assert {k: v for k, v in kinds.items() if v} == {
        "unknown_charge_point": 1, "wrong_password": 3, "throttled_charge_point": 1, "no_credentials": 1}
    assert set(kinds) >= {"throttled_address", "connection_cap", "weak_password"}  # every kind exported from the start
    assert sum(kinds.values()) == sum(counters(metrics, "ocpp_gateway_handshake_refusals_total").values())
    # A weak password stored before the policy still opens (OCPP_GATEWAY_WEAK_PASSWORDS=warn), counted each
    # time, logged once per charger and process, never with the password.
    assert "ocpp_gateway_weak_password_logins_total 2.0" in metrics
    warnings = [r.getMessage() for r in caplog.records if "outside the OCPP security profiles' rule" in r.getMessage()]
    assert len(warnings) == 1 and "'CP-OLD'" in warnings[0] and "old-pw" not in caplog.text


def test_the_connection_cap_counts_the_client_a_trusted_proxy_names(kafka_settings: KafkaSettings, unique: str) -> None:
    behind_proxy = gateway_settings(max_connections_per_address=2, trusted_proxies=("127.0.0.0/8",),
                                    client_address_header="X-Forwarded-For")
    direct = gateway_settings(max_connections_per_address=1, trusted_proxies=(), client_address_header="X-Forwarded-For")

    def forwarded(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"198.51.100.99, {address}"}  # the left entry is the client's own, ignored

    async def run():
        async with contextlib.AsyncExitStack() as stack:
            gateway = await stack.enter_async_context(running_gateway(behind_proxy, kafka_settings, f"test.cap.{unique}"))
            uri = f"ws://127.0.0.1:{gateway.port}/ocpp/"
            first = [await attempt(uri + f"CP-{n}", forwarded("203.0.113.7")) for n in range(2)]
            third = await attempt(uri + "CP-2", forwarded("203.0.113.7"))
            neighbour = await attempt(uri + "CP-3", forwarded("203.0.113.8"))
            unnamed = [await attempt(uri + f"CP-U{n}") for n in range(3)]  # the proxy itself: no client address
            await first[0].close()
            again = third
            for _ in range(100):  # the server sees the close a moment after the client
                again = await attempt(uri + "CP-2", forwarded("203.0.113.7"))
                if not isinstance(again, tuple):
                    break
                await asyncio.sleep(0.1)
            metrics = (await asyncio.to_thread(http_get, gateway.admin_port, "/metrics"))[2]
            # Not behind a trusted proxy: the header is the client's own word, never believed.
            other = await stack.enter_async_context(running_gateway(direct, kafka_settings, f"test.cap.{unique}"))
            uri = f"ws://127.0.0.1:{other.port}/ocpp/"
            one = await attempt(uri + "CP-1", forwarded("203.0.113.1"))
            spoofed = await attempt(uri + "CP-2", forwarded("203.0.113.2"))
            for ws in [*first[1:], neighbour, *unnamed, again, one]:
                if not isinstance(ws, tuple):
                    await ws.close()
            return first, third, neighbour, unnamed, again, metrics, one, spoofed

    first, third, neighbour, unnamed, again, metrics, one, spoofed = asyncio.run(run())
    assert not any(isinstance(ws, tuple) for ws in [*first, neighbour, *unnamed, again, one])
    assert third[0] == 429 and third[2] == b"too many connections from this address\n"
    assert spoofed[0] == 429
    assert counters(metrics, "ocpp_gateway_access_refusals_total")["connection_cap"] >= 1
