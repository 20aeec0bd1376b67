"""Typed settings for the infrastructure, read once from ``OCPP_*`` variables by the command
and passed down. Every variable is listed in the README (``ocpp-pipeline settings`` prints the
table; a test keeps the README in step)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
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


class KafkaSettings(BaseSettings):
    """How every component reaches Kafka."""

    model_config = SettingsConfigDict(env_prefix="OCPP_KAFKA_", frozen=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512 (Strimzi) or PLAIN")
    sasl_username: str | None = Field(None, description="SASL user")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never printed)")
    ssl_cafile: Path | None = Field(None, description="CA bundle for SSL / SASL_SSL")
    replication_factor: int | None = Field(None, ge=1, description="replication factor of topics the pipeline creates (default: min(3, brokers in the cluster))")
    partitions: int | None = Field(None, ge=1, description="partitions of created topics (default: each topic's own)")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="prefix of every topic name (e.g. per environment); empty in production")

    def topic(self, name: str) -> str:
        """The name a contract topic has in this deployment."""
        return self.topic_prefix + name

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
        if self.ssl_cafile or self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        return options


class LocalKafkaSettings(BaseSettings):
    """The single-node KRaft broker that ``ocpp-pipeline kafka start`` runs on this machine."""

    model_config = SettingsConfigDict(env_prefix="OCPP_LOCAL_KAFKA_", frozen=True, populate_by_name=True)

    home: Path = _home_field()
    version: str = Field("4.1.2", description="Apache Kafka version fetched from Maven Central")
    host: str = Field("127.0.0.1", description="address the broker listens on (loopback by default)")
    port: int = Field(9092, description="client (PLAINTEXT) port")
    controller_port: int = Field(9093, description="KRaft controller port")
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

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{port}" for port, _ in self.node_ports())

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
