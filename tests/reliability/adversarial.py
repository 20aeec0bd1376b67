"""Malformed and adversarial input for the gateway, generated from a seed (deterministic), and the
harness that throws it at a running gateway over real sockets and checks the answers.

Frames: valid OCPP 1.6 CALLs of every action mutated at random - truncated, bytes flipped, types
swapped, ids too long or missing, unknown actions, CALLRESULT / CALLERROR shapes, binary
messages, deep nesting, huge numbers, NaN, odd unicode. Handshakes: raw HTTP upgrade requests with
hostile paths (traversal, percent-encoded slashes and NULs, over-long ids), header injection
(CR/LF), broken Basic credentials, odd subprotocol offers.

The oracle (OCPP-J 1.6, 4.1-4.2) is independent of the gateway's code: a frame that is a
well-formed CALLRESULT / CALLERROR gets no answer; anything else gets exactly one, a CALLRESULT or
a CALLERROR, carrying the CALL's message id when the frame had a readable one; and every frame is
kept (one inbound envelope each on Kafka). Handshakes end in 101 or a 4xx, never a 5xx or a reset.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect

VALID_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}),
    ("Heartbeat", {}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "2025-11-24T10:00:00Z"}),
    ("Authorize", {"idTag": "TAG1"}),
    ("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 100, "timestamp": "2025-11-24T10:00:00Z"}),
    ("MeterValues", {"connectorId": 1, "transactionId": 5, "meterValue": [
        {"timestamp": "2025-11-24T10:01:00Z", "sampledValue": [{"value": "150", "measurand": "Energy.Active.Import.Register"}]}]}),
    ("StopTransaction", {"transactionId": 5, "meterStop": 900, "timestamp": "2025-11-24T11:00:00Z", "reason": "Local"}),
    ("DataTransfer", {"vendorId": "V", "messageId": "x", "data": "y"}),
    ("DiagnosticsStatusNotification", {"status": "Idle"}),
    ("FirmwareStatusNotification", {"status": "Installed"}),
]
WEIRD_VALUES: list[Any] = [None, True, -1, 0, 2**63, -(2**63), 1e308, 1.5, "", "x" * 5000, [], {}, [[[]]], "\u0000",
                           "\ud7ff\ue000", "é" * 40, "\u202e", "1; DROP TABLE sessions", "../../etc/passwd", "${jndi:x}"]


def _mutate_value(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        mutated = dict(value)
        choice = rng.random()
        if choice < 0.3:
            del mutated[key]
        elif choice < 0.6:
            mutated[key] = rng.choice(WEIRD_VALUES)
        elif choice < 0.8:
            mutated[rng.choice(["extra", key.upper(), "", "\u0000"])] = rng.choice(WEIRD_VALUES)
        else:
            mutated[key] = _mutate_value(rng, value[key])
        return mutated
    if isinstance(value, list) and value and rng.random() < 0.5:
        return [_mutate_value(rng, v) for v in value] if rng.random() < 0.5 else value * rng.randint(0, 3)
    return rng.choice(WEIRD_VALUES)


def frame(rng: random.Random, n: int) -> str | bytes:
    """One adversarial message (text, or now and then binary)."""
    action, payload = rng.choice(VALID_CALLS)
    message_id = f"f{n}"
    kind = rng.random()
    if kind < 0.25:  # a valid envelope, hostile payload
        return json.dumps([2, message_id, action, _mutate_value(rng, payload)], allow_nan=True)
    if kind < 0.40:  # envelope shape broken
        shapes = [[2, message_id, action], [2, message_id], [2], [], [5, message_id, action, payload],
                  ["2", message_id, action, payload], [2, n, action, payload], [2, "x" * 37, action, payload],
                  [2, message_id, action, payload, "extra"], [2, message_id, rng.choice(["", "Unknown", "RemoteStartTransaction", "x" * 300]), payload],
                  [2, message_id, action, [payload]], [2, None, action, payload], {"2": message_id}, "2", 2, None]
        return json.dumps(rng.choice(shapes))
    if kind < 0.50:  # results and errors from the charger (answers to nothing)
        return json.dumps(rng.choice([[3, message_id, {}], [4, message_id, "GenericError", "", {}], [3, message_id],
                                      [4, message_id, "GenericError"], [3, message_id, "not-an-object"]]))
    if kind < 0.65:  # text corrupted
        text = json.dumps([2, message_id, action, payload])
        cut = rng.randrange(len(text))
        ops = [text[:cut], text[cut:], text[:cut] + rng.choice("[]{}\",:\\") + text[cut:],
               text.replace('"', "'"), text + text, " \n\t" + text + "\r\n", text.replace(",", ",,", 1)]
        return rng.choice(ops)
    if kind < 0.72:  # binary frames
        return rng.randbytes(rng.randrange(1, 200)) if rng.random() < 0.5 else json.dumps([2, message_id, action, payload]).encode()
    if kind < 0.80:  # numbers and nesting at the edges
        deep: Any = payload
        for _ in range(rng.choice([10, 100, 400])):
            deep = [deep]
        return rng.choice([json.dumps([2, message_id, action, deep]), f'[2,"{message_id}","{action}",{{"connectorId":1e999}}]',
                           f'[2,"{message_id}","{action}",{{"connectorId":NaN}}]', f'[2,"{message_id}","{action}",{{"a":1,"a":2}}]'])
    if kind < 0.88:  # unicode and control characters
        return json.dumps([2, message_id, action, {k: rng.choice(["\u0000", "\u2028", "🔌" * 50, "\udc80"[:0] + "ä"]) for k in payload}])
    return rng.choice(["", " ", "null", "[]", "{}", "true", "[2,", "]]]]", "\u0000" * 10, "x" * rng.randrange(1, 4000)])


def expected_reply_id(message: str | bytes) -> tuple[bool | None, str | None]:
    """(answer expected - None when OCPP-J leaves it open, message id it must carry or None).

    A well-formed CALLRESULT / CALLERROR must not be answered. A malformed one (``[3, "id"]``,
    a non-object payload) may be ignored or refused: CALLERROR is defined as the answer to a CALL,
    and a central system that refuses results it cannot read is as right as one that drops them."""
    if isinstance(message, bytes):
        return True, None
    try:
        parsed = json.loads(message)
    except ValueError:
        return True, None
    if isinstance(parsed, list) and len(parsed) >= 2 and isinstance(parsed[1], str):
        if parsed[0] == 3 and len(parsed) == 3 and isinstance(parsed[2], dict):
            return False, None
        if parsed[0] == 4 and len(parsed) == 5 and all(isinstance(x, str) for x in parsed[2:4]) and isinstance(parsed[4], dict):
            return False, None
        if parsed[0] == 2 and len(parsed[1]) <= 36:
            return True, parsed[1]
        if parsed[0] in (3, 4):
            return None, None
    return True, None


@dataclass
class FuzzReport:
    frames: int = 0
    answered: int = 0
    unanswered_as_expected: int = 0
    violations: list[str] = field(default_factory=list)
    sent: int = 0  # fuzz frames + sentinels: what Kafka must hold


async def fuzz_connection(url: str, charge_point_id: str, messages: list[str | bytes], report: FuzzReport) -> None:
    """Send each message, then a sentinel Heartbeat; everything answered before the sentinel's
    answer belongs to the message. Reconnects when the gateway closes (it may, for a bad frame)."""
    ws = await connect(f"{url}/{charge_point_id}", subprotocols=["ocpp1.6"], max_size=2**22, ping_interval=None)
    try:
        for n, message in enumerate(messages):
            sentinel = f"sentinel-{n}"
            await ws.send(message)
            await ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
            report.frames += 1
            report.sent += 2
            replies = []
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if reply[1] == sentinel:
                    break
                replies.append(reply)
            answer, message_id = expected_reply_id(message)
            shown = message[:120] if isinstance(message, str) else base64.b64encode(message[:60]).decode()
            if answer is None:
                if len(replies) > 1 or any(r[0] != 4 for r in replies):
                    report.violations.append(f"{replies} for a malformed result {shown!r}")
                report.unanswered_as_expected += not replies
                continue
            if not answer:
                if replies:
                    report.violations.append(f"answered a CALLRESULT/CALLERROR {shown!r}: {replies}")
                report.unanswered_as_expected += 1
                continue
            if len(replies) != 1 or replies[0][0] not in (3, 4):
                report.violations.append(f"{len(replies)} answers to {shown!r}: {replies}")
            elif message_id is not None and replies[0][1] != message_id:
                report.violations.append(f"answer id {replies[0][1]!r} != {message_id!r} for {shown!r}")
            else:
                report.answered += 1
    finally:
        await ws.close()


HANDSHAKE_PATHS = ["/ocpp/CP-1", "/ocpp/../admin", "/ocpp/%2e%2e%2fadmin", "/ocpp/CP%00", "/ocpp/CP%2F1", "/ocpp/" + "A" * 49,
                   "/ocpp/" + "A" * 48, "/ocpp/CP 1", "/ocpp/CP%201", "/ocpp/", "/ocpp", "/", "/other/CP-1", "/ocpp/CP-1/extra",
                   "/ocpp/%", "/ocpp/%zz", "/ocpp/ä", "/ocpp/%C3%A4", "/ocpp/CP-1?x=1", "/ocpp/CP-1#frag", "//ocpp/CP-1",
                   "/ocpp/CP:1", "/ocpp/CP%3A1", "/ocpp/$(reboot)", "/ocpp/CP-1%0d%0aX-Injected:%201", "/ocpp/' OR 1=1 --"]


def handshake_request(rng: random.Random, path: str, port: int) -> bytes:
    key = base64.b64encode(rng.randbytes(16)).decode()
    headers = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
               f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    headers.append("Sec-WebSocket-Protocol: " + rng.choice(["ocpp1.6", "ocpp2.0.1, ocpp1.6", "ocpp2.0.1.1", "", "ocpp1.6\r\nX-Evil: 1",
                                                            "x" * 2000, "ocpp1.6, ocpp1.6"]))
    if rng.random() < 0.5:
        user = rng.choice(["CP-1", "CP-1:extra", "", "\u0000", "A" * 100])
        secret = rng.choice(["secret", "", ":", "x" * 1000, "\r\nX-Injected: 1"])
        token = rng.choice([base64.b64encode(f"{user}:{secret}".encode()).decode(), "!!notbase64!!", ""])
        headers.append(f"Authorization: {rng.choice(['Basic', 'Bearer', 'basic', ''])} {token}")
    if rng.random() < 0.2:
        headers.append("X-Long: " + "y" * rng.choice([100, 9000]))
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8", "surrogatepass")


async def handshake(port: int, request: bytes) -> int:
    """The HTTP status the gateway answers a raw upgrade request with (0: connection closed silently)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
