"""ClickHouse clients and migrations.

Locally the DSN is ``chdb:///abs/path``: clickhouse-connect's chDB backend runs the ClickHouse
engine inside this process (one process per data folder). In production the same client talks
HTTP(S) to a server or cluster. Migrations (:mod:`schemas.migrations`) are applied in order,
each once, and recorded in ``<database>.schema_migrations``; every statement is also
idempotent on its own (``IF NOT EXISTS``), so a migration interrupted midway can simply rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError as DriverError

from infra.errors import ClickHouseError
from infra.settings import ClickHouseSettings
from schemas import ddl
from schemas.migrations import MIGRATIONS, Migration

MIGRATIONS_TABLE = "schema_migrations"


def connect(settings: ClickHouseSettings) -> Client:
    """A client for the configured DSN (chDB folder created on first use)."""
    dsn = settings.resolved_dsn()
    if settings.embedded:
        Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:  # the driver raises several kinds; the DSN may hold a password
        raise ClickHouseError(f"cannot open ClickHouse ({_redacted(dsn)}): {exc}") from exc


def _redacted(dsn: str) -> str:
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return dsn


def dialect_for(settings: ClickHouseSettings) -> ddl.Dialect:
    return ddl.Cluster(name=settings.cluster) if settings.cluster else ddl.Embedded()


@dataclass(frozen=True)
class MigrationReport:
    database: str
    applied: tuple[int, ...]
    current_version: int

    def describe(self) -> str:
        done = f"applied {', '.join(map(str, self.applied))}" if self.applied else "nothing to apply"
        return f"clickhouse database {self.database}: schema version {self.current_version} ({done})"


def _migrations_table_sql(database: str, dialect: ddl.Dialect) -> str:
    on_cluster = f" ON CLUSTER {ddl.quote_string(dialect.name)}" if isinstance(dialect, ddl.Cluster) else ""
    engine = (
        f"ReplicatedReplacingMergeTree({ddl.quote_string(dialect.zookeeper_path)}, {ddl.quote_string(dialect.replica)})"
        if isinstance(dialect, ddl.Cluster)
        else "ReplacingMergeTree"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS `{database}`.`{MIGRATIONS_TABLE}`{on_cluster} "
        f"(version UInt32, description String, applied_at DateTime64(3, 'UTC')) "
        f"ENGINE = {engine} ORDER BY version"
    )


def applied_versions(client: Client, database: str) -> set[int]:
    rows = client.query(f"SELECT version FROM `{database}`.`{MIGRATIONS_TABLE}` FINAL").result_rows
    return {int(r[0]) for r in rows}


def migrate(
    client: Client,
    database: str,
    dialect: ddl.Dialect | None = None,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> MigrationReport:
    """Bring ``database`` to the newest schema version; safe to run any number of times."""
    dialect = dialect or ddl.Embedded()
    applied: list[int] = []
    try:
        client.command(ddl.create_database(database, dialect))
        client.command(_migrations_table_sql(database, dialect))
        done = applied_versions(client, database)
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in migration.statements(database, dialect):
                client.command(statement)
            client.insert(
                MIGRATIONS_TABLE,
                [[migration.version, migration.description, datetime.now(timezone.utc)]],
                column_names=["version", "description", "applied_at"],
                database=database,
            )
            applied.append(migration.version)
    except DriverError as exc:
        raise ClickHouseError(f"migrating database {database} failed: {exc}") from exc
    return MigrationReport(database, tuple(applied), max(done | set(applied), default=0))
