"""What deriving an outage's exclusion at read time costs: ``port_outages_with_exclusions`` against reading
``port_outages FINAL`` alone (the stored column the sink used to fill), same rows, same run (a ratio, BENCHMARKS.md).

    .venv/bin/python -m bench.exclusion_view_bench [--chargers 20000] [--exclusions 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from infra import clickhouse
from infra.settings import ClickHouseSettings
from kpi.exclusions import new_exclusion
from schemas.records import ExclusionReason
from schemas.tables import OUTAGE_EXCLUSIONS, PORT_OUTAGES

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chargers", type=int, default=20_000)
    parser.add_argument("--outages", type=int, default=10, help="per port (2 ports per charger)")
    parser.add_argument("--exclusions", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    random.seed(1)
    with tempfile.TemporaryDirectory() as home:
        client = clickhouse.connect(ClickHouseSettings(home=Path(home)))
        clickhouse.migrate(client, "ocpp")
        rows = []
        for cp in range(args.chargers):
            for port in (1, 2):
                for n in range(args.outages):
                    start = T0 + timedelta(hours=random.uniform(0, 24 * 365))
                    rows.append([f"CP-{cp}", port, f"{cp}-{port}-{n}", start, start + timedelta(minutes=30), 1800.0,
                                 "faulted", "", "", "", 1])
        client.insert(PORT_OUTAGES.name, rows, column_names=list(PORT_OUTAGES.column_names), database="ocpp")
        exclusions = []
        for n in range(args.exclusions):
            start = T0 + timedelta(hours=random.uniform(0, 24 * 365))
            exclusions.append(new_exclusion(f"CP-{random.randrange(args.chargers)}", random.choice((0, 1, 2)), start,
                                            start + timedelta(hours=6), ExclusionReason.SCHEDULED_MAINTENANCE, "",
                                            recorded_at=T0, recorded_by="bench").row())
        client.insert(OUTAGE_EXCLUSIONS.name, exclusions, column_names=list(OUTAGE_EXCLUSIONS.column_names), database="ocpp")
        window = "started_at < '2026-07-01' AND (ended_at IS NULL OR ended_at > '2026-04-01')"
        queries = {
            "stored column (port_outages FINAL)": f"SELECT charge_point_id, connector_id, started_at, ended_at, outage_id, "
                                                  f"excluded_reason FROM ocpp.port_outages FINAL WHERE {window}",
            "derived (port_outages_with_exclusions)": f"SELECT charge_point_id, connector_id, started_at, ended_at, outage_id, "
                                                      f"excluded_reason FROM ocpp.port_outages_with_exclusions WHERE {window}",
        }
        times: dict[str, list[float]] = {name: [] for name in queries}
        for _ in range(args.repeat):
            for name, sql in queries.items():
                started = time.perf_counter()
                found = len(client.query(sql).result_rows)
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times["stored column (port_outages FINAL)"])
        print(f"{len(rows):,} outage rows, {len(exclusions):,} exclusions; a quarter's outages ({found:,} rows), "
              f"median of {args.repeat}")
        for name, values in times.items():
            print(f"  {name:42s} {statistics.median(values) * 1000:8.1f} ms  {statistics.median(values) / base:5.2f}x")
        client.close()


if __name__ == "__main__":
    main()
