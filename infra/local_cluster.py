"""A local Kafka cluster of several KRaft nodes on loopback (``ocpp-pipeline kafka start --brokers 3``).

Each node is its own process (broker and controller combined) with its own folder
``$OCPP_HOME/kafka/cluster-<port>/node-<id>/`` (config, data, logs, pid file), started from the same
fetched jars as the single broker. Node ``i`` listens on ``port + 2(i-1)`` for clients and on
``controller_port + 2(i-1)`` for the quorum. With three nodes, internal topics and topics created
without an explicit factor get 3 replicas and ``min.insync.replicas`` 2: acks=all then means two copies
on two processes, so any one node can be SIGKILLed without losing an acknowledged record.

Sizing: three nodes of ``heap_mb`` (512 MiB) each, serial collector and two JIT threads, fit beside the
pipeline on a 2-core, 24 GiB machine (about 2.4 GiB resident for the three, measured in RELIABILITY.md).

With one broker (the default) this is the single broker of :mod:`infra.local_kafka`, in its usual folder.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

from infra.errors import BrokerError
from infra.kafka_close import settle
from infra.local_kafka import BrokerStatus, LocalBroker, Node, cluster_id
from infra.settings import KafkaSettings, LocalKafkaSettings


def cluster_nodes(settings: LocalKafkaSettings) -> list[Node]:
    """The nodes ``settings`` describes (pure): one node in ``run_dir``, or ``brokers`` nodes under ``cluster_dir``."""
    if settings.brokers == 1:
        return [Node.single(settings)]
    ports = settings.node_ports()
    voters = ",".join(f"{i + 1}@{settings.host}:{controller}" for i, (_, controller) in enumerate(ports))
    return [
        Node(i + 1, port, controller, settings.cluster_dir / f"node-{i + 1}", voters, cluster_size=len(ports),
             tls_port=tls_port)
        for i, ((port, controller), tls_port) in enumerate(zip(ports, settings.tls_ports()))
    ]


def started_brokers(settings: LocalKafkaSettings) -> int:
    """How many nodes the cluster in ``settings.cluster_dir`` was started with (``settings.brokers`` if
    none was), so ``kafka status`` and ``kafka stop`` without ``--brokers`` find every node."""
    marker = settings.cluster_dir / "brokers"
    try:
        return int(marker.read_text().strip())
    except (FileNotFoundError, ValueError):
        return settings.brokers


@dataclass(frozen=True)
class ClusterStatus:
    nodes: list[BrokerStatus]
    bootstrap_servers: str

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    @property
    def pids(self) -> list[int | None]:
        return [node.pid for node in self.nodes]

    def describe(self) -> str:
        if len(self.nodes) == 1:
            return self.nodes[0].describe()
        up = sum(node.running for node in self.nodes)
        head = f"kafka cluster of {len(self.nodes)} nodes, {up} running, bootstrap {self.bootstrap_servers}"
        return "\n".join([head] + [f"  node {i + 1}: {node.describe()}" for i, node in enumerate(self.nodes)])


class LocalCluster:
    """Start, probe and stop every node of the local cluster; each node is a :class:`LocalBroker`."""

    def __init__(self, settings: LocalKafkaSettings) -> None:
        self.settings = settings
        self.brokers = [LocalBroker(settings, node) for node in cluster_nodes(settings)]

    @classmethod
    def found(cls, settings: LocalKafkaSettings) -> "LocalCluster":
        """The cluster as it was started on these ports (for ``status`` and ``stop``)."""
        return cls(settings.model_copy(update={"brokers": started_brokers(settings)}))

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    def status(self) -> ClusterStatus:
        return ClusterStatus([broker.status() for broker in self.brokers], self.bootstrap_servers)

    def start(self) -> ClusterStatus:
        """Start every node that is not running (all at once: a node answers only once a majority of the
        quorum runs), then wait until each answers and the cluster reports all its brokers."""
        if len(self.brokers) == 1:
            self.brokers[0].start()
            return self.status()
        self.settings.cluster_dir.mkdir(parents=True, exist_ok=True)
        (self.settings.cluster_dir / "brokers").write_text(f"{len(self.brokers)}\n")
        identity = self._cluster_id()
        try:
            for broker in self.brokers:
                if broker.pid() is None:
                    broker.launch(identity)
            for broker in self.brokers:
                broker.wait_ready()
            self._wait_for_members()
        except BrokerError:
            self.stop()
            raise
        return self.status()

    def start_node(self, index: int) -> BrokerStatus:
        """Start one node again (after a fault test killed it) and wait until it answers."""
        broker = self.brokers[index]
        if broker.pid() is None:
            broker.launch(self._cluster_id())
        broker.wait_ready()
        return broker.status()

    def _cluster_id(self) -> str:
        """One id for every node, kept beside them so a node restarted later joins the same cluster."""
        path = self.settings.cluster_dir / "cluster.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cluster_id())
        return path.read_text().strip()

    def _wait_for_members(self) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        seen = 0
        probe = self.brokers[0].probe_settings()
        while time.monotonic() < deadline:
            seen = registered_brokers(self.bootstrap_servers, settings=probe)
            if seen >= len(self.brokers):
                return
            time.sleep(0.25)
        raise BrokerError(f"only {seen} of {len(self.brokers)} brokers registered within "
                          f"{self.settings.start_timeout_s:.0f} s")

    def stop(self, timeout_s: float = 60.0) -> int:
        """Stop every node this folder started; returns how many were stopped.

        All nodes get SIGTERM at once: stopped one after the other, the last ones would lose their
        quorum and wait for it in their controlled shutdown.
        """
        signalled = []
        for broker in self.brokers:
            pid = broker.pid()
            if pid is not None:
                broker.kill(signal.SIGTERM)
                signalled.append(broker)
        for broker in self.brokers:
            broker.stop(timeout_s, signalled=broker in signalled)
        if len(self.brokers) > 1:
            (self.settings.cluster_dir / "brokers").unlink(missing_ok=True)  # `kafka status` finds the default again
        return len(signalled)


def registered_brokers(bootstrap_servers: str, timeout_s: float = 5.0, settings: KafkaSettings | None = None) -> int:
    """How many brokers the cluster's metadata lists (0 if nobody answers); ``settings``: how to connect to
    a secured cluster (its bootstrap servers are used instead)."""

    async def probe() -> int:
        from aiokafka import AIOKafkaClient

        options = settings.client_options() if settings is not None else {"bootstrap_servers": bootstrap_servers}
        client = AIOKafkaClient(**options, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            return len(client.cluster.brokers())
        except Exception:
            return 0
        finally:
            await client.close()
            await settle(settings)

    return asyncio.run(probe())

