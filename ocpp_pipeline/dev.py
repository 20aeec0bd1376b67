"""``ocpp-pipeline dev``: the whole pipeline on one machine.

Today: the local broker (fetched the first time), the topics and the ClickHouse tables. The
gateway, worker and simulator join here as their issues land. Whatever this command started,
it stops on Ctrl-C or SIGTERM; a broker that was already running is left running.
"""

from __future__ import annotations

import asyncio
import signal
import threading

from infra import clickhouse, local_kafka
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics

NOT_YET = (
    "gateway (issue #4), worker (issue #5), simulated chargers (issue #6)"
)


def run_dev(local: LocalKafkaSettings, kafka: KafkaSettings, ch: ClickHouseSettings, *, wait: bool = True) -> int:
    broker = local_kafka.LocalBroker(local)
    already_running = broker.pid() is not None
    if not local_kafka.jars_present(local):
        print(f"fetching Apache Kafka {local.version} from Maven Central (once)...", flush=True)
    status = broker.start()
    print(status.describe() + (" (already running; left running on exit)" if already_running else ""), flush=True)
    try:
        kafka = kafka.model_copy(update={"bootstrap_servers": local.bootstrap_servers})
        for state in asyncio.run(ensure_topics(kafka)):
            print("  topic " + state.describe(), flush=True)
        client = clickhouse.connect(ch)
        try:
            print(clickhouse.migrate(client, ch.database).describe(), flush=True)
        finally:
            client.close()
        print(f"embedded ClickHouse at {ch.resolved_dsn()}", flush=True)
        print(f"not built yet, so not started: {NOT_YET}", flush=True)
        if wait:
            print("running; Ctrl-C stops what this command started", flush=True)
            _wait_for_stop_signal()
    finally:
        if not already_running:
            broker.stop()
            print("kafka stopped", flush=True)
    return 0


def _wait_for_stop_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
