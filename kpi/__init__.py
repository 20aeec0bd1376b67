"""Reliability KPIs read from the pipeline's tables (KPIS.md): port uptime (NEVI), charge success
(ChargeX), the EV-ChART export, and the operator's outage exclusions.

Pure rules (:mod:`kpi.intervals`, the row builders of each report) are kept apart from the few
functions that query ClickHouse, so every rule is tested on plain values.
"""
