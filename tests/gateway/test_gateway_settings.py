"""OCPP_GATEWAY_SUBPROTOCOLS: which versions the gateway accepts, in its order of preference."""

from __future__ import annotations

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
