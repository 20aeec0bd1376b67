"""The gateway on real sockets, publishing to the real broker, with the ``ocpp`` library's
ChargePoint as an independent client."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
import websockets
from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Reason
from websockets.asyncio.client import connect

from infra.settings import KafkaSettings
from schemas.envelope import Direction
from tests.gateway.live import by_message, exchange, gateway_settings, http_get, read_envelopes, running_gateway

TS = "2025-11-24T16:00:00Z"


def url(gateway, charge_point_id: str = "CP-1", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{gateway.port}/ocpp/{charge_point_id}"


class Charger(ChargePoint):
    """The ocpp library's charge point, nothing added."""


def test_every_action_through_an_independent_client(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.frames.{unique}"

    async def run() -> tuple[dict, list]:
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            async with connect(url(gateway), subprotocols=["ocpp1.6"]) as ws:
                assert ws.subprotocol == "ocpp1.6"
                cp = Charger("CP-1", ws)
                listener = asyncio.create_task(cp.start())
                now = datetime.now(timezone.utc).isoformat()
                r = {}
                r["boot"] = await cp.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="V1"))
                r["heartbeat"] = await cp.call(call.Heartbeat())
                r["status"] = await cp.call(call.StatusNotification(1, ChargePointErrorCode.no_error, ChargePointStatus.charging))
                r["authorize"] = await cp.call(call.Authorize(id_tag="TAG1"))
                r["start"] = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=now))
                tx = r["start"].transaction_id
                r["meter"] = await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
                    {"timestamp": now, "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]))
                r["stop"] = await cp.call(call.StopTransaction(meter_stop=4000, timestamp=now, transaction_id=tx, reason=Reason.local, id_tag="TAG1"))
                r["data"] = await cp.call(call.DataTransfer(vendor_id="acme", data="x"))
                r["diag"] = await cp.call(call.DiagnosticsStatusNotification(status="Idle"))
                r["firmware"] = await cp.call(call.FirmwareStatusNotification(status="Idle"))
                listener.cancel()
        envelopes = await read_envelopes(kafka_settings, topic, lambda e: len(e) >= 22, connection_events=True)
        return r, envelopes

    r, envelopes = asyncio.run(run())
    assert r["boot"].status == "Accepted" and r["boot"].interval == 300
    assert r["heartbeat"].current_time
    assert r["authorize"].id_tag_info == {"status": "Accepted"}
    assert r["start"].transaction_id > 0 and r["start"].id_tag_info == {"status": "Accepted"}
    assert r["stop"].id_tag_info == {"status": "Accepted"}
    assert r["data"].status == "UnknownVendorId"
    # The connection's opening and closing (KPIS.md, connection events) frame its frames.
    opened, *envelopes, closed = envelopes
    assert (opened.event, opened.seq, opened.frame, opened.action, opened.message_type) == ("connected", 0, "", None, None)
    assert (closed.event, closed.seq, closed.close_code) == ("disconnected", 21, 1000)
    assert opened.connection_id == closed.connection_id == envelopes[0].connection_id
    assert "event" not in json.loads(envelopes[0].to_bytes())  # frames' JSON is as before connection events
    # Every frame in both directions, in order, keyed by the charger, exactly as on the wire.
    assert len(envelopes) == 20
    assert [e.seq for e in envelopes] == list(range(1, 21))
    assert {e.charge_point_id for e in envelopes} == {"CP-1"} and {e.ocpp_version for e in envelopes} == {"ocpp1.6"}
    inbound, outbound = by_message(envelopes, "in"), by_message(envelopes, "out")
    assert inbound.keys() == outbound.keys()
    actions = [e.action for e in envelopes if e.direction == Direction.IN]
    assert actions == ["BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StartTransaction", "MeterValues",
                       "StopTransaction", "DataTransfer", "DiagnosticsStatusNotification", "FirmwareStatusNotification"]
    start_conf = next(e for e in envelopes if e.direction == Direction.OUT and e.action == "StartTransaction")
    assert json.loads(start_conf.frame)[2]["transactionId"] == r["start"].transaction_id


def test_never_block_cases_on_the_wire(kafka_settings: KafkaSettings, unique: str) -> None:
    """A float meterStop, a numeric sampledValue, transactionId -1 / 0 / unknown, a missing idTag,
    a non-enum errorCode: all answered with their .conf; the frames are kept and flagged."""
    topic = f"test.frames.{unique}"
    frames = [
        [2, "a", "StopTransaction", {"transactionId": 17, "meterStop": 1234.5, "timestamp": TS}],
        [2, "b", "StopTransaction", {"transactionId": -1, "meterStop": 10, "timestamp": TS}],
        [2, "c", "StopTransaction", {"transactionId": 0, "meterStop": -1, "timestamp": TS}],
        [2, "d", "StopTransaction", {"transactionId": 424242, "meterStop": 10, "timestamp": TS}],
        [2, "e", "StartTransaction", {"connectorId": 1, "meterStart": 0, "timestamp": TS}],
        [2, "f", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 12}]}]}],
        [2, "g", "StatusNotification", {"connectorId": 1, "errorCode": "Error", "status": "Faulted"}],
    ]

    async def run() -> tuple[list, list]:
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            async with connect(url(gateway, "KEBA-P30"), subprotocols=["ocpp1.6"]) as ws:
                replies = [await exchange(ws, json.dumps(f)) for f in frames]
        envelopes = await read_envelopes(kafka_settings, topic, lambda e: len(e) >= 2 * len(frames))
        return replies, envelopes

    replies, envelopes = asyncio.run(run())
    assert [(r[0], r[1]) for r in replies] == [(3, f[1]) for f in frames]
    inbound = by_message(envelopes, "in")
    for f in frames:
        assert json.loads(inbound[f[1]].frame) == f
    assert "schema:meterStop:type" in inbound["a"].flags
    assert "schema:payload:required" in inbound["e"].flags
    assert "schema:errorCode:enum" in inbound["g"].flags


def test_malformed_frames_get_callerrors_and_are_kept(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.frames.{unique}"

    async def run():
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            async with connect(url(gateway), subprotocols=["ocpp1.6"]) as ws:
                replies = [
                    await exchange(ws, "this is not json"),
                    await exchange(ws, '[2,"x1","Reset",{"type":"Hard"}]'),
                    await exchange(ws, '[2,"x2","NoSuchAction",{}]'),
                    await exchange(ws, '[2,"x3","BootNotification",{}]'),
                ]
                await ws.send(b"\x01\x02")
                replies.append(json.loads(await ws.recv()))
        envelopes = await read_envelopes(kafka_settings, topic, lambda e: len(e) >= 10)
        return replies, envelopes

    replies, envelopes = asyncio.run(run())
    assert [r[2] for r in replies] == ["FormationViolation", "NotSupported", "NotImplemented", "OccurenceConstraintViolation", "FormationViolation"]
    kept = [e for e in envelopes if e.direction == Direction.IN]
    assert kept[0].frame == "this is not json" and kept[0].error.startswith("FormationViolation")
    assert kept[-1].flags == ("binary_frame",)


@pytest.mark.parametrize(
    "path, subprotocols, status",
    [
        ("/ocpp/CP%3A1", ["ocpp1.6"], 400),
        ("/ocpp/" + "x" * 49, ["ocpp1.6"], 400),
        ("/wrong/CP-1", ["ocpp1.6"], 404),
        ("/ocpp/CP-1", None, 400),
        ("/ocpp/CP-1", ["ocpp2.0.1.1"], 400),
    ],
)
def test_handshake_refusals_on_the_wire(kafka_settings: KafkaSettings, unique: str, path: str, subprotocols, status: int) -> None:
    async def run() -> int:
        async with running_gateway(gateway_settings(), kafka_settings, f"test.frames.{unique}") as gateway:
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{gateway.port}{path}", subprotocols=subprotocols):
                    pass
            return info.value.response.status_code

    assert asyncio.run(run()) == status


def test_offering_several_subprotocols_gets_exactly_one_back(kafka_settings: KafkaSettings, unique: str) -> None:
    async def run() -> str | None:
        async with running_gateway(gateway_settings(), kafka_settings, f"test.frames.{unique}") as gateway:
            async with connect(url(gateway), subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
                return ws.subprotocol

    assert asyncio.run(run()) == "ocpp1.6"


def test_a_new_connection_replaces_the_old_one(kafka_settings: KafkaSettings, unique: str) -> None:
    async def run():
        async with running_gateway(gateway_settings(), kafka_settings, f"test.frames.{unique}") as gateway:
            old = await connect(url(gateway), subprotocols=["ocpp1.6"])
            async with connect(url(gateway), subprotocols=["ocpp1.6"]) as new:
                await old.wait_closed()
                reply = await exchange(new, '[2,"h","Heartbeat",{}]')
                return old.close_code, old.close_reason, reply, gateway.metrics.replaced._value.get()

    code, reason, reply, replaced = asyncio.run(run())
    assert (code, reason) == (1000, "replaced by a new connection")
    assert reply[0] == 3 and replaced == 1


def test_health_ready_and_metrics_on_the_admin_port_only(kafka_settings: KafkaSettings, unique: str) -> None:
    async def run():
        async with running_gateway(gateway_settings(), kafka_settings, f"test.frames.{unique}") as gateway:
            async with connect(url(gateway), subprotocols=["ocpp1.6"]) as ws:
                await exchange(ws, '[2,"h","Heartbeat",{}]')
                admin = lambda p: asyncio.to_thread(http_get, gateway.admin_port, p)  # noqa: E731
                health = await admin("/healthz")
                for _ in range(100):  # ready once the first frame was acknowledged
                    if gateway.publisher.kafka_up:
                        break
                    await asyncio.sleep(0.1)
                ready, metrics, other = await admin("/readyz"), await admin("/metrics"), await admin("/ocpp/CP-1")
                on_chargers_port = [await asyncio.to_thread(http_get, gateway.port, p) for p in ("/healthz", "/readyz", "/metrics")]
                return gateway.port, gateway.admin_port, health, ready, metrics, other, on_chargers_port

    port, admin_port, health, ready, metrics, other, on_chargers_port = asyncio.run(run())
    assert admin_port != port
    assert health[0] == 200 and ready[0] == 200 and other[0] == 404
    assert metrics[0] == 200 and metrics[1]["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "ocpp_gateway_open_connections 1.0" in metrics[2]
    assert 'ocpp_gateway_frames_total{action="Heartbeat",direction="in",outcome="accepted"} 1.0' in metrics[2]
    assert "CP-1" not in metrics[2]  # no per-charger labels
    # The chargers' port refuses them like any path that is not <prefix>/<chargePointId>, and counts it.
    assert [(status, body) for status, _, body in on_chargers_port] == [(404, "OCPP endpoint is /ocpp/<chargePointId>\n")] * 3
