"""Signed meter values through the running worker (issue 25): the real records of ``../shared/ocmf/samples.json`` sent
as OCPP 1.6 and 2.0.1 frames on the frames topic, the meter keys registered the way operators do (``ocpp.meter_keys.v1``,
what ``ocpp-pipeline keys add`` publishes), read by the worker before its first frame. The sessions rows say
``verified`` with the signed energy and the key's fingerprint; a tampered copy ``invalid``; a charge point whose key
nobody registered ``key_unknown``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from ocpp_pipeline.keys import publish
from schemas.envelope import FrameEnvelope
from schemas.topics import FRAMES
from signed_meter.key_events import record_of
from signed_meter.keys import decode_public_key
from signed_meter.model import SignatureStatus
from signed_meter.registry import KeyAction, KeyEvent, RegisteredKey
from tests.processors.signed_conversations import V16, V201, Conversation, load, pairs, sampled_16, sampled_201
from tests.processors.test_worker_live import worker_env, workers  # noqa: F401 (fixture)

PAIRS = pairs(load("samples.json"))
TAMPERED = {t["of"]: t for t in load("tampered.json") if t["kind"] == "value_digit_changed"}


def conversation(charge_point_id: str, pair_id: str, version: str, *, tamper: str | None = None) -> Conversation:
    """One real session of ``pair_id`` as ``version`` frames; ``tamper``: the record replaced by its tampered copy."""
    records = PAIRS[pair_id]
    pair, replace = records[0]["pair"], {tamper: TAMPERED[tamper]["signed_data"]} if tamper else {}
    conv = Conversation(charge_point_id, version)
    if version == V16:
        conv.session_16(7, pair["begin_register_wh"], pair["end_register_wh"],
                        [sampled_16(r, replace.get(r["name"])) for r in records])
    else:
        conv.session_201("tx-7", pair["begin_register_wh"], [sampled_201(r, replace.get(r["name"])) for r in records])
    return conv


# charge point -> (pair, version, tampered record, key registered, the row's verdict)
CASES: dict[str, tuple[str, str, str | None, bool, SignatureStatus]] = {
    "SIG-BSM-16": ("bsm_fw17", V16, None, True, SignatureStatus.VERIFIED),
    "SIG-SEAL-201": ("seal_em340", V201, None, True, SignatureStatus.VERIFIED),
    "SIG-NZR-201": ("nzr_p384", V201, None, True, SignatureStatus.VERIFIED),
    "SIG-TAMPERED-16": ("bsm_fw19", V16, "bsm_ws36a_fw19_T4277_end", True, SignatureStatus.INVALID),
    "SIG-TAMPERED-201": ("dzg_dvh4013", V201, "dzg_dvh4013_T1040_begin", True, SignatureStatus.INVALID),
    "SIG-NOKEY-16": ("lem_dcbm", V16, None, False, SignatureStatus.KEY_UNKNOWN),
    "SIG-NOKEY-201": ("bsm_fw17", V201, None, False, SignatureStatus.KEY_UNKNOWN),
}


async def send(kafka: KafkaSettings, envelopes: list[FrameEnvelope]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(kafka.topic(FRAMES.name), key=envelope.key(),
                                         value=envelope.model_dump_json().encode())
    finally:
        await producer.stop()


def test_signed_sessions_through_the_worker_with_keys_from_the_keys_topic(kafka_settings: KafkaSettings, unique: str,
                                                                         tmp_path: Path, workers: Any) -> None:
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    asyncio.run(ensure_topics(kafka))
    now = datetime.now(timezone.utc)
    keys = {cp: PAIRS[pair][0]["public_key_hex"] for cp, (pair, _, _, registered, _) in CASES.items() if registered}
    # A key of another charge point does not count for SIG-NOKEY-201 (the same meter's key, registered elsewhere).
    events = [*keys.items(), ("SOMEONE-ELSE", PAIRS["bsm_fw17"][0]["public_key_hex"])]
    asyncio.run(publish(kafka, [record_of(KeyEvent(KeyAction.ADD, RegisteredKey(cp, None, key, None, "ops", "T-25")), now)
                                for cp, key in events]))
    envelopes = [e for cp, (pair, version, tamper, _, _) in CASES.items()
                 for e in conversation(cp, pair, version, tamper=tamper).envelopes]
    asyncio.run(send(kafka, envelopes))

    worker = workers(worker_env(kafka_settings, tmp_path / "home", unique), tmp_path / "worker.log")
    worker.wait_for("SELECT count() FROM ocpp.sessions FINAL", [[len(CASES)]])
    rows = worker.query("SELECT charge_point_id, ocpp_version, signature_status, signed_energy_wh, signature_key, "
                        "signed_start, signed_stop FROM ocpp.sessions FINAL ORDER BY 1")
    got = {r[0]: r[1:] for r in rows}
    for cp, (pair, version, tamper, registered, verdict) in CASES.items():
        records = PAIRS[pair]
        ocpp_version, status, signed_energy_wh, signature_key, signed_start, signed_stop = got[cp]
        assert (ocpp_version, status) == (version, verdict.value), (cp, got[cp])
        sent = [TAMPERED[r["name"]]["signed_data"] if r["name"] == tamper else r["signed_data"] for r in records]
        assert (signed_start, signed_stop) == (sent[0], sent[-1]), cp  # as sent, tampered or not
        if verdict is SignatureStatus.VERIFIED:
            assert signed_energy_wh == records[0]["expected_signed_energy_wh"], (cp, signed_energy_wh)
            assert signature_key == decode_public_key(keys[cp]).fingerprint, cp
        if verdict is SignatureStatus.KEY_UNKNOWN:
            assert signature_key == "", cp
