"""Settings of ``ocpp-pipeline simulate`` (``OCPP_SIMULATOR_*``; flags override them)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_SIMULATOR_", frozen=True)

    url: str = Field("ws://127.0.0.1:9000/ocpp", description="gateway URL; each charger appends /<chargePointId>")
    chargers: int = Field(10, ge=1, description="simulated chargers (one WebSocket each)")
    connectors: str = Field("1-2", description="connectors per charger: N or LOW-HIGH, within 1-4")
    duration_s: float = Field(60.0, ge=0, description="real seconds to run, then open sessions are stopped; 0 = until Ctrl-C")
    time_scale: float = Field(60.0, gt=0, description="simulated seconds per real second (60: a one-hour session takes a minute)")
    rate: float | None = Field(None, gt=0, description="target sessions started per real second, fleet-wide; unset = realistic idle times")
    idle_mean_s: float = Field(3600.0, gt=0, description="mean simulated time a connector stays free between sessions (without rate)")
    meter_interval_s: float = Field(60.0, gt=0, description="simulated seconds between MeterValues of a session")
    quirky_share: float = Field(0.15, ge=0, le=1, description="share of chargers with quirks from OCPP-QUIRKS.md")
    seed: int = Field(1, description="random seed: the same seed gives the same chargers and plans")
    ramp: float = Field(200.0, gt=0, description="chargers connecting per second at the start")
    id_prefix: str = Field("SIM-", description="charge point ids are <prefix><number, 5 digits>")
    answer_timeout_s: float = Field(30.0, gt=0, description="a CALL unanswered this long is resent")

    @field_validator("connectors")
    @classmethod
    def _range(cls, value: str) -> str:
        connector_range(value)
        return value

    def connector_range(self) -> tuple[int, int]:
        return connector_range(self.connectors)


def connector_range(text: str) -> tuple[int, int]:
    """``"2"`` → (2, 2); ``"1-4"`` → (1, 4); within 1-4 (OCPP 1.6 allows more; real chargers rarely have)."""
    try:
        low, _, high = text.partition("-")
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"connectors must be N or LOW-HIGH, got {text!r}") from None
    if not 1 <= lo <= hi <= 4:
        raise ValueError(f"connectors must be within 1-4, got {text!r}")
    return lo, hi
