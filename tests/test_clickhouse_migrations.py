"""Migrations against the real ClickHouse engine (chDB): idempotent, versioned, deduplicating."""

from __future__ import annotations

from dataclasses import replace

from infra import clickhouse
from schemas.migrations import MIGRATIONS, AddColumns, Migration
from schemas.tables import AGGREGATE_TABLES, ALL_TABLES, OPERATOR_TABLES, READ_VIEWS, SESSIONS, VIEWS, Column


def test_migrate_twice_applies_once(chdb_client, unique: str) -> None:
    database = f"m_{unique}"
    first = clickhouse.migrate(chdb_client, database)
    second = clickhouse.migrate(chdb_client, database)
    assert first.applied == tuple(m.version for m in MIGRATIONS)
    assert second.applied == ()
    assert second.current_version == first.current_version == MIGRATIONS[-1].version
    tables = {r[0] for r in chdb_client.query(f"SHOW TABLES FROM `{database}`").result_rows}
    assert tables == ({t.name for t in ALL_TABLES + OPERATOR_TABLES + AGGREGATE_TABLES} | {v.name for v in VIEWS}
                      | {v.name for v in READ_VIEWS} | {clickhouse.MIGRATIONS_TABLE})


def test_a_later_migration_adds_its_columns_once(chdb_client, unique: str) -> None:
    database = f"m_{unique}"
    clickhouse.migrate(chdb_client, database)
    later = MIGRATIONS[-1].version + 1
    grown = replace(SESSIONS, columns=SESSIONS.columns + (Column("tariff_id", "String", since=later),))
    history = MIGRATIONS + (Migration(later, "tariff id", (AddColumns(grown),)),)
    report = clickhouse.migrate(chdb_client, database, migrations=history)
    again = clickhouse.migrate(chdb_client, database, migrations=history)
    assert report.applied == (later,) and again.applied == ()
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


def test_daily_aggregates_count_each_session_once_with_its_newest_energy_even_when_a_batch_is_retried(
        chdb_client, database: str) -> None:
    from processors.clickhouse_sink import COLUMNS
    from tests.test_contracts import SAMPLES

    session = SAMPLES["sessions"]
    first = session.model_copy(update={"energy_wh": 7500.0, "duration_s": 3600.0, "flags": []})
    second = first.model_copy(update={"transaction_id": "other", "session_id": "s2", "energy_wh": None,
                                      "closed_by": "available", "duration_s": 1800.0})
    reemitted = first.model_copy(update={"version": first.version + 1, "revision": 1, "flags": ["duplicate_stop_conflict"],
                                         "previous_energy_wh": 7500.0, "previous_duration_s": 3600.0})
    # The real stop of the second arrives: energy known now, a longer duration (the charger's clock).
    amended = second.model_copy(update={"version": second.version + 1, "revision": 1, "energy_wh": 500.0,
                                        "duration_s": 3600.0, "previous_energy_wh": None, "previous_duration_s": 1800.0})
    batches = [([first, second], "b1"), ([first, second], "b1"), ([reemitted, amended], "b2")]  # b1 retried
    for rows, token in batches:
        chdb_client.insert("sessions", [r.row() for r in rows], column_names=COLUMNS["sessions"], database=database,
                           settings={"insert_deduplication_token": token,
                                     "deduplicate_blocks_in_dependent_materialized_views": 1})
    fault = SAMPLES["fault_events"]
    began = fault.model_copy(update={"event": "began", "duration_s": None})
    cleared = fault.model_copy(update={"event_id": "e2", "event": "cleared", "duration_s": 90.0})
    chdb_client.insert("fault_events", [began.row(), cleared.row()], column_names=COLUMNS["fault_events"],
                       database=database, settings={"insert_deduplication_token": "f1"})
    (row,) = chdb_client.query(
        f"SELECT sum(sessions), sum(energy_wh), sum(charging_s), sum(faults), sum(fault_s) "
        f"FROM `{database}`.charger_daily WHERE charge_point_id = %(cp)s", parameters={"cp": first.charge_point_id},
    ).result_rows
    assert row == (2, 8000.0, 7200.0, 1, 90.0)


def test_migration_3_puts_session_id_in_the_key_of_a_database_that_has_rows(chdb_client, unique: str) -> None:
    """A database at version 2 with a session row: migration 3 keeps the row (session_id '') and
    two sessions sharing a transaction id are two rows from then on."""
    from processors.clickhouse_sink import COLUMNS
    from tests.test_contracts import SAMPLES

    database = f"m3_{unique}"
    clickhouse.migrate(chdb_client, database, migrations=MIGRATIONS[:2])
    old = SAMPLES["sessions"]
    old_columns = [c.name for c in SESSIONS.columns_at(2)]
    chdb_client.insert("sessions", [old.row()[:len(old_columns)]], column_names=old_columns, database=database)
    clickhouse.migrate(chdb_client, database)
    reused = [old.model_copy(update={"session_id": sid, "version": old.version + 1}) for sid in ("a", "b")]
    chdb_client.insert("sessions", [r.row() for r in reused], column_names=COLUMNS["sessions"], database=database)
    rows = chdb_client.query(f"SELECT session_id FROM `{database}`.sessions FINAL ORDER BY session_id").result_rows
    assert rows == [("",), ("a",), ("b",)]
    key = chdb_client.query(f"SELECT sorting_key FROM system.tables WHERE database = '{database}' AND name = 'sessions'")
    assert key.result_rows[0][0] == "charge_point_id, transaction_id, session_id"


def test_the_cluster_ddl_parses_in_the_real_engine(chdb_client) -> None:
    """A single node cannot run ON CLUSTER / Replicated DDL (no Keeper, no cluster): the engine's own
    parser checks every statement instead, and the rendering is checked for what a cluster needs."""
    from schemas import ddl

    dialect = ddl.Cluster(name="ocpp")
    statements = [s for m in MIGRATIONS for s in m.statements("ocpp", dialect)]
    for statement in statements:
        formatted = chdb_client.query("SELECT formatQuery(%(q)s)", parameters={"q": statement}).result_rows[0][0]
        assert formatted.startswith(("CREATE", "ALTER", "DROP VIEW")), statement
    text = "\n".join(statements)
    assert all(" ON CLUSTER 'ocpp'" in s for s in statements)
    for table in ALL_TABLES + AGGREGATE_TABLES:
        assert f"`ocpp`.`{table.name}_local`" in text and f"Distributed('ocpp', 'ocpp', '{table.name}_local'" in text
    assert "ReplicatedSummingMergeTree(" in text and "ReplicatedReplacingMergeTree(" in text
    for view in VIEWS:
        assert f"TO `ocpp`.`{view.target.name}_local`" in text and f"FROM `ocpp`.`{view.source.name}_local`" in text
