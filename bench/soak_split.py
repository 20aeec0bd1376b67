"""Soak of the whole pipeline with the fleet split over several processes, so the load generator is not
the bottleneck: gateway RSS and answer latency per window, every CALL answered, and the sessions in
ClickHouse equal to what the chargers did.

    .venv/bin/python -m bench.soak_split                                          # 10,000 chargers, 10 minutes, 4 fleet processes
    .venv/bin/python -m bench.soak_split --chargers 2000 --minutes 3 --fleets 2   # a shorter one

Everything runs in a temporary folder on free ports (its own broker, gateway, worker and embedded
ClickHouse); nothing of ``make run`` is touched. Each fleet process reports its own window p50 / p99; a
window's p99 here is the worst of the processes' (an upper bound of the fleet-wide p99). Gateway RSS is its
whole process tree (the supervisor and its one process per core).

After the fleet ends, the gateway is stopped and the worker group's lag (committed offsets against the
topic's end, :mod:`bench.drain`) is awaited until it is 0 and stays 0; only then are frames counted (topic
against ClickHouse) and sessions compared, mismatches sorted by kind (:mod:`bench.soak_check`). Exit 0
when drained, 0 frames lost and 0 session mismatches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.drain import topic_records, wait_drained
from bench.soak import open_connections, pct, rss_mib, tree_rss_mib
from bench.soak_check import breakdown, frames_verdict, query, transaction_frames_sql
from infra.local_kafka import LocalBroker
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics, wait_for_topics
from schemas.topics import FRAMES
from simulator.expectations import MismatchKind
# Imported before OCPP_HOME is replaced: the jars are found in the project's `.local/`.
from tests.conftest import broker_settings_in, free_port

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "ocpp-soak"  # the worker's Faust app id: its consumer group, whose lag says when it has drained
# The worker's production default. A 5 s window (enough in the short e2e tests) missed 62 of 17,654
# transitions in the 10k soak: the simulator's status gap (up to 3 s at time scale 10) plus the
# StopTransaction's answer latency under this load (p99 seconds) plus the partition clock running ahead
# of a frame its gateway published late put the transition 5-8 s (gateway clock) after the stop.
STATUS_WINDOW_S = 60
SESSIONS_SETTLE_S = STATUS_WINDOW_S + 30  # after the drain: the last stops' windows close on wall time
SESSIONS_SETTLE_CAP_S = 600  # ... and a comparison that keeps changing is final after this


async def fleet_process(args: argparse.Namespace) -> None:
    """One share of the fleet (``--as-fleet``): a JSON line per window on stdout, then the summary."""
    from simulator.fleet import run_fleet
    from simulator.link import LinkStats
    from simulator.settings import SimulatorSettings

    settings = SimulatorSettings(url=args.url, chargers=args.chargers, connectors="1-2", duration_s=args.minutes * 60,
                                 time_scale=args.time_scale, ramp=args.ramp, quirky_share=0.1, seed=args.seed,
                                 id_prefix=args.id_prefix, answer_timeout_s=60)
    stats = LinkStats(recent_ms=[])
    fleet = asyncio.create_task(run_fleet(settings, stats=stats))
    started = time.monotonic()
    while not fleet.done():
        await asyncio.wait([fleet], timeout=args.window)
        window, stats.recent_ms = stats.recent_ms, []
        print(json.dumps({"t": time.monotonic() - started, "calls": len(window), "p50": pct(window, 0.5),
                          "p99": pct(window, 0.99), "connected": stats.connected}), flush=True)
    run = fleet.result()
    run.write_expected(Path(args.expected))
    print(json.dumps({"summary": run.summary(), "sent": run.stats.calls_sent, "answered": run.stats.calls_answered,
                      "unfinished": run.unfinished}), flush=True)


def _env(home: Path, kafka: KafkaSettings, gateway_port: int, web_port: int, admin_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    return env | {"OCPP_HOME": str(home), "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                  "OCPP_KAFKA_PARTITIONS": "8", "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(gateway_port),
                  "OCPP_GATEWAY_ADMIN_PORT": str(admin_port),
                  "OCPP_GATEWAY_ID": "soak", "OCPP_WORKER_WEB_PORT": str(web_port), "OCPP_WORKER_SQL_PORT": "0", "OCPP_WORKER_STATUS_WINDOW_S": str(STATUS_WINDOW_S),
                  "OCPP_WORKER_APP_ID": APP_ID}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fleets", type=int, default=4, help="fleet processes the chargers are split over")
    parser.add_argument("--window", type=float, default=60, help="seconds per reported window")
    parser.add_argument("--time-scale", type=float, default=10)
    parser.add_argument("--ramp", type=float, default=125, help="chargers connecting per second, per fleet process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drain-cap", type=float, default=1800,
                        help="longest wait, in seconds, for the worker to drain the topic after the run")
    parser.add_argument("--explain", type=int, default=3, help="missing sessions whose frames are printed")
    parser.add_argument("--as-fleet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--id-prefix", default="SOAK-", help=argparse.SUPPRESS)
    parser.add_argument("--expected", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_fleet:
        asyncio.run(fleet_process(args))
        return 0

    home = Path(tempfile.mkdtemp(prefix="ocpp-soak-"))
    broker = LocalBroker(broker_settings_in(home / "kafka-home", partitions=8))
    broker.start()
    procs: list[subprocess.Popen] = []
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=8)
        asyncio.run(ensure_topics(kafka))
        gateway_port, admin_port = free_port(), free_port()
        env = _env(home, kafka, gateway_port, free_port(), admin_port)
        logs = {name: open(home / f"{name}.log", "wb") for name in ("gateway", "worker")}
        gateway = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway", "--log-level", "warning"], cwd=ROOT,
                                   env=env, stdout=logs["gateway"], stderr=subprocess.STDOUT)
        worker = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "worker", "--log-level", "warning"], cwd=ROOT,
                                  env=env, stdout=logs["worker"], stderr=subprocess.STDOUT)
        procs += [gateway, worker]
        deadline = time.monotonic() + 90
        while True:
            try:
                open_connections(admin_port)
                break
            except OSError:
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise SystemExit(f"the gateway did not start; see {home / 'gateway.log'}")
                time.sleep(0.3)
        share = args.chargers // args.fleets
        fleets = [subprocess.Popen([sys.executable, "-m", "bench.soak_split", "--as-fleet", "--chargers", str(share),
                                    "--minutes", str(args.minutes), "--window", str(args.window), "--time-scale",
                                    str(args.time_scale), "--ramp", str(args.ramp), "--seed", str(args.seed + n),
                                    "--url", f"ws://127.0.0.1:{gateway_port}/ocpp", "--id-prefix", f"F{n}-",
                                    "--expected", str(home / f"expected-{n}.jsonl")],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for n in range(args.fleets)]
        procs += fleets
        lines = [iter(f.stdout) for f in fleets]
        print(f"soak: {share * args.fleets} chargers over {args.fleets} processes for {args.minutes:g} min "
              f"(folder {home})", flush=True)
        summaries = []
        while True:
            reports = [json.loads(next(it, "{}") or "{}") for it in lines]
            if any("summary" in r or not r for r in reports):
                summaries = [r for r in reports if "summary" in r]
                break
            calls = sum(r["calls"] for r in reports)
            p50 = sum(r["p50"] * r["calls"] for r in reports) / max(1, calls)
            print(f"{reports[0]['t']:6.0f} s  open {open_connections(admin_port):6d}  gateway rss {tree_rss_mib(gateway.pid):7.1f} MiB  "
                  f"worker rss {rss_mib(worker.pid):7.1f} MiB  answers {calls / args.window:7.0f}/s  "
                  f"p50 {p50:7.1f} ms  p99 (worst process) {max(r['p99'] for r in reports):7.1f} ms  load {_load()}", flush=True)
        for f in fleets:
            rest = [json.loads(line) for line in f.stdout if line.startswith("{")]
            summaries += [r for r in rest if "summary" in r]
            f.wait(120)
        sent, answered = sum(s["sent"] for s in summaries), sum(s["answered"] for s in summaries)
        print(f"calls {sent:,} sent, {answered:,} answered; unfinished {sum(s['unfinished'] for s in summaries)}")
        for s in summaries:
            print(s["summary"])

        from simulator import expectations

        expected = []
        for n in range(args.fleets):
            expected += expectations.load(home / f"expected-{n}.jsonl")[0]
        # The gateway is stopped first: its last records (connection events) are on the topic before it is counted.
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(120)
        return _check(args, kafka, env, expected, worker)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    proc.kill()
        broker.stop()


def _check(args: argparse.Namespace, kafka: KafkaSettings, env: dict[str, str], expected: list[dict],
           worker: subprocess.Popen) -> int:
    """After the fleet: wait until the worker group's committed offsets reach the topic's end (lag 0, for
    a while), then count frames (topic against ClickHouse) and compare sessions; 0 when nothing is lost."""
    from simulator import expectations

    topic = kafka.topic(FRAMES.name)
    partitions = asyncio.run(wait_for_topics(kafka)).partitions(topic)
    on_topic = asyncio.run(topic_records(kafka, topic, partitions))
    print(f"after the run: {on_topic:,} records on {topic}; waiting for the worker to drain them "
          f"(load average {_load()}; cap {args.drain_cap:g} s)", flush=True)
    drain = asyncio.run(wait_drained(kafka, APP_ID, topic, partitions, cap_s=args.drain_cap,
                                     say=lambda line: print(f"{line}  worker rss {rss_mib(worker.pid):.0f} MiB  "
                                                            f"load {_load()}", flush=True)))
    print(f"drained: {drain.drained} after {drain.seconds:.0f} s (lag {drain.last.total:,})", flush=True)
    # Sessions stopped at the run's end close once their status window passes (wall time moves an idle
    # partition's clock on): poll until the comparison stops changing.
    previous, settled_at, problems = None, time.monotonic() + SESSIONS_SETTLE_S, []
    while True:
        time.sleep(10)
        problems = expectations.session_differences(expected, query(env, "SELECT * FROM ocpp.sessions FINAL"),
                                                    status_window_s=STATUS_WINDOW_S)
        summary = Counter(m.kind.value for m in problems)
        print(f"  sessions: {dict(summary) or 'all match'}", flush=True)
        if not problems or (summary == previous and time.monotonic() > settled_at) \
                or time.monotonic() > settled_at + SESSIONS_SETTLE_CAP_S:
            break
        previous = summary
    in_clickhouse = int(query(env, "SELECT count() AS n FROM ocpp.frames FINAL")[0]["n"])
    lost_frames = on_topic - in_clickhouse
    print(frames_verdict(on_topic, in_clickhouse))
    print(f"sessions: {len(expected):,} by the chargers, {len(problems):,} mismatches in ClickHouse")
    for line in breakdown(problems, expected):
        print("  " + line)
    missing = [m for m in problems if m.kind is MismatchKind.MISSING]
    for m in missing[:args.explain]:
        print(f"  frames of missing {m.charge_point_id}/{m.transaction_id} (transaction CALLs, their results, errors):")
        for row in query(env, transaction_frames_sql(m.charge_point_id)):
            print(f"    {row['received_at']} {row['direction']:3s} {row['message_type']} {row['action'] or '-':16s} {row['raw']}")
    return 0 if drain.drained and lost_frames == 0 and not problems else 1


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
