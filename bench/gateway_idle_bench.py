"""Idle chargers at scale: gateway memory per connection, idle CPU and event-loop stalls at 10k / 50k / 100k.

    .venv/bin/python -m bench.gateway_idle_bench --steps 10000,50000,100000 --gateway-processes 6 --client-processes 8

A gateway (``--gateway-processes``, 1 by default) publishing to Kafka. A process holds at most
RLIMIT_NOFILE connections: where the hard limit is low (20,000 in this container, not raisable without
CAP_SYS_RESOURCE), 100k chargers need ``--gateway-processes 6``; memory is summed over the processes.
The chargers are split over ``--client-processes`` processes, each connecting from its own loopback
source addresses (127.0.0.2, .3, ...: one address has ~28k ephemeral ports), each charger sends one
BootNotification, then a Heartbeat every ``--heartbeat-s`` (300 s, random phase) and answers the
gateway's WebSocket pings (every 25 s, the default). At each step: RSS growth per connection since
before the first charger, the gateway's CPU while idle, and the longest event-loop stall the gateway
saw (``ocpp_gateway_event_loop_lag_max_seconds``, ramp-up included). Targets: <= 15 KiB per connection,
no stall > 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import sys
import time
import urllib.request
from datetime import datetime, timezone

from bench.gateway_bench import ROOT, Server, free_port, raise_fd_limit

PER_SOURCE_ADDRESS = 20_000


def start_gateway(bootstrap: str, processes: int) -> Server:
    import subprocess

    port, admin_port = free_port(), free_port()
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "OCPP_GATEWAY_ID": "idle-bench"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_pipeline", "gateway", "--host", "127.0.0.1", "--port", str(port), "--processes", str(processes),
         "--admin-port", str(admin_port), "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=2).close()
            return Server("gateway", proc, port, admin_port)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gateway did not start")


def rss_kib(server: Server) -> int:
    """RSS of the gateway: all its processes (the supervisor's included)."""
    total = 0
    for pid in server.pids():
        try:
            total += next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def metric(admin_port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=30).read().decode()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def _hold(port: int, first: int, count: int, heartbeat_s: float, opened, stop) -> None:
    from websockets.asyncio.client import connect

    sem = asyncio.Semaphore(100)
    sockets = []

    async def one(n: int) -> None:
        source = f"127.0.0.{2 + n // PER_SOURCE_ADDRESS}"
        async with sem:
            for _ in range(5):
                try:
                    ws = await connect(f"ws://127.0.0.1:{port}/ocpp/IDLE-{n:06d}", subprotocols=["ocpp1.6"],
                                       compression=None, max_queue=2, open_timeout=120, local_addr=(source, 0))
                    break
                except (OSError, asyncio.TimeoutError, Exception):
                    await asyncio.sleep(1)
            else:
                return
            await ws.send('[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
            await ws.recv()
        sockets.append(ws)
        with opened.get_lock():
            opened.value += 1
        await asyncio.sleep(random.uniform(0, heartbeat_s))
        while True:
            try:
                await ws.send('[2,"h","Heartbeat",{}]')
                await ws.recv()
            except Exception:
                return
            await asyncio.sleep(heartbeat_s)

    tasks = [asyncio.create_task(one(n)) for n in range(first, first + count)]
    while not stop.is_set():
        await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def _client(port: int, first: int, count: int, heartbeat_s: float, opened, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_fd_limit()
    import uvloop

    uvloop.run(_hold(port, first, count, heartbeat_s, opened, stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10000,50000,100000")
    parser.add_argument("--client-processes", type=int, default=4, help="charger processes per step's new chargers")
    parser.add_argument("--gateway-processes", type=int, default=1,
                        help="gateway processes (each holds at most RLIMIT_NOFILE connections: 20k hard here)")
    parser.add_argument("--heartbeat-s", type=float, default=300.0)
    parser.add_argument("--idle-s", type=float, default=30.0, help="idle window measured at each step")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    raise_fd_limit()
    steps = [int(s) for s in args.steps.split(",")]
    context = multiprocessing.get_context("spawn")
    opened = context.Value("i", 0)
    stop = context.Event()
    gateway = start_gateway(args.bootstrap, args.gateway_processes)
    clients = []
    rows = []
    try:
        time.sleep(2)
        base_rss = rss_kib(gateway)
        have = 0
        for target in steps:
            new = target - have
            per = -(-new // args.client_processes)
            for k in range(args.client_processes):
                first = have + k * per
                count = min(per, target - first)
                if count > 0:
                    p = context.Process(target=_client, args=(gateway.port, first, count, args.heartbeat_s, opened, stop))
                    p.start()
                    clients.append(p)
            ramp_started = time.monotonic()
            while opened.value < target and time.monotonic() - ramp_started < 900:
                time.sleep(1)
            ramp_s = time.monotonic() - ramp_started
            have = target
            time.sleep(10)  # settle: the last handshakes, the first collections
            cpu0, t0 = gateway.cpu_s(), time.monotonic()
            time.sleep(args.idle_s)
            idle_cpu = (gateway.cpu_s() - cpu0) / (time.monotonic() - t0)
            row = {
                "connections": opened.value, "target": target, "ramp_s": round(ramp_s, 1),
                "kib_per_conn": (rss_kib(gateway) - base_rss) / max(opened.value, 1),
                "rss_mib": rss_kib(gateway) / 1024, "idle_cpu_pct": idle_cpu * 100, "gateway_processes": args.gateway_processes,
                "open_connections_metric": metric(gateway.admin_port, "ocpp_gateway_open_connections"),
                "loop_lag_max_ms": metric(gateway.admin_port, "ocpp_gateway_event_loop_lag_max_seconds") * 1000,
            }
            rows.append(row)
            print(f"{row['connections']:>7} connections (ramp {row['ramp_s']:.0f} s): {row['kib_per_conn']:.1f} KiB/conn, "
                  f"RSS {row['rss_mib']:.0f} MiB, idle CPU {row['idle_cpu_pct']:.1f} % of a core, "
                  f"max loop stall {row['loop_lag_max_ms']:.0f} ms", flush=True)
            if opened.value < target:
                print(f"stopped: only {opened.value} of {target} chargers connected", flush=True)
                break
    finally:
        stop.set()
        for p in clients:
            p.join(120)
            if p.is_alive():
                p.kill()
        gateway.stop()
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; targets: <= 15 KiB/conn, stall <= 100 ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
