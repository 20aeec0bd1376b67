"""State restore benchmark: how long a worker takes, after a restart or a rebalance, to be ready for
frames when N chargers have a state in the changelog.

Realistic states (those the worker bench's chargers end with: closed sessions remembered, connectors)
are written to the correlator-state changelog for N chargers, each in the partition its key hashes to
(as the worker's table writes them), plus one frame per partition. A worker is started on them; the
run reports the time until the frames' rows are visible (Faust's changelog recovery + the processor
indexing the deadlines, then the first batch), the processor's own indexing time (``/metrics``), and
the indexing in-process without Kafka.

    .venv/bin/python -m bench.restore_bench --chargers 10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from bench.worker_bench import Worker, charger_day
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from processors.settings import CorrelatorConfig
from processors.pipeline import FrameProcessor


def template_states(partitions: int) -> list[bytes]:
    states: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    for n in range(50):
        for offset, e in enumerate(charger_day(n, 3).envelopes):
            processor.process(n % partitions, offset, e.key(), e.model_dump_json().encode(), 0)
    return list(processor.take().states.values())


def with_partition(state: bytes, partition: int) -> bytes:
    return re.sub(rb'"p":\d+}$', b'"p":%d}' % partition, state)


async def write_changelog(kafka: KafkaSettings, topic: str, n: int, partitions: int, templates: list[bytes]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", linger_ms=20, max_batch_size=512 * 1024,
                                compression_type="zstd")
    await producer.start()
    try:
        pending = []
        for i in range(n):
            key = f"RST-{i:07d}".encode()
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
            pending.append(await producer.send(topic, key=key, value=with_partition(templates[i % len(templates)], partition),
                                               partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def metric(port: str, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        found = re.search(rf"^{name} (\S+)$", response.read().decode(), re.MULTILINE)
    return float(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", default="10000,100000")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args()
    templates = template_states(args.partitions)
    size = sum(map(len, templates)) / len(templates)
    print(f"state templates: {len(templates)}, {size:.0f} bytes on average")
    for n in [int(x) for x in args.chargers.split(",")]:
        # In-process: the processor indexing the deadlines of n states (what a worker does once Faust recovered them).
        pairs = [(f"RST-{i:07d}", with_partition(templates[i % len(templates)], i % args.partitions)) for i in range(n)]
        processor = FrameProcessor(CorrelatorConfig.defaults(), {}.get)
        started = time.perf_counter()
        processor.recover(set(range(args.partitions)), pairs)
        index_all = time.perf_counter() - started
        started = time.perf_counter()
        FrameProcessor(CorrelatorConfig.defaults(), {}.get).recover({0}, pairs)
        index_one = time.perf_counter() - started

        run = uuid.uuid4().hex[:8]
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=args.partitions, topic_prefix=f"restore{run}.")
        asyncio.run(ensure_topics(kafka))
        app_id = f"restore{run}"
        asyncio.run(write_changelog(kafka, f"{app_id}-correlator-state-changelog", n, args.partitions, templates))
        frames = [(e.key(), e.model_dump_json().encode()) for k in range(40) for e in charger_day(100_000 + k, 1).envelopes[:1]]
        from bench.worker_bench import produce_all

        asyncio.run(produce_all(kafka, frames))
        home = Path(f"/tmp/ocpp-restore-bench-{run}")
        port = str(6100 + random.randint(0, 800))
        import os

        # The synthetic day is dated in the past, beyond the frames' retention (OCPP_CLICKHOUSE_FRAMES_TTL_DAYS): kept
        # forever here, or its frames expire as they land and the count the drain waits for never comes.
        env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap, "OCPP_CLICKHOUSE_FRAMES_TTL_DAYS": "0", "OCPP_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
               "OCPP_KAFKA_PARTITIONS": str(args.partitions), "OCPP_HOME": str(home), "OCPP_WORKER_APP_ID": app_id,
               "OCPP_WORKER_WEB_PORT": port, "OCPP_WORKER_SQL_PORT": "0"}
        started = time.perf_counter()
        worker = Worker(env, home.with_suffix(".log"))
        try:
            worker.wait_ready()
            web = time.perf_counter() - started
            while worker.query("SELECT count() FROM ocpp.frames")[0][0] < len(frames):
                time.sleep(0.1)
            ready = time.perf_counter() - started
            indexed = metric(port, "ocpp_worker_recovery_seconds")
            rss = worker.rss_mib()
        finally:
            worker.stop()
        print(f"{n:>7} chargers: worker start -> first rows visible {ready:5.1f} s (web up at {web:.1f} s; last partition's "
              f"deadline indexing {indexed or 0:.2f} s; RSS {rss:.0f} MiB); in-process indexing: all partitions "
              f"{index_all:.2f} s, one of {args.partitions} {index_one:.2f} s")


if __name__ == "__main__":
    main()
