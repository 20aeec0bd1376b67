"""Soak: thousands of simulated chargers held open on one gateway process for minutes; the
gateway's memory (RSS) and the chargers' answer latency (p50 / p99) per window must stay flat.

    .venv/bin/python -m bench.soak                                   # 10,000 chargers, 10 minutes
    .venv/bin/python -m bench.soak --chargers 1000 --minutes 1 --window 10

Needs the local broker (``ocpp-pipeline kafka start``). The gateway runs as its own process (its
RSS is read from /proc); the fleet runs here on loopback. Frames go to a fresh topic prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from simulator.fleet import run_fleet
from simulator.link import LinkStats
from simulator.settings import SimulatorSettings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return kids


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants: the gateway is a supervisor with one process per core
    (``OCPP_GATEWAY_PROCESSES``), and the supervisor alone holds a few tens of MiB whatever the load."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += rss_mib(current)
        except OSError:
            continue
        todo += _children(current)
    return total


def open_connections(port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return int(float(next(l.split()[1] for l in text.splitlines() if l.startswith("ocpp_gateway_open_connections "))))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def soak(args: argparse.Namespace, port: int, admin_port: int, pid: int) -> list[dict]:
    stats = LinkStats(recent_ms=[])
    settings = SimulatorSettings(url=f"ws://127.0.0.1:{port}/ocpp", chargers=args.chargers, connectors="1-2",
                                 duration_s=args.minutes * 60, time_scale=args.time_scale, ramp=args.ramp,
                                 quirky_share=0.1, seed=args.seed, answer_timeout_s=60)
    fleet = asyncio.create_task(run_fleet(settings, stats=stats))
    rows, started = [], time.monotonic()
    while not fleet.done():
        await asyncio.wait([fleet], timeout=args.window)
        window, stats.recent_ms = stats.recent_ms, []
        rows.append({"t": time.monotonic() - started, "open": await asyncio.to_thread(open_connections, admin_port),
                     "rss": tree_rss_mib(pid), "calls": len(window), "p50": pct(window, 0.5), "p99": pct(window, 0.99)})
        r = rows[-1]
        print(f"{r['t']:6.0f} s  open {r['open']:6d}  rss {r['rss']:7.1f} MiB  answers {r['calls'] / args.window:7.0f}/s  "
              f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:7.1f} ms", flush=True)
    run = fleet.result()
    print(run.summary())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--window", type=float, default=30, help="seconds per reported window")
    parser.add_argument("--time-scale", type=float, default=10)
    parser.add_argument("--ramp", type=float, default=500, help="chargers connecting per second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    port, admin_port = free_port(), free_port()
    env = {**os.environ, "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(port), "OCPP_GATEWAY_ID": "soak",
           "OCPP_GATEWAY_ADMIN_PORT": str(admin_port),
           "OCPP_KAFKA_TOPIC_PREFIX": f"soak{uuid.uuid4().hex[:6]}.", "OCPP_KAFKA_PARTITIONS": "4"}
    log = open(ROOT / ".local" / "soak-gateway.log", "wb")
    gateway = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway", "--log-level", "warning"], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                open_connections(admin_port)
                break
            except OSError:
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise SystemExit("the gateway did not start; see .local/soak-gateway.log")
                time.sleep(0.3)
        rows = asyncio.run(soak(args, port, admin_port, gateway.pid))
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(120)
        log.close()
    steady = [r for r in rows if r["open"] >= 0.99 * args.chargers and r["calls"]]
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        print(f"steady windows {len(steady)}: rss {first['rss']:.1f} -> {last['rss']:.1f} MiB "
              f"(x{last['rss'] / first['rss']:.2f}); p99 {first['p99']:.1f} -> {last['p99']:.1f} ms; "
              f"p99 median {statistics.median(r['p99'] for r in steady):.1f} ms, max {max(r['p99'] for r in steady):.1f} ms")


if __name__ == "__main__":
    main()
