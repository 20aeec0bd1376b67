"""Rows for the KPI tables, written into a migrated chDB database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.records import ChargeAttempt, OutageCause, OutageExclusion, PortOutage, Session
from schemas.tables import CHARGE_ATTEMPTS, CONNECTOR_STATUS, OUTAGE_EXCLUSIONS, PORT_OUTAGES, SESSIONS

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ms(minutes: float) -> int:
    return int(at(minutes).timestamp() * 1000)


def outage(cp: str, connector: int, start_min: float, end_min: float | None, cause: OutageCause = OutageCause.FAULTED,
           version: int = 1, excluded_reason: str = "", outage_id: str | None = None) -> PortOutage:
    return PortOutage(
        charge_point_id=cp, connector_id=connector, outage_id=outage_id or f"{cp}-{connector}-{start_min}",
        started_at=at(start_min), ended_at=None if end_min is None else at(end_min),
        duration_s=None if end_min is None else (end_min - start_min) * 60, cause=cause, error_code="",
        vendor_error_code="", excluded_reason=excluded_reason, version=version)


def insert_outages(client, database: str, outages: list[PortOutage]) -> None:
    client.insert(PORT_OUTAGES.name, [o.row() for o in outages], column_names=list(PORT_OUTAGES.column_names),
                  database=database)


def insert_status(client, database: str, cp: str, connector: int, minutes: float, status: str = "Available") -> None:
    row = {"event_id": f"{cp}-{connector}-{minutes}", "charge_point_id": cp, "connector_id": connector,
           "status": status, "previous_status": "", "error_code": "NoError", "info": "", "vendor_id": "",
           "vendor_error_code": "", "occurred_at": at(minutes), "received_at": at(minutes), "flags": []}
    client.insert(CONNECTOR_STATUS.name, [[row[c] for c in CONNECTOR_STATUS.column_names]],
                  column_names=list(CONNECTOR_STATUS.column_names), database=database)


def attempt(cp: str, connector: int, minutes: float, *, delivered: bool, ended_ok: bool, delay_s: float | None = None,
            attempt_id: str | None = None, failure: str = "", version: int = 1) -> ChargeAttempt:
    return ChargeAttempt(
        charge_point_id=cp, connector_id=connector, attempt_id=attempt_id or f"{cp}-{connector}-{minutes}",
        started_at=at(minutes), kind="start_transaction", transaction_id="", id_tag="", delivered=delivered,
        ended_ok=ended_ok, failure=failure, start_delay_s=delay_s, version=version)


def insert_attempts(client, database: str, attempts: list[ChargeAttempt]) -> None:
    client.insert(CHARGE_ATTEMPTS.name, [a.row() for a in attempts], column_names=list(CHARGE_ATTEMPTS.column_names),
                  database=database)


def session(cp: str, connector: int | None, start_min: float, end_min: float, energy_wh: float | None,
            session_id: str, peak_power_w: float | None = 7400.0) -> Session:
    return Session(
        charge_point_id=cp, connector_id=connector, transaction_id=session_id, id_tag="TAG", started_at=at(start_min),
        stopped_at=at(end_min), meter_start_wh=0.0, meter_stop_wh=energy_wh, energy_wh=energy_wh,
        energy_source="meter_stop", stop_reason="Local", stop_status="Available", stop_error_code="",
        stop_status_at=None, duration_s=(end_min - start_min) * 60, peak_power_w=peak_power_w, soc_start_pct=None,
        soc_end_pct=None, sample_count=0, closed_by="stop_transaction", received_at=at(end_min), version=1,
        session_id=session_id)


def insert_sessions(client, database: str, sessions: list[Session]) -> None:
    client.insert(SESSIONS.name, [s.row() for s in sessions], column_names=list(SESSIONS.column_names),
                  database=database)


def insert_exclusions(client, database: str, exclusions: list[OutageExclusion]) -> None:
    """What the worker stores from ``ocpp.exclusions.v1`` (the same insert as its sink's)."""
    client.insert(OUTAGE_EXCLUSIONS.name, [e.row() for e in exclusions], column_names=list(OUTAGE_EXCLUSIONS.column_names),
                  database=database)
