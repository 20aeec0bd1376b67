"""Worker benchmark, in one run: a raw aiokafka consumer that JSON-decodes every record, the pure
frame processor in-process, the worker (Kafka -> correlate -> ClickHouse -> topics -> changelog) on the
same backlog (frames/s, frames per CPU-second of the worker, peak RSS), optionally two workers sharing
the topic, and end-to-end latency (gateway timestamp -> row visible in ClickHouse) at offered rates.

    .venv/bin/python -m bench.worker_bench                       # needs the local broker running
    .venv/bin/python -m bench.worker_bench --chargers 1000 --rates 2000,10000 --two-workers
    .venv/bin/python -m bench.worker_bench --chargers 1000 --rates "" --py-spy /tmp/worker.spy   # profile the drain

Targets (issue 14): >= 25k frames per worker CPU-second; worker >= 0.15x the JSON-decoding raw
consumer; p99 <= 1 s at 2k frames/s and <= 2 s at 10k; two workers >= 1.6x one (with the cores).
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
    """Seconds a bare aiokafka consumer takes to read ``total`` records and JSON-decode each value."""
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
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def pure_processor(records: list[tuple[bytes, bytes]], partitions: int, flush_rows: int = 5000) -> float:
    """Frames/s of the FrameProcessor alone, in this process: envelopes in, rows and states out (taken
    every ``flush_rows`` frames, as the worker does), no I/O."""
    from processors.settings import CorrelatorConfig
    from processors.pipeline import FrameProcessor

    states: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    offsets = [0] * partitions
    started = time.perf_counter()
    for key, value in records:
        p = hash(key) % partitions
        processor.process(p, offsets[p], key, value, 0)
        offsets[p] += 1
        if processor.pending_frames >= flush_rows:
            out = processor.take()
            states.update(out.states)
            processor.persisted(out.states)
    processor.take()
    return len(records) / (time.perf_counter() - started)


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = open(log, "wb")
        # -P when env sets PYTHONPATH (--pythonpath: the compiled core): the checkout must not come before it.
        flags = ["-P"] if "PYTHONPATH" in env else []
        self.proc = subprocess.Popen([sys.executable, *flags, "-m", "ocpp_pipeline", "worker", "--log-level", "warning"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, sql: str):
        """Through the worker's /sql, found by the endpoint file it publishes in its folder (OSError until then)."""
        from infra import read_endpoint
        from infra.errors import ClickHouseError
        from infra.read_path import query_worker

        folder = Path(os.path.realpath(Path(self.env["OCPP_HOME"]) / "clickhouse"))
        try:
            endpoint = read_endpoint.read(folder)
            if endpoint is None or endpoint.pid != self.proc.pid:
                raise OSError("no read endpoint yet")
            return query_worker(endpoint, endpoint.token, folder, sql, timeout_s=30).rows
        except ClickHouseError as exc:
            raise OSError(str(exc)) from None

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

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


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def _drain_backlog(workers: list[Worker], total: int) -> tuple[float, float, float, dict[str, float]]:
    """Wall seconds until ``total`` frames are in ClickHouse, CPU seconds of the workers, their peak
    RSS (MiB, sampled), and CPU seconds by thread name (all workers)."""
    cpu0 = [w.cpu_seconds() for w in workers]
    threads0 = [w.cpu_by_thread() for w in workers]
    started, peak, marks = time.perf_counter(), 0.0, {}
    while (done := sum(w.query("SELECT count() FROM ocpp.frames")[0][0] for w in workers[:1])) < total:
        rss = max(w.rss_mib() for w in workers)
        peak = max(peak, rss)
        for share in (0.1, 0.25, 0.5, 0.75, 0.9):
            if done >= share * total and share not in marks:
                marks[share] = rss
        time.sleep(0.2)
    print("RSS of the worker while draining (share of the backlog done: MiB): "
          + ", ".join(f"{share:.0%}: {rss:.0f}" for share, rss in sorted(marks.items())), flush=True)
    wall = time.perf_counter() - started
    cpu = sum(w.cpu_seconds() - c for w, c in zip(workers, cpu0))
    threads: dict[str, float] = {}
    for w, t0 in zip(workers, threads0):
        for k, v in w.cpu_by_thread().items():
            threads[k] = threads.get(k, 0.0) + v - t0.get(k, 0.0)
    return wall, cpu, peak, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1500)
    parser.add_argument("--sessions", type=int, default=3, help="sessions per charger")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rates", default="2000,10000", help="offered frames/s of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--flush-rows", type=int, default=5000)
    parser.add_argument("--two-workers", action="store_true", help="also drain a second backlog with two workers")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pythonpath", type=Path, help="run the worker with this folder first on its path "
                        "(make compile's .local/compiled: the compiled core)")
    parser.add_argument("--py-spy", type=Path, help="record the worker with py-spy while it drains the backlog "
                        "(collapsed stacks to this file)")
    args = parser.parse_args()

    print(f"generating traffic of {args.chargers} chargers x {args.sessions} sessions...", flush=True)
    records = [(e.key(), e.model_dump_json().encode()) for n in range(args.chargers) for e in charger_day(n, args.sessions).envelopes]
    total = len(records)
    pure_rate = pure_processor(records, args.partitions, args.flush_rows)

    def setup(tag: str, produce: bool = True) -> tuple[KafkaSettings, dict[str, str], Path]:
        run = uuid.uuid4().hex[:8]
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=args.partitions, topic_prefix=f"bench{run}.")
        asyncio.run(ensure_topics(kafka))
        home = Path(f"/tmp/ocpp-worker-bench-{run}")
        # The synthetic day is dated in the past, beyond the frames' retention (OCPP_CLICKHOUSE_FRAMES_TTL_DAYS): kept
        # forever here, or its frames expire as they land and the count the drain waits for never comes.
        env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap, "OCPP_CLICKHOUSE_FRAMES_TTL_DAYS": "0", "OCPP_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
               "OCPP_KAFKA_PARTITIONS": str(args.partitions), "OCPP_HOME": str(home), "OCPP_WORKER_APP_ID": f"bench{run}",
               "OCPP_WORKER_WEB_PORT": str(6100 + random.randint(0, 800)), "OCPP_WORKER_SQL_PORT": "0", "OCPP_WORKER_FLUSH_INTERVAL_S": "0.5",
               "OCPP_WORKER_FLUSH_ROWS": str(args.flush_rows)}
        if args.pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(args.pythonpath.resolve()), str(ROOT)])
        if produce:
            asyncio.run(produce_all(kafka, records))
            print(f"{total} frames on {kafka.topic(FRAMES.name)} ({args.partitions} partitions) [{tag}]", flush=True)
        return kafka, env, home

    kafka, env, home = setup("one worker")
    raw_rate = total / asyncio.run(raw_consume(kafka, total))

    worker = Worker(env, home.with_suffix(".log"))
    latencies: dict[float, list[float]] = {}
    try:
        worker.wait_ready()
        spy = None
        if args.py_spy:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(worker.proc.pid), "-r", "200",
                                    "-f", "raw", "-o", str(args.py_spy), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker_s, worker_cpu, peak_rss, threads = _drain_backlog([worker], total)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        python_cpu = sum(v for k, v in threads.items() if k.startswith(("python", "ocpp-pipeline")) or k == "asyncio_0")
        sessions = worker.query("SELECT count() FROM ocpp.sessions FINAL")[0][0]
        for rate in [float(r) for r in args.rates.split(",") if r]:
            latencies[rate] = asyncio.run(_latency_run(kafka, worker, rate, args.latency_seconds, tag=f"L{int(rate)}"))
    finally:
        worker.stop()

    two = None
    if args.two_workers:
        kafka2, env2, home2 = setup("two workers", produce=False)
        env2b = {**env2, "OCPP_HOME": str(home2) + "-b", "OCPP_WORKER_WEB_PORT": str(int(env2["OCPP_WORKER_WEB_PORT"]) + 1)}
        asyncio.run(produce_all(kafka2, records))
        print(f"{total} frames on {kafka2.topic(FRAMES.name)} ({args.partitions} partitions) [two workers]", flush=True)
        pair = [Worker(env2, home2.with_suffix(".log")), Worker(env2b, home2.with_suffix(".b.log"))]
        try:
            # Timed as the single worker is: from both answering (both then join the group and share
            # the partitions; chDB: each has its own database folder).
            for w in pair:
                w.wait_ready()
            two_cpu0 = [w.cpu_seconds() for w in pair]
            started = time.perf_counter()
            while sum(w.query("SELECT count() FROM ocpp.frames")[0][0] for w in pair) < total:
                time.sleep(0.2)
            two = (time.perf_counter() - started, sum(w.cpu_seconds() - c for w, c in zip(pair, two_cpu0)))
        finally:
            for w in pair:
                w.stop()

    worker_rate = total / worker_s
    print()
    print(f"raw aiokafka consumer, JSON-decoding : {raw_rate:>9.0f} frames/s")
    print(f"pure FrameProcessor (in-process)     : {pure_rate:>9.0f} frames/s")
    print(f"worker (to ClickHouse)               : {worker_rate:>9.0f} frames/s  = {worker_rate / raw_rate:.3f}x raw  (target >= 0.15)")
    print(f"worker frames per CPU-second         : {total / worker_cpu:>9.0f}   ({worker_cpu:.1f} CPU-s for {total} frames; target >= 25k)")
    print(f"  of which Python threads            : {python_cpu:.1f} CPU-s = {total / max(python_cpu, 1e-9):.0f} frames per CPU-s")
    print("  busiest threads                    : " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(threads.items(), key=lambda kv: -kv[1])[:6]))
    print(f"  peak RSS while draining            : {peak_rss:.0f} MiB")
    print(f"sessions built                       : {sessions}")
    for rate, values in latencies.items():
        target = 1000 if rate <= 2000 else 2000
        print(f"latency gateway ts -> row visible at {rate:.0f} frames/s offered: p50 {_percentile(values, 0.5) * 1000:.0f} ms, "
              f"p99 {_percentile(values, 0.99) * 1000:.0f} ms  ({len(values)} frames; target p99 <= {target} ms)")
    if two is not None:
        rate2 = total / two[0]
        print(f"two workers (to ClickHouse)          : {rate2:>9.0f} frames/s  = {rate2 / worker_rate:.2f}x one worker  "
              f"({total / two[1]:.0f} frames per CPU-s; {os.cpu_count()} cores shared with the broker)")
    if args.json:
        args.json.write_text(json.dumps({
            "frames": total, "raw_fps": raw_rate, "pure_fps": pure_rate, "worker_fps": worker_rate,
            "frames_per_cpu_s": total / worker_cpu, "peak_rss_mib": peak_rss,
            "latency": {str(r): {"p50_s": _percentile(v, 0.5), "p99_s": _percentile(v, 0.99)} for r, v in latencies.items()},
            "two_workers_fps": total / two[0] if two else None}, indent=2))


async def _latency_run(kafka: KafkaSettings, worker: Worker, rate: float, seconds: float, tag: str) -> list[float]:
    """Realistic frames (the same mix, chargers of their own) stamped with the wall clock and sent at
    ``rate`` frames/s in 10 ms slices; the time each becomes visible in ClickHouse."""
    import msgspec

    template = [msgspec.json.decode(e.model_dump_json()) for n in range(300) for e in charger_day(n, 3).envelopes]
    for env in template:
        env["charge_point_id"] = f"{tag}-{env['charge_point_id']}"
    encode = msgspec.json.encode
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    sent_ms: list[int] = []
    visible: list[tuple[float, int]] = []  # (wall time of the poll, newest received_at visible, ms)
    stop = asyncio.Event()
    stop_time = [0.0]
    query = f"SELECT toUnixTimestamp64Milli(max(received_at)) FROM ocpp.frames WHERE charge_point_id LIKE '{tag}-%'"

    async def poll() -> None:
        while not stop.is_set() or (sent_ms and (not visible or visible[-1][1] < sent_ms[-1])):
            rows = await asyncio.to_thread(worker.query, query)
            visible.append((time.time(), int(rows[0][0] or 0)))
            await asyncio.sleep(0.02)
            if stop.is_set() and time.time() - stop_time[0] > 30:
                return

    poller = asyncio.create_task(poll())
    topic = kafka.topic(FRAMES.name)
    n, started, slice_s = 0, time.perf_counter(), 0.01
    while time.perf_counter() - started < seconds:
        due = int((time.perf_counter() - started) * rate) + 1
        now_ms = int(time.time() * 1000)
        while n < due:
            env = template[n % len(template)]
            env["gateway_ts_ms"] = now_ms
            await producer.send(topic, key=env["charge_point_id"].encode(), value=encode(env))
            sent_ms.append(now_ms)
            n += 1
        await asyncio.sleep(slice_s)
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
