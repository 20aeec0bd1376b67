"""The reliability dashboard (infra/grafana/ocpp-reliability.json): every query runs on the real engine,
and the uptime panel says what ``report uptime`` says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kpi.intervals import Span
from kpi.source import ClientSource
from kpi.uptime import uptime_report
from tests.kpi.helpers import (
    attempt, insert_attempts, insert_exclusions, insert_outages, insert_sessions, insert_status, ms, outage, session,
)
from tests.kpi.test_exclusions import excl

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "ocpp-reliability.json"
FROM, TO = "2026-07-01 00:00:00", "2026-07-02 00:00:00"


def expand(sql: str, database: str) -> str:
    """Grafana's ClickHouse macros and the charger variable, as the plugin expands them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 rf"\1 >= toDateTime('{FROM}', 'UTC') AND \1 <= toDateTime('{TO}', 'UTC')", sql)
    sql = sql.replace("$__fromTime", f"toDateTime('{FROM}', 'UTC')").replace("$__toTime", f"toDateTime('{TO}', 'UTC')")
    sql = sql.replace("${charger:singlequote}", "'CP-1', 'CP-2'")
    assert "$" not in sql, sql
    return sql.replace("ocpp.", f"`{database}`.")


def queries() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = {p["title"]: t["rawSql"] for p in dashboard["panels"] for t in p["targets"]}
    found |= {f"variable {v['name']}": v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"}
    return found


def test_every_panel_uses_the_clickhouse_plugin() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert {t["datasource"]["type"] for p in dashboard["panels"] for t in p["targets"]} == {"grafana-clickhouse-datasource"}
    assert len(queries()) >= 8


def test_every_query_runs_and_the_panels_agree_with_the_reports(chdb_client, database: str) -> None:
    insert_status(chdb_client, database, "CP-1", 1, -60)
    insert_status(chdb_client, database, "CP-1", 2, 720)
    insert_status(chdb_client, database, "CP-2", 1, -60)
    insert_outages(chdb_client, database, [outage("CP-1", 1, 100, 172, outage_id="a"),
                                           outage("CP-1", 1, 300, 400, outage_id="b"),
                                           outage("CP-2", 1, 1400, None, outage_id="c")])
    insert_exclusions(chdb_client, database, [excl(1, 136, 320)])
    insert_exclusions(chdb_client, database, [excl(0, 150, 200)])  # overlaps the first: counted once
    insert_attempts(chdb_client, database, [attempt("CP-1", 1, 10, delivered=True, ended_ok=True, delay_s=5),
                                            attempt("CP-1", 1, 20, delivered=True, ended_ok=False, failure="stop_other"),
                                            attempt("CP-2", 1, 30, delivered=False, ended_ok=False, failure="no_energy")])
    blocked = session("CP-1", 1, 10, 70, 5000.0, "s1").model_copy(update={"blocked_after_stop_s": 600.0})
    insert_sessions(chdb_client, database, [blocked])
    results = {title: chdb_client.query(expand(sql, database)).result_rows for title, sql in queries().items()}

    uptime = results["Port uptime, worst first (NEVI: > 97 %)"]
    report = uptime_report(ClientSource(chdb_client), database, Span(ms(0), ms(1440)), now_ms=ms(10**6))
    assert [tuple(r) for r in uptime] == sorted(
        ((r.charge_point_id, r.connector_id, r.period_minutes, r.outage_minutes, r.excluded_minutes, r.uptime_pct)
         for r in report), key=lambda r: (r[5], r[0], r[1]))
    assert uptime[0][:2] == ("CP-1", 1) and uptime[0][4] == 36 + 20  # worst first; excluded minutes counted once
    assert results["Attempt funnel: attempts, deliveries, ok stops"] == [(3, 2, 1)]
    assert dict(results["Attempt outcomes (failure codes)"]) == {"ok": 1, "stop_other": 1, "no_energy": 1}
    assert results["Chargers blocked longest after stops"] == [("CP-1", 1, 0.17, 10.0)]
    # Outage a (100-172) is named by the exclusion that begins first (136-320), b (300-400) by the same one.
    assert results["Excluded outages by reason (EV-ChART; the exclusion that names each outage)"] == [
        ("scheduled_maintenance", 2, 2.87)]
    assert [r[0] for r in results["variable charger"]] == ["CP-1"]  # CP-2 reported nothing in the range
