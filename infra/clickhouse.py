"""ClickHouse clients and migrations.

Locally the DSN is ``chdb:///abs/path``: clickhouse-connect's chDB backend runs the ClickHouse
engine inside this process (one process per data folder). In production the same client talks
HTTP(S) to a server or cluster. Migrations (:mod:`schemas.migrations`) are applied in order,
each once, and recorded in ``<database>.schema_migrations``; every statement is also
idempotent on its own (``IF NOT EXISTS``), so a migration interrupted midway can simply rerun.
Then each table's TTL is made what the retention settings say (:func:`apply_retention`): a changed
setting changes the tables in place at the next ``db migrate`` or worker start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError as DriverError

from infra.errors import ClickHouseError
from infra.settings import ClickHouseSettings
from schemas import ddl
from schemas.migrations import MIGRATIONS, RETAINED_TABLES, Migration
from schemas.retention import KEEP_EVERYTHING, Retention

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
    retention_changed: tuple[str, ...] = ()  # tables whose TTL this run set or removed

    def describe(self) -> str:
        done = f"applied {', '.join(map(str, self.applied))}" if self.applied else "nothing to apply"
        ttl = f"; retention set on {', '.join(self.retention_changed)}" if self.retention_changed else ""
        return f"clickhouse database {self.database}: schema version {self.current_version} ({done}{ttl})"


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
    retention: Retention = KEEP_EVERYTHING,
) -> MigrationReport:
    """Bring ``database`` to the newest schema version and its tables to ``retention`` (pass
    ``ClickHouseSettings.retention()``); safe to run any number of times."""
    dialect = dialect or ddl.Embedded()
    applied: list[int] = []
    changed: tuple[str, ...] = ()
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
        changed = apply_retention(client, database, dialect, retention)
    except DriverError as exc:
        raise ClickHouseError(f"migrating database {database} failed: {exc}") from exc
    return MigrationReport(database, tuple(applied), max(done | set(applied), default=0), changed)


_TTL = re.compile(r" TTL (.+?)(?: SETTINGS |$)")


def table_ttls(client: Client, database: str) -> dict[str, str | None]:
    """Each table's TTL expression as the server reports it (``None``: no TTL), by table name."""
    rows = client.query("SELECT name, engine_full FROM system.tables WHERE database = %(db)s",
                        parameters={"db": database}).result_rows
    return {name: (m.group(1) if (m := _TTL.search(engine)) else None) for name, engine in rows}


def retention_statements(have: dict[str, str | None], database: str, dialect: ddl.Dialect,
                         retention: Retention) -> dict[str, list[str]]:
    """What makes the tables' TTLs (``have``, from :func:`table_ttls`) equal to ``retention``, by table; tables
    that already agree, or do not exist yet, need nothing."""
    out: dict[str, list[str]] = {}
    for table in RETAINED_TABLES:
        name = ddl.local_name(table, dialect)
        if name not in have:
            continue
        days = retention.days(table.table_class)
        want = ddl.ttl_expression(table, days) if days is not None else None
        if have[name] != want:
            out[table.name] = ddl.set_ttl(table, database, dialect, retention)
    return out


def apply_retention(client: Client, database: str, dialect: ddl.Dialect, retention: Retention) -> tuple[str, ...]:
    """Set, change or remove each table's TTL so it equals ``retention``; returns the tables changed. A changed
    TTL recomputes the parts' expiry (it does not rewrite them: ``materialize_ttl_recalculate_only``); parts
    wholly expired are dropped then, other expired rows go when their part is merged next."""
    todo = retention_statements(table_ttls(client, database), database, dialect, retention)
    for statements in todo.values():
        for statement in statements:
            client.command(statement)
    return tuple(todo)
