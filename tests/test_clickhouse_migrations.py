"""Migrations against the real ClickHouse engine (chDB): idempotent, versioned, deduplicating."""

from __future__ import annotations

from dataclasses import replace

from infra import clickhouse
from schemas.migrations import MIGRATIONS, AddColumns, Migration
from schemas.tables import ALL_TABLES, SESSIONS, Column


def test_migrate_twice_applies_once(chdb_client, unique: str) -> None:
    database = f"m_{unique}"
    first = clickhouse.migrate(chdb_client, database)
    second = clickhouse.migrate(chdb_client, database)
    assert first.applied == tuple(m.version for m in MIGRATIONS)
    assert second.applied == ()
    assert second.current_version == first.current_version == MIGRATIONS[-1].version
    tables = {r[0] for r in chdb_client.query(f"SHOW TABLES FROM `{database}`").result_rows}
    assert tables == {t.name for t in ALL_TABLES} | {clickhouse.MIGRATIONS_TABLE}


def test_a_later_migration_adds_its_columns_once(chdb_client, unique: str) -> None:
    database = f"m_{unique}"
    clickhouse.migrate(chdb_client, database)
    grown = replace(SESSIONS, columns=SESSIONS.columns + (Column("tariff_id", "String", since=2),))
    history = MIGRATIONS + (Migration(2, "tariff id", (AddColumns(grown),)),)
    report = clickhouse.migrate(chdb_client, database, migrations=history)
    again = clickhouse.migrate(chdb_client, database, migrations=history)
    assert report.applied == (2,) and again.applied == ()
    names = [r[0] for r in chdb_client.query(f"DESCRIBE TABLE `{database}`.sessions").result_rows]
    assert names[-1] == "tariff_id" and names.count("tariff_id") == 1


def test_a_retried_batch_with_the_same_token_lands_once(chdb_client, database: str) -> None:
    from tests.test_contracts import SAMPLES

    row = SAMPLES["frames"]
    for _ in range(3):
        chdb_client.insert(
            "frames", [row.row()], column_names=list(type(row).model_fields), database=database,
            settings={"insert_deduplication_token": "batch-1"},
        )
    count = chdb_client.query(f"SELECT count() FROM `{database}`.frames").result_rows[0][0]
    assert count == 1
