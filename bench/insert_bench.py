"""The ClickHouse sink's insert (:meth:`processors.clickhouse_sink.ClickHouseSink.insert_now`) against the same
insert with the driver describing each table first (the column types not given), in the same run: CPU of inserting
the rows the processor made of the same synthetic fleet (``bench.worker_bench.charger_day``) into a chDB of its own,
interleaved rounds, best of each, and the ratio. The CPU is the process's: the driver's Python and the embedded
engine's threads.

    .venv/bin/python -m bench.insert_bench --chargers 200 --rounds 15
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.worker_bench import charger_day
from infra import clickhouse
from infra.settings import ClickHouseSettings
from processors.clickhouse_sink import COLUMNS, ClickHouseSink
from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig


def fleet_rows(chargers: int, sessions: int) -> tuple[int, dict[str, list[list[Any]]]]:
    """(frames, the processor's rows by table) of the synthetic fleet."""
    records = [(e.key(), e.model_dump_json().encode()) for n in range(chargers) for e in charger_day(n, sessions).envelopes]
    states: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get)
    for offset, (key, value) in enumerate(records):
        processor.process(0, offset, key, value, 0)
    return len(records), {table: rows for table, rows in processor.take().rows.items() if rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=3, help="sessions per charger")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    frames, rows = fleet_rows(args.chargers, args.sessions)
    with tempfile.TemporaryDirectory(prefix="insert-bench-") as folder:
        settings = ClickHouseSettings(dsn=f"chdb://{folder}")
        client = clickhouse.connect(settings)
        clickhouse.migrate(client, settings.database)
        sink = ClickHouseSink(client, settings.database)

        def described(table: str, table_rows: list[list[Any]], token: str) -> None:  # the insert before: types looked up
            client.insert(table, list(zip(*table_rows)), column_names=COLUMNS[table], database=settings.database,
                          column_oriented=True, settings={"insert_deduplication_token": token,
                                                          "deduplicate_blocks_in_dependent_materialized_views": 1})

        sides: dict[str, Callable[[str, list[list[Any]], str], None]] = {"described": described, "sink": sink.insert_now}
        best = dict.fromkeys(sides, float("inf"))
        for round_ in range(args.rounds + 1):  # the first round warms up both
            for name, insert in sides.items():
                started = time.process_time()
                for table, table_rows in rows.items():
                    insert(table, table_rows, f"{name}-{round_}:{table}")
                if round_:
                    best[name] = min(best[name], time.process_time() - started)
        client.close()
    print(f"{frames:,} frames, rows {', '.join(f'{t} {len(r):,}' for t, r in rows.items())}")
    for name, cpu in best.items():
        print(f"{name:>9}: {cpu * 1000:7.1f} ms CPU ({cpu / frames * 1e6:.2f} us per frame)")
    print(f"ratio (described / sink): {best['described'] / best['sink']:.3f}")


if __name__ == "__main__":
    main()
