"""Fault injection on the real stack (short versions of RELIABILITY.md's runs).

- the broker stopped and restarted under a simulated fleet: no frame a charger was told was
  received is missing from Kafka;
- the gateway restarted while chargers are connected: they reconnect, and the sessions in
  ClickHouse are exactly the ones the chargers had - none lost, none doubled;
- ClickHouse failing for a while (before and after an insert landed): the sink backs off and
  every row, and the daily aggregates, land exactly once;
- an insert that retrying cannot fix (a value its column cannot take, an unknown table): it fails at
  once with a non-retriable error instead of retrying forever.
(A worker SIGKILLed mid-stream: ``tests/processors/test_worker_live.py``.)
"""

from __future__ import annotations

import asyncio
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.errors import InsertFailed
from infra.local_kafka import LocalBroker
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from processors.clickhouse_sink import COLUMNS, ClickHouseSink, classify
from schemas.envelope import FrameEnvelope
from simulator import expectations
from simulator.fleet import run_fleet
from simulator.settings import SimulatorSettings
from tests.conftest import free_port, wait_listening
from tests.gateway.live import gateway_settings, read_envelopes, running_gateway
from tests.processors.test_worker_live import WorkerProcess, worker_env, workers  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def fleet_settings(url: str, **overrides: object) -> SimulatorSettings:
    base: dict[str, object] = {"url": url, "chargers": 15, "duration_s": 24, "time_scale": 300, "quirky_share": 0.3,
                               "seed": 3, "ramp": 50, "answer_timeout_s": 10}
    return SimulatorSettings(**(base | overrides))


def test_broker_outage_under_a_fleet_loses_no_acknowledged_frame(spare_broker: LocalBroker, unique: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=spare_broker.settings.bootstrap_servers)
    topic = f"test.outage.{unique}"

    async def scenario():
        async with running_gateway(gateway_settings(publish_timeout_s=2.0), kafka, topic) as gateway:
            fleet = asyncio.create_task(run_fleet(fleet_settings(f"ws://127.0.0.1:{gateway.port}/ocpp"),
                                                  record_acknowledged=True))
            await asyncio.sleep(7)
            await asyncio.to_thread(spare_broker.stop)
            await asyncio.sleep(6)
            await asyncio.to_thread(spare_broker.start)
            run = await fleet
            assert await gateway.publisher.flush(60)
        acknowledged = {(cp, mid) for cp, mid, _ in run.stats.acknowledged}

        def complete(envelopes: list[FrameEnvelope]) -> bool:
            return acknowledged <= {(e.charge_point_id, e.message_id) for e in envelopes if e.direction == "in"}

        envelopes = await read_envelopes(kafka, topic, complete, timeout_s=90)
        return run, acknowledged, envelopes

    run, acknowledged, envelopes = asyncio.run(scenario())
    stored = {(e.charge_point_id, e.message_id) for e in envelopes if e.direction == "in"}
    assert len(acknowledged) > 100 and run.stats.call_errors.get("InternalError", 0) > 0, run.summary()
    assert acknowledged - stored == set(), f"{len(acknowledged - stored)} acknowledged frames missing\n{run.summary()}"
    print(f"\nbroker outage: {len(acknowledged)} transaction CALLs acknowledged, {len(acknowledged - stored)} missing on Kafka; "
          f"{run.stats.call_errors.get('InternalError', 0)} answered InternalError during the outage (resent until stored)")
    assert run.unfinished == 0 and run.ledger.start_refused == 0


def test_gateway_restart_loses_and_doubles_no_session(kafka_settings: KafkaSettings, unique: str, tmp_path: Path,
                                                      workers) -> None:  # noqa: F811
    env = worker_env(kafka_settings, tmp_path / "home", unique)
    kafka = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    asyncio.run(ensure_topics(kafka))
    worker = workers(env, tmp_path / "worker.log")
    port = free_port()
    gateway_env = {**env, "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(port), "OCPP_GATEWAY_ID": "gw-r"}

    def start_gateway(n: int) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"gateway-{n}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "ocpp_pipeline", "gateway"], cwd=ROOT, env=gateway_env,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return proc

    gateways = [start_gateway(0)]
    try:
        wait_listening(port)  # chargers that find no gateway back off for seconds: the restart is what is tested

        async def scenario():
            fleet = asyncio.create_task(run_fleet(fleet_settings(f"ws://127.0.0.1:{port}/ocpp", chargers=12, duration_s=30)))
            await asyncio.sleep(10)
            gateways[0].send_signal(signal.SIGTERM)  # closes every socket with 1001, flushes Kafka
            await asyncio.to_thread(gateways[0].wait, 60)
            gateways.append(start_gateway(1))
            return await fleet

        run = asyncio.run(scenario())
        assert gateways[0].returncode == 0
        assert run.stats.reconnects >= 12 and run.unfinished == 0, run.summary()
        wanted = [s.to_json() for s in run.ledger.sessions]
        assert len(wanted) >= 10
        columns = ["charge_point_id", "transaction_id", "connector_id", "id_tag", "energy_wh", "stop_reason",
                   "stop_status", "closed_by"]
        deadline, problems = time.monotonic() + 120, ["not queried"]
        while problems and time.monotonic() < deadline:
            rows = [dict(zip(columns, r)) for r in worker.query(f"SELECT {', '.join(columns)} FROM ocpp.sessions FINAL")]
            problems = expectations.session_mismatches(wanted, rows)
            time.sleep(0.5 if problems else 0)
        if problems:  # what the pipeline saw of the first few, to tell a lost frame from a wrong decision
            for problem in problems[:3]:
                cp = problem.split()[2].split("/")[0]
                problems.append(f"frames of {cp}: " + repr(worker.query(
                    f"SELECT received_at, direction, action, raw FROM ocpp.frames FINAL WHERE charge_point_id = '{cp}' "
                    f"AND action IN ('StartTransaction', 'StopTransaction', 'StatusNotification') ORDER BY received_at, seq")[-12:]))
        assert problems == [], "\n".join(problems)
        # Not doubled in the raw table either: one session id per session, whatever its revisions (the
        # bay-time revision follows most sessions; merges may already have dropped their first rows).
        (count,) = worker.query("SELECT uniqExact(charge_point_id, session_id) FROM ocpp.sessions")[0]
        assert count == len(wanted)
        print(f"\ngateway restart: {len(wanted)} sessions expected, {len(wanted)} rows, 0 lost, 0 doubled; "
              f"{run.stats.reconnects} reconnects")
    finally:
        for proc in gateways:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)


class FlakyClickHouse:
    """The real ClickHouse client, with faults injected in front of and behind its inserts."""

    def __init__(self, client, *, unreachable: int, lost_answers: int) -> None:
        self.client, self.unreachable, self.lost_answers = client, unreachable, lost_answers
        self.calls = 0

    def insert(self, *args, **kwargs):
        self.calls += 1
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionRefusedError("injected: ClickHouse unreachable")
        result = self.client.insert(*args, **kwargs)
        if self.lost_answers:
            self.lost_answers -= 1
            raise TimeoutError("injected: the insert landed, its answer was lost")
        return result


def test_clickhouse_failing_for_a_while_loses_nothing_and_doubles_nothing(chdb_client, database: str) -> None:
    from tests.test_contracts import SAMPLES

    sessions = [SAMPLES["sessions"].model_copy(update={"transaction_id": str(n), "energy_wh": 100.0}) for n in range(50)]
    frames = [SAMPLES["frames"].model_copy(update={"seq": n}) for n in range(200)]
    flaky = FlakyClickHouse(chdb_client, unreachable=3, lost_answers=2)
    failures: list[Exception] = []
    sink = ClickHouseSink(flaky, database, on_failure=failures.append)
    rows = {"sessions": [s.row() for s in sessions], "frames": [f.row() for f in frames]}
    asyncio.run(sink.write(rows, token="batch-7"))
    assert len(failures) == sink.failures == 5 and flaky.calls == 7
    count = lambda sql: chdb_client.query(sql.format(db=f"`{database}`")).result_rows[0][0]  # noqa: E731
    assert count("SELECT count() FROM {db}.sessions") == 50
    assert count("SELECT count() FROM {db}.frames") == 200
    assert count("SELECT sum(sessions) FROM {db}.charger_daily") == 50
    assert count("SELECT sum(energy_wh) FROM {db}.charger_daily") == 5000.0
    assert set(COLUMNS) >= set(rows)


def _status_rows(**update: object) -> list[list[object]]:
    from tests.test_contracts import SAMPLES

    return [SAMPLES["connector_status"].model_copy(update=update).row()]


@pytest.mark.parametrize(("rows", "database_of", "says"), [
    (_status_rows(connector_id=4294967296), None, "DataError"),  # the integrator's connectorId, unsanitized
    (_status_rows(info="\ud800"), None, "UnicodeEncodeError"),
    (_status_rows(), lambda db: f"{db}_missing", "UNKNOWN_"),  # a database (or table) that is not there
], ids=["value out of range", "lone surrogate", "unknown database"])
def test_an_insert_that_retrying_cannot_fix_fails_at_once(chdb_client, database: str, rows, database_of, says: str) -> None:
    flaky = FlakyClickHouse(chdb_client, unreachable=0, lost_answers=0)
    failures: list[Exception] = []
    sink = ClickHouseSink(flaky, database_of(database) if database_of else database, on_failure=failures.append)
    with pytest.raises(InsertFailed) as raised:
        asyncio.run(sink.write({"connector_status": rows}, token="poison"))
    assert raised.value.retriable is False and flaky.calls == 1 and len(failures) == 1
    assert "retrying cannot fix it" in str(raised.value) and says in str(raised.value)


def test_transient_failures_stay_retriable_and_wrong_data_does_not() -> None:
    from clickhouse_connect.driver import exceptions as driver

    retriable = [ConnectionRefusedError("refused"), TimeoutError("slow"), driver.OperationalError("Network Error"),
                 driver.DatabaseError("Code: 252. Too many parts (TOO_MANY_PARTS)", code=252, name="TOO_MANY_PARTS"),
                 driver.DatabaseError("Code: 242. Table is in readonly mode", code=242), RuntimeError("unknown")]
    fatal = [driver.DataError("Unable to create native array for column `connector_id`"),
             driver.ProgrammingError("Unrecognized column 'zz' in table t"),
             driver.DatabaseError("Code: 60. Table ocpp.nope does not exist. (UNKNOWN_TABLE)", code=60, name="UNKNOWN_TABLE"),
             driver.DatabaseError("Code: 516. default: Authentication failed", code=516),
             driver.OperationalError("HTTP 403: Code: 516. Authentication failed"),
             TypeError("int() argument must be ... not 'NoneType'"), OverflowError("int too large to convert to float"),
             struct.error("'I' format requires 0 <= number <= 4294967295"), ValueError("invalid literal for int()")]
    assert [classify(e)[0] for e in retriable] == [True] * len(retriable)
    assert [classify(e)[0] for e in fatal] == [False] * len(fatal)
