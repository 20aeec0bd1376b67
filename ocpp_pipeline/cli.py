"""``ocpp-pipeline``: one entry point, one subcommand per job (DESIGN.md, Command line).

Settings are read once here from ``OCPP_*`` variables (``ocpp-pipeline settings`` lists them)
and passed down; nothing below reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from infra import clickhouse, local_kafka
from infra.errors import InfraError
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings
from infra.topic_admin import ensure_topics
from schemas import ddl
from schemas.migrations import MIGRATIONS

NOT_BUILT = 3  # exit code of a subcommand that exists in the contract but is not built yet

# Subcommands promised by DESIGN.md whose implementation lands with a later issue.
PLANNED: dict[str, tuple[str, str]] = {
    "simulate": ("a fleet of simulated OCPP 1.6J chargers", "issue #6 (simulator)"),
}


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_kafka(args: argparse.Namespace) -> int:
    settings = LocalKafkaSettings()
    broker = local_kafka.LocalBroker(settings)
    if args.action == "fetch":
        libs = local_kafka.fetch(settings)
        _say(f"kafka {settings.version} jars in {libs} ({local_kafka.jars_size_bytes(settings) / 2**20:.1f} MiB)")
    elif args.action == "start":
        _say(broker.start().describe())
    elif args.action == "stop":
        _say(f"kafka stopped (pid file {broker.pid_path})" if broker.stop() else "kafka was not running (nothing stopped)")
    else:
        status = broker.status()
        _say(status.describe())
        return 0 if status.running else 1
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    for state in asyncio.run(ensure_topics(KafkaSettings())):
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
        return 0
    client = clickhouse.connect(settings)
    try:
        _say(clickhouse.migrate(client, settings.database, dialect).describe())
    finally:
        client.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from ocpp_pipeline.settings_doc import settings_table

    _say(settings_table())
    return 0


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.server import run_gateway
    from gateway.settings import GatewaySettings

    _configure_logging(args.log_level)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    _run_async(run_gateway(GatewaySettings(**overrides), KafkaSettings()))
    return 0


def _run_async(coro) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def cmd_worker(args: argparse.Namespace) -> int:
    from processors.app import run_worker
    from processors.settings import WorkerSettings

    run_worker(WorkerSettings(), KafkaSettings(), ClickHouseSettings(), loglevel=args.log_level)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from processors.read_path import render, run_query
    from processors.settings import WorkerSettings

    result = run_query(ClickHouseSettings(), WorkerSettings(), args.query)
    _say(render(result, args.format))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from processors.replay import replay, stderr_progress
    from processors.settings import WorkerSettings

    ch = ClickHouseSettings()
    if args.database:
        ch = ch.model_copy(update={"database": args.database})
    since = datetime.fromisoformat(args.from_time).replace(tzinfo=timezone.utc) if args.from_time else None
    summary = asyncio.run(replay(WorkerSettings(), KafkaSettings(), ch, from_time=since, settle=not args.no_settle,
                                 force=args.force, report=None if args.quiet else stderr_progress))
    if not args.quiet:
        print(file=sys.stderr)
    _say(summary.describe() + f" into database {ch.database}")
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.credentials import Credentials

    password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("ocpp-pipeline credentials: read no password on standard input", file=sys.stderr)
        return 2
    Credentials.set_entry(Path(args.file), args.charge_point_id, password)
    _say(f"credentials for {args.charge_point_id} written to {args.file}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from ocpp_pipeline.dev import run_dev

    return run_dev(LocalKafkaSettings(), KafkaSettings(), ClickHouseSettings(), wait=not args.no_wait)


def _planned(name: str) -> Callable[[argparse.Namespace], int]:
    what, where = PLANNED[name]

    def run(args: argparse.Namespace) -> int:
        print(f"ocpp-pipeline {name}: not built yet - {what}; it lands with {where}.", file=sys.stderr)
        return NOT_BUILT

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocpp-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="the local Apache Kafka broker (KRaft, one node)")
    kafka.add_argument("action", choices=["fetch", "start", "stop", "status"])
    kafka.set_defaults(func=cmd_kafka)

    topics = sub.add_parser("topics", help="Kafka topics of the pipeline")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=cmd_topics)

    db = sub.add_parser("db", help="ClickHouse schema")
    db.add_argument("action", choices=["migrate"])
    db.add_argument("--print-ddl", action="store_true", help="print the DDL instead of applying it")
    db.add_argument("--cluster", help="render or apply the cluster variant (ON CLUSTER, Replicated engines)")
    db.set_defaults(func=cmd_db)

    gateway = sub.add_parser("gateway", help="the OCPP 1.6J WebSocket gateway (frames to Kafka)")
    gateway.add_argument("--host", help="overrides OCPP_GATEWAY_HOST")
    gateway.add_argument("--port", type=int, help="overrides OCPP_GATEWAY_PORT")
    gateway.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    gateway.set_defaults(func=cmd_gateway)

    worker = sub.add_parser("worker", help="the Faust worker: frames to sessions, faults and status (ClickHouse, Kafka)")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    sql = sub.add_parser("sql", help="run a read-only query and print the result")
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

    credentials = sub.add_parser("credentials", help="Basic-auth secrets of chargers (security profiles 1-2)")
    credentials.add_argument("action", choices=["set"])
    credentials.add_argument("charge_point_id")
    credentials.add_argument("--file", required=True, help="the credentials file (OCPP_GATEWAY_CREDENTIALS_FILE)")
    credentials.set_defaults(func=cmd_credentials)

    settings = sub.add_parser("settings", help="print every OCPP_* variable with its default")
    settings.set_defaults(func=cmd_settings)

    dev = sub.add_parser("dev", help="everything on this machine: broker, topics, gateway, worker, embedded ClickHouse")
    dev.add_argument("--no-wait", action="store_true", help="set up and return instead of running until Ctrl-C")
    dev.set_defaults(func=cmd_dev)

    for name, (what, where) in PLANNED.items():
        planned = sub.add_parser(name, help=f"{what} [not built yet: {where}]")
        planned.add_argument("rest", nargs=argparse.REMAINDER)
        planned.set_defaults(func=_planned(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (InfraError, RuntimeError) as exc:
        print(f"ocpp-pipeline {args.command}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a setting from the environment is wrong
        print(f"ocpp-pipeline {args.command}: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
