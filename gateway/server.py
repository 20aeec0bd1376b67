"""The gateway's I/O shell: WebSocket server, admin endpoints, Kafka publishing.

Everything OCPP is decided by :class:`gateway.gatekeeper.Gatekeeper` (who may connect) and
:class:`gateway.handler.FrameHandler` (what each frame gets); this module moves frames between sockets
and the :class:`~gateway.publisher.FramePublisher`.

- Chargers' port (``OCPP_GATEWAY_PORT``): ``/<prefix>/<chargePointId>`` only, every other path 404 (the
  admin paths included). One connection per charger: a new connection with the same id closes the old one
  with 1000 "replaced by a new connection". Each connection is counted against its client address
  (:mod:`gateway.client_address`, :mod:`gateway.connection_cap`) from the moment it is made; one beyond
  ``OCPP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS`` gets 429.
- Admin port (``OCPP_GATEWAY_ADMIN_PORT``): ``/healthz``, ``/readyz``, ``/metrics``
  (:mod:`gateway.admin`); one of several processes (``place``, :mod:`gateway.supervisor`) answers for the
  whole host (:mod:`gateway.host_view`).
- SIGTERM (``Gateway.stop``): stop accepting, close connections with 1001, flush Kafka.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import ssl
import time
import uuid
import weakref
from http import HTTPStatus
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.admin import AdminEndpoints, serve_admin
from gateway.answers import AnswerPolicy
from gateway.client_address import ClientAddresses
from gateway.connection_cap import ConnectionTally
from gateway.credentials import Credentials
from gateway.errors import HandshakeRefused, ListenError, RefusalKind
from gateway.gatekeeper import Attempt, Gatekeeper
from gateway.handler import ConnectionInfo, FrameHandler, Reaction
from gateway.host_view import WorkerPlace
from gateway.metrics import GatewayMetrics
from gateway.payload_schemas import compile_validators
from gateway.publisher import FramePublisher
from gateway.settings import GatewaySettings
from gateway.throttle import Backoff, LoginThrottle
from gateway.transaction_ids import TransactionIdAllocator
from infra.settings import KafkaSettings
from schemas.envelope import ConnectionEvent
from schemas.topics import FRAMES

log = logging.getLogger(__name__)

_SECRET_HEADER = re.compile(r"((?:Proxy-)?Authorization|Cookie|Set-Cookie):\s*.*", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """At debug level the WebSocket library logs every handshake header: credentials of security
    profiles 1-2 (``Authorization: Basic ...``) must not reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_HEADER.sub(lambda m: f"{m.group(1)}: [redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def websockets_logger() -> logging.Logger:
    logger = logging.getLogger("gateway.websockets")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_id_tags(path: Path | None) -> frozenset[str] | None:
    if path is None:
        return None
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def login_throttle(settings: GatewaySettings) -> LoginThrottle:
    def backoff(free: int) -> Backoff:
        return Backoff(free, settings.login_backoff_base_s, settings.login_backoff_max_s, settings.login_backoff_half_life_s)

    return LoginThrottle(backoff(settings.login_free_failures_per_charge_point), backoff(settings.login_free_failures_per_address),
                         settings.login_throttle_entries)


class AddressCounter:
    """Counts each charger connection against its client address from the moment it is made (a direct
    peer) or its request names the client (behind a trusted proxy), until it is lost."""

    def __init__(self, addresses: ClientAddresses, tally: ConnectionTally) -> None:
        self.addresses = addresses
        self.tally = tally

    def made(self, connection: "ChargerConnection", peer: Any) -> None:
        address, ask = self.addresses.of_peer(peer[0] if isinstance(peer, tuple) and peer else None)
        connection.ask_request = ask
        if address is not None:
            self._count(connection, address)

    def named(self, connection: "ChargerConnection", request: Request) -> None:
        if connection.ask_request and self.addresses.header is not None:
            connection.ask_request = False
            address = self.addresses.from_header(request.headers.get_all(self.addresses.header))
            if address is not None:
                self._count(connection, address)

    def _count(self, connection: "ChargerConnection", address: str) -> None:
        connection.address = address
        connection.over_cap = not self.tally.opened(address)

    def lost(self, connection: "ChargerConnection") -> None:
        if connection.address is not None:
            self.tally.closed(connection.address)
            connection.address = None


class ChargerConnection(ServerConnection):
    """A connection on the chargers' port, with the client address it is counted under."""

    def __init__(self, *args: Any, counter: AddressCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter
        self.address: str | None = None
        self.ask_request = False
        self.over_cap = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.counter.made(self, transport.get_extra_info("peername"))

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self.counter.lost(self)


def counted_connections(counter: AddressCounter) -> type[ChargerConnection]:
    """The connection class websockets builds the chargers' connections from, counting them under ``counter``."""

    class CountedConnection(ChargerConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, counter=counter, **kwargs)

    return CountedConnection


def tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    if settings.security_profile < 2:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP 1.6 security whitepaper: TLS 1.2 or later
    context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
    if settings.security_profile == 3:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(settings.tls_client_ca_file))
    return context


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        kafka: KafkaSettings,
        metrics: GatewayMetrics | None = None,
        *,
        frames_topic: str | None = None,  # default: the contract topic, with OCPP_KAFKA_TOPIC_PREFIX
        place: WorkerPlace | None = None,  # one of several processes on the port (SO_REUSEPORT)
    ) -> None:
        self.settings = settings
        self.place = place
        self.metrics = metrics or GatewayMetrics(multiprocess_dir=place.multiprocess_dir if place else None)
        self.publisher = FramePublisher(
            kafka, frames_topic or kafka.topic(FRAMES.name), self.metrics, max_pending=settings.max_pending_frames,
            linger_ms=settings.kafka_linger_ms, max_batch_bytes=settings.kafka_max_batch_bytes,
        )
        self.gatekeeper = Gatekeeper(
            path_prefix=settings.path_prefix, subprotocols=settings.subprotocols, security_profile=settings.security_profile,
            credentials=Credentials.load(settings.credentials_file), throttle=login_throttle(settings),
            weak_passwords=settings.weak_passwords,
        )
        self.counter = AddressCounter(
            ClientAddresses(settings.trusted_proxies, settings.client_address_header, settings.ipv6_prefix_length),
            ConnectionTally(settings.max_connections_per_address),
        )
        self.admin = AdminEndpoints(self.metrics, lambda: self.publisher.kafka_up, place)
        self._warned_weak: set[str] = set()  # ids whose weak password was logged (bounded: see _admitted_weak)
        # Compiled once per process, per accepted version: every connection of that version shares them.
        self._validators = {version: compile_validators(version) for version in settings.subprotocols}
        self._policy = AnswerPolicy(settings.heartbeat_interval_s, _read_id_tags(settings.authorized_id_tags_file))
        self._transaction_ids = (
            TransactionIdAllocator(process_index=place.index, process_count=place.count) if place else TransactionIdAllocator()
        )
        # Handshake results waiting for their handler; weak, so an upgrade that dies midway leaks nothing.
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = weakref.WeakKeyDictionary()
        self._by_charge_point: dict[str, ServerConnection] = {}
        self._server: Server | None = None
        self._admin_server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def admin_port(self) -> int:
        assert self._admin_server is not None
        port: int = self._admin_server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        await self.publisher.start()
        s = self.settings
        try:
            self._admin_server = await serve_admin(self.admin, s.admin_host, s.admin_port, reuse_port=self.place is not None,
                                                   logger=websockets_logger())
        except OSError as exc:
            raise ListenError(f"admin endpoints on {s.admin_host}:{s.admin_port} (OCPP_GATEWAY_ADMIN_PORT): {exc.strerror or exc}") from exc
        try:
            self._server = await self._serve_chargers()
        except OSError as exc:
            self._admin_server.close()
            raise ListenError(f"chargers' port {s.host}:{s.port} (OCPP_GATEWAY_PORT): {exc.strerror or exc}") from exc
        log.info("gateway %s listening on %s:%d%s/<chargePointId>; admin endpoints on %s:%d (/healthz /readyz /metrics)",
                 s.gateway_id, s.host, self.port, s.path_prefix, s.admin_host, self.admin_port)
        log.info("security profile %d; connections per address: %s; %s",
                 s.security_profile, s.max_connections_per_address or "no cap",
                 f"weak passwords ({s.weak_passwords}): outside 16-40 passwordString characters or 16-20 octets"
                 if s.security_profile in (1, 2) else "no passwords")

    async def _serve_chargers(self) -> Server:
        s = self.settings
        return await serve(
            self._serve_connection,
            s.host,
            s.port,
            create_connection=counted_connections(self.counter),
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            subprotocols=[Subprotocol(p) for p in s.subprotocols],
            compression=None,  # chargers rarely ask for it, and it costs ~100 KiB per connection
            ping_interval=s.ping_interval_s or None,
            ping_timeout=s.ping_timeout_s or None,
            max_size=s.max_frame_bytes,
            max_queue=4,  # OCPP-J allows one CALL in flight per side; a few frames of slack suffice
            ssl=tls_context(s),
            server_header=None,
            logger=websockets_logger(),
            reuse_port=self.place is not None,  # the kernel spreads new connections over the processes
            backlog=s.listen_backlog,
        )

    async def stop(self) -> None:
        """Stop accepting, close every charger connection with 1001, flush Kafka."""
        if self._server is not None:
            self._server.close(close_connections=True)
            try:
                await asyncio.wait_for(self._server.wait_closed(), self.settings.shutdown_timeout_s)
            except TimeoutError:
                log.warning("connections still open after %.0f s", self.settings.shutdown_timeout_s)
        await self.publisher.stop(self.settings.shutdown_timeout_s)
        if self._admin_server is not None:  # last: probes and scrapes see the drain to its end
            self._admin_server.close()
            await self._admin_server.wait_closed()

    # --- handshake -------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        assert isinstance(connection, ChargerConnection)
        self.counter.named(connection, request)
        try:
            if connection.over_cap:
                raise HandshakeRefused(HTTPStatus.TOO_MANY_REQUESTS, "too many connections from this address",
                                       RefusalKind.CONNECTION_CAP)
            peer = connection.transport.get_extra_info("peercert") if self.settings.security_profile == 3 else None
            admission = self.gatekeeper.admit(Attempt(
                request.path, request.headers.get_all("Sec-WebSocket-Protocol"),
                tuple(request.headers.get_all("Authorization")), peer, connection.address, time.monotonic()))
        except HandshakeRefused as refusal:
            return self._refuse(connection, refusal, request.path)
        if admission.weak_password:
            self._admitted_weak(admission.charge_point_id)
        self._accepted[connection] = (admission.charge_point_id, admission.subprotocol)
        # websockets parses the offer again, strictly (RFC 7230 tokens), before it asks
        # _select_subprotocol: hand it the decision, so an offer the gateway accepted ("ocpp2.0.1,
        # ocpp 1.6") is not refused afterwards with a 400 no metric or log line explains.
        del request.headers["Sec-WebSocket-Protocol"]
        request.headers["Sec-WebSocket-Protocol"] = admission.subprotocol
        return None

    def _refuse(self, connection: ChargerConnection, refusal: HandshakeRefused, path: str) -> Response:
        self.metrics.refusals.labels(reason=refusal.status.name.lower()).inc()
        self.metrics.access_refusals[refusal.kind].inc()
        # The path may carry an id a charger was not allowed to use: log it repr-escaped, never a credential.
        # A throttled attempt is logged at debug: a flood of them must not flood the log too.
        level = logging.DEBUG if refusal.kind in (RefusalKind.THROTTLED_ADDRESS, RefusalKind.THROTTLED_CHARGE_POINT) else logging.INFO
        log.log(level, "refused %s (address %s): %s %s (%s)", connection.remote_address, connection.address,
                int(refusal.status), refusal.reason, refusal.kind.value)
        if refusal.blocked_for_s:
            log.warning("failed login on %r from %s: that charge point or address is refused unchecked for %.1f s",
                        path[:100], connection.address or connection.remote_address, refusal.blocked_for_s)
        throttle = self.gatekeeper.throttle
        self.metrics.throttle_keys["charge_point"].set(len(throttle.charge_points))
        self.metrics.throttle_keys["address"].set(len(throttle.addresses))
        response = connection.respond(refusal.status, refusal.reason + "\n")
        if refusal.status == HTTPStatus.UNAUTHORIZED and self.settings.security_profile in (1, 2):
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

    def _admitted_weak(self, charge_point_id: str) -> None:
        self.metrics.weak_password_logins.inc()
        if charge_point_id in self._warned_weak:
            return
        if len(self._warned_weak) >= 10_000:  # once per id and process, in bounded memory
            self._warned_weak.clear()
        self._warned_weak.add(charge_point_id)
        log.warning("charge point %r logged in with a password outside the OCPP security profiles' rule (16-40 "
                    "passwordString characters, or a 1.6 AuthorizationKey of 16-20 octets): give it a new one "
                    "(SetVariables BasicAuthPassword / ChangeConfiguration AuthorizationKey, then `ocpp-pipeline "
                    "credentials set`); OCPP_GATEWAY_WEAK_PASSWORDS=refuse refuses such logins", charge_point_id)

    def _select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        accepted = self._accepted.get(connection)
        return Subprotocol(accepted[1]) if accepted else None

    # --- connection loop ---------------------------------------------------------------------------

    async def _serve_connection(self, connection: ServerConnection) -> None:
        charge_point_id, subprotocol = self._accepted.pop(connection)
        previous = self._by_charge_point.get(charge_point_id)
        self._by_charge_point[charge_point_id] = connection
        if previous is not None:
            self.metrics.replaced.inc()
            asyncio.ensure_future(previous.close(1000, "replaced by a new connection"))
        handler = FrameHandler(
            ConnectionInfo(charge_point_id, uuid.uuid4().hex[:16], self.settings.gateway_id, subprotocol),
            self._validators[subprotocol],
            self._policy,
            self._transaction_ids,
        )
        self.metrics.connections.inc()
        self.metrics.open_connections.inc()
        # Queued before any frame of the connection: the producer keeps a partition's order, so every frame
        # acknowledged after it proves it stored too (uptime counts the charger online from here).
        await self.publisher.submit(handler.connection_event(ConnectionEvent.CONNECTED, now_ms()))
        try:
            async for message in connection:
                await self._handle(connection, handler, message)
        except ConnectionClosed:
            pass
        finally:
            self.metrics.open_connections.dec()
            if self._by_charge_point.get(charge_point_id) is connection:
                del self._by_charge_point[charge_point_id]
            # On SIGTERM the server waits for this handler before the publisher flushes: the event is stored.
            await self.publisher.submit(handler.connection_event(
                ConnectionEvent.DISCONNECTED, now_ms(), close_code=connection.close_code or 1006,
                reason=connection.close_reason))

    async def _handle(self, connection: ServerConnection, handler: FrameHandler, message: str | bytes) -> None:
        received_ms = now_ms()
        reaction = handler.receive(message, received_ms)
        inbound_stored = await self.publisher.submit(reaction.inbound)
        if reaction.durable:
            # Durability rule: the answer waits until Kafka has the frame and the answer's own
            # envelope (a StartTransaction.conf carries the transactionId the processors need).
            assert reaction.reply_envelope is not None
            reply_stored = await self.publisher.submit(reaction.reply_envelope)
            try:
                # One timeout over both acknowledgements (no gather, no wait_for task per CALL).
                # Cancelling these futures on timeout is harmless: the frames stay queued for Kafka.
                async with asyncio.timeout(self.settings.publish_timeout_s):
                    await inbound_stored
                    await reply_stored
                self.metrics.publish_seconds.observe((now_ms() - received_ms) / 1000)
            except TimeoutError:
                self.metrics.unacknowledged.inc()
                reaction = handler.unacknowledged(reaction, now_ms(), "Kafka did not acknowledge in time")
                if reaction.reply_envelope is not None:  # always: the CALLERROR it answers instead
                    await self.publisher.submit(reaction.reply_envelope)
            await self._send(connection, reaction)
        elif reaction.reply_envelope is not None:  # an answer (a reply goes with its envelope)
            await self._send(connection, reaction)
            await self.publisher.submit(reaction.reply_envelope)
        self.metrics.count_frame("in", reaction.inbound.action, reaction.outcome)

    async def _send(self, connection: ServerConnection, reaction: Reaction) -> None:
        assert reaction.reply is not None
        await connection.send(reaction.reply)
        self.metrics.count_frame("out", reaction.inbound.action, reaction.outcome)


async def run_gateway(settings: GatewaySettings, kafka: KafkaSettings, place: WorkerPlace | None = None) -> None:
    """``ocpp-pipeline gateway``: create topics, serve until SIGTERM / SIGINT, then shut down cleanly.

    ``place``: this is one of several processes (:mod:`gateway.supervisor` created the topics and
    raised the limits already)."""
    import signal

    from infra.limits import raise_open_files_limit
    from infra.topic_admin import TopicsReady, wait_for_topics

    # Signals first: a SIGTERM while the gateway starts stops it cleanly once it has started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def topics_refused(task: asyncio.Task[TopicsReady]) -> None:  # only a refusal waiting cannot fix ends the wait
        if not task.cancelled() and task.exception() is not None:
            log.error("stopping: %s", task.exception())
            stop.set()

    log.info("open files limit %d (one per charger connection)", raise_open_files_limit())
    # Kafka may come later (every pod at once): chargers are served meanwhile, the publisher waits. Every
    # process of a host waits (creating a topic another process just created is not an error).
    topics = asyncio.create_task(wait_for_topics(kafka, (FRAMES,)))  # the one topic it writes (and may see)
    topics.add_done_callback(topics_refused)
    gateway = Gateway(settings, kafka, place=place)
    await gateway.start()
    reporter = asyncio.create_task(_report_to_host(gateway, place)) if place is not None else None
    # Everything allocated so far lives as long as the process: keep the collector from walking
    # it again and again (full collections were the p99 outliers under load).
    gc.collect()
    gc.freeze()
    lag_watch = asyncio.create_task(watch_loop_lag(gateway.metrics))  # after the start-up's own pauses
    await stop.wait()
    topics.cancel()
    log.info("stopping: closing connections, flushing Kafka")
    if reporter is not None:
        reporter.cancel()
    lag_watch.cancel()
    await gateway.stop()


async def _report_to_host(gateway: Gateway, place: WorkerPlace, period_s: float = 0.5) -> None:
    """Keep this process's byte of the host view current: /readyz of any process reads all of them."""
    while True:
        place.host.report(place.index, gateway.publisher.kafka_up)
        await asyncio.sleep(period_s)


async def watch_loop_lag(metrics: GatewayMetrics, period_s: float = 0.1) -> None:
    """Event-loop stalls: a timer due every ``period_s`` fires late by however long the loop was busy
    (a burst of handshakes, a collection); the longest lateness is ``ocpp_gateway_event_loop_lag_max_seconds``."""
    worst = 0.0
    while True:
        due = time.monotonic() + period_s
        await asyncio.sleep(period_s)
        lag = time.monotonic() - due
        if lag > worst:
            worst = lag
            metrics.loop_lag_max.set(lag)
