"""Settings of ``ocpp-pipeline worker`` and ``replay`` (``OCPP_WORKER_*``), and the correlator's share of them.

Every default is a field default of :class:`WorkerSettings`, here and nowhere else: :class:`CorrelatorConfig`
(what the pure processors read, in milliseconds and watts) has none of its own, and
:meth:`CorrelatorConfig.defaults` is the settings' defaults, read without the environment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from processors.energy import MAX_CHARGER_POWER_W


@dataclass(frozen=True, slots=True)
class CorrelatorConfig:
    """The rules' settings, as the correlator reads them (gateway-clock milliseconds, watts)."""

    status_window_ms: int  # how long a stopped session waits for its move out of Charging
    max_session_age_ms: int  # a session never stopped is closed after this long
    clock_skew_ms: int  # a charger clock further off than this is flagged
    max_power_w: float  # energy meaning more than this average power is not billed (energy_implausible)
    # How long an emitted session is remembered (a late stop or a resend still finds it): the longest a
    # session can stay open, plus a day of offline backlog.
    closed_retention_ms: int
    authorize_window_ms: int  # an Authorize followed by no start with its idTag within this is an attempt of its own

    @classmethod
    def defaults(cls, **changes: Any) -> CorrelatorConfig:
        """The settings' defaults (:class:`WorkerSettings`' field defaults, no environment read), with ``changes``."""
        return dataclasses.replace(_default_config(), **changes) if changes else _default_config()


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_WORKER_", frozen=True)

    app_id: str = Field("ocpp-processors", description="Faust app id: consumer group and table changelog names")
    web_host: str = Field("127.0.0.1", description="/metrics listen address (Faust's web server; /sql has its own: OCPP_WORKER_SQL_*)")
    web_port: int = Field(6066, description="/metrics port")
    status_window_s: float = Field(60.0, gt=0, description="how long a stopped session waits for its status transition (gateway clock)")
    max_session_age_h: float = Field(72.0, gt=0, description="a session never stopped is closed after this long")
    clock_skew_s: float = Field(300.0, gt=0, description="charger clock further off than this is flagged")
    max_power_kw: float = Field(MAX_CHARGER_POWER_W / 1000, gt=0, description="energy meaning more than this average power is not billed (energy_implausible)")
    closed_retention_h: float = Field(96.0, gt=0, description="how long an emitted session is remembered: a late stop or a resend still finds it")
    authorize_window_s: float = Field(300.0, gt=0, description="an Authorize followed by no start with its idTag within this is a charge attempt of its own (KPIS.md)")
    flush_rows: int = Field(5000, ge=1, description="rows buffered before a ClickHouse insert")
    flush_interval_s: float = Field(1.0, gt=0, description="longest time rows wait for an insert")
    idle_advance_s: float = Field(5.0, gt=0, description="wall time after which an idle partition's clock moves on")
    stall_s: float = Field(60.0, gt=0, description="no frame for this long while Kafka has some: nudge the consumer, then exit 70 to be restarted")

    def correlator_config(self) -> CorrelatorConfig:
        return CorrelatorConfig(
            status_window_ms=int(self.status_window_s * 1000),
            max_session_age_ms=int(self.max_session_age_h * 3600 * 1000),
            clock_skew_ms=int(self.clock_skew_s * 1000),
            max_power_w=self.max_power_kw * 1000,
            closed_retention_ms=int(self.closed_retention_h * 3600 * 1000),
            authorize_window_ms=int(self.authorize_window_s * 1000),
        )


@cache
def _default_config() -> CorrelatorConfig:
    return WorkerSettings.model_construct().correlator_config()
