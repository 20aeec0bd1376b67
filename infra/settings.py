"""Typed settings for the infrastructure, read once from ``OCPP_*`` variables by the command
and passed down. Every variable is listed in the README (``ocpp-pipeline settings`` prints the
table; a test keeps the README in step)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.retention import COMPLIANCE_FLOOR_DAYS, Retention

HOME_HELP = "folder for local state: broker jars and data, embedded ClickHouse data"


def _home_field() -> Path:
    return Field(
        default=Path(".local"),
        # Only OCPP_HOME: matching is case-insensitive, so a plain "home" would pick up $HOME.
        validation_alias=AliasChoices("OCPP_HOME"),
        description=HOME_HELP,
    )


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSettings(BaseSettings):
    """How every component reaches Kafka, and as whom.

    Identities (SECURITY.md, Kafka identities and ACLs): ``SASL_SSL`` with a SCRAM-SHA-512 user (Strimzi's
    ``scram-sha-512`` listeners, the local broker's ``kafka start --secure``), or mutual TLS (``SSL`` with
    ``ssl_certfile``: the certificate's CN is the user). ``PLAINTEXT`` is for a broker nobody else reaches.
    """

    model_config = SettingsConfigDict(env_prefix="OCPP_KAFKA_", frozen=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    security_protocol: SecurityProtocol = Field("PLAINTEXT", description="PLAINTEXT, SSL (mutual TLS with OCPP_KAFKA_SSL_CERTFILE), SASL_PLAINTEXT or SASL_SSL")
    sasl_mechanism: SaslMechanism | None = Field(None, description="SCRAM-SHA-512 (Strimzi, `kafka start --secure`), SCRAM-SHA-256 or PLAIN; required with SASL_*")
    sasl_username: str | None = Field(None, description="SASL user (the component's Kafka identity, e.g. ocpp-gateway)")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never printed)")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates (SSL / SASL_SSL); default: the system's")
    ssl_certfile: Path | None = Field(None, description="client certificate (PEM; may hold the key too) for mutual TLS: its CN is the Kafka user")
    ssl_keyfile: Path | None = Field(None, description="private key of OCPP_KAFKA_SSL_CERTFILE when it is a file of its own (PEM)")
    ssl_keyfile_password: SecretStr | None = Field(None, description="password of an encrypted OCPP_KAFKA_SSL_KEYFILE (never printed)")
    replication_factor: int | None = Field(None, ge=1, description="replication factor of topics the pipeline creates (default: min(3, brokers in the cluster))")
    partitions: int | None = Field(None, ge=1, description="partitions of created topics (default: each topic's own)")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="prefix of every topic name (e.g. per environment); empty in production")

    @model_validator(mode="after")
    def _consistent(self) -> "KafkaSettings":
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(f"OCPP_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs OCPP_KAFKA_SASL_MECHANISM, "
                             "OCPP_KAFKA_SASL_USERNAME and OCPP_KAFKA_SASL_PASSWORD")
        if not sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password):
            raise ValueError(f"SASL credentials are set but OCPP_KAFKA_SECURITY_PROTOCOL={self.security_protocol} "
                             "would not send them: use SASL_SSL")
        if not tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError(f"TLS files are set but OCPP_KAFKA_SECURITY_PROTOCOL={self.security_protocol} does not use "
                             "TLS: use SSL (mutual TLS) or SASL_SSL")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("OCPP_KAFKA_SSL_KEYFILE needs OCPP_KAFKA_SSL_CERTFILE (the certificate it belongs to)")
        return self

    @property
    def identity(self) -> str:
        """Who this client is to Kafka, for messages: the SASL user, the client certificate, or anonymous."""
        if self.sasl_username:
            return f"user {self.sasl_username}"
        if self.ssl_certfile:
            return f"the certificate {self.ssl_certfile.name}"
        return "an anonymous client"

    def topic(self, name: str) -> str:
        """The name a contract topic has in this deployment."""
        return self.topic_prefix + name

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL / SASL_SSL connections: the brokers' CA (host names checked), and the client
        certificate for mutual TLS. None for plain-text protocols."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        from aiokafka.helpers import create_ssl_context

        password = self.ssl_keyfile_password.get_secret_value() if self.ssl_keyfile_password else None
        return create_ssl_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
            certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
            keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            password=password,
        )

    def client_options(self) -> dict[str, object]:
        """Keyword arguments shared by aiokafka producers, consumers and admin clients."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options


class LocalKafkaSettings(BaseSettings):
    """The single-node KRaft broker that ``ocpp-pipeline kafka start`` runs on this machine."""

    model_config = SettingsConfigDict(env_prefix="OCPP_LOCAL_KAFKA_", frozen=True, populate_by_name=True)

    home: Path = _home_field()
    version: str = Field("4.1.2", description="Apache Kafka version fetched from Maven Central")
    host: str = Field("127.0.0.1", description="address the broker listens on (loopback by default)")
    port: int = Field(9092, description="client port: PLAINTEXT, or SASL_SSL (SCRAM-SHA-512) when secured")
    controller_port: int = Field(9093, description="KRaft controller port (mutual TLS when secured)")
    tls_port: int = Field(9192, description="secured broker only: mutual-TLS port for clients with a certificate and between brokers (node i: tls_port + i - 1)")
    secure: bool = Field(False, description="TLS, SCRAM-SHA-512 users and ACLs, no anonymous client (`kafka start --secure`; `dev` secures by default)")
    brokers: int = Field(1, ge=1, le=9, description="KRaft nodes of the local cluster (`kafka start --brokers N`); node i listens on port + 2(i-1)")
    heap_mb: int = Field(512, ge=128, description="JVM heap of each broker (three of 512 MiB fit a 2-core, 24 GiB machine)")
    partitions: int = Field(4, ge=1, description="default partitions of auto-created topics")
    start_timeout_s: float = Field(90.0, description="how long `kafka start` waits for the broker to answer")

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def node_ports(self) -> list[tuple[int, int]]:
        """(client port, controller port) of each node: ``port`` and ``controller_port`` for the first,
        two more for each next one (9092/9093, 9094/9095, 9096/9097 by default)."""
        return [(self.port + 2 * i, self.controller_port + 2 * i) for i in range(self.brokers)]

    def tls_ports(self) -> list[int]:
        """The mutual-TLS port of each node of a secured broker or cluster (9192, 9193, ... by default)."""
        return [self.tls_port + i for i in range(self.brokers)]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{port}" for port, _ in self.node_ports())

    @property
    def tls_bootstrap_servers(self) -> str:
        """The mutual-TLS listeners of a secured broker or cluster."""
        return ",".join(f"{self.host}:{port}" for port in self.tls_ports())

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def libs_dir(self) -> Path:
        return self.kafka_dir / self.version / "libs"

    @property
    def run_dir(self) -> Path:
        """Config, logs, pid file and data of the single broker (one per client port)."""
        return self.kafka_dir / f"broker-{self.port}"

    @property
    def cluster_dir(self) -> Path:
        """The folder of a multi-node cluster: one ``node-<id>`` folder per node, like ``run_dir``."""
        return self.kafka_dir / f"cluster-{self.port}"

    @property
    def credentials_dir(self) -> Path:
        """Owner-only folder of a secured broker's (or cluster's) CA, certificates and identities."""
        return (self.run_dir if self.brokers == 1 else self.cluster_dir) / "credentials"


class ClickHouseSettings(BaseSettings):
    """Where rows go: chDB (the ClickHouse engine in-process) by default, a server over HTTP(S)."""

    model_config = SettingsConfigDict(env_prefix="OCPP_CLICKHOUSE_", frozen=True, populate_by_name=True)

    home: Path = _home_field()
    dsn: SecretStr | None = Field(
        None,
        description="chdb:///abs/path (embedded) or https://user:pass@host:8443/db; default chdb under OCPP_HOME",
    )
    database: str = Field("ocpp", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="database of the pipeline's tables")
    cluster: str | None = Field(None, description="cluster name: DDL uses ON CLUSTER and Replicated engines")
    read_dsn: SecretStr | None = Field(
        None, description="server mode: the analysts' read-only user (https://analyst:pass@host:8443/db) that "
                          "`sql` and `report` read with; never the ingest DSN")
    # Retention per table class (schemas/retention.py; README, Operations > Retention says what each protects).
    frames_ttl_days: int = Field(
        120, ge=0, description="days the raw frames table keeps a frame (audits, disputes: card chargebacks come up "
                               "to 120 days later); 0 = forever. Applied by db migrate and at worker start")
    status_ttl_days: int = Field(
        400, ge=0, description="days connector_status keeps a status change (the evidence behind the trailing "
                               "12 months of NEVI uptime, plus a month); 0 = forever")
    compliance_ttl_days: int = Field(
        0, ge=0, description=f"days sessions, faults, outages, exclusions, attempts and daily aggregates are kept; "
                             f"0 = forever (the default), else at least {COMPLIANCE_FLOOR_DAYS}")

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("compliance_ttl_days", mode="after")
    @classmethod
    def _compliance_floor(cls, value: int) -> int:
        if 0 < value < COMPLIANCE_FLOOR_DAYS:
            raise ValueError(f"0 (kept forever) or at least {COMPLIANCE_FLOOR_DAYS} days: the uptime reports read "
                             f"the trailing 12 months")
        return value

    def retention(self) -> Retention:
        """The TTL of each table class (0 days: none)."""
        return Retention(raw_days=self.frames_ttl_days or None, status_days=self.status_ttl_days or None,
                         compliance_days=self.compliance_ttl_days or None)

    def resolved_dsn(self) -> str:
        if self.dsn is not None:
            return self.dsn.get_secret_value()
        return f"chdb://{self.home / 'clickhouse'}"

    @property
    def embedded(self) -> bool:
        return self.resolved_dsn().startswith("chdb:")


class SqlSettings(BaseSettings):
    """The read path (``/sql`` on the worker, ``ocpp-pipeline sql`` and ``report``): where the worker's read
    listener binds, its token, and the limits every query runs under (SECURITY.md, Read path)."""

    model_config = SettingsConfigDict(env_prefix="OCPP_WORKER_SQL_", frozen=True)

    host: str = Field("127.0.0.1", description="the worker's /sql listener address (loopback unless configured)")
    port: int = Field(6067, ge=0, le=65535, description="the worker's /sql port (0: any free port; the worker "
                                                        "publishes the one it got in its ClickHouse folder)")
    token: SecretStr | None = Field(None, description="bearer token of /sql, read by the worker and by `sql`; unset: "
                                                      "the worker generates one into its owner-only endpoint file")
    max_execution_s: float = Field(30.0, gt=0, le=3600, description="longest time a read query may run")
    max_memory_mb: int = Field(1024, ge=16, description="memory a read query may use (MiB)")
    max_result_rows: int = Field(100_000, ge=1, description="rows a read query may return")
    max_result_mb: int = Field(64, ge=1, description="bytes a read query may return (MiB)")
    max_threads: int = Field(2, ge=1, description="threads a read query may use (ingestion keeps the rest)")
    concurrency: int = Field(2, ge=1, description="read queries the worker runs at once; more are refused with 429")
