"""aiokafka closes a connection without waiting for it (``AIOKafkaConnection.close`` calls the writer's
``close()``, never ``wait_closed()``). A TLS connection then still has its shutdown to exchange with the broker:
a short-lived event loop (``asyncio.run`` of a probe, an admin call) that ends right away leaves the transport
open, and Python warns about it (``ResourceWarning: unclosed transport``; an error in the test suite). Those
callers give the loop :data:`TLS_CLOSE_S` to finish after closing their clients."""

from __future__ import annotations

import asyncio

from infra.settings import KafkaSettings

TLS_CLOSE_S = 0.1  # measured: the close_notify exchange on loopback ends within a few ms, also under load


async def settle(settings: KafkaSettings | None) -> None:
    """Call after closing the aiokafka clients of ``settings`` in a loop that is about to end."""
    if settings is not None and settings.security_protocol in ("SSL", "SASL_SSL"):
        await asyncio.sleep(TLS_CLOSE_S)
