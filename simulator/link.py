"""One simulated charger's OCPP-J connection: CALLs out one at a time, answers awaited, reconnects.

Behaves like charger firmware (OCPP-J 1.6, 4.1.1 and 4.2; OCPP-J 2.0.1, 4.1.1 and 4.2): a CALL is
sent only when the previous one was answered or timed out; transaction messages (1.6
StartTransaction / StopTransaction / MeterValues, 2.0.1 TransactionEvent) are kept and resent until
the central system answers them (after a reconnect too), and a CALLERROR ``InternalError`` — the
gateway telling it Kafka did not take the frame — is retried after a pause. The link speaks one
subprotocol; a gateway that picks another one refuses this charger. CALLs from the central system are
answered ``NotImplemented``: this thin gateway sends none, but a charger must never hang on one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from simulator.incidents import ExpectedConnection, OfflineHow

CALL, CALLRESULT, CALLERROR = 2, 3, 4
TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"})


class _EmptyFirstOffer(ClientConnection):
    """Offers its subprotocols after an empty entry, ``Sec-WebSocket-Protocol: ,ocpp2.0.1``, as a KEBA
    firmware does (websockets refuses an empty name in ``subprotocols``, so the header is rewritten)."""

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        build = self.protocol.connect

        def connect() -> Any:
            request = build()
            offer = request.headers["Sec-WebSocket-Protocol"]
            del request.headers["Sec-WebSocket-Protocol"]
            request.headers["Sec-WebSocket-Protocol"] = "," + offer.replace(" ", "")
            return request

        self.protocol.connect = connect  # type: ignore[method-assign]
        await super().handshake(*args, **kwargs)


class Refused(Exception):
    """The gateway refused the charger at the handshake (a configuration error: no retry helps)."""


@dataclass
class LinkStats:
    """Counters shared by every link of a fleet (one event loop: no locks needed)."""

    connected: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    calls_sent: int = 0
    calls_answered: int = 0
    call_errors: dict[str, int] = field(default_factory=dict)
    resends: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    latency_samples_seen: int = 0
    # When a list: (charge point, message id, action) of every transaction CALL the gateway
    # acknowledged - what the durability rule promises is in Kafka (fault-injection tests).
    acknowledged: list[tuple[str, str, str]] | None = None
    # When a list: every answer latency (ms) since the owner last emptied it (soak windows).
    recent_ms: list[float] | None = None

    def observe_latency(self, ms: float, rng: random.Random, keep: int = 20_000) -> None:
        """Reservoir sample of answer latencies (bounded memory on long runs)."""
        self.latency_samples_seen += 1
        if len(self.latencies_ms) < keep:
            self.latencies_ms.append(ms)
        else:
            slot = rng.randrange(self.latency_samples_seen)
            if slot < keep:
                self.latencies_ms[slot] = ms


class Link:
    """A charger's WebSocket to the gateway. :meth:`call` returns the CALLRESULT payload, or
    ``None`` for a CALLERROR of a message that is not retried."""

    def __init__(self, url: str, charge_point_id: str, stats: LinkStats, *, subprotocols: list[str],
                 answer_timeout_s: float, local_addr: tuple[str, int] | None = None, rng: random.Random | None = None,
                 speaks: str | None = None, empty_first_subprotocol: bool = False) -> None:
        self.url = url.rstrip("/") + "/" + charge_point_id
        self.charge_point_id = charge_point_id
        self.stats = stats
        self.subprotocols = subprotocols
        # The subprotocol this charger's messages are written in (default: the one it offers first).
        self.speaks = speaks or subprotocols[0]
        self.empty_first_subprotocol = empty_first_subprotocol
        self.answer_timeout_s = answer_timeout_s
        self.local_addr = local_addr
        self.rng = rng or random.Random()
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._send_lock = asyncio.Lock()
        self._power_on = asyncio.Event()
        self._power_on.set()
        self._network_up = asyncio.Event()  # cleared during an offline period (go_offline)
        self._network_up.set()
        self._close_how = ""  # why the current connection is being closed (OfflineHow), '' = not by us
        self._ever_connected = False
        # Every connection, opened and closed by this side's clock (ground truth of offline periods).
        self.connections: list[ExpectedConnection] = []

    # --- connection -------------------------------------------------------------------------

    async def _connection(self) -> ClientConnection:
        backoff = 0.5
        while self._ws is None:
            while not (self._power_on.is_set() and self._network_up.is_set()):
                await self._power_on.wait()  # a charger without power sends nothing; its queue waits
                await self._network_up.wait()  # nor does one without a network
            try:
                options: dict[str, Any] = {"subprotocols": self.subprotocols, "open_timeout": 30,
                                           "ping_interval": None, "max_size": 2**20, "compression": None}
                if self.local_addr is not None:
                    options["local_addr"] = self.local_addr
                if self.empty_first_subprotocol:
                    options["create_connection"] = _EmptyFirstOffer
                ws = await connect(self.url, **options)
            except InvalidStatus as exc:
                if exc.response.status_code in (400, 401, 403, 404):
                    raise Refused(f"{self.charge_point_id}: gateway answered HTTP {exc.response.status_code}") from exc
                self.stats.connect_failures += 1
            except (OSError, InvalidHandshake, asyncio.TimeoutError, ConnectionClosed):
                self.stats.connect_failures += 1
            else:
                if ws.subprotocol != self.speaks:
                    await ws.close()
                    raise Refused(f"{self.charge_point_id}: gateway chose subprotocol {ws.subprotocol!r}; "
                                  f"this charger speaks {self.speaks}")
                self._ws = ws
                self._close_how = ""
                self.connections.append(ExpectedConnection(self.charge_point_id, _now_ms()))
                self.stats.connected += 1
                self.stats.connects += 1
                if self._ever_connected:
                    self.stats.reconnects += 1
                self._ever_connected = True
                self._reader = asyncio.create_task(self._read(ws), name=f"read-{self.charge_point_id}")
                break
            # Firmware backs off with jitter so a restarted gateway is not hit by every charger at once.
            await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 10.0)
        return self._ws

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(message, list) or len(message) < 3:
                    continue
                kind, message_id = message[0], str(message[1])
                if kind in (CALLRESULT, CALLERROR):
                    future = self._pending.pop(message_id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif kind == CALL:
                    await ws.send(json.dumps([CALLERROR, message_id, "NotImplemented", "simulated charger", {}]))
        except ConnectionClosed:
            pass
        finally:
            self._lost(ws)

    def _lost(self, ws: ClientConnection) -> None:
        if self._ws is ws:
            self._ws = None
            self.stats.connected -= 1
            if self.connections and self.connections[-1].closed_ms is None:
                self.connections[-1].closed_ms = _now_ms()
                self.connections[-1].how = self._close_how or "lost"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self._pending.clear()

    def between_calls(self) -> AbstractAsyncContextManager[None]:
        """Hold the link between two CALLs: the one in flight gets its answer first, none starts meanwhile. The
        charger's end of a run cancels its background (heartbeats) inside this, so no CALL is cut off between
        its send and its answer."""
        return held_between_calls(self._send_lock, self.answer_timeout_s)

    async def close(self) -> None:
        ws = self._ws
        if ws is not None:
            self._close_how = OfflineHow.RUN_END
            await ws.close()
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)

    def cut_power(self) -> None:
        """Power loss: the TCP connection dies without a close frame; calls wait until power is back."""
        self._power_on.clear()
        ws = self._ws
        if ws is not None:
            self._close_how = OfflineHow.POWER_LOSS
            ws.transport.abort()

    async def go_offline(self, how: OfflineHow) -> None:
        """The network goes: the connection ends between two CALLs (none in flight is lost), with a close
        frame (``CLOSED``) or without one (``DROPPED``: the TCP connection just dies); calls made meanwhile
        wait for :meth:`go_online`, as a charger's offline queue does."""
        async with self._send_lock:
            self._network_up.clear()
            ws = self._ws
            if ws is None:
                return
            self._close_how = how
            if how is OfflineHow.CLOSED:
                await ws.close()
            else:
                ws.transport.abort()
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)
            self._lost(ws)

    async def go_online(self) -> None:
        """The network is back: reconnect at once (firmware does not wait for its next message)."""
        self._network_up.set()
        async with self._send_lock:
            await self._connection()

    def restore_power(self) -> None:
        self._power_on.set()

    @property
    def online(self) -> bool:
        """Connected and powered: what the charger's firmware believes when it makes an event (2.0.1 ``offline``)."""
        return self._ws is not None and self._power_on.is_set() and self._network_up.is_set()

    # --- calls ------------------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send a CALL and await its answer (see the class); reconnects as needed."""
        durable = action in TRANSACTION_ACTIONS
        async with self._send_lock:  # OCPP-J: one CALL in flight per direction
            attempt = 0
            while True:
                ws = await self._connection()
                message_id = str(next(self._ids))
                future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
                self._pending[message_id] = future
                sent_at = time.perf_counter()
                try:
                    await ws.send(json.dumps([CALL, message_id, action, payload], separators=(",", ":")))
                    self.stats.calls_sent += 1
                    if attempt:
                        self.stats.resends += 1
                    answer = await asyncio.wait_for(future, self.answer_timeout_s)
                except (ConnectionClosed, ConnectionError, asyncio.TimeoutError):
                    self._pending.pop(message_id, None)
                    if self._ws is ws and not isinstance(sys.exc_info()[1], asyncio.TimeoutError):
                        self._lost(ws)  # do not wait for the reader to notice: the next try reconnects
                    attempt += 1
                    # Always yield before trying again: a send on a dead socket can fail without
                    # ever suspending, and a loop of those starved every other charger (found by
                    # the 10k-charger soak: one power cut mid-call spun the process at 100 %).
                    await asyncio.sleep(min(0.05 * attempt, 2.0))
                    if not durable and attempt >= 3 and self._power_on.is_set():
                        return None  # status and heartbeat are not kept forever; the next one says the same
                    continue
                latency_ms = (time.perf_counter() - sent_at) * 1000
                self.stats.observe_latency(latency_ms, self.rng)
                if self.stats.recent_ms is not None:
                    self.stats.recent_ms.append(latency_ms)
                if answer[0] == CALLRESULT:
                    self.stats.calls_answered += 1
                    if durable and self.stats.acknowledged is not None:
                        self.stats.acknowledged.append((self.charge_point_id, message_id, action))
                    return answer[2] if isinstance(answer[2], dict) else {}
                code = str(answer[2]) if len(answer) > 2 else "?"
                self.stats.call_errors[code] = self.stats.call_errors.get(code, 0) + 1
                if durable and code == "InternalError":
                    attempt += 1
                    await asyncio.sleep(min(2.0 * attempt, 10.0))
                    continue
                return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def held_between_calls(lock: asyncio.Lock, timeout_s: float) -> AsyncIterator[None]:
    """``lock`` (a link's one-CALL-at-a-time lock) held, taken within ``timeout_s``: a call waiting for power to
    come back never ends, and the caller goes on without the lock then."""
    try:
        await asyncio.wait_for(lock.acquire(), timeout_s)
    except asyncio.TimeoutError:
        yield
        return
    try:
        yield
    finally:
        lock.release()
