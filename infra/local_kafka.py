"""A real single-node Apache Kafka broker (KRaft, combined broker + controller) for this machine.

No Docker engine and no download but Maven Central exist here, so the broker runs from the
official Apache Kafka jars, which Maven fetches once (``infra/kafka/pom.xml``) into
``$OCPP_HOME/kafka/<version>/libs``. Everything the broker writes (config, data, logs, pid file)
lives in ``$OCPP_HOME/kafka/broker-<port>/``.

``stop`` ends exactly the process ``start`` launched: it reads the pid file and checks that the
pid still runs ``kafka.Kafka`` with this broker's config before it signals anything.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.errors import BrokerError, PrerequisiteMissing
from infra.settings import LocalKafkaSettings

MIN_JAVA = 17
_COMPLETE_MARK = ".complete"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap_servers: str
    version: str
    run_dir: Path

    def describe(self) -> str:
        if self.running:
            return f"kafka {self.version} running, pid {self.pid}, bootstrap {self.bootstrap_servers} ({self.run_dir})"
        return f"kafka {self.version} not running (bootstrap {self.bootstrap_servers})"


@dataclass(frozen=True)
class Node:
    """Where one KRaft node of the local broker or cluster listens and keeps its files."""

    node_id: int
    port: int
    controller_port: int
    run_dir: Path
    voters: str  # controller.quorum.voters of the whole cluster
    cluster_size: int = 1

    @classmethod
    def single(cls, settings: LocalKafkaSettings) -> "Node":
        """The one node of ``ocpp-pipeline kafka start`` (the layout every earlier version used)."""
        return cls(1, settings.port, settings.controller_port, settings.run_dir,
                   f"1@{settings.host}:{settings.controller_port}")


# --- prerequisites -----------------------------------------------------------------------------


def java_major_version(java: str = "java") -> int:
    """The major version of ``java`` on PATH; :class:`PrerequisiteMissing` if absent."""
    if shutil.which(java) is None:
        raise PrerequisiteMissing(f"Java {MIN_JAVA}+ is required to run the local Kafka broker: `{java}` is not on PATH")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise PrerequisiteMissing(f"cannot read the Java version from: {out.stderr.strip()!r}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> None:
    major = java_major_version()
    if major < MIN_JAVA:
        raise PrerequisiteMissing(f"Java {MIN_JAVA}+ is required to run Kafka 4; found Java {major}")


def pom_path() -> Path:
    return Path(str(resources.files("infra") / "kafka" / "pom.xml"))


# --- fetch -------------------------------------------------------------------------------------


def jars_present(settings: LocalKafkaSettings) -> bool:
    return (settings.libs_dir / _COMPLETE_MARK).exists()


def fetch(settings: LocalKafkaSettings, *, quiet: bool = True) -> Path:
    """Fetch the broker jars once with Maven; returns the libs folder. Idempotent."""
    libs = settings.libs_dir
    if jars_present(settings):
        return libs
    if shutil.which("mvn") is None:
        raise PrerequisiteMissing("Maven (`mvn`) is required once, to fetch the Kafka broker jars from Maven Central")
    require_java()
    libs.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-B", "-f", str(pom_path()), f"-Dkafka.version={settings.version}", f"-Dlibs.dir={libs}", "package"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stdout or "")[-4000:] + (proc.stderr or "")[-2000:]
        raise BrokerError(f"fetching Kafka {settings.version} jars with Maven failed (exit {proc.returncode}):\n{detail}")
    if not any(libs.glob(f"kafka_2.13-{settings.version}.jar")):
        raise BrokerError(f"Maven finished but {libs} holds no kafka_2.13-{settings.version}.jar")
    (libs / _COMPLETE_MARK).write_text(settings.version)
    return libs


def jars_size_bytes(settings: LocalKafkaSettings) -> int:
    return sum(p.stat().st_size for p in settings.libs_dir.glob("*.jar"))


# --- configuration -----------------------------------------------------------------------------


def server_properties(settings: LocalKafkaSettings, node: Node | None = None) -> str:
    """Broker config sized for a 2-core development machine: small internal topics; on a cluster of
    three or more nodes, internal and default topics get 3 replicas and min.insync.replicas 2."""
    node = node or Node.single(settings)
    data = node.run_dir / "data"
    host = settings.host
    replicas = min(3, node.cluster_size)
    min_isr = 2 if node.cluster_size >= 3 else 1
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": node.voters,
        "listeners": f"PLAINTEXT://{host}:{node.port},CONTROLLER://{host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": str(settings.partitions),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        # Internal topics default to 50 partitions: a slow first start and memory for nothing here.
        "offsets.topic.num.partitions": "4",
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.num.partitions": "4",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        # Consumers join at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4" if node.cluster_size == 1 else "2",
        "num.replica.fetchers": "1",
        "num.recovery.threads.per.data.dir": "1",
        "log.segment.bytes": str(128 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def log4j2_xml(run_dir: Path) -> str:
    log = run_dir / "logs" / "server.log"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log}" filePattern="{log}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def cluster_id() -> str:
    """Kafka's own format: a random UUID, base64url without padding (what `kafka-storage random-uuid`
    prints). Like Kafka, never one that starts with '-', which command lines read as an option."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


# --- process -----------------------------------------------------------------------------------


class LocalBroker:
    """Start, probe and stop one local broker; settings decide ports, version and folders."""

    def __init__(self, settings: LocalKafkaSettings, node: Node | None = None) -> None:
        self.settings = settings
        self.node = node or Node.single(settings)
        self.run_dir = self.node.run_dir
        self.bootstrap_servers = f"{settings.host}:{self.node.port}"
        self.config_path = self.run_dir / "server.properties"
        self.pid_path = self.run_dir / "broker.pid"
        self.stdout_path = self.run_dir / "logs" / "stdout.log"
        self._child: subprocess.Popen[bytes] | None = None  # set when this object started the broker

    def _java_command(self) -> list[str]:
        s = self.settings
        return [
            "java",
            f"-Xms{s.heap_mb}m",
            f"-Xmx{s.heap_mb}m",
            # One node on two cores: a small collector and fewer JIT threads start faster.
            "-XX:+UseSerialGC",
            "-XX:CICompilerCount=2",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.run_dir / 'logs'}",
            "-cp",
            f"{s.libs_dir}/*",
        ]

    def _write_config(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(server_properties(self.settings, self.node))
        (self.run_dir / "log4j2.xml").write_text(log4j2_xml(self.run_dir))

    def _format_storage(self, cluster: str | None = None) -> None:
        """Format the data folder once; every node of a cluster is formatted with the same ``cluster`` id."""
        if (self.run_dir / "data" / "meta.properties").exists():
            return
        cmd = self._java_command() + [
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster or cluster_id()}",
            f"--config={self.config_path}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"formatting the KRaft storage failed: {proc.stdout}{proc.stderr}")

    def _pid_from_file(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _is_our_process(self, pid: int) -> bool:
        """True if ``pid`` is alive and is the broker started with this config (not a reused pid)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        args = [a.decode(errors="replace") for a in cmdline]
        return "kafka.Kafka" in args and str(self.config_path) in args

    def pid(self) -> int | None:
        pid = self._pid_from_file()
        return pid if pid is not None and self._is_our_process(pid) else None

    def status(self) -> BrokerStatus:
        pid = self.pid()
        return BrokerStatus(
            running=pid is not None and answers_metadata(self.bootstrap_servers, timeout_s=5),
            pid=pid,
            bootstrap_servers=self.bootstrap_servers,
            version=self.settings.version,
            run_dir=self.run_dir,
        )

    def start(self) -> BrokerStatus:
        """Start the broker (fetching jars the first time); returns once it answers metadata.

        If this broker already runs, returns its status. If something else answers on the port,
        refuses rather than start a second broker that could not bind.
        """
        existing = self.pid()
        if existing is not None:
            self._wait_ready(existing)
            return self.status()
        self.launch()
        try:
            self._wait_ready(self._child.pid, self._child)
        except BrokerError:
            self.stop()
            raise
        return self.status()

    def launch(self, cluster: str | None = None) -> int:
        """Start the process and return its pid without waiting for it to answer (the nodes of a
        cluster only answer once a majority of them runs)."""
        if answers_metadata(self.bootstrap_servers, timeout_s=2):
            raise BrokerError(
                f"a Kafka broker not started from {self.run_dir} already answers on {self.bootstrap_servers}; "
                "use it (OCPP_KAFKA_BOOTSTRAP_SERVERS) or choose another OCPP_LOCAL_KAFKA_PORT"
            )
        if self._child is not None:
            self._child.wait()  # an earlier process of this node, already ended
        fetch(self.settings)
        require_java()
        self._write_config()
        self._format_storage(cluster)
        with open(self.stdout_path, "ab") as out:
            proc = subprocess.Popen(
                self._java_command() + ["kafka.Kafka", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: Ctrl-C in the terminal that ran `kafka start` does not reach it.
                start_new_session=True,
            )
        self._child = proc
        self.pid_path.write_text(f"{proc.pid}\n")
        return proc.pid

    def _wait_ready(self, pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise BrokerError(f"the broker exited with code {proc.returncode} while starting:\n{self._log_tail()}")
            if proc is None and not self._is_our_process(pid):
                raise BrokerError(f"broker pid {pid} is gone:\n{self._log_tail()}")
            if answers_metadata(self.bootstrap_servers, timeout_s=2):
                return
            time.sleep(0.25)
        raise BrokerError(
            f"the broker did not answer metadata requests within {self.settings.start_timeout_s:.0f} s:\n{self._log_tail()}"
        )

    def wait_ready(self) -> None:
        """Wait until the process this object launched answers metadata (:class:`BrokerError` if not)."""
        if self._child is not None:  # just launched: it may not have exec'd java yet, so no pid() check
            self._wait_ready(self._child.pid, self._child)
            return
        pid = self.pid()
        if pid is None:
            raise BrokerError(f"no broker runs from {self.run_dir}:\n{self._log_tail()}")
        self._wait_ready(pid)

    def _log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.stdout_path, self.run_dir / "logs" / "server.log"):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to this node's process (fault tests); its pid, or None if it was not running."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, sig)
            if sig == signal.SIGKILL and self._child is not None and self._child.pid == pid:
                self._child.wait()  # collect it now: no zombie keeps the pid
        return pid

    def stop(self, timeout_s: float = 30.0, *, signalled: bool = False) -> bool:
        """Stop the broker this folder started; True if a process was stopped.

        SIGTERM lets Kafka close its logs cleanly (a fast next start); SIGKILL only after ``timeout_s``.
        ``signalled``: SIGTERM was already sent (a cluster signals all its nodes at once).
        """
        pid = self.pid()
        if pid is None:
            if self._child is not None:
                self._child.wait()  # killed by a fault test: collect it
                self._child = None
            self.pid_path.unlink(missing_ok=True)
            return False
        if not signalled:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._is_our_process(pid):
            _reap(pid)
            time.sleep(0.1)
        if self._is_our_process(pid):
            os.kill(pid, signal.SIGKILL)
            while self._is_our_process(pid):
                _reap(pid)
                time.sleep(0.05)
        if self._child is not None and self._child.pid == pid:
            self._child.wait()
            self._child = None
        self.pid_path.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    """Collect the exit status if the broker is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def answers_metadata(bootstrap_servers: str, timeout_s: float = 5.0) -> bool:
    """True if a broker at ``bootstrap_servers`` answers a Kafka metadata request."""

    async def probe() -> bool:
        from aiokafka import AIOKafkaClient

        # A refused connection is the expected answer while the broker starts: not an error to log.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

        client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            return True
        except Exception:
            return False
        finally:
            await client.close()

    level = logging.getLogger("aiokafka").level
    try:
        return asyncio.run(probe())
    finally:
        logging.getLogger("aiokafka").setLevel(level)
