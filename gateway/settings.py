"""Settings of ``ocpp-pipeline gateway`` (``OCPP_GATEWAY_*``)."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.actions import SUPPORTED_SUBPROTOCOLS


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_GATEWAY_", frozen=True, populate_by_name=True)

    host: str = Field("0.0.0.0", description="listen address")
    port: int = Field(9000, ge=0, le=65535, description="chargers' WebSocket port (OCPP only)")
    admin_host: str = Field("127.0.0.1", description="listen address of /metrics, /healthz and /readyz (0.0.0.0 in the image)")
    admin_port: int = Field(9001, ge=0, le=65535, description="port of /metrics, /healthz and /readyz, never the chargers' port")
    path_prefix: str = Field("/ocpp", description="chargers connect to <prefix>/<chargePointId>")
    # NoDecode: the environment gives "ocpp1.6,ocpp2.0.1" (or a JSON list); _split reads both.
    subprotocols: Annotated[tuple[str, ...], NoDecode] = Field(
        SUPPORTED_SUBPROTOCOLS,
        description="accepted OCPP subprotocols (ocpp1.6, ocpp2.0.1), preferred first: a charger offering "
        "several gets the first of this list it offers (comma-separated or JSON list)",
    )
    gateway_id: str = Field(
        default_factory=socket.gethostname,
        # OCPP_GATEWAY_GATEWAY_ID was the first, stuttering name: still read.
        validation_alias=AliasChoices("OCPP_GATEWAY_ID", "OCPP_GATEWAY_GATEWAY_ID", "gateway_id"),
        description="this instance's id in every envelope (default: host name)",
    )
    # int, not Literal[0, 1, 2, 3]: a Literal of ints refuses the string "2" that the environment gives.
    security_profile: int = Field(0, ge=0, le=3, description="0 none, 1 Basic, 2 TLS + Basic, 3 mutual TLS")
    credentials_file: Path | None = Field(None, description="profiles 1-2: JSON of charge point id -> salted hash (`ocpp-pipeline credentials add`)")
    weak_passwords: Literal["warn", "refuse"] = Field(
        "warn",
        description="profiles 1-2: a right password outside 16-40 passwordString characters (or 16-20 octets, "
        "1.6 AuthorizationKey) is admitted with a warning and a metric (warn) or refused (refuse)",
    )
    login_free_failures_per_charge_point: int = Field(
        5, ge=0, description="failed logins for one charge point id before each further one blocks it (decaying)")
    login_free_failures_per_address: int = Field(
        100, ge=0, description="failed logins from one client address before each further one blocks it (decaying; a NAT "
        "may hide many chargers)")
    login_backoff_base_s: float = Field(1.0, gt=0, description="block after the first failed login beyond the free ones; doubles with each")
    login_backoff_max_s: float = Field(300.0, gt=0, description="longest block after a failed login")
    login_backoff_half_life_s: float = Field(3600.0, gt=0, description="failed logins are forgiven by half every this many seconds")
    login_throttle_entries: int = Field(
        65536, ge=16, description="charge point ids and addresses each remembered per process for throttling (memory bound)")
    max_connections_per_address: int = Field(
        1000, ge=0, description="open connections one client address may hold per gateway process; 0 = no cap")
    # NoDecode: "10.0.0.0/8,::1/128" (or a JSON list); _split reads both.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.0/8", "::1/128"),
        description="networks of your own proxies, load balancers, mesh sidecars, private-APN NATs: never one "
        "client (comma-separated or JSON list)",
    )
    client_address_header: str | None = Field(
        None, description="header a trusted proxy names the client in (X-Forwarded-For, X-Real-IP, Forwarded); unset = none")
    ipv6_prefix_length: int = Field(64, ge=32, le=128, description="IPv6 clients are counted per network of this prefix")
    tls_cert_file: Path | None = Field(None, description="profiles 2-3: server certificate chain (PEM)")
    tls_key_file: Path | None = Field(None, description="profiles 2-3: server private key (PEM)")
    tls_client_ca_file: Path | None = Field(None, description="profile 3: CA that signs charger certificates (PEM)")
    ping_interval_s: float = Field(25.0, ge=0, description="WebSocket ping interval, 0 = off; below load balancer idle timeouts (often 60 s)")
    ping_timeout_s: float = Field(20.0, ge=0, description="close a connection whose pong does not come back in time, 0 = never")
    max_frame_bytes: int = Field(1_048_576, ge=1024, description="largest accepted WebSocket message")
    heartbeat_interval_s: int = Field(300, ge=1, description="interval sent in BootNotification.conf")
    authorized_id_tags_file: Path | None = Field(None, description="one accepted idTag per line; unset = accept every idTag")
    publish_timeout_s: float = Field(10.0, gt=0, description="how long a transaction message waits for Kafka before CALLERROR InternalError")
    max_pending_frames: int = Field(100_000, ge=100, description="frames queued for Kafka before chargers are slowed down")
    # The publisher already batches: everything that arrived while Kafka answered the previous request
    # goes in the next one (aiokafka keeps one request in flight per broker). A linger only adds its
    # delay to every transaction CALL's answer; measured in BENCHMARKS.md (gateway, batching).
    kafka_linger_ms: int = Field(0, ge=0, description="producer batching delay (the publisher batches by itself)")
    kafka_max_batch_bytes: int = Field(
        512 * 1024, ge=16 * 1024, le=1_000_000,
        description="largest Kafka batch per partition and request (below the broker's message.max.bytes, 1 MB)",
    )
    processes: int = Field(
        0, ge=0, le=256,
        description="gateway processes sharing the port (SO_REUSEPORT), each with its own Kafka producer; "
        "0 = the cores this container may use (CPU affinity and cgroup quota)",
    )
    listen_backlog: int = Field(
        4096, ge=16,
        description="pending TCP connections per listening socket (a reconnect storm after a restart); "
        "the kernel caps it at net.core.somaxconn",
    )
    shutdown_timeout_s: float = Field(15.0, description="on SIGTERM: time to close connections and flush Kafka")

    @field_validator("subprotocols", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("subprotocols", mode="after")
    @classmethod
    def _supported(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(SUPPORTED_SUBPROTOCOLS)
        if unknown or not value:
            raise ValueError(f"supported subprotocols are {', '.join(SUPPORTED_SUBPROTOCOLS)}; got {', '.join(value)}")
        return tuple(dict.fromkeys(value))  # a repeated name changes nothing

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(str(ipaddress.ip_network(v, strict=False)) for v in value)
        except ValueError as exc:
            raise ValueError(f"trusted proxies are addresses or networks (10.0.0.0/8, 2001:db8::/32): {exc}") from None

    @model_validator(mode="after")
    def _profile_needs(self) -> "GatewaySettings":
        needs: list[str] = []
        if self.security_profile in (1, 2) and self.credentials_file is None:
            needs.append("OCPP_GATEWAY_CREDENTIALS_FILE")
        if self.security_profile in (2, 3):
            needs += [n for n, v in (("OCPP_GATEWAY_TLS_CERT_FILE", self.tls_cert_file), ("OCPP_GATEWAY_TLS_KEY_FILE", self.tls_key_file)) if v is None]
        if self.security_profile == 3 and self.tls_client_ca_file is None:
            needs.append("OCPP_GATEWAY_TLS_CLIENT_CA_FILE")
        if needs:
            raise ValueError(f"security profile {self.security_profile} needs {', '.join(needs)}")
        if self.admin_port and self.admin_port == self.port:
            raise ValueError("OCPP_GATEWAY_ADMIN_PORT must not be the chargers' port (OCPP_GATEWAY_PORT): chargers must not "
                             "reach /metrics, /healthz or /readyz")
        if self.login_backoff_max_s < self.login_backoff_base_s:
            raise ValueError("OCPP_GATEWAY_LOGIN_BACKOFF_MAX_S must be at least OCPP_GATEWAY_LOGIN_BACKOFF_BASE_S")
        return self
