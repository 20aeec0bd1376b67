"""The long versions of the distributed fault tests (``tests/reliability/``), with their figures.

    .venv/bin/python -m bench.faults leader  --chargers 300 --minutes 3     # partition leader SIGKILLed (3-node cluster)
    .venv/bin/python -m bench.faults gateway --chargers 1000 --minutes 3    # one of two gateways SIGKILLed
    .venv/bin/python -m bench.faults clickhouse --down 180 --batches 30     # ClickHouse failing for minutes

Each run starts what it needs in a temporary folder on free ports (a 3-node cluster or one broker, from
the jars fetched into ``.local/``) and stops it by pid at the end; nothing of ``make run`` is touched.
Figures go to stdout as one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from infra.local_cluster import LocalCluster
from infra.local_kafka import LocalBroker
from infra.settings import KafkaSettings
from simulator.settings import SimulatorSettings
# Imported before the run replaces OCPP_HOME: the jars are found in the project's `.local/`.
from tests.conftest import broker_settings_in
from tests.reliability.test_clickhouse_outage import outage
from tests.reliability.test_cluster_faults import gateway_kill, leader_kill, wait_for_full_isr


def fleet(chargers: int, minutes: float, seed: int) -> SimulatorSettings:
    return SimulatorSettings(url="ws://unused", chargers=chargers, duration_s=minutes * 60, time_scale=300,
                             quirky_share=0.2, seed=seed, ramp=100, answer_timeout_s=30, ocpp="1.6", ocpp_mix=None)


def isolated_home() -> Path:
    """A home of its own for every process this run starts (never make run's ``.local``)."""
    home = Path(tempfile.mkdtemp(prefix="ocpp-faults-"))
    os.environ["OCPP_HOME"] = str(home)
    for name in [n for n in os.environ if n.startswith("OCPP_") and n != "OCPP_HOME"]:
        del os.environ[name]
    return home


def leader(args: argparse.Namespace, home: Path) -> dict:
    cluster = LocalCluster(broker_settings_in(home, brokers=3))
    started = time.monotonic()
    cluster.start()
    figures: dict = {"cluster_start_s": round(time.monotonic() - started, 1)}
    try:
        topic = f"bench.leader.{uuid.uuid4().hex[:8]}"
        result = leader_kill(cluster, topic, fleet(args.chargers, args.minutes, args.seed),
                             kill_after_s=args.minutes * 60 / 3, down_s=args.down)
        rejoined = time.monotonic()
        isr = wait_for_full_isr(KafkaSettings(bootstrap_servers=cluster.bootstrap_servers), topic, timeout_s=300)
        figures |= dataclasses.asdict(result) | {"isr_full_again_s": round(time.monotonic() - rejoined, 1),
                                                 "isr_full": all(len(r) == 3 for _, r in isr.values())}
    finally:
        cluster.stop()
    return figures


def gateway(args: argparse.Namespace, home: Path) -> dict:
    broker = LocalBroker(broker_settings_in(home))
    broker.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=4, topic_prefix="bench.")
        result = gateway_kill(kafka, home, fleet(args.chargers, args.minutes, args.seed), kill_after_s=args.minutes * 60 / 3)
    finally:
        broker.stop()
    figures = dataclasses.asdict(result)
    figures["spread"] = list(result.spread.values())
    return figures


def clickhouse(args: argparse.Namespace, home: Path) -> dict:
    broker = LocalBroker(broker_settings_in(home))
    broker.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=2)
        return outage(kafka, uuid.uuid4().hex[:8], home, batches=args.batches, chargers_per_batch=args.chargers,
                      down_s=args.down)
    finally:
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fault", choices=["leader", "gateway", "clickhouse"])
    parser.add_argument("--chargers", type=int, default=300, help="simulated chargers (clickhouse: per batch of frames)")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the fleet runs (the fault at a third)")
    parser.add_argument("--down", type=float, default=20.0, help="seconds the killed node / ClickHouse stays down")
    parser.add_argument("--batches", type=int, default=10, help="clickhouse: batches of frames produced while it is down")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    home = isolated_home()
    figures = {"leader": leader, "gateway": gateway, "clickhouse": clickhouse}[args.fault](args, home)
    print(json.dumps({"fault": args.fault, **{k: v for k, v in vars(args).items() if k != "fault"}, **figures}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
