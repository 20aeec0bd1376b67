"""Migrations against the real ClickHouse engine (chDB): idempotent, versioned, deduplicating."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infra import clickhouse
from infra.settings import ClickHouseSettings
from schemas import ddl
from schemas.columns import Col, columns_of
from schemas.migrations import CODECS_AND_RETENTION, MIGRATIONS, RETAINED_TABLES, AddColumns, Migration
from schemas.records import Session
from schemas.retention import COMPLIANCE_FLOOR_DAYS, Retention, TableClass
from schemas.tables import (AGGREGATE_TABLES, ALL_TABLES, FRAMES, OPERATOR_TABLES, READ_VIEWS, SESSIONS, VIEWS, Column,
                            Table)


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

    class TariffSession(Session):  # a field added to the record is the column added to its table
        tariff_id: Annotated[str, Col(since=later)] = ""

    grown = replace(SESSIONS, columns=columns_of(TariffSession, codec="ZSTD(1)", codec_since=CODECS_AND_RETENTION),
                    record=TariffSession)
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


def test_migration_10_reads_a_session_written_before_it_as_unsigned(chdb_client, unique: str) -> None:
    """Rows written before the signed meter value columns came (migration 10) had no signed values: they read as
    ``unsigned`` (the column's DEFAULT), the signed data '' and the signed energy NULL; rows written after say theirs."""
    from processors.clickhouse_sink import COLUMNS
    from schemas.migration_numbers import SIGNED_SINCE
    from tests.test_contracts import SAMPLES

    database = f"m10_{unique}"
    clickhouse.migrate(chdb_client, database, migrations=tuple(m for m in MIGRATIONS if m.version < SIGNED_SINCE))
    old = SAMPLES["sessions"]
    old_columns = [c.name for c in SESSIONS.columns_at(SIGNED_SINCE - 1)]
    chdb_client.insert("sessions", [old.row()[:len(old_columns)]], column_names=old_columns, database=database)
    assert clickhouse.migrate(chdb_client, database).applied == tuple(m.version for m in MIGRATIONS
                                                                        if m.version >= SIGNED_SINCE)
    signed = old.model_copy(update={"session_id": "signed", "signature_status": "verified", "signed_start": "OCMF|{}|{}",
                                    "signed_energy_wh": 150.0})
    chdb_client.insert("sessions", [signed.row()], column_names=COLUMNS["sessions"], database=database)
    rows = chdb_client.query(f"SELECT session_id, signature_status, signed_start, signed_energy_wh, signature_key "
                             f"FROM `{database}`.sessions FINAL ORDER BY session_id").result_rows
    assert rows == [(old.session_id, "unsigned", "", None, ""), ("signed", "verified", "OCMF|{}|{}", 150.0, "")]


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


# --- retention (TTL per table class) and codecs: migration 7 and schemas/retention.py -------------------------

RAW_TABLES = tuple(t for t in RETAINED_TABLES if t.table_class in (TableClass.RAW, TableClass.STATUS))
COMPLIANCE_TABLES = tuple(t for t in RETAINED_TABLES if t.table_class is TableClass.COMPLIANCE)
REGISTRY_TABLES = tuple(t for t in RETAINED_TABLES if t.table_class is TableClass.REGISTRY)


def _at(sample: Any, when: datetime, charge_point_id: str) -> Any:
    """``sample`` with every time in it set to ``when`` (so its retention counts from then)."""
    times = {name: when for name, value in sample if isinstance(value, datetime)}
    return sample.model_copy(update=times | {"charge_point_id": charge_point_id})


def test_the_default_retention_puts_a_ttl_on_the_raw_tables_and_none_on_the_compliance_tables(
        chdb_client, unique: str) -> None:
    database = f"r_{unique}"
    settings = ClickHouseSettings.model_construct()  # the defaults, whatever the environment says
    report = clickhouse.migrate(chdb_client, database, retention=settings.retention())
    have = clickhouse.table_ttls(chdb_client, database)
    assert have["frames"] == f"toDateTime(received_at) + toIntervalDay({settings.frames_ttl_days})"
    assert have["connector_status"] == f"toDateTime(received_at) + toIntervalDay({settings.status_ttl_days})"
    assert {t.name for t in RAW_TABLES} == {"frames", "connector_status"}
    assert {t.name: have[t.name] for t in COMPLIANCE_TABLES} == {t.name: None for t in COMPLIANCE_TABLES}
    assert set(report.retention_changed) == {"frames", "connector_status"}
    assert clickhouse.migrate(chdb_client, database, retention=settings.retention()).retention_changed == ()


def test_the_key_registry_is_never_expired_whatever_the_settings(chdb_client, unique: str) -> None:
    database = f"r_{unique}"
    clickhouse.migrate(chdb_client, database, retention=Retention(raw_days=1, status_days=1,
                                                                  compliance_days=COMPLIANCE_FLOOR_DAYS))
    have = clickhouse.table_ttls(chdb_client, database)
    assert {t.name for t in REGISTRY_TABLES} == {"meter_keys"}
    assert all(have[t.name] is None for t in REGISTRY_TABLES)


@pytest.mark.parametrize("gap_days", [1, 45], ids=["same-month-part", "whole-part"])
@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_a_row_older_than_its_retention_goes_and_a_younger_one_stays(chdb_client, unique: str, table: Table,
                                                                     gap_days: int) -> None:
    """An expired part is dropped whole; an expired row in a part with younger ones goes when the part is merged
    (``OPTIMIZE ... FINAL`` merges at once what ClickHouse merges over hours)."""
    from processors.clickhouse_sink import COLUMNS
    from tests.test_contracts import SAMPLES

    retention = Retention(raw_days=30, status_days=60, compliance_days=COMPLIANCE_FLOOR_DAYS)
    days = retention.days(table.table_class)
    assert days is not None
    database = f"r_{unique}"
    clickhouse.migrate(chdb_client, database, retention=retention)
    now = datetime.now(timezone.utc)
    rows = [_at(SAMPLES[table.name], now - timedelta(days=days + gap_days), "CP-old"),
            _at(SAMPLES[table.name], now - timedelta(days=days - 1), "CP-young")]
    chdb_client.insert(table.name, [r.row() for r in rows], column_names=COLUMNS[table.name], database=database)
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.`{table.name}` FINAL")
    left = chdb_client.query(f"SELECT charge_point_id FROM `{database}`.`{table.name}`").result_rows
    assert left == [("CP-young",)]


def test_a_changed_setting_changes_the_tables_in_place(chdb_client, unique: str) -> None:
    from processors.clickhouse_sink import COLUMNS
    from tests.test_contracts import SAMPLES

    database = f"r_{unique}"
    clickhouse.migrate(chdb_client, database, retention=Retention(raw_days=120, status_days=400))
    now = datetime.now(timezone.utc)
    frames = [_at(SAMPLES["frames"], now - timedelta(days=d), f"CP-{d}") for d in (10, 50, 100)]
    chdb_client.insert("frames", [f.row() for f in frames], column_names=COLUMNS["frames"], database=database)
    shorter = clickhouse.migrate(chdb_client, database, retention=Retention(raw_days=40, status_days=400))
    assert shorter.retention_changed == ("frames",)
    assert clickhouse.table_ttls(chdb_client, database)["frames"] == "toDateTime(received_at) + toIntervalDay(40)"
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.frames FINAL")
    assert chdb_client.query(f"SELECT charge_point_id FROM `{database}`.frames").result_rows == [("CP-10",)]
    kept = clickhouse.migrate(chdb_client, database, retention=Retention(raw_days=None, status_days=None))
    assert set(kept.retention_changed) == {"frames", "connector_status"}
    assert set(clickhouse.table_ttls(chdb_client, database).values()) == {None}


retentions = st.builds(Retention, raw_days=st.none() | st.integers(1, 4000), status_days=st.none() | st.integers(1, 4000),
                       compliance_days=st.none() | st.integers(COMPLIANCE_FLOOR_DAYS, 4000))


@given(have=st.fixed_dictionaries({ddl.local_name(t, ddl.Embedded()): st.none() | st.sampled_from(
           [ddl.ttl_expression(t, d) for d in (1, 30, 120, 400, 4000)]) for t in RETAINED_TABLES}),
       want=retentions)
def test_the_retention_statements_reach_any_setting_from_any_state_and_nothing_more(have: dict[str, str | None],
                                                                                  want: Retention) -> None:
    todo = clickhouse.retention_statements(have, "ocpp", ddl.Embedded(), want)
    for table in RETAINED_TABLES:
        days = want.days(table.table_class)
        expected = None if days is None else ddl.ttl_expression(table, days)
        if have[table.name] == expected:
            assert table.name not in todo
        else:
            (statement,) = todo[table.name]
            assert statement.endswith("REMOVE TTL" if expected is None else f"MODIFY TTL {expected}")


@settings(max_examples=8, deadline=None)
@given(steps=st.lists(retentions, min_size=1, max_size=3))
def test_any_sequence_of_settings_leaves_the_tables_with_the_last_one(chdb_client, steps: list[Retention]) -> None:
    database = f"r_{uuid.uuid4().hex[:10]}"
    for retention in steps:
        clickhouse.migrate(chdb_client, database, retention=retention)
    have = clickhouse.table_ttls(chdb_client, database)
    last = steps[-1]
    for table in RETAINED_TABLES:
        days = last.days(table.table_class)
        assert have[table.name] == (None if days is None else ddl.ttl_expression(table, days)), table.name
    chdb_client.command(f"DROP DATABASE `{database}`")


@pytest.mark.parametrize(("variable", "value", "accepted"), [
    ("OCPP_CLICKHOUSE_FRAMES_TTL_DAYS", "0", True), ("OCPP_CLICKHOUSE_FRAMES_TTL_DAYS", "1", True),
    ("OCPP_CLICKHOUSE_FRAMES_TTL_DAYS", "-1", False), ("OCPP_CLICKHOUSE_STATUS_TTL_DAYS", "0", True),
    ("OCPP_CLICKHOUSE_COMPLIANCE_TTL_DAYS", "0", True), ("OCPP_CLICKHOUSE_COMPLIANCE_TTL_DAYS", "399", False),
    ("OCPP_CLICKHOUSE_COMPLIANCE_TTL_DAYS", str(COMPLIANCE_FLOOR_DAYS), True),
    ("OCPP_CLICKHOUSE_COMPLIANCE_TTL_DAYS", "3650", True),
])
def test_retention_settings(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, accepted: bool) -> None:
    monkeypatch.setenv(variable, value)
    if not accepted:
        with pytest.raises(ValidationError):
            ClickHouseSettings()
        return
    retention = ClickHouseSettings().retention()
    table_class = {"FRAMES": TableClass.RAW, "STATUS": TableClass.STATUS, "COMPLIANCE": TableClass.COMPLIANCE}[
        variable.split("_")[2]]
    assert retention.days(table_class) == (int(value) or None)


def _frames_like_a_fleet(count: int) -> list[list[Any]]:
    """Frame rows shaped like a fleet's: per charger, CALLs and their answers a few seconds apart, meter values."""
    from tests.test_contracts import SAMPLES

    sample = SAMPLES["frames"]
    start = datetime.now(timezone.utc) - timedelta(days=2)
    rows = []
    for i in range(count):
        charger, n = i % 40, i // 40
        meter = 1000 + 37 * n
        raw = (f'[2,"{n}","MeterValues",{{"connectorId":1,"transactionId":{700 + charger},"meterValue":[{{"timestamp":'
               f'"{(start + timedelta(seconds=60 * n)).isoformat()}","sampledValue":[{{"value":"{meter}",'
               f'"measurand":"Energy.Active.Import.Register","unit":"Wh"}}]}}]}}]') if n % 2 == 0 else f'[3,"{n - 1}",{{}}]'
        rows.append(sample.model_copy(update={
            "charge_point_id": f"SIM-{charger:05d}", "received_at": start + timedelta(seconds=30 * n, milliseconds=charger),
            "direction": "in" if n % 2 == 0 else "out", "message_type": 2 if n % 2 == 0 else 3, "action": "MeterValues",
            "message_id": str(n - n % 2), "raw": raw, "connection_id": f"c{charger}", "seq": n, "error": ""}).row())
    return rows


def test_migration_7_gives_a_database_with_rows_its_codecs_in_place(chdb_client, unique: str) -> None:
    """A database at the version before (LZ4 everywhere) with frames: the codecs are set without touching a row,
    and the next merge writes the rows smaller; every row reads the same before and after."""
    from processors.clickhouse_sink import COLUMNS

    database = f"c_{unique}"
    before = tuple(m for m in MIGRATIONS if m.version < CODECS_AND_RETENTION)
    clickhouse.migrate(chdb_client, database, migrations=before)
    chdb_client.insert("frames", _frames_like_a_fleet(20_000), column_names=COLUMNS["frames"], database=database)
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.frames FINAL")

    def state() -> tuple[Any, int]:
        digest = chdb_client.query(f"SELECT count(), groupBitXor(cityHash64(*)) FROM `{database}`.frames").result_rows[0]
        size = chdb_client.query(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{database}' "
                                 "AND table = 'frames' AND active").result_rows[0][0]
        return digest, int(size)

    rows_lz4, size_lz4 = state()
    report = clickhouse.migrate(chdb_client, database)
    assert report.applied == tuple(m.version for m in MIGRATIONS if m.version >= CODECS_AND_RETENTION)
    codecs = dict(chdb_client.query(f"SELECT name, compression_codec FROM system.columns WHERE database = '{database}' "
                                    "AND table = 'frames'").result_rows)
    assert codecs == {c.name: f"CODEC({c.codec})" if c.codec else "" for c in FRAMES.columns}
    assert any(codecs.values())
    assert state()[0] == rows_lz4
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.frames FINAL")
    rows_coded, size_coded = state()
    assert rows_coded == rows_lz4
    assert size_coded < size_lz4
    comments = dict(chdb_client.query(f"SELECT name, comment FROM system.columns WHERE database = '{database}' "
                                      "AND table = 'frames'").result_rows)
    assert comments == {c.name: c.comment for c in FRAMES.columns}  # a MODIFY COLUMN keeps what it restates


def test_the_cluster_retention_ddl_parses_in_the_real_engine(chdb_client) -> None:
    from schemas import ddl as cluster_ddl

    dialect = cluster_ddl.Cluster(name="ocpp")
    todo = clickhouse.retention_statements({cluster_ddl.local_name(t, dialect): None for t in RETAINED_TABLES}, "ocpp",
                                           dialect, Retention(raw_days=120, status_days=400, compliance_days=2000))
    statements = [s for group in todo.values() for s in group]
    assert len(statements) == len([t for t in RETAINED_TABLES if t.table_class is not TableClass.REGISTRY])
    for statement in statements:
        assert " ON CLUSTER 'ocpp' MODIFY TTL " in statement and "_local`" in statement
        chdb_client.query("SELECT formatQuery(%(q)s)", parameters={"q": statement})
