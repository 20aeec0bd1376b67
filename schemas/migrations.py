"""The versioned schema history. Append, never edit: a deployed database has applied the past.

To add a column: append it to its table in :mod:`schemas.tables` with ``since=N`` and add
``Migration(N, "...", (AddColumns(TABLE),))`` here. To change a column's codec: give it ``codec`` and
``codec_since=N`` and add ``ModifyCodecs(TABLE)``. ``infra.clickhouse`` applies what a database has not seen
yet and records it in ``schema_migrations``.

Retention (TTLs) is not a migration: it follows the settings, and every run of ``infra.clickhouse.migrate``
makes each table's TTL what they say (:mod:`schemas.retention`); migration 7 made TTLs drop whole parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import ddl
from schemas.migration_numbers import METER_KEYS as METER_KEYS_SINCE
from schemas.migration_numbers import SIGNED_SINCE
from schemas.tables import (
    AGGREGATE_TABLES,
    ALL_TABLES,
    CHARGE_ATTEMPTS,
    CHARGER_DAILY,
    CODECS_AND_RETENTION,
    CONNECTOR_STATUS,
    EXCLUSION_AUDIT,
    FAULT_EVENTS,
    FAULTS_DAILY,
    FRAMES,
    ID_TOKEN_TYPE_SINCE,
    METER_KEYS,
    OPERATOR_TABLES,
    OUTAGE_EXCLUSIONS,
    PORT_OUTAGES,
    PORT_OUTAGES_WITH_EXCLUSIONS,
    SESSIONS,
    SESSIONS_DAILY,
    SESSIONS_DAILY_V2,
    ReadView,
    Table,
    View,
)

# Every table that stores rows (the views' targets included): each has a retention class.
RETAINED_TABLES: tuple[Table, ...] = ALL_TABLES + OPERATOR_TABLES + AGGREGATE_TABLES


@dataclass(frozen=True)
class CreateTable:
    table: Table

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.create_table(self.table, database, dialect, at_version=version)


@dataclass(frozen=True)
class AddColumns:
    table: Table

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.add_columns(self.table, database, dialect, version=version)


@dataclass(frozen=True)
class ModifyCodecs:
    table: Table

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.modify_codecs(self.table, database, dialect, version=version)


@dataclass(frozen=True)
class TtlSettings:
    table: Table

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.ttl_settings(self.table, database, dialect)


@dataclass(frozen=True)
class CreateView:
    view: View

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.create_view(self.view, database, dialect)


@dataclass(frozen=True)
class DropView:
    view: View

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.drop_view(self.view, database, dialect)


@dataclass(frozen=True)
class CreateReadView:
    view: ReadView

    def statements(self, database: str, dialect: ddl.Dialect, version: int) -> list[str]:
        return ddl.create_read_view(self.view, database, dialect)


Step = CreateTable | AddColumns | ModifyCodecs | TtlSettings | CreateView | DropView | CreateReadView


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    steps: tuple[Step, ...]

    def statements(self, database: str, dialect: ddl.Dialect) -> list[str]:
        return [s for step in self.steps for s in step.statements(database, dialect, self.version)]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, fault events, connector status, frames",
        (CreateTable(SESSIONS), CreateTable(FAULT_EVENTS), CreateTable(CONNECTOR_STATUS), CreateTable(FRAMES)),
    ),
    Migration(
        2,
        "daily aggregates per charger (materialized views); sessions.revision",
        (AddColumns(SESSIONS), CreateTable(CHARGER_DAILY), CreateView(SESSIONS_DAILY_V2), CreateView(FAULTS_DAILY)),
    ),
    Migration(
        3,
        "sessions amendable: session_id in the key (reused transaction ids), previous_energy_wh / _duration_s; "
        "daily aggregates add each revision's difference",
        (AddColumns(SESSIONS), DropView(SESSIONS_DAILY_V2), CreateView(SESSIONS_DAILY)),
    ),
    Migration(
        4,
        "OCPP 2.0.1 beside 1.6: sessions.ocpp_version, fault_events.ocpp_version",
        (AddColumns(SESSIONS), AddColumns(FAULT_EVENTS)),
    ),
    Migration(
        5,
        "reliability KPIs: port_outages, outage_exclusions, charge_attempts; sessions.charging_s, suspended_ev_s, "
        "suspended_evse_s, blocked_after_stop_s",
        (CreateTable(PORT_OUTAGES), CreateTable(OUTAGE_EXCLUSIONS), CreateTable(CHARGE_ATTEMPTS), AddColumns(SESSIONS)),
    ),
    Migration(
        EXCLUSION_AUDIT,
        "exclusions as audited events: outage_exclusions.recorded_by, reference, forced; port_outages_with_exclusions "
        "(an outage's excluded_reason derived at read time)",
        (AddColumns(OUTAGE_EXCLUSIONS), CreateReadView(PORT_OUTAGES_WITH_EXCLUSIONS)),
    ),
    Migration(
        CODECS_AND_RETENTION,
        "column codecs chosen by measurement (frames: ZSTD for the JSON text, Delta / DoubleDelta for times and "
        "sequence numbers; the event tables ZSTD; BENCHMARKS.md); TTLs drop whole parts (retention from the settings)",
        tuple(ModifyCodecs(t) for t in (FRAMES, CONNECTOR_STATUS, SESSIONS, FAULT_EVENTS, PORT_OUTAGES, CHARGE_ATTEMPTS))
        # the tables that existed then (a table created later gets its settings in its own migration)
        + tuple(TtlSettings(t) for t in RETAINED_TABLES if t.columns_at(CODECS_AND_RETENTION)),
    ),
    Migration(
        ID_TOKEN_TYPE_SINCE,
        "sessions.id_token_type: how the driver identified (EV-ChART module 2 payment_method)",
        (AddColumns(SESSIONS),),
    ),
    Migration(
        METER_KEYS_SINCE,
        "meter_keys: the meter public keys operators register (ocpp-pipeline keys, ocpp.meter_keys.v1), issue 25",
        (CreateTable(METER_KEYS), TtlSettings(METER_KEYS)),
    ),
    Migration(
        SIGNED_SINCE,
        "signed meter values (issue 25): sessions.signed_start, signed_stop, signature_status, signed_energy_wh, "
        "signed_energy_register, signed_meter_serial, signature_key",
        (AddColumns(SESSIONS),),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
