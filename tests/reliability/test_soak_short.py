"""The short CI version of ``python -m bench.soak``: a few hundred simulated chargers held open on
one gateway; every CALL answered, none refused, no connection dropped, all of them open at once."""

from __future__ import annotations

import asyncio

from infra.settings import KafkaSettings
from simulator.fleet import run_fleet
from simulator.link import LinkStats
from simulator.settings import SimulatorSettings
from tests.gateway.live import gateway_settings, running_gateway


def test_a_few_hundred_chargers_held_open(kafka_settings: KafkaSettings, unique: str) -> None:
    async def scenario():
        async with running_gateway(gateway_settings(), kafka_settings, f"test.soak.{unique}") as gateway:
            stats = LinkStats(recent_ms=[])
            settings = SimulatorSettings(url=f"ws://127.0.0.1:{gateway.port}/ocpp", chargers=300, duration_s=15,
                                         time_scale=30, ramp=300, quirky_share=0.1, seed=5)
            fleet = asyncio.create_task(run_fleet(settings, stats=stats))
            peak = 0
            while not fleet.done():
                await asyncio.wait([fleet], timeout=1)
                peak = max(peak, gateway.metrics.open_connections._value.get())
            return fleet.result(), peak

    run, peak = asyncio.run(scenario())
    assert peak == 300
    assert run.stats.calls_answered == run.stats.calls_sent > 1000, run.summary()
    assert run.stats.call_errors == {} and run.stats.reconnects == 0 and run.unfinished == 0
