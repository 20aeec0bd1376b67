"""``ocpp-pipeline``: one entry point, one subcommand per job (DESIGN.md, Command line).

Settings are read once here from ``OCPP_*`` variables (``ocpp-pipeline settings`` lists them)
and passed down; nothing below reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from infra import clickhouse, local_kafka
from infra.errors import InfraError
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings, SqlSettings
from infra.topic_admin import ensure_topics
from kpi.errors import KpiError
from schemas import ddl
from schemas.migrations import MIGRATIONS, RETAINED_TABLES


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_kafka(args: argparse.Namespace) -> int:
    from infra.local_cluster import LocalCluster

    overrides = ({"brokers": args.brokers} if args.brokers else {}) | ({"secure": True} if args.secure else {})
    settings = LocalKafkaSettings(**overrides)
    # start: the nodes asked for; status and stop: every node started on these ports, however many
    cluster = LocalCluster(settings) if args.action == "start" or args.brokers else LocalCluster.found(settings)
    if args.action == "fetch":
        libs = local_kafka.fetch(settings)
        _say(f"kafka {settings.version} jars in {libs} ({local_kafka.jars_size_bytes(settings) / 2**20:.1f} MiB)")
    elif args.action == "start":
        _say(cluster.start().describe())
        if settings.secure:
            from infra.secured_broker import make_ready
            from processors.settings import WorkerSettings

            bus = make_ready(settings, KafkaSettings(), WorkerSettings().app_id)
            for state in bus.topics:
                _say("  topic " + state.describe())
            _say(bus.describe())
    elif args.action == "stop":
        stopped = cluster.stop()
        _say(f"kafka stopped ({stopped} node{'s' if stopped != 1 else ''})" if stopped
             else "kafka was not running (nothing stopped)")
    else:
        status = cluster.status()
        _say(status.describe())
        return 0 if status.running else 1
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from infra.local_credentials import ADMIN
    from infra.secured_broker import as_local_identity

    for state in asyncio.run(ensure_topics(as_local_identity(KafkaSettings(), LocalKafkaSettings(), ADMIN))):
        _say(state.describe())
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    settings = ClickHouseSettings()
    dialect = ddl.Cluster(name=args.cluster) if args.cluster else clickhouse.dialect_for(settings)
    if args.print_ddl:
        _say(ddl.create_database(settings.database, dialect) + ";")
        for migration in MIGRATIONS:
            _say(f"\n-- migration {migration.version}: {migration.description}")
            for statement in migration.statements(settings.database, dialect):
                _say(statement + ";\n")
        _say("\n-- retention (OCPP_CLICKHOUSE_*_TTL_DAYS; every db migrate makes the tables' TTLs equal to it)")
        for statements in clickhouse.retention_statements(
                {ddl.local_name(t, dialect): None for t in RETAINED_TABLES}, settings.database, dialect,
                settings.retention()).values():
            for statement in statements:
                _say(statement + ";\n")
        return 0
    client = clickhouse.connect(settings)
    try:
        _say(clickhouse.migrate(client, settings.database, dialect, retention=settings.retention()).describe())
    finally:
        client.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from ocpp_pipeline.settings_doc import settings_table

    _say(settings_table())
    return 0


def _configure_logging(level: str) -> None:
    from infra.logs import LogSettings, configure

    configure(level, LogSettings().format)


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.cores import available_cores
    from gateway.errors import ListenError
    from gateway.server import run_gateway
    from gateway.settings import GatewaySettings
    from infra.logs import LogSettings

    _configure_logging(args.log_level)
    flags = (("host", args.host), ("port", args.port), ("admin_host", args.admin_host), ("admin_port", args.admin_port),
             ("processes", args.processes))
    settings = GatewaySettings(**{k: v for k, v in flags if v is not None})
    processes = settings.processes or available_cores()
    try:
        if processes == 1:
            _run_async(run_gateway(settings, KafkaSettings()))
            return 0
        from gateway.supervisor import run_supervisor

        return run_supervisor(settings, KafkaSettings(), processes, log_level=args.log_level, log_format=LogSettings().format)
    except ListenError as exc:
        print(f"ocpp-pipeline gateway: cannot listen: {exc}", file=sys.stderr)
        return 2


def _run_async(coro) -> object:
    """Run the command's coroutine on uvloop when installed; returns its result."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def cmd_worker(args: argparse.Namespace) -> int:
    from processors.app import run_worker
    from processors.settings import WorkerSettings

    from infra.logs import LogSettings

    run_worker(WorkerSettings(), KafkaSettings(), ClickHouseSettings(), loglevel=args.log_level,
               log_format=LogSettings().format, sql=SqlSettings())
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from infra.read_path import run_query
    from ocpp_pipeline.output import Rows, print_rows

    result = run_query(ClickHouseSettings(), SqlSettings(), args.query)
    print_rows(Rows(result.columns, result.rows), args.format)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from contextlib import ExitStack

    from ocpp_pipeline.output import progress
    from processors.replay import replay
    from processors.settings import WorkerSettings

    ch = ClickHouseSettings()
    if args.database:
        ch = ch.model_copy(update={"database": args.database})
    since = datetime.fromisoformat(args.from_time).replace(tzinfo=timezone.utc) if args.from_time else None
    from infra.kafka_acls import WORKER
    from infra.secured_broker import as_local_identity

    kafka = as_local_identity(KafkaSettings(), LocalKafkaSettings(), WORKER)  # dev's secured broker: as the worker
    with ExitStack() as stack:
        report = None if args.quiet else stack.enter_context(progress("replay: frames"))
        summary = asyncio.run(replay(WorkerSettings(), kafka, ch, from_time=since, settle=not args.no_settle,
                                     force=args.force, report=report))
    _say(summary.describe() + f" into database {ch.database}")
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway import handshake, password_policy
    from gateway.credentials import Credentials
    from gateway.errors import WeakPassword

    def refuse(reason: str) -> int:
        print(f"ocpp-pipeline credentials {args.action}: {reason}", file=sys.stderr)
        return 2

    path = Path(args.file)
    if not handshake.valid_charge_point_id(args.charge_point_id):
        return refuse(f"{args.charge_point_id!r} can never connect: a charge point id is 1-{handshake.MAX_ID_LENGTH} "
                      "characters of A-Za-z0-9*-_=+|@.")
    if args.action == "add" and Credentials.has_entry(path, args.charge_point_id):
        return refuse(f"{args.charge_point_id} already has credentials in {path} (`credentials set` replaces them)")
    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        return refuse("read no password on standard input")
    try:
        if args.authorization_key:
            secret: str | bytes = password_policy.authorization_key_octets(text)
        else:
            password_policy.check_password(text)
            secret = text
    except WeakPassword as exc:
        return refuse(str(exc))
    Credentials.set_entry(path, args.charge_point_id, secret)
    _say(f"credentials for {args.charge_point_id} written to {path}")
    return 0


def simulator_settings(args: argparse.Namespace, defaults: dict[str, object] | None = None):  # -> SimulatorSettings
    """Flags over ``OCPP_SIMULATOR_*`` over ``defaults`` (``dev``'s) over the class defaults."""
    from simulator.settings import FLEET_FLAGS, SimulatorSettings

    from_env = SimulatorSettings()
    chosen = {k: v for k, v in (defaults or {}).items() if k not in from_env.model_fields_set}
    flags = {"url": getattr(args, "url", None), "chargers": args.chargers, "connectors": args.connectors,
             "duration_s": args.duration, "time_scale": args.time_scale, "rate": args.rate, "seed": args.seed,
             "quirky_share": args.quirky, "ocpp": args.ocpp, "ocpp_mix": args.ocpp_mix, "meter_keys_file": args.meter_keys}
    flags |= {field: getattr(args, field) for field in FLEET_FLAGS.values()}
    chosen |= {k: v for k, v in flags.items() if v is not None}
    if args.ocpp is not None and args.ocpp_mix is None:
        chosen["ocpp_mix"] = None  # --ocpp names the version of the whole fleet: no mix from elsewhere
    return SimulatorSettings(**chosen)  # arguments win over the environment


def cmd_simulate(args: argparse.Namespace) -> int:
    import signal
    from pathlib import Path

    from simulator.fleet import run_fleet, stderr_progress, write_meter_keys

    settings = simulator_settings(args)
    keys_path = settings.meter_keys_path(ClickHouseSettings().home)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                raise SystemExit(130)  # a second Ctrl-C: do not wait for the open sessions
            print("\nstopping: ending open sessions (Ctrl-C again to abandon them)", file=sys.stderr, flush=True)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        _say(f"simulating {settings.chargers} chargers against {settings.url} "
             f"({'until Ctrl-C' if not settings.duration_s else f'{settings.duration_s:g} s'}, time scale {settings.time_scale:g})")
        keys, signing = write_meter_keys(settings, keys_path)
        if signing:
            _say(f"  meter keys  {keys} public keys of {signing} signing chargers' meters in {keys_path} "
                 f"(CSV for `ocpp-pipeline keys import`)")
        run = await run_fleet(settings, stop=stop, report=None if args.quiet else stderr_progress)
        if not args.quiet and sys.stderr.isatty():
            print(file=sys.stderr)
        _say(run.summary())
        if args.expected:
            lines = run.write_expected(Path(args.expected))
            ledger = run.ledger
            _say(f"  expected  {len(ledger.sessions)} sessions, {len(ledger.faults)} faults, {len(ledger.attempts)} attempts, "
                 f"{len(ledger.connections)} connections, {len(ledger.downs)} down intervals ({lines} lines) in {args.expected}")
        if run.refused or run.stats.connects == 0:
            return 1
        return 1 if run.unfinished else 0

    return int(_run_async(main()))


def cmd_dev(args: argparse.Namespace) -> int:
    from ocpp_pipeline.dev import DEV_SIMULATOR_DEFAULTS, run_dev

    simulator = None if args.no_simulator else simulator_settings(args, DEV_SIMULATOR_DEFAULTS)
    local = LocalKafkaSettings()
    if args.plaintext_kafka:
        local = local.model_copy(update={"secure": False})
    elif "secure" not in local.model_fields_set:
        local = local.model_copy(update={"secure": True})  # dev secures its broker unless told otherwise
    return run_dev(local, KafkaSettings(), ClickHouseSettings(), wait=not args.no_wait, simulator=simulator,
                   expected=args.expected)


def cmd_outages(args: argparse.Namespace) -> int:
    from ocpp_pipeline.reports import record_exclusion_from_args

    from infra.kafka_acls import OPERATOR
    from infra.secured_broker import as_local_identity

    kafka = as_local_identity(KafkaSettings(), LocalKafkaSettings(), OPERATOR)
    _say(record_exclusion_from_args(args, ClickHouseSettings(), SqlSettings(), kafka))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ocpp_pipeline.keys import run_keys

    from infra.kafka_acls import OPERATOR
    from infra.secured_broker import as_local_identity

    kafka = as_local_identity(KafkaSettings(), LocalKafkaSettings(), OPERATOR)
    return run_keys(args, ClickHouseSettings(), SqlSettings(), kafka)


def cmd_verify(args: argparse.Namespace) -> int:
    from ocpp_pipeline.verify import run_verify

    return run_verify(args, ClickHouseSettings(), SqlSettings())


def cmd_report(args: argparse.Namespace) -> int:
    from ocpp_pipeline.reports import run_report

    run_report(args, ClickHouseSettings(), SqlSettings())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocpp-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="the local Apache Kafka broker (KRaft), or a cluster of several on loopback")
    kafka.add_argument("action", choices=["fetch", "start", "stop", "status"])
    kafka.add_argument("--brokers", type=int, choices=range(1, 10), metavar="N",
                       help="KRaft nodes, each its own process (overrides OCPP_LOCAL_KAFKA_BROKERS); "
                            "status and stop find every node started on these ports without it")
    kafka.add_argument("--secure", action="store_true",
                       help="start: TLS, SCRAM-SHA-512 users and ACLs per component, no anonymous client; creates the "
                            "topics and says where each identity's credentials are (OCPP_LOCAL_KAFKA_SECURE)")
    kafka.set_defaults(func=cmd_kafka)

    topics = sub.add_parser("topics", help="Kafka topics of the pipeline")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=cmd_topics)

    db = sub.add_parser("db", help="ClickHouse schema")
    db.add_argument("action", choices=["migrate"])
    db.add_argument("--print-ddl", action="store_true", help="print the DDL instead of applying it")
    db.add_argument("--cluster", help="render or apply the cluster variant (ON CLUSTER, Replicated engines)")
    db.set_defaults(func=cmd_db)

    gateway = sub.add_parser("gateway", help="the OCPP 1.6J / 2.0.1 WebSocket gateway (frames to Kafka), one process per core")
    gateway.add_argument("--host", help="overrides OCPP_GATEWAY_HOST")
    gateway.add_argument("--port", type=int, help="overrides OCPP_GATEWAY_PORT")
    gateway.add_argument("--admin-host", help="overrides OCPP_GATEWAY_ADMIN_HOST (/healthz, /readyz, /metrics)")
    gateway.add_argument("--admin-port", type=int, help="overrides OCPP_GATEWAY_ADMIN_PORT (/healthz, /readyz, /metrics)")
    gateway.add_argument("--processes", type=int, metavar="N",
                         help="processes sharing the port, one per core (overrides OCPP_GATEWAY_PROCESSES; "
                              "default: the cores this container may use)")
    gateway.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    gateway.set_defaults(func=cmd_gateway)

    worker = sub.add_parser("worker", help="the Faust worker: frames to sessions, faults and status (ClickHouse, Kafka)")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    sql = sub.add_parser("sql", help="run one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) and print the "
                                     "result")
    sql.add_argument("query")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.set_defaults(func=cmd_sql)

    replay = sub.add_parser("replay", help="rebuild all tables from ocpp.frames.v1 into a fresh database")
    replay.add_argument("--database", help="target database (default OCPP_CLICKHOUSE_DATABASE); must be empty unless --force")
    replay.add_argument("--from-time", help="start at this UTC time (ISO 8601) instead of the beginning")
    replay.add_argument("--no-settle", action="store_true", help="leave sessions whose status window is open unemitted")
    replay.add_argument("--force", action="store_true", help="write into a database that already has rows")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(func=cmd_replay)

    credentials = sub.add_parser(
        "credentials", help="Basic-auth secrets of chargers (security profiles 1-2): the password on standard input, "
        "16-40 characters of a-z A-Z 0-9 * - _ = : + | @ . (OCPP 2.0.1 BasicAuthPassword)")
    credentials.add_argument("action", choices=["add", "set"], help="add: a charger without credentials yet; set: add or replace")
    credentials.add_argument("charge_point_id")
    credentials.add_argument("--file", required=True, help="the credentials file (OCPP_GATEWAY_CREDENTIALS_FILE)")
    credentials.add_argument("--authorization-key", action="store_true",
                             help="standard input is an OCPP 1.6 AuthorizationKey: 32-40 hexadecimal digits, the charger "
                                  "sends their 16-20 octets")
    credentials.set_defaults(func=cmd_credentials)

    from ocpp_pipeline.reports import add_outages_parser, add_report_parser

    add_outages_parser(sub).set_defaults(func=cmd_outages)
    add_report_parser(sub).set_defaults(func=cmd_report)

    from ocpp_pipeline.keys import add_keys_parser
    from ocpp_pipeline.verify import add_verify_parser

    add_keys_parser(sub).set_defaults(func=cmd_keys)
    add_verify_parser(sub).set_defaults(func=cmd_verify)

    settings = sub.add_parser("settings", help="print every OCPP_* variable with its default")
    settings.set_defaults(func=cmd_settings)

    simulate = sub.add_parser("simulate", help="a fleet of simulated OCPP 1.6J / 2.0.1 chargers living realistic lives")
    _simulator_flags(simulate)
    simulate.add_argument("--expected", metavar="FILE", help="write the sessions, faults and KPI ground truth (connections, down intervals, "
                          "ports, attempts) the pipeline should produce (JSON lines)")
    simulate.add_argument("--quiet", action="store_true", help="no progress line")
    simulate.set_defaults(func=cmd_simulate)

    dev = sub.add_parser("dev", help="everything on this machine: broker, topics, gateway, worker, embedded ClickHouse, simulated chargers")
    dev.add_argument("--no-wait", action="store_true", help="set up and return instead of running until Ctrl-C")
    dev.add_argument("--no-simulator", action="store_true", help="no simulated chargers (connect your own)")
    dev.add_argument("--plaintext-kafka", action="store_true",
                     help="start the broker without TLS, users and ACLs (dev secures it by default, as kafka start --secure)")
    dev.add_argument("--expected", metavar="FILE", help="the simulator writes the sessions, faults and KPI ground truth it caused here when it ends")
    _simulator_flags(dev, dev_defaults=True)
    dev.set_defaults(func=cmd_dev)

    return parser


def _simulator_flags(parser: argparse.ArgumentParser, dev_defaults: bool = False) -> None:
    """Flags of the simulator; unset ones fall back to ``OCPP_SIMULATOR_*`` (``dev`` has its own defaults)."""
    from simulator.settings import FLEET_FLAGS, SimulatorSettings

    parser.add_argument("--url", help="gateway URL (OCPP_SIMULATOR_URL)" if not dev_defaults else argparse.SUPPRESS)
    parser.add_argument("--chargers", type=int, help="number of chargers (OCPP_SIMULATOR_CHARGERS)")
    parser.add_argument("--connectors", help="connectors per charger: N or LOW-HIGH within 1-4")
    parser.add_argument("--duration", type=float, help="real seconds, 0 = until Ctrl-C (OCPP_SIMULATOR_DURATION_S)")
    parser.add_argument("--time-scale", type=float, help="simulated seconds per real second (OCPP_SIMULATOR_TIME_SCALE)")
    parser.add_argument("--rate", type=float, help="target sessions started per second, fleet-wide")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--quirky", type=float, help="share of quirky chargers, 0-1")
    parser.add_argument("--ocpp", help="OCPP version of every charger: 1.6 or 2.0.1 (OCPP_SIMULATOR_OCPP)")
    parser.add_argument("--ocpp-mix", help="share per version, e.g. 1.6:0.5,2.0.1:0.5 (OCPP_SIMULATOR_OCPP_MIX)")
    parser.add_argument("--meter-keys", metavar="FILE", help="where the signing meters' public keys are written "
                        "(OCPP_SIMULATOR_METER_KEYS_FILE; default <OCPP_HOME>/simulator/meter-keys.csv)")
    for flag, field in FLEET_FLAGS.items():
        about = SimulatorSettings.model_fields[field].description or ""
        parser.add_argument(flag, type=float, dest=field, help=f"{about} (OCPP_SIMULATOR_{field.upper()})".replace("%", "%%"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (InfraError, RuntimeError, KpiError) as exc:
        print(f"ocpp-pipeline {args.command}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a setting from the environment is wrong
        print(f"ocpp-pipeline {args.command}: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
