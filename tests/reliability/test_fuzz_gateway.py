"""Fuzzing the gateway (the short CI version of ``python -m bench.fuzz``, which sends >= 100k):
adversarial frames over real sockets are each answered or refused per OCPP-J and every one is kept
on Kafka; hostile handshakes end in 101 or 4xx and the gateway keeps serving; and the sans-I/O
handler never raises for any text or bytes (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from gateway.answers import AnswerPolicy
from gateway.transaction_ids import TransactionIdAllocator
from infra.settings import KafkaSettings
from tests.gateway.live import gateway_settings, read_envelopes, running_gateway
from tests.gateway.test_handler import make_handler
from tests.reliability import adversarial

FRAMES_PER_CONNECTION, CONNECTIONS, HANDSHAKES = 600, 4, 300


def test_adversarial_frames_and_handshakes_over_real_sockets(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.fuzz.{unique}"
    rng = random.Random(20261125)

    async def scenario():
        async with running_gateway(gateway_settings(), kafka_settings, topic) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}/ocpp"
            report = adversarial.FuzzReport()
            batches = [[adversarial.frame(rng, c * FRAMES_PER_CONNECTION + n) for n in range(FRAMES_PER_CONNECTION)]
                       for c in range(CONNECTIONS)]
            await asyncio.gather(*(adversarial.fuzz_connection(url, f"FUZZ-{unique[:6]}-{c}", batch, report)
                                   for c, batch in enumerate(batches)))
            statuses = []
            for path in (rng.choice(adversarial.HANDSHAKE_PATHS) for _ in range(HANDSHAKES)):
                request = adversarial.handshake_request(rng, path, gateway.port)
                statuses.append((path, request, await adversarial.handshake(gateway.port, request)))
            async with connect(f"{url}/CP-AFTER", subprotocols=["ocpp1.6"]) as ws:  # still serving
                await ws.send(json.dumps([2, "h", "Heartbeat", {}]))
                after = json.loads(await ws.recv())
            assert await gateway.publisher.flush(30)
        envelopes = await read_envelopes(
            kafka_settings, topic,
            lambda e: sum(1 for x in e if x.direction == "in" and x.charge_point_id.startswith("FUZZ")) >= report.sent)
        return report, statuses, after, envelopes

    report, statuses, after, envelopes = asyncio.run(scenario())
    assert report.violations == [], "\n".join(report.violations[:10])
    assert report.frames == FRAMES_PER_CONNECTION * CONNECTIONS and report.unanswered_as_expected > 0
    kept = sum(1 for e in envelopes if e.direction == "in" and e.charge_point_id.startswith("FUZZ"))
    assert kept == report.sent  # every frame, the hostile ones included, is on Kafka
    codes = {code for _, _, code in statuses}
    assert codes <= {0, 101, 400, 401, 403, 404, 431} and {101, 400, 404} <= codes, sorted(codes)
    # A connection closed without a status line only for what is not HTTP at all (a space or
    # raw non-ASCII in the request target, a NUL or a bare line break in a header).
    for path, request, code in statuses:
        if code == 0:
            assert (" " in path or not path.isascii() or b"\x00" in request
                    or any(not line.isascii() for line in request.split(b"\r\n"))), (path, request[:300])
    assert after[:2] == [3, "h"]


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.lists(st.one_of(st.integers(), st.text(max_size=20), st.none(), st.dictionaries(st.text(max_size=8), st.integers())),
                          max_size=6).map(json.dumps)))
def test_the_handler_never_raises_and_answers_every_non_answer(message) -> None:
    handler = make_handler(AnswerPolicy(), TransactionIdAllocator())
    reaction = handler.receive(message, 1_764_000_000_000)
    assert reaction.inbound is not None
    answer, message_id = adversarial.expected_reply_id(message)
    if answer:
        reply = json.loads(reaction.reply)
        assert reply[0] in (3, 4) and (message_id is None or reply[1] == message_id)
    elif answer is False:
        assert reaction.reply is None
    else:
        assert reaction.reply is None or json.loads(reaction.reply)[0] == 4
