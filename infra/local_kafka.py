"""A real single-node Apache Kafka broker (KRaft, combined broker + controller) for this machine.

No Docker engine and no download but Maven Central exist here, so the broker runs from the
official Apache Kafka jars, which Maven fetches once (``infra/kafka/pom.xml``) into
``$OCPP_HOME/kafka/<version>/libs``. Everything the broker writes (config, data, logs, pid file)
lives in ``$OCPP_HOME/kafka/broker-<port>/``.

``stop`` ends exactly the process ``start`` launched: it reads the pid file and checks that the
pid still runs ``kafka.Kafka`` with this broker's config before it signals anything.

Secured (``OCPP_LOCAL_KAFKA_SECURE``, ``kafka start --secure``): no listener takes an anonymous client.
Clients log in with SCRAM-SHA-512 over TLS on the client port, or with a certificate (mutual TLS) on the TLS
port, which the brokers also use between themselves; the KRaft controller listener takes the brokers'
certificate only. ``StandardAuthorizer`` decides every request from the ACLs of :mod:`infra.kafka_acls`;
certificates and passwords are in :mod:`infra.local_credentials` (applied by :mod:`infra.secured_broker`).
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
from infra.kafka_acls import identities
from infra.kafka_close import settle
from infra.local_credentials import ADMIN, SUPER_USERS, LocalCredentials
from infra.settings import KafkaSettings, LocalKafkaSettings

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
    tls_port: int = 0  # a secured node's mutual-TLS (and inter-broker) port

    @classmethod
    def single(cls, settings: LocalKafkaSettings) -> "Node":
        """The one node of ``ocpp-pipeline kafka start`` (the layout every earlier version used)."""
        return cls(1, settings.port, settings.controller_port, settings.run_dir,
                   f"1@{settings.host}:{settings.controller_port}", tls_port=settings.tls_port)


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
    three or more nodes, internal and default topics get 3 replicas and min.insync.replicas 2.
    ``settings.secure``: the listeners of :func:`secure_properties`."""
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
    if settings.secure:
        lines |= secure_properties(settings, node, LocalCredentials(settings.credentials_dir))
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def secure_properties(settings: LocalKafkaSettings, node: Node, credentials: LocalCredentials) -> dict[str, str]:
    """Listeners that take no anonymous client, and an authorizer that allows only what the ACLs say.

    - ``SASL_SSL`` (client port): SCRAM-SHA-512 users over TLS; the users' salted credentials live in the
      cluster metadata, put there by the administrator (:mod:`infra.acl_admin`).
    - ``SSL`` (TLS port): mutual TLS. Clients with a certificate of the local CA, and the brokers among
      themselves (inter-broker listener). ``CN=<name>`` becomes the principal ``User:<name>``: the same
      principal as the SCRAM user, so the same ACLs hold for both ways in.
    - ``CONTROLLER``: mutual TLS too; only the brokers' certificate is a super user there.
    """
    host = settings.host
    return {
        "listeners": f"SASL_SSL://{host}:{node.port},SSL://{host}:{node.tls_port},CONTROLLER://{host}:{node.controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{node.port},SSL://{host}:{node.tls_port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(credentials.broker_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(credentials.ca_file),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([A-Za-z0-9._-]+)$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": ";".join(SUPER_USERS),
        "allow.everyone.if.no.acl.found": "false",
    }


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
        self.credentials = LocalCredentials(settings.credentials_dir)
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

    def configured_secure(self) -> bool:
        """Whether the config this folder's broker was (or will be) started with is the secured one."""
        try:
            return "SASL_SSL://" in self.config_path.read_text()
        except FileNotFoundError:
            return self.settings.secure

    def probe_settings(self) -> KafkaSettings | None:
        """How to ask this broker for metadata: as the administrator, over mutual TLS, when it is secured
        (None: plain text, nobody to be)."""
        if not self.configured_secure():
            return None
        return self.credentials.mtls_settings(ADMIN, f"{self.settings.host}:{self.node.tls_port}")

    def _answers(self, timeout_s: float) -> bool:
        return answers_metadata(self.bootstrap_servers, timeout_s=timeout_s, settings=self.probe_settings())

    def status(self) -> BrokerStatus:
        pid = self.pid()
        return BrokerStatus(
            running=pid is not None and self._answers(5),
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
            if self.configured_secure() != self.settings.secure:
                said = "secured" if self.configured_secure() else "without --secure"
                raise BrokerError(f"the broker of {self.run_dir} already runs {said} (pid {existing}); "
                                  "stop it first (ocpp-pipeline kafka stop)")
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
        taken = [port for port in self._ports() if _listening(self.settings.host, port)]
        if taken:
            raise BrokerError(
                f"something not started from {self.run_dir} already listens on {self.settings.host} port "
                f"{', '.join(map(str, taken))}; use that broker (OCPP_KAFKA_BOOTSTRAP_SERVERS) or choose other "
                "ports (OCPP_LOCAL_KAFKA_PORT, OCPP_LOCAL_KAFKA_CONTROLLER_PORT, OCPP_LOCAL_KAFKA_TLS_PORT)"
            )
        if self._child is not None:
            self._child.wait()  # an earlier process of this node, already ended
        fetch(self.settings)
        require_java()
        if self.settings.secure:
            s = self.settings
            self.credentials.ensure((s.host,), tuple(i.name for i in identities()), s.bootstrap_servers,
                                    s.tls_bootstrap_servers)
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
            if self._answers(2):
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

    def _ports(self) -> list[int]:
        ports = [self.node.port, self.node.controller_port]
        return ports + [self.node.tls_port] if self.settings.secure else ports

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


def _listening(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def answers_metadata(bootstrap_servers: str, timeout_s: float = 5.0, settings: KafkaSettings | None = None) -> bool:
    """True if a broker at ``bootstrap_servers`` answers a Kafka metadata request (as ``settings`` says
    to connect: its protocol and credentials, and its bootstrap servers instead; plain text when None)."""

    async def probe() -> bool:
        from aiokafka import AIOKafkaClient

        # A refused connection is the expected answer while the broker starts: not an error to log.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

        options = settings.client_options() if settings is not None else {"bootstrap_servers": bootstrap_servers}
        client = AIOKafkaClient(**options, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            return True
        except Exception:
            return False
        finally:
            await client.close()
            await settle(settings)

    level = logging.getLogger("aiokafka").level
    try:
        return asyncio.run(probe())
    finally:
        logging.getLogger("aiokafka").setLevel(level)
