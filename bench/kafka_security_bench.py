"""What Kafka identities cost: the gateway's publisher and a worker-like consumer against a plain-text broker and
a secured one (``kafka start --secure``: TLS + SCRAM-SHA-512, ACLs), both started in this run on this machine.

    .venv/bin/python -m bench.kafka_security_bench [--frames 200000] [--rounds 3]

For each broker: the gateway's own :class:`gateway.publisher.FramePublisher` (idempotent, acks=all, one batch per
partition) publishes ``--frames`` MeterValues envelopes of 100 chargers and waits for every acknowledgement;
then a consumer reads them all back (``getmany``, as the worker's intake does). Reported: frames per CPU-second of
this process (the client side: TLS encryption and the SCRAM login are paid here) and per wall second, best of
``--rounds``, and the secured/plain ratio. Brokers and client share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from gateway.metrics import GatewayMetrics
from gateway.publisher import FramePublisher
from infra import local_kafka
from infra.kafka_acls import GATEWAY, WORKER
from infra.kafka_close import settle
from infra.local_kafka import LocalBroker
from infra.secured_broker import make_ready
from infra.settings import KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.topics import FRAMES

FRAME = ('[2,"{id}","MeterValues",{{"connectorId":1,"transactionId":42,"meterValue":[{{"timestamp":'
         '"2026-06-01T12:00:00Z","sampledValue":[{{"value":"12345.6","measurand":"Energy.Active.Import.Register",'
         '"unit":"Wh"}}]}}]}}]')


def envelopes(count: int) -> list[FrameEnvelope]:
    return [FrameEnvelope(charge_point_id=f"CP-{i % 100:03d}", direction=Direction.IN, gateway_ts_ms=1_780_000_000_000 + i,
                          frame=FRAME.format(id=i), ocpp_version="ocpp1.6", gateway_id="bench", connection_id="c",
                          seq=i, message_type=MessageType.CALL, action="MeterValues", message_id=str(i))
            for i in range(count)]


async def publish(kafka: KafkaSettings, items: list[FrameEnvelope]) -> tuple[float, float]:
    publisher = FramePublisher(kafka, kafka.topic(FRAMES.name), GatewayMetrics())
    await publisher.start()
    cpu, wall = time.process_time(), time.perf_counter()
    acks = [await publisher.submit(item) for item in items]
    await asyncio.gather(*acks)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await publisher.stop()
    await settle(kafka)
    return cpu, wall


async def consume(kafka: KafkaSettings, count: int) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(kafka.topic(FRAMES.name), **kafka.client_options(), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    try:
        cpu, wall, seen = time.process_time(), time.perf_counter(), 0
        while seen < count:
            seen += sum(len(r) for r in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values())
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await consumer.stop()
        await settle(kafka)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=29092)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kafka-security-bench-"))
    project = LocalKafkaSettings()
    local_kafka.fetch(project)
    brokers = []
    try:
        clients = {}
        for secure, offset in ((False, 0), (True, 10)):
            local = LocalKafkaSettings(home=home, port=args.base_port + offset, controller_port=args.base_port + offset + 1,
                                       tls_port=args.base_port + offset + 2, secure=secure, partitions=4)
            local.libs_dir.parent.mkdir(parents=True, exist_ok=True)
            if not local.libs_dir.exists():
                local.libs_dir.symlink_to(project.libs_dir.resolve())
            brokers.append(LocalBroker(local))
            brokers[-1].start()
            if secure:  # the gateway writes, the worker reads, each as itself; the administrator made the topic
                bus = make_ready(local, KafkaSettings(partitions=4), "bench")
                clients["secured"] = (bus.settings_of(GATEWAY), bus.settings_of(WORKER))
            else:
                plain = KafkaSettings(bootstrap_servers=local.bootstrap_servers, partitions=4)
                asyncio.run(ensure_topics(plain, [FRAMES]))
                clients["plain"] = (plain, plain)
        # Rounds alternate between the brokers, so both see the same machine (it is shared and its load moves).
        items = envelopes(args.frames)
        best = {name: dict.fromkeys(("publish_cpu", "publish_wall", "consume_cpu", "consume_wall"), 0.0) for name in clients}
        for round_ in range(args.rounds):
            for name, (writer, reader) in clients.items():
                for key, rate in one_round(writer, reader, items, round_).items():
                    best[name][key] = max(best[name][key], rate)
    finally:
        for broker in brokers:
            broker.stop()
    for name, rates in best.items():
        print(f"{name:8s} publish {rates['publish_cpu']:9,.0f} frames/CPU-s {rates['publish_wall']:9,.0f} frames/s   "
              f"consume {rates['consume_cpu']:9,.0f} frames/CPU-s {rates['consume_wall']:9,.0f} frames/s")
    for key in ("publish_cpu", "publish_wall", "consume_cpu", "consume_wall"):
        print(f"secured / plain {key:13s} {best['secured'][key] / best['plain'][key]:.2f}x")


def one_round(writer: KafkaSettings, reader: KafkaSettings, items: list[FrameEnvelope], round_: int) -> dict[str, float]:
    """Publish ``items`` on the frames topic (under its own name: the identities' ACLs name it), then read the
    topic from its start (every earlier round's frames too)."""
    p_cpu, p_wall = asyncio.run(publish(writer, items))
    read = len(items) * (round_ + 1)
    c_cpu, c_wall = asyncio.run(consume(reader, read))
    return {"publish_cpu": len(items) / p_cpu, "publish_wall": len(items) / p_wall,
            "consume_cpu": read / c_cpu, "consume_wall": read / c_wall}


if __name__ == "__main__":
    main()
