"""Settings of ``ocpp-pipeline simulate`` (``OCPP_SIMULATOR_*``; flags override them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from simulator.incidents import Behaviours


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
    ocpp: str = Field("1.6", description="OCPP version every charger speaks: 1.6 or 2.0.1 (OCPP_SIMULATOR_OCPP_MIX, when set, wins)")
    ocpp_mix: str | None = Field(None, description="share of the fleet per OCPP version, e.g. 1.6:0.5,2.0.1:0.5 (shares are "
                                 "normalized; a charger's version depends only on the seed and its number); unset = all OCPP_SIMULATOR_OCPP")
    # Misbehaviour (simulator.incidents.Behaviours; durations in simulated seconds). Off by default but the
    # rare idle fault; `ocpp-pipeline dev` turns every kind on (DEV_SIMULATOR_DEFAULTS).
    idle_fault_share: float = Field(0.025, ge=0, le=1, description="chance an idle period of a connector ends in a fault (Faulted with an errorCode, then Available)")
    maintenance_share: float = Field(0.0, ge=0, le=1, description="chance an idle period ends in a maintenance window (the connector Unavailable)")
    maintenance_s: float = Field(1800.0, ge=0, description="mean simulated length of a maintenance window or station outage")
    authorize_only_share: float = Field(0.0, ge=0, le=1, description="chance an idle period ends with a card presented (Authorize) and no start")
    plugin_only_share: float = Field(0.0, ge=0, le=1, description="chance an idle period ends with a plug-in (Preparing) and unplug without a start")
    offline_every_s: float = Field(0.0, ge=0, description="mean simulated time between a charger's offline periods (socket closed or dropped, then a reconnect); 0 = never")
    offline_s: float = Field(600.0, ge=0, description="mean simulated length of an offline period")
    offline_drop_share: float = Field(0.5, ge=0, le=1, description="share of offline periods whose socket dies without a close frame (else a clean close)")
    station_every_s: float = Field(0.0, ge=0, description="mean simulated time between whole-station outages (OCPP 1.6 connector 0 Unavailable or Faulted; 2.0.1 the station's AvailabilityState Unavailable, or its emergency stop); 0 = never")
    blocked_share: float = Field(0.0, ge=0, le=1, description="share of sessions whose car stays in the bay long after the stop (Finishing held)")
    blocked_s: float = Field(3600.0, ge=0, description="mean simulated post-stop occupancy of those sessions")
    backlog_share: float = Field(0.0, ge=0, le=1, description="share of chargers whose first connection flushes a session made before it (old timestamps, no close seen before)")
    # Signed meter values (issue 25; simulator.signing_plan, simulator.ocmf_meter).
    signing_share: float = Field(0.0, ge=0, le=1, description="share of chargers with a calibrated meter per connector that signs the transaction's begin and end readings (OCMF, Eichrecht)")
    signing_quirky_share: float = Field(0.25, ge=0, le=1, description="share of signing chargers with a signing fault, the kinds in turn: a flipped signature byte, the key only in the frames, a reading changed after signing, no signed End, a pagination gap, a meter swapped mid-session")
    meter_keys_file: Path | None = Field(None, description="where the run writes its signing meters' public keys at its start (CSV for `ocpp-pipeline keys import`); unset: <OCPP_HOME>/simulator/meter-keys.csv")

    @field_validator("connectors")
    @classmethod
    def _range(cls, value: str) -> str:
        connector_range(value)
        return value

    @field_validator("ocpp")
    @classmethod
    def _version(cls, value: str) -> str:
        return ocpp_version(value)

    @field_validator("ocpp_mix")
    @classmethod
    def _mix(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        ocpp_mix(value)
        return value.strip()

    @model_validator(mode="after")
    def _behaviours(self) -> "SimulatorSettings":
        self.behaviours()  # the idle-period shares must add up to 1 at most
        return self

    def connector_range(self) -> tuple[int, int]:
        return connector_range(self.connectors)

    def behaviours(self) -> Behaviours:
        """How the fleet misbehaves (what :class:`~simulator.charger.Charger` is given)."""
        return Behaviours(
            idle_fault_share=self.idle_fault_share, maintenance_share=self.maintenance_share, maintenance_s=self.maintenance_s,
            authorize_only_share=self.authorize_only_share, plugin_only_share=self.plugin_only_share,
            offline_every_s=self.offline_every_s, offline_s=self.offline_s, offline_drop_share=self.offline_drop_share,
            station_every_s=self.station_every_s, blocked_share=self.blocked_share, blocked_s=self.blocked_s,
            backlog_share=self.backlog_share)

    def meter_keys_path(self, home: Path) -> Path:
        """Where the keys file goes: ``meter_keys_file``, else under the local state folder (``OCPP_HOME``)."""
        return (self.meter_keys_file or home / "simulator" / "meter-keys.csv").expanduser().resolve()

    def ocpp_shares(self) -> tuple[tuple[str, float], ...]:
        """(version, share) of the fleet, shares summing to 1: the mix if set, else all ``ocpp``."""
        return ocpp_mix(self.ocpp_mix or "") or ((self.ocpp, 1.0),)


# The misbehaviour flags of `simulate` / `dev` -> SimulatorSettings fields (durations in simulated seconds).
BEHAVIOUR_FLAGS: dict[str, str] = {
    "--idle-fault-share": "idle_fault_share", "--maintenance-share": "maintenance_share", "--maintenance-for": "maintenance_s",
    "--authorize-only-share": "authorize_only_share", "--plugin-only-share": "plugin_only_share",
    "--offline-every": "offline_every_s", "--offline-for": "offline_s", "--offline-drop-share": "offline_drop_share",
    "--station-every": "station_every_s", "--blocked-share": "blocked_share", "--blocked-for": "blocked_s",
    "--backlog-share": "backlog_share",
}

# The signing flags of `simulate` / `dev` -> SimulatorSettings fields; FLEET_FLAGS: every float flag of the fleet's kind.
SIGNING_FLAGS: dict[str, str] = {"--signing-share": "signing_share", "--signing-quirky-share": "signing_quirky_share"}
FLEET_FLAGS: dict[str, str] = BEHAVIOUR_FLAGS | SIGNING_FLAGS


OCPP_VERSIONS = ("1.6", "2.0.1")


def ocpp_version(text: str) -> str:
    """``"1.6"`` / ``"2.0.1"``; the subprotocol names ``ocpp1.6`` / ``ocpp2.0.1`` are read too."""
    version = text.strip().lower().removeprefix("ocpp")
    if version not in OCPP_VERSIONS:
        raise ValueError(f"OCPP version must be one of {', '.join(OCPP_VERSIONS)}, got {text!r}")
    return version


def ocpp_mix(text: str) -> tuple[tuple[str, float], ...]:
    """``"1.6:0.5,2.0.1:0.5"`` → (("1.6", 0.5), ("2.0.1", 0.5)), normalized to sum 1; ``""`` → ()."""
    if not text.strip():
        return ()
    shares: dict[str, float] = {}
    for item in text.split(","):
        version, sep, share = item.strip().rpartition(":")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if not sep or not value >= 0 or value == float("inf"):
            raise ValueError(f"OCPP mix must be VERSION:SHARE,... (e.g. 1.6:0.5,2.0.1:0.5), got {text!r}")
        key = ocpp_version(version)
        if key in shares:
            raise ValueError(f"OCPP mix names {key} twice: {text!r}")
        shares[key] = value
    total = sum(shares.values())
    if total <= 0:
        raise ValueError(f"OCPP mix needs a share above 0, got {text!r}")
    return tuple((version, share / total) for version, share in shares.items() if share > 0)


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
