"""Bytes per frame on disk: the ``frames`` table (and the other event tables) under each column codec choice,
measured on a simulated fleet's real frames, with the insert speed each choice costs.

    .venv/bin/python -m bench.frames_size --record --chargers 250 --seconds 240   # record a fleet, then measure
    .venv/bin/python -m bench.frames_size --source .local/bench/fleet             # measure a recorded fleet again

``--record`` runs ``ocpp-pipeline dev`` (the local broker, the gateway, the worker, the embedded ClickHouse, the
simulator: the same frames a fleet sends, UUID message ids, OCPP 1.6 and 2.0.1) in a folder of its own on free
ports, until the simulator's run ends, and keeps that folder. The measurement then copies the recorded rows into
one table per candidate (same sort key and partitioning as the real table), merges each to one part per
partition (``OPTIMIZE ... FINAL``: what ClickHouse does over time) and reads the sizes from the outside:
``system.parts`` (bytes on disk, rows) and ``system.columns`` (compressed bytes per column).

Insert speed: the rows are inserted again, in the worker's batch size (``OCPP_WORKER_FLUSH_ROWS``) through the
same client call the sink uses, into the table as migration 1 made it and as it is now; the ratio of the two is
what the codecs cost the worker's inserts (both measured in this run, alternating, best of ``--rounds``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLEET = ROOT / ".local" / "bench" / "fleet"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(home: Path, chargers: int, seconds: float, time_scale: float) -> None:
    """A simulated fleet through the whole pipeline into ``home``'s embedded ClickHouse (``dev``, stopped by its
    pid once the simulator's run is over and the worker has written what it read)."""
    from infra.settings import LocalKafkaSettings
    from ocpp_pipeline.dev import Child

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    project = LocalKafkaSettings(home=ROOT / ".local")
    libs = LocalKafkaSettings(home=home).libs_dir
    libs.parent.mkdir(parents=True, exist_ok=True)
    libs.symlink_to(project.libs_dir.resolve())
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    env |= {"OCPP_HOME": str(home), "OCPP_LOCAL_KAFKA_PORT": str(_free_port()),
            "OCPP_LOCAL_KAFKA_CONTROLLER_PORT": str(_free_port()), "OCPP_GATEWAY_PORT": str(_free_port()),
            "OCPP_WORKER_WEB_PORT": str(_free_port())}
    dev = Child("dev", ["dev", "--chargers", str(chargers), "--time-scale", repr(time_scale), "--duration", repr(seconds)],
                env, home)  # logs to home/dev.log
    started = time.monotonic()
    try:
        # dev goes on after a simulator that ended well, and stops itself after one that did not (a charger that
        # could not finish on an overloaded machine): either way the frames are written by then.
        while dev.proc.poll() is None:
            time.sleep(2)
            if "simulator finished" in dev.log_path.read_text(errors="replace"):
                time.sleep(15)  # the worker's last flushes
                break
            if time.monotonic() - started > 2 * seconds + 900:  # an overloaded machine ends the fleet slowly
                raise RuntimeError(f"the recording did not finish; see {dev.log_path}")
    finally:
        dev.stop(timeout_s=120)
    print(f"recorded {chargers} chargers for {seconds:g} s (time scale {time_scale:g}) in {home}", flush=True)


# Candidates per kind of column, cheapest first: a candidate must save more than TIE of the column's bytes to
# be preferred to a cheaper one before it.
TIE = 0.03
TIE_BYTES = 0.05  # ... or fewer bytes per row than this
CANDIDATES: dict[str, tuple[str, ...]] = {
    "time": ("", "ZSTD(1)", "Delta, ZSTD(1)", "DoubleDelta, ZSTD(1)", "T64, ZSTD(1)"),
    "integer": ("", "ZSTD(1)", "Delta, ZSTD(1)", "DoubleDelta, ZSTD(1)", "T64, ZSTD(1)"),
    "float": ("", "ZSTD(1)", "Gorilla, ZSTD(1)"),
    "text": ("", "ZSTD(1)", "ZSTD(3)", "ZSTD(6)", "ZSTD(9)"),
    "small": ("", "ZSTD(1)"),
}


def kind_of(column_type: str) -> str:
    inner = column_type.removeprefix("Nullable(").removesuffix(")")
    if inner.startswith("DateTime64") or inner == "Date":
        return "time"
    if inner in ("UInt32", "UInt64", "Int64"):
        return "integer"
    if inner == "Float64":
        return "float"
    if inner == "String":
        return "text"
    return "small"  # LowCardinality, Array(LowCardinality), Bool, UInt8


@dataclass(frozen=True)
class TableSize:
    rows: int
    bytes_on_disk: int  # system.parts: data, marks, primary index, checksums
    columns: dict[str, int]  # system.columns: compressed bytes per column

    @property
    def per_row(self) -> float:
        return self.bytes_on_disk / max(self.rows, 1)


def _with_codecs(table: Any, name: str, codecs: dict[str, str]) -> Any:
    from dataclasses import replace

    columns = tuple(replace(c, codec=codecs.get(c.name, ""), codec_since=0) for c in table.columns)
    return replace(table, name=name, columns=columns)


def size_of(client: Any, database: str, name: str) -> TableSize:
    params = {"db": database, "t": name}
    rows, on_disk = client.query("SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = %(db)s "
                                 "AND table = %(t)s AND active", parameters=params).result_rows[0]
    columns = dict(client.query("SELECT name, data_compressed_bytes FROM system.columns WHERE database = %(db)s "
                                "AND table = %(t)s", parameters=params).result_rows)
    return TableSize(int(rows or 0), int(on_disk or 0), {k: int(v) for k, v in columns.items()})


def load(client: Any, source: str, scratch: str, table: Any, name: str, codecs: dict[str, str], *,
         wide: bool = False) -> TableSize:
    """``table``'s recorded rows in a table of its own with ``codecs``, merged as ClickHouse would over time.
    ``wide``: every part in the wide format (a file per column), as parts of a large table are: a small table's
    compact parts report no per-column sizes."""
    from schemas import ddl
    from schemas.migrations import LATEST_VERSION

    shaped = _with_codecs(table, name, codecs)
    client.command(f"DROP TABLE IF EXISTS `{scratch}`.`{name}`")
    for statement in ddl.create_table(shaped, scratch, ddl.Embedded(), at_version=LATEST_VERSION):
        client.command(statement)
    if wide:
        client.command(f"ALTER TABLE `{scratch}`.`{name}` MODIFY SETTING min_bytes_for_wide_part = 0")
    names = ", ".join(f"`{c.name}`" for c in table.columns)
    client.command(f"INSERT INTO `{scratch}`.`{name}` ({names}) SELECT {names} FROM `{source}`.`{table.name}`")
    client.command(f"OPTIMIZE TABLE `{scratch}`.`{name}` FINAL")
    return size_of(client, scratch, name)


def choose(table: Any, client: Any, source: str, scratch: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Per column, the cheapest candidate within :data:`TIE` of the smallest; and every candidate's bytes.

    Columns are compressed one by one, so round k gives every column its k-th candidate at once."""
    lists = {c.name: CANDIDATES[kind_of(c.type)] for c in table.columns}
    measured: dict[str, dict[str, int]] = {name: {} for name in lists}
    for k in range(max(len(v) for v in lists.values())):
        codecs = {name: options[min(k, len(options) - 1)] for name, options in lists.items()}
        size = load(client, source, scratch, table, f"{table.name}_round{k}", codecs, wide=True)
        for name, codec in codecs.items():
            measured[name].setdefault(codec, size.columns[name])
        client.command(f"DROP TABLE `{scratch}`.`{table.name}_round{k}`")
    chosen = {}
    for name, options in lists.items():
        best = min(measured[name].values())
        rows = size.rows
        chosen[name] = next(c for c in options
                            if measured[name][c] <= best * (1 + TIE) or (measured[name][c] - best) / rows < TIE_BYTES)
    return chosen, measured


def insert_seconds(client: Any, scratch: str, table: Any, name: str, codecs: dict[str, str], rows: list[Any],
                   batch: int) -> float:
    """CPU seconds (this process: the client and the embedded engine compressing) to insert ``rows`` in batches of
    ``batch`` (the sink's call, one dedup token per batch) into a fresh table with ``codecs``."""
    from schemas import ddl
    from schemas.migrations import LATEST_VERSION

    client.command(f"DROP TABLE IF EXISTS `{scratch}`.`{name}`")
    for statement in ddl.create_table(_with_codecs(table, name, codecs), scratch, ddl.Embedded(),
                                      at_version=LATEST_VERSION):
        client.command(statement)
    names = list(table.column_names)
    started = time.process_time()  # CPU of this process, the engine's threads included: what a worker would spend
    for i in range(0, len(rows), batch):
        client.insert(name, rows[i:i + batch], column_names=names, database=scratch,
                      settings={"insert_deduplication_token": f"{name}-{i}"})
    elapsed = time.process_time() - started
    client.command(f"DROP TABLE `{scratch}`.`{name}`")
    return elapsed


def insert_speeds(client: Any, source: str, scratch: str, table: Any, measured: dict[str, dict[str, int]], rounds: int,
                  batch: int) -> None:
    """Insert speed of the frames (in arrival order, in the worker's batches) with LZ4 everywhere, with the schema's
    codecs, and with the schema's codecs but each candidate for ``raw`` (the column that holds nearly all bytes):
    rounds alternate between them, best of ``rounds`` each."""
    data = client.query(f"SELECT {', '.join(table.column_names)} FROM `{source}`.`{table.name}` "
                        f"ORDER BY received_at").result_rows
    rows = len(data)
    schemas = {"LZ4 everywhere": {}, "the schema's codecs": current_codecs(table)}
    for codec in measured["raw"]:
        schemas[f"schema's, raw {codec or 'LZ4'}"] = current_codecs(table) | {"raw": codec}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label, codecs in schemas.items():
            seconds = insert_seconds(client, scratch, table, "ins", codecs, data, batch)
            best[label] = min(best.get(label, seconds), seconds)
    base = best["LZ4 everywhere"]
    print(f"insert cost, {rows:,} frames in batches of {batch:,}, CPU time of the inserting process (the embedded "
          f"engine compresses in it), best of {rounds} (rounds alternate):\n")
    print("| schema | rows per CPU-second | vs LZ4 everywhere | raw B/row |")
    print("|---|---|---|---|")
    for label, seconds in best.items():
        raw = measured["raw"].get(schemas[label].get("raw", ""), 0) / max(rows, 1)
        print(f"| {label} | {rows / seconds:,.0f} | {base / seconds:.2f}x | {raw:.2f} |")
    print()


def current_codecs(table: Any) -> dict[str, str]:
    from schemas.migrations import LATEST_VERSION

    return {c.name: c.codec_at(LATEST_VERSION) for c in table.columns}


def report(source_dir: Path, rounds: int, batch: int, table_names: list[str]) -> None:
    import clickhouse_connect

    from schemas import tables

    client = clickhouse_connect.get_client(dsn=f"chdb://{source_dir / 'clickhouse'}")
    chosen_tables = [t for t in (tables.FRAMES, tables.CONNECTOR_STATUS, tables.SESSIONS, tables.FAULT_EVENTS,
                                 tables.CHARGE_ATTEMPTS, tables.PORT_OUTAGES) if t.name in table_names]
    source, scratch = "ocpp", "bench_codecs"
    client.command(f"CREATE DATABASE IF NOT EXISTS {scratch}")
    today = datetime.now(timezone.utc).date().isoformat()
    print(f"# frames size, {today}: {source_dir}\n")
    for table in chosen_tables:
        rows = client.query(f"SELECT count() FROM `{source}`.`{table.name}`").result_rows[0][0]
        if not rows:
            continue
        before = load(client, source, scratch, table, f"{table.name}_lz4", {})
        now = load(client, source, scratch, table, f"{table.name}_now", current_codecs(table))
        chosen, measured = choose(table, client, source, scratch)
        best = load(client, source, scratch, table, f"{table.name}_chosen", chosen)
        print(f"## {table.name}: {before.rows:,} rows; bytes per row on disk: LZ4 everywhere {before.per_row:.2f}, "
              f"the schema's codecs {now.per_row:.2f}, this run's choice {best.per_row:.2f}\n")
        print("| column | LZ4 B/row | schema's codec | B/row | measured choice | every candidate (B/row) |")
        print("|---|---|---|---|---|---|")
        for column in table.columns:
            name = column.name
            cands = ", ".join(f"{c or 'LZ4'} {v / before.rows:.2f}" for c, v in measured[name].items())
            print(f"| `{name}` | {before.columns[name] / before.rows:.2f} | {current_codecs(table)[name] or 'LZ4'} | "
                  f"{now.columns[name] / now.rows:.2f} | {chosen[name] or 'LZ4'} | {cands} |")
        print()
        for name in (f"{table.name}_lz4", f"{table.name}_now", f"{table.name}_chosen"):
            client.command(f"DROP TABLE `{scratch}`.`{name}`")
        if table is tables.FRAMES:
            insert_speeds(client, source, scratch, table, measured, rounds, batch)
    client.command(f"DROP DATABASE {scratch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_FLEET, help="a recorded fleet's folder (OCPP_HOME)")
    parser.add_argument("--record", action="store_true", help="record a simulated fleet into --source first")
    parser.add_argument("--chargers", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=240.0, help="real seconds the simulator runs")
    parser.add_argument("--time-scale", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=3, help="insert-speed rounds per schema")
    parser.add_argument("--batch", type=int, default=5000, help="rows per insert (OCPP_WORKER_FLUSH_ROWS)")
    parser.add_argument("--tables", default="frames,connector_status,sessions,fault_events,charge_attempts,port_outages",
                        help="comma-separated tables to measure")
    args = parser.parse_args()
    if args.record:
        record(args.source.resolve(), args.chargers, args.seconds, args.time_scale)
    report(args.source.resolve(), args.rounds, args.batch, args.tables.split(","))


if __name__ == "__main__":
    main()
