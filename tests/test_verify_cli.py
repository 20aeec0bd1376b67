"""``ocpp-pipeline verify``: a session's signed readings judged again with today's registry, read from the real
engine (chDB) - the session's frames (1.6 and 2.0.1, the real records of ../shared/ocmf) or, once the sessions table
has them (migration 10), its signed_start / signed_stop columns."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from infra import clickhouse
from kpi.source import ClientSource
from ocpp_pipeline import verify
from schemas.migration_numbers import SIGNED_SINCE
from schemas.migrations import MIGRATIONS
from schemas.records import FrameRow, Session
from schemas.tables import SESSIONS
from signed_meter.key_events import record_of
from signed_meter.registry import KeyAction, KeyEvent, RegisteredKey
from tests.signed_meter.conftest import OCMF_DIR

SAMPLES: list[dict[str, Any]] = json.loads((OCMF_DIR / "samples.json").read_text())
TAMPERED: list[dict[str, Any]] = json.loads((OCMF_DIR / "tampered.json").read_text())
PAIRS: dict[str, list[dict[str, Any]]] = {}
for _s in SAMPLES:
    PAIRS.setdefault(_s["pair_id"], []).append(_s)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
OCMF_PAIRS = sorted(p for p, members in PAIRS.items() if members[0]["format"] == "OCMF")


@pytest.fixture(scope="module")
def db(chdb_client) -> str:
    import uuid

    name = f"verify_{uuid.uuid4().hex[:8]}"
    clickhouse.migrate(chdb_client, name)
    return name


def _frame(cp: str, n: int, action: str, payload: dict[str, Any], version: str) -> list[Any]:
    return FrameRow(charge_point_id=cp, received_at=T0 + timedelta(minutes=n), direction="in", message_type=2,
                    action=action, message_id=str(n), raw=json.dumps([2, str(n), action, payload]), ocpp_version=version,
                    gateway_id="gw", connection_id="c1", seq=n, error="").row()


def session_frames(cp: str, tx: str, members: list[dict[str, Any]], version: str) -> list[list[Any]]:
    """A session's frames carrying its records as the README says (1.6: MeterValues, the End in
    StopTransaction.transactionData; 2.0.1: TransactionEvent Started / Updated / Ended)."""
    rows = []
    for n, member in enumerate(members, start=1):
        last = n == len(members)
        at = (T0 + timedelta(minutes=n)).isoformat()
        if version == "ocpp1.6":
            sampled = {**member["ocpp16_sampled_value"]}
            if last:
                rows.append(_frame(cp, n, "StopTransaction", {"transactionId": int(tx), "meterStop": 150, "timestamp": at,
                                                              "transactionData": [{"timestamp": at, "sampledValue": [sampled]}]},
                                   version))
            else:
                rows.append(_frame(cp, n, "MeterValues", {"connectorId": 1, "transactionId": int(tx),
                                                          "meterValue": [{"timestamp": at, "sampledValue": [sampled]}]},
                                   version))
        else:
            kind = "Ended" if last else ("Started" if n == 1 else "Updated")
            rows.append(_frame(cp, n, "TransactionEvent", {
                "eventType": kind, "timestamp": at, "triggerReason": "SignedDataReceived", "seqNo": n,
                "transactionInfo": {"transactionId": tx}, "evse": {"id": 1, "connectorId": 1},
                "meterValue": [{"timestamp": at, "sampledValue": [member["ocpp201_sampled_value"]]}]}, version))
    # another transaction of the same charger in the same window: never part of this session
    other = members[0]["ocpp16_sampled_value"]
    rows.append(_frame(cp, 99, "MeterValues", {"connectorId": 2, "transactionId": 424242,
                                                "meterValue": [{"timestamp": T0.isoformat(), "sampledValue": [other]}]},
                       "ocpp1.6"))
    return rows


def session_row(cp: str, tx: str, energy_wh: float | None, version: str) -> list[Any]:
    return Session(charge_point_id=cp, connector_id=1, transaction_id=tx, id_tag="TAG", started_at=T0,
                   stopped_at=T0 + timedelta(minutes=10), meter_start_wh=0.0, meter_stop_wh=energy_wh,
                   energy_wh=energy_wh, energy_source="meter_stop", stop_reason="Local", stop_status="", stop_error_code="",
                   stop_status_at=None, duration_s=600.0, peak_power_w=None, soc_start_pct=None, soc_end_pct=None,
                   sample_count=0, closed_by="stop_transaction", received_at=T0 + timedelta(minutes=10), version=1,
                   session_id=f"{cp}-{tx}-s", ocpp_version=version).row()


def register(chdb_client, db: str, cp: str, key: str, action: KeyAction = KeyAction.ADD, minutes: int = 0) -> None:
    record = record_of(KeyEvent(action, RegisteredKey(cp, None, key, None, "auditor", "T-1")), T0 + timedelta(minutes=minutes))
    chdb_client.insert("meter_keys", [record.row()], column_names=list(type(record).model_fields), database=db)


def store(chdb_client, db: str, cp: str, tx: str, members: list[dict[str, Any]], version: str,
          energy_wh: float | None = None) -> None:
    chdb_client.insert("frames", session_frames(cp, tx, members, version), column_names=list(FrameRow.model_fields),
                       database=db)
    chdb_client.insert("sessions", [session_row(cp, tx, energy_wh, version)], column_names=list(Session.model_fields),
                       database=db)


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
@pytest.mark.parametrize("pair", OCMF_PAIRS)
def test_every_real_session_verifies_with_its_registered_key(chdb_client, db: str, pair: str, version: str) -> None:
    members = PAIRS[pair]
    cp, tx = f"SMV-{pair}-{version[-3:]}".replace(".", ""), "1001"
    expected = members[0]["expected_signed_energy_wh"]
    store(chdb_client, db, cp, tx, members, version, energy_wh=expected)
    register(chdb_client, db, cp, members[0]["public_key_hex"])
    result = verify.audit(ClientSource(chdb_client), db, tx, cp)
    assert result.source == "frames"
    assert result.verdict.signature_status.value == "verified", verify.report(result)
    assert result.verdict.signed_energy_wh == expected
    assert result.verdict.signed_start == members[0]["signed_data"]
    assert result.verdict.signed_stop == members[-1]["signed_data"]
    assert len(result.verdict.records) == len(members)  # the other transaction's reading is not among them
    assert verify.exit_status(result) == 0
    xml = verify.export_text(result, "xml")
    assert all(m["signed_data"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in xml for m in members)
    document = json.loads(verify.export_text(result, "json"))
    assert [v["signed_data"] for v in document["values"]] == [m["signed_data"] for m in members]
    assert {v["public_key"]["value"] for v in document["values"]} == {result.verdict.records[0].key.hex}


def test_without_a_key_the_verdict_is_key_unknown_then_a_key_added_today_verifies(chdb_client, db: str) -> None:
    members = PAIRS["bsm_fw17"]
    cp, tx = "SMV-LATE", "7"
    store(chdb_client, db, cp, tx, members, "ocpp1.6", energy_wh=150.0)
    before = verify.audit(ClientSource(chdb_client), db, tx, cp)
    assert before.verdict.signature_status.value == "key_unknown" and verify.exit_status(before) == verify.NOT_VERIFIED_EXIT
    register(chdb_client, db, cp, members[0]["public_key_hex"], minutes=1)
    assert verify.audit(ClientSource(chdb_client), db, tx, cp).verdict.signature_status.value == "verified"
    register(chdb_client, db, cp, members[0]["public_key_hex"].upper(), KeyAction.REMOVE, minutes=2)
    assert verify.audit(ClientSource(chdb_client), db, tx, cp).verdict.signature_status.value == "key_unknown"


@pytest.mark.parametrize("variant", [t for t in TAMPERED if t["format"] == "OCMF"][:6], ids=lambda t: t["name"])
def test_a_tampered_record_is_invalid_and_exits_non_zero(chdb_client, db: str, variant: dict[str, Any]) -> None:
    original = next(s for s in SAMPLES if s["name"] == variant["of"])
    tampered = {**original, "ocpp16_sampled_value": {**original["ocpp16_sampled_value"], "value": variant["signed_data"]}}
    cp, tx = f"SMV-T-{variant['name']}"[:40], "5"
    store(chdb_client, db, cp, tx, [tampered], "ocpp1.6")
    register(chdb_client, db, cp, variant["public_key_hex"])
    result = verify.audit(ClientSource(chdb_client), db, tx, cp)
    assert result.verdict.signature_status.value == "invalid", verify.report(result)
    assert verify.exit_status(result) != 0


def test_the_sessions_columns_are_preferred_when_the_table_has_them(chdb_client) -> None:
    import uuid

    db = f"verify_cols_{uuid.uuid4().hex[:8]}"
    clickhouse.migrate(chdb_client, db)
    # The columns migration 10 adds, as the worker fills them; frames with nothing signed, so only the columns can verify.
    members = PAIRS["nzr_bp256"]
    cp, tx = "SMV-COLS", "3"
    fields = list(Session.model_fields)
    row = session_row(cp, tx, 0.0, "ocpp1.6")
    row[fields.index("signed_start")], row[fields.index("signed_stop")] = members[0]["signed_data"], members[1]["signed_data"]
    chdb_client.insert("sessions", [row], column_names=fields, database=db)
    register(chdb_client, db, cp, members[0]["public_key_hex"])
    result = verify.audit(ClientSource(chdb_client), db, f"{cp}-{tx}-s")
    assert result.source == "sessions columns"
    assert result.verdict.signature_status.value == "verified" and result.verdict.signed_energy_wh == 0.0


def test_a_table_from_before_migration_10_is_read_from_its_frames(chdb_client) -> None:
    import uuid

    db = f"verify_old_{uuid.uuid4().hex[:8]}"
    clickhouse.migrate(chdb_client, db, migrations=tuple(m for m in MIGRATIONS if m.version < SIGNED_SINCE))
    members = PAIRS["dzg_dvh4013"]
    cp, tx = "SMV-OLD", "12"
    chdb_client.insert("frames", session_frames(cp, tx, members, "ocpp1.6"), column_names=list(FrameRow.model_fields),
                       database=db)
    old_fields = [c.name for c in SESSIONS.columns if c.since < SIGNED_SINCE]  # the row as the table was then
    chdb_client.insert("sessions", [session_row(cp, tx, 898.0, "ocpp1.6")[:len(old_fields)]], column_names=old_fields,
                       database=db)
    register(chdb_client, db, cp, members[0]["public_key_hex"])
    result = verify.audit(ClientSource(chdb_client), db, tx, cp)
    assert result.source == "frames"
    assert result.verdict.signature_status.value == "verified" and result.verdict.signed_energy_wh == 898.0


def test_an_unknown_or_ambiguous_session_is_a_clear_error(chdb_client, db: str) -> None:
    with pytest.raises(verify.VerifyError, match="no session"):
        verify.audit(ClientSource(chdb_client), db, "no-such-session")
    for cp in ("SMV-A1", "SMV-A2"):
        chdb_client.insert("sessions", [session_row(cp, "31337", None, "ocpp1.6")], column_names=list(Session.model_fields),
                           database=db)
    with pytest.raises(verify.VerifyError, match="--charge-point"):
        verify.audit(ClientSource(chdb_client), db, "31337")
    assert verify.audit(ClientSource(chdb_client), db, "31337", "SMV-A2").verdict.signature_status.value == "unsigned"


def test_the_report_names_readings_key_and_verdict(chdb_client, db: str, tmp_path: Path) -> None:
    members = PAIRS["dzg_dvh4013"]
    cp, tx = "SMV-REPORT", "11"
    store(chdb_client, db, cp, tx, members, "ocpp2.0.1", energy_wh=898.0)
    register(chdb_client, db, cp, members[0]["public_key_hex"])
    result = verify.audit(ClientSource(chdb_client), db, tx, cp)
    text = verify.report(result)
    assert "verdict: verified" in text and result.verdict.records[0].key.fingerprint in text
    assert "signed energy 898 Wh" in text and "1DZG0033022268" in text
