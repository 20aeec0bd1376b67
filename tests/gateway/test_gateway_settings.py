"""Gateway settings from the environment: OCPP_GATEWAY_SUBPROTOCOLS (which versions, in the order of
preference) and the hardening settings (trusted proxies, ports, login throttling)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


def test_both_versions_by_default_16_preferred() -> None:
    # 1.6 first: a 1.6 charger that also offers ocpp2.0.1 keeps speaking 1.6 (OCPP-QUIRKS.md, Protocol).
    assert GatewaySettings().subprotocols == ("ocpp1.6", "ocpp2.0.1")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ocpp2.0.1,ocpp1.6", ("ocpp2.0.1", "ocpp1.6")),
        (" ocpp2.0.1 , ocpp1.6 ", ("ocpp2.0.1", "ocpp1.6")),
        ("ocpp1.6", ("ocpp1.6",)),
        ("ocpp2.0.1", ("ocpp2.0.1",)),
        ('["ocpp2.0.1", "ocpp1.6"]', ("ocpp2.0.1", "ocpp1.6")),  # the JSON list the README once asked for
        ("ocpp1.6,ocpp1.6", ("ocpp1.6",)),
    ],
)
def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, text: str, expected: tuple[str, ...]) -> None:
    monkeypatch.setenv("OCPP_GATEWAY_SUBPROTOCOLS", text)
    assert GatewaySettings().subprotocols == expected


@pytest.mark.parametrize("text", ["", ",", "ocpp2.0", "ocpp1.6,ocpp2.1", "[oops"])
def test_unknown_or_no_subprotocol_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("OCPP_GATEWAY_SUBPROTOCOLS", text)
    with pytest.raises(ValidationError):
        GatewaySettings()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ()),  # no trusted proxy: every peer is a client
        ("10.0.0.0/8", ("10.0.0.0/8",)),
        (" 10.0.0.7 , 2001:db8::/32 ", ("10.0.0.7/32", "2001:db8::/32")),
        ('["192.168.1.0/24"]', ("192.168.1.0/24",)),
        ("10.1.2.3/8", ("10.0.0.0/8",)),  # host bits dropped, not refused
    ],
)
def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch, text: str, expected: tuple[str, ...]) -> None:
    monkeypatch.setenv("OCPP_GATEWAY_TRUSTED_PROXIES", text)
    assert GatewaySettings().trusted_proxies == expected


@pytest.mark.parametrize(
    "env, message",
    [
        ({"OCPP_GATEWAY_TRUSTED_PROXIES": "proxy.example.com"}, "trusted proxies are addresses or networks"),
        ({"OCPP_GATEWAY_ADMIN_PORT": "9000"}, "must not be the chargers' port"),
        ({"OCPP_GATEWAY_WEAK_PASSWORDS": "ignore"}, "'warn' or 'refuse'"),
        ({"OCPP_GATEWAY_LOGIN_BACKOFF_BASE_S": "600", "OCPP_GATEWAY_LOGIN_BACKOFF_MAX_S": "60"}, "at least OCPP_GATEWAY_LOGIN_BACKOFF_BASE_S"),
        ({"OCPP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "-1"}, "greater than or equal to 0"),
    ],
)
def test_hardening_settings_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=re.escape(message)):
        GatewaySettings()


def test_both_ports_may_be_free_ports() -> None:
    assert GatewaySettings(port=0, admin_port=0).admin_port == 0
