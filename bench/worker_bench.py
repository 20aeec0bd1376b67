"""Worker benchmark: frames/s through the worker (Kafka -> correlate -> ClickHouse) against a raw
aiokafka consumer reading the same topic in the same run, frames per CPU-second of the worker, and
end-to-end latency from gateway timestamp to the row being visible in ClickHouse.

    .venv/bin/python -m bench.worker_bench                       # needs the local broker running
    .venv/bin/python -m bench.worker_bench --chargers 2000 --rate 3000 --latency-seconds 15

Targets from the issue: >= 0.5x the raw consumer; >= 20k frames/s per core; p99 <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics, partitions_of
from schemas.topics import FRAMES
from tests.processors.script import Script, energy

ROOT = Path(__file__).resolve().parent.parent
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def charger_day(n: int, sessions: int) -> Script:
    """A charger's traffic: boot, heartbeats, sessions with meter values every minute, endings."""
    s = Script(f"BENCH-{n:05d}")
    rng = random.Random(n)
    t = 0.0
    s.at(t).call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    for k in range(sessions):
        tx = n * 1000 + k
        meter = 100_000 * k
        s.at(t + 1).status(1, "Preparing").at(t + 2).start(1, tx, meter_start=meter).at(t + 3).status(1, "Charging")
        for minute in range(rng.randint(5, 20)):
            t += 60
            meter += rng.randint(50, 400)
            s.at(t).meter(1, tx, energy(meter), {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"})
            if minute % 5 == 0:
                s.at(t + 1).call("Heartbeat", {})
        s.at(t + 5).status(1, rng.choice(["Finishing", "SuspendedEV", "Available"]))
        s.at(t + 6).stop(tx, meter, reason=rng.choice(["Local", "EVDisconnected", "Remote"]))
        s.at(t + 30).status(1, "Available")
        t += 120
    return s


async def produce_all(kafka: KafkaSettings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=256 * 1024, compression_type="zstd")
    await producer.start()
    try:
        futures = [await producer.send(kafka.topic(FRAMES.name), key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume(kafka: KafkaSettings, total: int) -> float:
    """Seconds a bare aiokafka consumer takes to read ``total`` records (values decoded as bytes)."""
    topic = kafka.topic(FRAMES.name)
    partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started, seen = time.perf_counter(), 0
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "worker", "--log-level", "warning"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, sql: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.env['OCPP_WORKER_WEB_PORT']}/sql", data=sql.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["rows"]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S

    def cpu_by_thread(self) -> dict[str, float]:
        """CPU seconds per thread name: the embedded ClickHouse engine runs its own named threads
        inside the worker, so its share can be told apart from the pipeline's Python threads."""
        totals: dict[str, float] = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS_PER_S
        return totals

    def wait_ready(self) -> None:
        for _ in range(600):
            try:
                self.query("SELECT 1")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("worker did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1500)
    parser.add_argument("--sessions", type=int, default=3, help="sessions per charger")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2000.0, help="frames/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=args.partitions, topic_prefix=f"bench{run}.")
    asyncio.run(ensure_topics(kafka))
    home = Path(f"/tmp/ocpp-worker-bench-{run}")
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap, "OCPP_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
           "OCPP_KAFKA_PARTITIONS": str(args.partitions), "OCPP_HOME": str(home), "OCPP_WORKER_APP_ID": f"bench{run}",
           "OCPP_WORKER_WEB_PORT": str(6100 + random.randint(0, 800)), "OCPP_WORKER_FLUSH_INTERVAL_S": "0.5"}

    print(f"generating traffic of {args.chargers} chargers x {args.sessions} sessions...", flush=True)
    records = [(e.key(), e.model_dump_json().encode()) for n in range(args.chargers) for e in charger_day(n, args.sessions).envelopes]
    total = len(records)
    asyncio.run(produce_all(kafka, records))
    print(f"{total} frames on {kafka.topic(FRAMES.name)} ({args.partitions} partitions)", flush=True)

    raw_s = asyncio.run(raw_consume(kafka, total))
    raw_rate = total / raw_s

    worker = Worker(env, home.with_suffix(".log"))
    try:
        worker.wait_ready()
        cpu0, threads0, started = worker.cpu_seconds(), worker.cpu_by_thread(), time.perf_counter()
        while worker.query("SELECT count() FROM ocpp.frames")[0][0] < total:
            time.sleep(0.2)
        worker_s = time.perf_counter() - started
        worker_cpu = worker.cpu_seconds() - cpu0
        threads = {k: v - threads0.get(k, 0.0) for k, v in worker.cpu_by_thread().items()}
        python_cpu = sum(v for k, v in threads.items() if k.startswith(("python", "ocpp-pipeline")) or k == "asyncio_0")
        sessions = worker.query("SELECT count() FROM ocpp.sessions FINAL")[0][0]

        # Latency: frames stamped with the wall clock at a steady rate; the time each becomes visible.
        latencies = asyncio.run(_latency_run(kafka, worker, args.rate, args.latency_seconds))
    finally:
        worker.stop()

    worker_rate = total / worker_s
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    print()
    print(f"raw aiokafka consumer : {raw_rate:>9.0f} frames/s")
    print(f"worker (to ClickHouse): {worker_rate:>9.0f} frames/s   = {worker_rate / raw_rate:.2f}x raw  (target >= 0.5)")
    print(f"worker per CPU-second : {total / worker_cpu:>9.0f} frames   ({worker_cpu:.1f} CPU-s for {total} frames; target >= 20k)")
    print(f"  of which Python     : {python_cpu:.1f} CPU-s = {total / python_cpu:.0f} frames per CPU-s of the pipeline's own threads")
    print("  busiest threads     : " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(threads.items(), key=lambda kv: -kv[1])[:6]))
    print(f"sessions built        : {sessions}")
    print(f"latency gateway ts -> row visible at {args.rate:.0f} frames/s: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms  (target p99 <= 2000 ms)")
    if args.json:
        args.json.write_text(json.dumps({"frames": total, "raw_fps": raw_rate, "worker_fps": worker_rate,
                                         "frames_per_cpu_s": total / worker_cpu, "p50_s": p50, "p99_s": p99}, indent=2))


async def _latency_run(kafka: KafkaSettings, worker: Worker, rate: float, seconds: float) -> list[float]:
    from schemas.envelope import Direction, FrameEnvelope, MessageType

    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    sent_ms: list[int] = []
    visible: list[tuple[float, int]] = []  # (wall time of the poll, newest received_at visible, ms)
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set() or (sent_ms and (not visible or visible[-1][1] < sent_ms[-1])):
            rows = await asyncio.to_thread(worker.query, "SELECT toUnixTimestamp64Milli(max(received_at)) FROM ocpp.frames WHERE charge_point_id LIKE 'LAT-%'")
            visible.append((time.time(), int(rows[0][0] or 0)))
            await asyncio.sleep(0.02)
            if stop.is_set() and time.time() - stop_time[0] > 30:
                return

    stop_time = [0.0]
    poller = asyncio.create_task(poll())
    interval, n, started = 1 / rate, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        now_ms = int(time.time() * 1000)
        env = FrameEnvelope(charge_point_id=f"LAT-{n % 500}", direction=Direction.IN, gateway_ts_ms=now_ms,
                            frame=json.dumps([2, str(n), "Heartbeat", {}]), ocpp_version="ocpp1.6", gateway_id="bench",
                            connection_id="lat", seq=n, message_type=MessageType.CALL, action="Heartbeat", message_id=str(n))
        await producer.send(kafka.topic(FRAMES.name), key=env.key(), value=env.model_dump_json().encode())
        sent_ms.append(now_ms)
        n += 1
        delay = started + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await producer.flush()
    await producer.stop()
    stop_time[0] = time.time()
    stop.set()
    await poller
    latencies, i = [], 0
    for ms in sent_ms:
        while i < len(visible) and visible[i][1] < ms:
            i += 1
        if i < len(visible):
            latencies.append(max(0.0, visible[i][0] - ms / 1000))
    return latencies


if __name__ == "__main__":
    main()
