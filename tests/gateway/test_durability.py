"""The durability rule on a real broker that is stopped and started again: a transaction message is
answered only once Kafka has its frame; with Kafka down it is not acknowledged (CALLERROR
InternalError), other messages are still answered, and the gateway recovers by itself. Afterwards
no frame the charger was told was received is missing from the topic."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from infra.local_kafka import LocalBroker
from infra.settings import KafkaSettings
from tests.gateway.live import by_message, exchange, gateway_settings, read_envelopes, running_gateway

TS = "2025-11-24T16:00:00Z"


def test_no_acknowledged_frame_is_lost_when_the_broker_stops(spare_broker: LocalBroker, unique: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=spare_broker.settings.bootstrap_servers)
    topic = f"test.durable.{unique}"
    settings = gateway_settings(publish_timeout_s=2.0)

    async def run():
        acknowledged: list[str] = []  # message ids the charger got a CALLRESULT for
        refused: list[str] = []
        async with running_gateway(settings, kafka, topic) as gateway:
            async with connect(f"ws://127.0.0.1:{gateway.port}/ocpp/CP-D", subprotocols=["ocpp1.6"]) as ws:

                async def send(message_id: str, action: str, payload: dict) -> list:
                    reply = await exchange(ws, json.dumps([2, message_id, action, payload]))
                    (acknowledged if reply[0] == 3 else refused).append(message_id)
                    return reply

                start = await send("s1", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS})
                tx = start[2]["transactionId"]
                await asyncio.to_thread(spare_broker.stop)

                # Kafka is down: a Heartbeat is still answered, a MeterValues is not acknowledged.
                heartbeat = await send("h1", "Heartbeat", {})
                meter = await send("m1", "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
                    {"timestamp": TS, "sampledValue": [{"value": "500"}]}]})
                assert heartbeat[0] == 3
                assert meter[:3] == [4, "m1", "InternalError"]

                await asyncio.to_thread(spare_broker.start)
                # Like a charger, resend the transaction message until it is acknowledged.
                for attempt in range(30):
                    reply = await send(f"m1-{attempt}", "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
                        {"timestamp": TS, "sampledValue": [{"value": "500"}]}]})
                    if reply[0] == 3:
                        break
                stop = await send("p1", "StopTransaction", {"transactionId": tx, "meterStop": 900, "timestamp": TS})
                assert stop[0] == 3
            assert await gateway.publisher.flush(30)
        wanted = set(acknowledged) | set(refused)
        envelopes = await read_envelopes(kafka, topic, lambda e: wanted <= set(by_message(e, "in")), timeout_s=60)
        return acknowledged, refused, envelopes

    acknowledged, refused, envelopes = asyncio.run(run())
    inbound = by_message(envelopes, "in")
    assert {"s1", "h1", "p1"} <= set(acknowledged) and "m1" in refused
    missing = [m for m in acknowledged if m not in inbound]
    assert missing == []
    # Even the refused one is not lost: the gateway kept it queued until Kafka came back.
    assert "m1" in inbound
    # The StartTransaction.conf (with its transactionId) was stored before the charger saw it.
    assert "s1" in by_message(envelopes, "out")


def test_no_acknowledged_transaction_event_is_lost_when_the_broker_stops(spare_broker: LocalBroker, unique: str) -> None:
    """The same rule for OCPP 2.0.1: TransactionEvent and MeterValues wait for Kafka."""
    from tests.gateway.samples_v201 import ENDED, REQUESTS, UPDATED

    kafka = KafkaSettings(bootstrap_servers=spare_broker.settings.bootstrap_servers)
    topic = f"test.durable201.{unique}"
    settings = gateway_settings(publish_timeout_s=2.0)

    async def run():
        acknowledged: list[str] = []
        refused: list[str] = []
        async with running_gateway(settings, kafka, topic) as gateway:
            async with connect(f"ws://127.0.0.1:{gateway.port}/ocpp/CS-D", subprotocols=["ocpp2.0.1"]) as ws:

                async def send(message_id: str, action: str, payload: dict) -> list:
                    reply = await exchange(ws, json.dumps([2, message_id, action, payload]))
                    (acknowledged if reply[0] == 3 else refused).append(message_id)
                    return reply

                assert (await send("s1", "TransactionEvent", REQUESTS["TransactionEvent"]))[0] == 3
                await asyncio.to_thread(spare_broker.stop)

                # Kafka is down: a Heartbeat and a StatusNotification are still answered, the transaction messages are not.
                heartbeat = await send("h1", "Heartbeat", {})
                status = await send("n1", "StatusNotification", REQUESTS["StatusNotification"])
                updated = await send("u1", "TransactionEvent", UPDATED)
                meter = await send("m1", "MeterValues", REQUESTS["MeterValues"])
                assert heartbeat[0] == 3 and status[0] == 3
                assert updated[:3] == [4, "u1", "InternalError"] and meter[:3] == [4, "m1", "InternalError"]

                await asyncio.to_thread(spare_broker.start)
                for attempt in range(30):  # like a charger: resend from the queue until acknowledged
                    if (await send(f"u1-{attempt}", "TransactionEvent", UPDATED))[0] == 3:
                        break
                assert (await send("e1", "TransactionEvent", ENDED))[0] == 3
            assert await gateway.publisher.flush(30)
        wanted = set(acknowledged) | set(refused)
        envelopes = await read_envelopes(kafka, topic, lambda e: wanted <= set(by_message(e, "in")), timeout_s=60)
        return acknowledged, refused, envelopes

    acknowledged, refused, envelopes = asyncio.run(run())
    inbound = by_message(envelopes, "in")
    assert {"s1", "h1", "n1", "e1"} <= set(acknowledged) and {"u1", "m1"} <= set(refused)
    assert [m for m in acknowledged if m not in inbound] == []
    assert {"u1", "m1"} <= set(inbound)  # the refused ones were kept queued too
    assert {e.ocpp_version for e in envelopes} == {"ocpp2.0.1"}
    # Each acknowledged transaction message's answer was stored as well, before the station saw it.
    assert {"s1", "e1"} <= set(by_message(envelopes, "out"))
