"""A TCP load balancer for fault tests: each new connection goes to the next backend that accepts it,
like a Kubernetes Service in front of gateway replicas. When a backend dies its connections drop, and
a charger that reconnects lands on a live one. Bytes are copied untouched (WebSocket included)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence


class Balancer:
    def __init__(self, backends: Sequence[int], host: str = "127.0.0.1") -> None:
        self.backends, self.host = list(backends), host
        self._next = itertools.cycle(range(len(self.backends)))
        self.accepted: dict[int, int] = {port: 0 for port in self.backends}  # connections per backend
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next)]
            try:
                reader, writer = await asyncio.open_connection(self.host, port)
                return port, reader, writer
            except OSError:
                continue  # a dead replica: the next one
        raise ConnectionRefusedError("no backend accepts connections")

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            port, reader, writer = await self._connect()
        except OSError:
            client_writer.close()
            return
        self.accepted[port] += 1

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()

        pipes = [asyncio.create_task(pipe(client_reader, writer)), asyncio.create_task(pipe(reader, client_writer))]
        self._pipes.update(pipes)
        for task in pipes:
            task.add_done_callback(self._pipes.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Balancer"]:
        self._server = await asyncio.start_server(self._serve, self.host, 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            for task in list(self._pipes):
                task.cancel()
            await asyncio.gather(*self._pipes, return_exceptions=True)
