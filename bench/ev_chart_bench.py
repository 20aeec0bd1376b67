"""EV-ChART export benchmark: how fast the three modules are built and written from facts already read.

N sessions on 2 ports of C chargers in one quarter (a quarter of real-looking sessions: most with a power
sample, a third without, three token types, three failures), the trailing year's ports, no outage. The
baseline, in the same run, formats the same number of 14-cell rows with f-strings and writes them with the
csv module: the least any CSV export does. The ratio is the export's time over the baseline's; the database
queries are not in it (they are ClickHouse's).

    .venv/bin/python -m bench.ev_chart_bench --sessions 200000 --chargers 2000
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import tempfile
import time
from pathlib import Path

from kpi.ev_chart import ExportFacts, Quarter, build_modules, write_modules
from kpi.ev_chart_rows import SessionFacts
from kpi.stations import parse_stations
from kpi.uptime import Port, UptimeInputs

QUARTER = Quarter.parse("2026Q3")


def quarter_facts(sessions: int, chargers: int, seed: int = 1) -> ExportFacts:
    rnd = random.Random(seed)
    cps = [f"CP-{i:06d}" for i in range(chargers)]
    span = QUARTER.span
    facts = []
    for i in range(sessions):
        start = span.start_ms + rnd.randrange(span.end_ms - span.start_ms - 10**7)
        length = rnd.randrange(600_000, 7_200_000)
        facts.append(SessionFacts(
            charge_point_id=rnd.choice(cps), connector_id=rnd.choice((1, 2)), session_id=f"{i:016x}",
            transaction_id=str(i), start_ms=start, stopped_ms=start + length, received_ms=start + length + 500,
            duration_s=length / 1000, clock_skew=False, energy_wh=rnd.random() * 60_000,
            peak_power_w=rnd.choice((None, 7400.0, 50_000.0)), charging_s=length / 1000 * 0.9,
            failure=rnd.choice(("", "", "", "no_energy", "stop_power_loss")), stop_reason="Local",
            id_token_type=rnd.choice(("", "ISO14443", "Central"))))
    ports = [Port(cp, c, span.start_ms - 10**10) for cp in cps for c in (1, 2)]
    return ExportFacts(facts, UptimeInputs(ports, [], []))


def baseline(facts: ExportFacts, out: Path) -> None:
    rows = [[s.charge_point_id, str(s.connector_id), s.session_id, str(s.start_ms), str(s.stopped_ms), s.failure or "",
             f"{(s.energy_wh or 0) / 1000:.2f}", f"{(s.peak_power_w or 0) / 1000:.2f}", s.id_token_type, "", "", "",
             "", ""] for s in facts.sessions]
    with (out / "baseline.csv").open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--chargers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    facts = quarter_facts(args.sessions, args.chargers)
    text = io.StringIO("charge_point_id,connector_id,station_id,port_id,network_provider\n")
    text.seek(0, io.SEEK_END)
    for cp in {s.charge_point_id for s in facts.sessions} | {p.charge_point_id for p in facts.uptime.ports}:
        text.write(f"{cp},1,ST-{cp},ST-{cp}-1,acme_network\n{cp},2,ST-{cp},ST-{cp}-2,acme_network\n")
    stations = parse_stations(text.getvalue())
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            t0 = time.perf_counter()
            baseline(facts, out)
            base = time.perf_counter() - t0
            t0 = time.perf_counter()
            write_modules(build_modules(facts, QUARTER, stations, QUARTER.span.end_ms), out)
            took = time.perf_counter() - t0
        print(f"round {n + 1}: {args.sessions:,} sessions, {2 * args.chargers:,} ports: baseline {base:.2f} s, "
              f"export {took:.2f} s ({args.sessions / took:,.0f} sessions/s), ratio {took / base:.2f}")


if __name__ == "__main__":
    main()
