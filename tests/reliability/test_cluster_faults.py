"""Faults of the distributed setup, on the real parts on loopback (short versions of RELIABILITY.md's
runs; the long ones are ``bench/faults.py``):

- the leader of a frames partition SIGKILLed under a simulated fleet, on a 3-node cluster (RF 3,
  min.insync.replicas 2): no acknowledged transaction frame missing, answers pause (measured) and resume,
  the node restarts and rejoins every ISR;
- two gateway processes behind a load balancer, one SIGKILLed: every charger reconnects to the other,
  no acknowledged frame lost, no transaction id issued twice to one charger.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from infra.local_cluster import LocalCluster
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.envelope import FrameEnvelope
from schemas.topics import FRAMES
from simulator.fleet import FleetRun, run_fleet
from simulator.link import LinkStats
from simulator.settings import SimulatorSettings
from tests.conftest import free_port
from tests.gateway.live import gateway_settings, read_envelopes, running_gateway
from tests.reliability.balancer import Balancer

ROOT = Path(__file__).resolve().parents[2]


def fleet(url: str, **overrides: object) -> SimulatorSettings:
    base: dict[str, object] = {"url": url, "chargers": 30, "duration_s": 30, "time_scale": 300, "quirky_share": 0.2,
                               "seed": 11, "ramp": 50, "answer_timeout_s": 30, "ocpp": "1.6", "ocpp_mix": None}
    return SimulatorSettings(**(base | overrides))


@dataclass
class AckTimeline:
    """When durable answers arrived: the longest stretch without one is the answer pause a fault causes."""

    samples: list[tuple[float, int]]

    def longest_pause_s(self, after: float = 0.0) -> float:
        longest, last_change, last_count = 0.0, None, None
        for at, count in self.samples:
            if at < after:
                last_change, last_count = at, count
                continue
            if count != last_count:
                if last_change is not None:
                    longest = max(longest, at - last_change)
                last_change, last_count = at, count
        return longest


async def sample_acknowledged(stats: LinkStats, task: asyncio.Task, every_s: float = 0.1) -> AckTimeline:
    started, samples = time.monotonic(), []
    while not task.done():
        samples.append((time.monotonic() - started, len(stats.acknowledged or [])))
        await asyncio.wait([task], timeout=every_s)
    return AckTimeline(samples)


async def leaders_and_isr(kafka: KafkaSettings, topic: str) -> dict[int, tuple[int, list[int]]]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: (p["leader"], sorted(p["isr"])) for p in described["partitions"]}


def missing(acknowledged: set[tuple[str, str]], envelopes: list[FrameEnvelope]) -> set[tuple[str, str]]:
    return acknowledged - {(e.charge_point_id, e.message_id) for e in envelopes if e.direction == "in"}


@dataclass(frozen=True)
class LeaderKill:
    acknowledged: int
    missing: int
    pause_s: float
    internal_errors: int
    node: int
    summary: str


def leader_kill(cluster: LocalCluster, topic: str, settings: SimulatorSettings, *, kill_after_s: float,
                down_s: float) -> LeaderKill:
    """A fleet through one gateway onto ``topic`` (RF 3 on ``cluster``); the leader of partition 0 SIGKILLed
    after ``kill_after_s`` and started again ``down_s`` later; then every acknowledged frame is looked up."""
    kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers)

    async def scenario() -> tuple[FleetRun, AckTimeline, set[tuple[str, str]], list[FrameEnvelope], int]:
        async with running_gateway(gateway_settings(publish_timeout_s=5.0), kafka, topic) as gateway:
            leaders = await leaders_and_isr(kafka, topic)
            assert all(len(isr) == 3 for _, isr in leaders.values()), leaders  # RF 3 without being told
            stats = LinkStats()
            run = asyncio.create_task(run_fleet(settings.model_copy(update={"url": f"ws://127.0.0.1:{gateway.port}/ocpp"}),
                                                stats=stats, record_acknowledged=True))
            timeline = asyncio.create_task(sample_acknowledged(stats, run))
            await asyncio.sleep(kill_after_s)
            leader = leaders[0][0]
            cluster.brokers[leader - 1].kill(signal.SIGKILL)
            await asyncio.sleep(down_s)
            await asyncio.to_thread(cluster.start_node, leader - 1)
            result, acks = await run, await timeline
            assert await gateway.publisher.flush(60)
        acknowledged = {(cp, mid) for cp, mid, _ in result.stats.acknowledged}
        envelopes = await read_envelopes(kafka, topic, lambda e: not missing(acknowledged, e), timeout_s=90)
        return result, acks, acknowledged, envelopes, leader

    run, acks, acknowledged, envelopes, leader = asyncio.run(scenario())
    assert run.unfinished == 0 and run.ledger.start_refused == 0, run.summary()
    return LeaderKill(len(acknowledged), len(missing(acknowledged, envelopes)), acks.longest_pause_s(after=kill_after_s - 0.5),
                      run.stats.call_errors.get("InternalError", 0), leader, run.summary())


def wait_for_full_isr(kafka: KafkaSettings, topic: str, timeout_s: float = 60) -> dict[int, tuple[int, list[int]]]:
    deadline, isr = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        isr = asyncio.run(leaders_and_isr(kafka, topic))
        if all(len(replicas) == 3 for _, replicas in isr.values()):
            break
        time.sleep(1)
    return isr


def test_the_leader_of_a_frames_partition_sigkilled_under_a_fleet_loses_no_acknowledged_frame(
        cluster: LocalCluster, unique: str) -> None:
    topic = f"test.leader.{unique}"
    result = leader_kill(cluster, topic, fleet("ws://unused"), kill_after_s=8, down_s=8)
    assert result.acknowledged > 200 and result.missing == 0, f"{result.missing} acknowledged frames missing\n{result.summary}"
    # the node came back and caught up: every partition has three in-sync replicas again
    isr = wait_for_full_isr(KafkaSettings(bootstrap_servers=cluster.bootstrap_servers), topic)
    assert all(len(replicas) == 3 for _, replicas in isr.values()), isr
    print(f"\nleader SIGKILL (node {result.node} of 3): {result.acknowledged} transaction CALLs acknowledged, 0 missing; "
          f"longest pause of durable answers {result.pause_s:.1f} s; {result.internal_errors} InternalError (resent); "
          f"node rejoined every ISR")


@dataclass(frozen=True)
class GatewayKill:
    spread: dict[int, int]  # chargers each gateway took before the kill
    killed_port: int
    killed_returncode: int | None
    reconnects: int
    acknowledged: int
    missing: int
    transaction_ids: int
    repeated: dict[str, dict[int, list[str]]]  # per charger, transaction ids given to different starts
    unfinished: int
    summary: str


def gateway_kill(kafka: KafkaSettings, logs: Path, settings: SimulatorSettings, *, kill_after_s: float) -> GatewayKill:
    """Two gateway processes behind a :class:`Balancer`, ``settings``' fleet over both; the first SIGKILLed
    after ``kill_after_s``; then every acknowledged frame is looked up on ``kafka``'s frames topic."""
    asyncio.run(ensure_topics(kafka, [FRAMES]))
    ports = [free_port(), free_port()]
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "OCPP_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
           "OCPP_GATEWAY_HOST": "127.0.0.1", **({"OCPP_KAFKA_PARTITIONS": str(kafka.partitions)} if kafka.partitions else {})}
    gateways = []
    for n, port in enumerate(ports):
        with open(logs / f"gateway-{n}.log", "wb") as log:
            gateways.append(subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway", "--processes", "1", "--port", str(port)], cwd=ROOT,
                                             env={**env, "OCPP_GATEWAY_ID": f"gw-{n}"}, stdout=log, stderr=subprocess.STDOUT))
    try:
        async def scenario() -> tuple[FleetRun, dict[int, int], list[FrameEnvelope]]:
            for port in ports:
                for _ in range(300):
                    try:
                        (await asyncio.open_connection("127.0.0.1", port))[1].close()
                        break
                    except OSError:
                        await asyncio.sleep(0.1)
            async with Balancer(ports).running() as balancer:
                run = asyncio.create_task(run_fleet(settings.model_copy(update={"url": f"ws://127.0.0.1:{balancer.port}/ocpp"}),
                                                    record_acknowledged=True))
                await asyncio.sleep(kill_after_s)
                spread = dict(balancer.accepted)
                gateways[0].send_signal(signal.SIGKILL)  # no 1001 close, no flush: the process just ends
                result = await run
            acknowledged = {(cp, mid) for cp, mid, _ in result.stats.acknowledged}
            envelopes = await read_envelopes(kafka, kafka.topic(FRAMES.name), lambda e: not missing(acknowledged, e),
                                             timeout_s=90)
            return result, spread, envelopes

        run, spread, envelopes = asyncio.run(scenario())
    finally:
        for proc in gateways:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    acknowledged = {(cp, mid) for cp, mid, _ in run.stats.acknowledged}
    # A start resent after its answer was lost (the gateway killed first) may get its id again: the same
    # transaction. Repeated means one id for two different starts of one charger.
    starts = {(e.charge_point_id, e.connection_id, e.message_id): e.frame for e in envelopes
              if e.direction == "in" and e.action == "StartTransaction" and e.message_type == 2}

    def start_of(answer: FrameEnvelope) -> str:
        """The start's content (a resend has the same), or its message id when its CALL is not on the topic."""
        frame = starts.get((answer.charge_point_id, answer.connection_id, answer.message_id))
        return json.dumps(json.loads(frame)[3], sort_keys=True) if frame else f"message {answer.message_id}"

    issued: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    answers = 0
    for e in envelopes:
        if e.direction == "out" and e.action == "StartTransaction" and e.message_type == 3:
            answers += 1
            issued[e.charge_point_id][json.loads(e.frame)[2]["transactionId"]].add(start_of(e))
    repeated = {cp: {tx: sorted(s) for tx, s in ids.items() if len(s) > 1} for cp, ids in issued.items()
                if any(len(s) > 1 for s in ids.values())}
    return GatewayKill(spread, ports[0], gateways[0].returncode, run.stats.reconnects, len(acknowledged),
                       len(missing(acknowledged, envelopes)), answers, repeated,
                       run.unfinished, run.summary())


def test_a_gateway_sigkilled_behind_a_balancer_loses_nothing_and_repeats_no_transaction_id(
        kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}.", "partitions": 2})
    result = gateway_kill(kafka, tmp_path, fleet("ws://unused", chargers=40), kill_after_s=10)
    assert all(count >= 10 for count in result.spread.values()), result.spread  # both gateways had chargers
    assert result.killed_returncode == -signal.SIGKILL
    assert result.acknowledged > 200 and result.missing == 0, f"{result.missing} acknowledged frames missing\n{result.summary}"
    assert result.reconnects >= result.spread[result.killed_port] and result.unfinished == 0, result.summary
    assert result.transaction_ids >= 20 and result.repeated == {}, result.repeated
    print(f"\ngateway SIGKILL behind a balancer: {' + '.join(map(str, result.spread.values()))} chargers on the two gateways, "
          f"{result.reconnects} reconnects, {result.acknowledged} transaction CALLs acknowledged, 0 missing, "
          f"{result.transaction_ids} transaction ids issued, none twice for one charger")
