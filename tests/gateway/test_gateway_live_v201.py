"""OCPP 2.0.1 on real sockets, publishing to the real broker, with the ``ocpp`` library's v201
ChargePoint as an independent client: every charger action answered on the wire, the transaction
messages acknowledged by Kafka before their answer left, subprotocol negotiation as chargers do it."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from ocpp.charge_point import camel_to_snake_case
from ocpp.v201 import ChargePoint, call
from websockets.asyncio.client import connect

from infra.settings import KafkaSettings
from schemas.envelope import Direction, FrameEnvelope
from tests.gateway.live import by_message, exchange, gateway_settings, read_envelopes, running_gateway
from tests.gateway.samples_v201 import ANSWERS, DURABLE, ENDED, REQUESTS, UPDATED
from tests.gateway.test_handler_v201 import NEVER_BLOCK

# (message id, action, payload): every charger-initiated action of 2.0.1, BootNotification first,
# then the rest of the transaction the sample TransactionEvent (Started) opens.
CALLS: list[tuple[str, str, dict]] = [("BootNotification", "BootNotification", REQUESTS["BootNotification"])]
CALLS += [(action, action, payload) for action, payload in sorted(REQUESTS.items()) if action != "BootNotification"]
CALLS += [("TransactionEvent-Updated", "TransactionEvent", UPDATED), ("TransactionEvent-Ended", "TransactionEvent", ENDED)]


class Station(ChargePoint):
    """The ocpp library's v201 charging station; it only notes, as each answer arrives, whether Kafka
    had already acknowledged the frame it answers (the gateway runs in the same event loop)."""

    def __init__(self, station_id: str, connection, acknowledgements: dict[tuple[str, str], asyncio.Future]) -> None:
        super().__init__(station_id, connection)
        self._acknowledgements = acknowledgements
        self.stored_before_answer: dict[str, bool] = {}

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        if message[0] in (3, 4):
            stored = [self._acknowledgements.get((d, message[1])) for d in (Direction.IN, Direction.OUT)]
            self.stored_before_answer[message[1]] = all(f is not None and f.done() and not f.cancelled() and f.exception() is None
                                                        for f in stored)
        await super().route_message(raw_msg)


def record_acknowledgements(gateway) -> dict[tuple[str, str], asyncio.Future]:
    """(direction, message id) -> the future that resolves when Kafka acknowledged that envelope."""
    acknowledgements: dict[tuple[str, str], asyncio.Future] = {}
    submit = gateway.publisher.submit

    async def recording_submit(envelope: FrameEnvelope) -> asyncio.Future:
        future = await submit(envelope)
        if envelope.message_id is not None:
            acknowledgements.setdefault((envelope.direction, envelope.message_id), future)
        return future

    gateway.publisher.submit = recording_submit
    return acknowledgements


def test_every_201_action_through_an_independent_client(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.frames201.{unique}"

    async def run() -> tuple[dict, dict, list[FrameEnvelope]]:
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            acknowledgements = record_acknowledgements(gateway)
            async with connect(f"ws://127.0.0.1:{gateway.port}/ocpp/CS-201", subprotocols=["ocpp2.0.1"]) as ws:
                assert ws.subprotocol == "ocpp2.0.1"
                station = Station("CS-201", ws, acknowledgements)
                listener = asyncio.create_task(station.start())
                results = {}
                for message_id, action, payload in CALLS:
                    request = getattr(call, action)(**camel_to_snake_case(payload))
                    # suppress=False: a CALLERROR raises; the library also validates our answer against its schema.
                    results[message_id] = await station.call(request, suppress=False, unique_id=message_id)
                listener.cancel()
        envelopes = await read_envelopes(kafka_settings, topic, lambda e: len(e) >= 2 * len(CALLS))
        return results, station.stored_before_answer, envelopes

    results, stored_before_answer, envelopes = asyncio.run(run())
    # The library turned every answer into its call_result dataclass.
    assert results["BootNotification"].status == "Accepted" and results["BootNotification"].interval == 300
    assert results["Authorize"].id_token_info == {"status": "Accepted"}
    assert results["TransactionEvent"].id_token_info == {"status": "Accepted"}
    assert results["TransactionEvent-Updated"].id_token_info is None
    assert results["SignCertificate"].status == "Rejected"
    assert (results["Get15118EVCertificate"].status, results["Get15118EVCertificate"].exi_response) == ("Failed", "")

    # Every frame in both directions, in order, as 2.0.1, exactly as the library sent it.
    assert len(envelopes) == 2 * len(CALLS)
    assert [e.seq for e in envelopes] == list(range(1, 2 * len(CALLS) + 1))  # seq 0: the connection event
    assert {e.ocpp_version for e in envelopes} == {"ocpp2.0.1"} and {e.charge_point_id for e in envelopes} == {"CS-201"}
    inbound, outbound = by_message(envelopes, Direction.IN), by_message(envelopes, Direction.OUT)
    for message_id, action, payload in CALLS:
        assert json.loads(inbound[message_id].frame) == [2, message_id, action, payload]
        answer = json.loads(outbound[message_id].frame)
        assert answer[:2] == [3, message_id] and outbound[message_id].action == action
        expected = ANSWERS[action] if message_id == action else ({"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {})
        assert {k: v for k, v in answer[2].items() if k != "currentTime"} == {k: v for k, v in expected.items() if k != "currentTime"}
        assert not inbound[message_id].flags and inbound[message_id].error is None

    # Durability: each TransactionEvent and MeterValues (frame and answer) was in Kafka before the answer came.
    durable = [message_id for message_id, action, _ in CALLS if action in DURABLE]
    assert len(durable) == 4
    assert {m: stored_before_answer[m] for m in durable} == {m: True for m in durable}


def test_201_never_block_and_callerrors_on_the_wire(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.frames201.{unique}"
    lenient = [[2, f"n{i}", action, payload] for i, (action, payload, _) in enumerate(NEVER_BLOCK)]
    refused = [
        ('[2,"e1","RequestStartTransaction",{"idToken":{"idToken":"T","type":"Central"},"remoteStartId":1}]', "NotSupported"),
        ('[2,"e2","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-11-24T16:00:00Z"}]',
         "NotImplemented"),
        ('[2,"e3","BootNotification",{"reason":"PowerUp"}]', "OccurrenceConstraintViolation"),
        ('[2,"e4","Heartbeat",[]]', "FormatViolation"),
        ("this is not json", "RpcFrameworkError"),
    ]

    async def run():
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            async with connect(f"ws://127.0.0.1:{gateway.port}/ocpp/KEBA-201", subprotocols=["ocpp2.0.1"]) as ws:
                answers = [await exchange(ws, json.dumps(f)) for f in lenient]
                errors = [await exchange(ws, frame) for frame, _ in refused]
        envelopes = await read_envelopes(kafka_settings, topic, lambda e: len(e) >= 2 * (len(lenient) + len(refused)))
        return answers, errors, envelopes

    answers, errors, envelopes = asyncio.run(run())
    assert [(a[0], a[1]) for a in answers] == [(3, f[1]) for f in lenient]
    assert [e[2] for e in errors] == [code for _, code in refused]
    inbound = by_message(envelopes, Direction.IN)
    for frame, (_, _, flag) in zip(lenient, NEVER_BLOCK):
        assert json.loads(inbound[frame[1]].frame) == frame
        assert inbound[frame[1]].flags == ("schema_violation", flag)
    assert {e.ocpp_version for e in envelopes} == {"ocpp2.0.1"}


async def raw_upgrade(port: int, protocol_header: str) -> tuple[int, dict[str, str]]:
    """An upgrade request with a ``Sec-WebSocket-Protocol`` header exactly as given (what a charger
    firmware sends, which a WebSocket library would never produce); the status and response headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ocpp/KEBA-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol_header}\r\n\r\n")
    try:
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}
    return int(status_line.split()[1]), headers


@pytest.mark.parametrize(
    "preferred, offers",
    [
        (("ocpp1.6", "ocpp2.0.1"), {("ocpp2.0.1",): "ocpp2.0.1", ("ocpp1.6",): "ocpp1.6",
                                    ("ocpp2.0.1", "ocpp1.6"): "ocpp1.6", ("ocpp1.6", "ocpp2.0.1"): "ocpp1.6"}),
        (("ocpp2.0.1", "ocpp1.6"), {("ocpp2.0.1",): "ocpp2.0.1", ("ocpp1.6",): "ocpp1.6",
                                    ("ocpp2.0.1", "ocpp1.6"): "ocpp2.0.1", ("ocpp1.6", "ocpp2.0.1"): "ocpp2.0.1"}),
    ],
)
def test_negotiation_on_the_wire(kafka_settings: KafkaSettings, unique: str, preferred: tuple[str, ...], offers: dict) -> None:
    async def run():
        chosen, raw = {}, {}
        settings = gateway_settings(subprotocols=preferred)
        async with running_gateway(settings, kafka_settings, f"test.frames201.{unique}") as gateway:
            for offer in offers:
                async with connect(f"ws://127.0.0.1:{gateway.port}/ocpp/CP-N", subprotocols=list(offer)) as ws:
                    chosen[offer] = ws.subprotocol
                    # The connection speaks what was echoed: 2.0.1 answers TransactionEvent, 1.6 does not know it.
                    reply = await exchange(ws, json.dumps([2, "t", "TransactionEvent", UPDATED]))
                    assert reply[0] == (3 if ws.subprotocol == "ocpp2.0.1" else 4), (offer, reply)
            for header in (",ocpp2.0.1", " ocpp2.0.1 , ocpp1.6", "ocpp2.0.1.1", "ocpp2.0.1.1, ocpp2.0.1", "ocpp2.0.1, ocpp 1.6"):
                raw[header] = await raw_upgrade(gateway.port, header)
        return chosen, raw

    chosen, raw = asyncio.run(run())
    assert chosen == offers
    status, headers = raw[",ocpp2.0.1"]  # KEBA: an empty first entry
    assert (status, headers.get("sec-websocket-protocol")) == (101, "ocpp2.0.1")
    status, headers = raw[" ocpp2.0.1 , ocpp1.6"]
    assert (status, headers.get("sec-websocket-protocol")) == (101, preferred[0])
    assert raw["ocpp2.0.1.1"][0] == 400
    for header in ("ocpp2.0.1.1, ocpp2.0.1", "ocpp2.0.1, ocpp 1.6"):  # the odd entry is skipped, not fatal
        assert (raw[header][0], raw[header][1].get("sec-websocket-protocol")) == (101, "ocpp2.0.1")
