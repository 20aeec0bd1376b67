"""Render :mod:`schemas.tables` to ClickHouse DDL, for one embedded node or for a cluster.

Embedded (chDB, or a single server): ``ReplacingMergeTree`` with a non-replicated insert
deduplication window, so a retried batch with the same ``insert_deduplication_token`` lands once.

Cluster: ``Replicated*MergeTree`` tables named ``<table>_local`` created ``ON CLUSTER``, with a
``Distributed`` table under the public name that shards by charge point. Both come from the
same :class:`~schemas.tables.Table` values, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.retention import Retention
from schemas.tables import Column, ReadView, Table, View

# Inserts remembered for deduplication; a retried batch older than this many inserts would
# land twice, so it is far above the number of batches a writer can have in flight.
DEDUPLICATION_WINDOW = 1000


@dataclass(frozen=True)
class Embedded:
    """One node: chDB in-process, or a single ClickHouse server."""


@dataclass(frozen=True)
class Cluster:
    """A ClickHouse cluster with Keeper; ``{shard}`` / ``{replica}`` come from server macros."""

    name: str = "{cluster}"
    zookeeper_path: str = "/clickhouse/tables/{shard}/{database}/{table}"
    replica: str = "{replica}"


Dialect = Embedded | Cluster


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _on_cluster(dialect: Dialect) -> str:
    return f" ON CLUSTER {quote_string(dialect.name)}" if isinstance(dialect, Cluster) else ""


def _column_sql(column: Column, version: int) -> str:
    sql = f"`{column.name}` {column.type}"
    if column.default:
        sql += f" DEFAULT {column.default}"
    if column.comment:
        sql += f" COMMENT {quote_string(column.comment)}"
    if codec := column.codec_at(version):
        sql += f" CODEC({codec})"
    return sql


def _engine(table: Table, dialect: Dialect) -> str:
    kind = "SummingMergeTree" if table.summing else "ReplacingMergeTree"
    version = "" if table.summing else table.version_column or ""
    if isinstance(dialect, Cluster):
        args = [quote_string(dialect.zookeeper_path), quote_string(dialect.replica)]
        if version:
            args.append(version)
        return f"Replicated{kind}({', '.join(args)})"
    return f"{kind}({version})"


def local_name(table: Table, dialect: Dialect) -> str:
    """Name of the table that stores the rows (``<name>_local`` on a cluster)."""
    return f"{table.name}_local" if isinstance(dialect, Cluster) else table.name


def create_database(database: str, dialect: Dialect) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{database}`{_on_cluster(dialect)}"


def create_table(table: Table, database: str, dialect: Dialect, *, at_version: int) -> list[str]:
    """CREATE TABLE statements for ``table`` as it was at migration ``at_version``."""
    columns = ",\n    ".join(_column_sql(c, at_version) for c in table.columns_at(at_version))
    parts = [
        f"CREATE TABLE IF NOT EXISTS `{database}`.`{local_name(table, dialect)}`{_on_cluster(dialect)}",
        f"(\n    {columns}\n)",
        f"ENGINE = {_engine(table, dialect)}",
    ]
    if table.partition_by:
        parts.append(f"PARTITION BY {table.partition_by}")
    parts.append(f"ORDER BY ({', '.join(table.order_by_at(at_version))})")
    if isinstance(dialect, Embedded):
        parts.append(f"SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}")
    if table.comment:
        parts.append(f"COMMENT {quote_string(table.comment)}")
    statements = ["\n".join(parts)]
    if isinstance(dialect, Cluster):
        statements.append(
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{table.name}`{_on_cluster(dialect)}"
            f" AS `{database}`.`{local_name(table, dialect)}`"
            f" ENGINE = Distributed({quote_string(dialect.name)}, {quote_string(database)},"
            f" {quote_string(local_name(table, dialect))}, {table.shard_key})"
        )
    return statements


def create_view(view: View, database: str, dialect: Dialect) -> list[str]:
    """The materialized view; on a cluster it runs on every replica, local table to local table
    (a Distributed insert lands in the ``_local`` tables, which is what triggers it)."""
    source = f"`{database}`.`{local_name(view.source, dialect)}`"
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{database}`.`{view.name}`{_on_cluster(dialect)}"
        f" TO `{database}`.`{local_name(view.target, dialect)}`\nAS " + view.select.format(source=source)
    ]


def add_columns(table: Table, database: str, dialect: Dialect, *, version: int) -> list[str]:
    """ALTER TABLE statements for the columns that migration ``version`` adds to ``table``."""
    added = [c for c in table.columns if c.since == version]
    if not added:
        return []
    targets = [local_name(table, dialect)]
    if isinstance(dialect, Cluster):
        targets.append(table.name)  # the Distributed table mirrors the columns
    clauses = ", ".join(f"ADD COLUMN IF NOT EXISTS {_column_sql(c, version)}" for c in added)
    statements = [f"ALTER TABLE `{database}`.`{name}`{_on_cluster(dialect)} {clauses}" for name in targets]
    if table.order_by_at(version) != table.order_by_at(version - 1):
        # A new key column joins the sort key in the same ALTER (ClickHouse allows nothing else);
        # only the table that stores the rows has one.
        statements[0] += f", MODIFY ORDER BY ({', '.join(table.order_by_at(version))})"
    return statements


def drop_view(view: View, database: str, dialect: Dialect) -> list[str]:
    return [f"DROP VIEW IF EXISTS `{database}`.`{view.name}`{_on_cluster(dialect)}"]


def create_read_view(view: ReadView, database: str, dialect: Dialect) -> list[str]:
    """A plain view, replaced when it exists (a later migration may redefine it); on a cluster on every node,
    reading the public (Distributed) tables."""
    comment = f" COMMENT {quote_string(view.comment)}" if view.comment else ""
    return [f"CREATE OR REPLACE VIEW `{database}`.`{view.name}`{_on_cluster(dialect)} AS "
            + view.select.replace("{db}", f"`{database}`") + comment]


def modify_codecs(table: Table, database: str, dialect: Dialect, *, version: int) -> list[str]:
    """ALTER TABLE statements giving existing columns the codecs migration ``version`` chose. Only the table that
    stores the rows has codecs (a Distributed table stores nothing). ClickHouse records the codec at once; parts
    written before are recompressed when they are merged next (``OPTIMIZE ... FINAL`` forces it)."""
    changed = [c for c in table.columns if c.codec and c.codec_since == version and c.since < version]
    if not changed:
        return []
    clauses = ", ".join(f"MODIFY COLUMN {_column_sql(c, version)}" for c in changed)
    return [f"ALTER TABLE `{database}`.`{local_name(table, dialect)}`{_on_cluster(dialect)} {clauses}"]


# What a TTL deletes: whole parts once every row in them has expired (``ttl_only_drop_parts``), never a rewrite
# of a part to cut some of its rows out: with monthly partitions a month goes at once, when its last row expires,
# at most a month after its first (a rewrite of the oldest month every few hours would cost far more, at
# ~400 million frames a day). ``materialize_ttl_recalculate_only``: a changed TTL recomputes each part's
# expiry (reads the time column) instead of rewriting every part.
TTL_SETTINGS = {"ttl_only_drop_parts": 1, "materialize_ttl_recalculate_only": 1}


def ttl_settings(table: Table, database: str, dialect: Dialect) -> list[str]:
    """The table settings that make a TTL drop whole parts; a table without partitions keeps row-level TTL (its
    one partition would otherwise never expire as a whole)."""
    wanted = TTL_SETTINGS if table.partition_by else {"materialize_ttl_recalculate_only": 1}
    clauses = ", ".join(f"{name} = {value}" for name, value in wanted.items())
    return [f"ALTER TABLE `{database}`.`{local_name(table, dialect)}`{_on_cluster(dialect)} MODIFY SETTING {clauses}"]


def ttl_expression(table: Table, days: int) -> str:
    """The TTL of ``table`` when it keeps rows ``days`` days, as ClickHouse itself formats it (so the
    expression a table has can be compared with the one it should have)."""
    return f"toDateTime({table.ttl_time}) + toIntervalDay({days})"


def set_ttl(table: Table, database: str, dialect: Dialect, retention: Retention) -> list[str]:
    """The statement giving ``table`` the TTL ``retention`` asks for (or removing it: kept forever)."""
    days = retention.days(table.table_class)
    target = f"ALTER TABLE `{database}`.`{local_name(table, dialect)}`{_on_cluster(dialect)}"
    return [f"{target} REMOVE TTL" if days is None else f"{target} MODIFY TTL {ttl_expression(table, days)}"]
