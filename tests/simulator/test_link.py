"""The simulator's link on real sockets (an in-process WebSocket server, no gateway): a 2.0.1
TransactionEvent is kept and resent after a lost connection and after a timeout, a KEBA offers
``,ocpp2.0.1`` exactly, and a gateway that picks a subprotocol the charger does not speak refuses it."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from simulator.link import Link, LinkStats, Refused

EVENT = {"eventType": "Updated", "timestamp": "2026-01-01T00:00:00.000Z", "triggerReason": "MeterValuePeriodic", "seqNo": 3,
         "transactionInfo": {"transactionId": "a-b-c"}}


class Backend:
    """Answers every CALL with an empty CALLRESULT, except the first ``spoil`` ``action`` CALLs: their
    connection dropped (``drop``) or no answer."""

    def __init__(self, action: str = "", *, drop: bool = True, spoil: int = 1,
                 subprotocols: tuple[str, ...] = ("ocpp2.0.1",)) -> None:
        self.action, self.drop, self.spoil, self.subprotocols = action, drop, spoil, subprotocols
        self.offers: list[list[str]] = []
        self.calls: list[list] = []

    def process_request(self, connection, request):  # noqa: ANN001
        self.offers.append(request.headers.get_all("Sec-WebSocket-Protocol"))
        return None

    async def handler(self, ws) -> None:  # noqa: ANN001
        async for text in ws:
            message = json.loads(text)
            self.calls.append(message)
            if message[2] == self.action and self.spoil > 0:
                self.spoil -= 1
                if self.drop:
                    ws.transport.abort()  # the connection dies before the answer
                    return
                continue  # no answer: the charger's timeout
            await ws.send(json.dumps([3, message[1], {}]))


async def call_through(backend: Backend, link_options: dict, action: str = "TransactionEvent") -> tuple[Link, dict | None]:
    async with serve(backend.handler, "127.0.0.1", 0, subprotocols=list(backend.subprotocols),
                     process_request=backend.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        options = {"subprotocols": ["ocpp2.0.1"], "answer_timeout_s": 5.0} | link_options
        link = Link(f"ws://127.0.0.1:{port}/ocpp", "CS-1", LinkStats(), **options)
        try:
            answer = await link.call(action, EVENT)
        finally:
            await link.close()
    return link, answer


@pytest.mark.parametrize("drop", [True, False], ids=["connection lost", "timeout"])
def test_a_transaction_event_is_resent_until_answered(drop: bool) -> None:
    backend = Backend("TransactionEvent", drop=drop)
    link, answer = asyncio.run(call_through(backend, {"answer_timeout_s": 0.5}))
    assert answer == {}
    sent = [c for c in backend.calls if c[2] == "TransactionEvent"]
    assert len(sent) == 2 and sent[0][3] == sent[1][3] == EVENT and sent[0][1] != sent[1][1]
    assert link.stats.resends == 1 and link.stats.reconnects == (1 if drop else 0)


def test_a_transaction_event_is_never_given_up_but_a_notify_event_is() -> None:
    backend = Backend("TransactionEvent", drop=False, spoil=4)
    link, answer = asyncio.run(call_through(backend, {"answer_timeout_s": 0.2}))
    assert answer == {} and sum(c[2] == "TransactionEvent" for c in backend.calls) == 5
    backend = Backend("NotifyEvent", drop=False, spoil=4)
    link, answer = asyncio.run(call_through(backend, {"answer_timeout_s": 0.2}, action="NotifyEvent"))
    assert answer is None and sum(c[2] == "NotifyEvent" for c in backend.calls) == 3  # like a StatusNotification


def test_a_keba_offers_an_empty_first_subprotocol() -> None:
    backend = Backend()
    link, answer = asyncio.run(call_through(backend, {"empty_first_subprotocol": True}, action="Heartbeat"))
    assert backend.offers == [[",ocpp2.0.1"]] and answer == {}
    plain = Backend()
    asyncio.run(call_through(plain, {}, action="Heartbeat"))
    assert plain.offers == [["ocpp2.0.1"]]


def test_a_gateway_choosing_another_subprotocol_refuses_the_charger() -> None:
    backend = Backend(subprotocols=("ocpp2.0.1",))
    with pytest.raises(Refused, match="chose subprotocol 'ocpp2.0.1'; this charger speaks ocpp1.6"):
        asyncio.run(call_through(backend, {"subprotocols": ["ocpp2.0.1", "ocpp1.6"], "speaks": "ocpp1.6"}, action="Heartbeat"))
    assert backend.calls == []
