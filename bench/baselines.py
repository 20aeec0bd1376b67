"""Servers the gateway is measured against, run as processes by ``bench/gateway_bench.py``.

- ``echo``: a bare ``websockets`` server that sends every message back: the ceiling of the stack.
- ``ocpplib``: a central system written the way the ``ocpp`` library's own examples do it
  (a ``ChargePoint`` per connection, ``@on`` handlers), answering the same actions; no Kafka.

    python -m bench.baselines echo --port 9100
    python -m bench.baselines ocpplib --port 9101
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime, timezone

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import serve


async def echo(connection) -> None:
    async for message in connection:
        await connection.send(message)


class CentralSystemChargePoint(ChargePoint):
    @on(Action.boot_notification)
    def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs):
        return call_result.BootNotification(
            current_time=datetime.now(timezone.utc).isoformat(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self):
        return call_result.Heartbeat(current_time=datetime.now(timezone.utc).isoformat())

    @on(Action.status_notification)
    def on_status_notification(self, connector_id: int, error_code: str, status: str, **kwargs):
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list, **kwargs):
        return call_result.MeterValues()


async def ocpplib(connection) -> None:
    charge_point_id = connection.request.path.strip("/").split("/")[-1]
    await CentralSystemChargePoint(charge_point_id, connection).start()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["echo", "ocpplib"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    handler = echo if args.kind == "echo" else ocpplib
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(handler, "127.0.0.1", args.port, subprotocols=["ocpp1.6"], compression=None, max_queue=4,
                     ping_interval=None):
        await stop.wait()


if __name__ == "__main__":
    try:  # the same event loop as the gateway, so the ratios compare the servers, not the loops
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
