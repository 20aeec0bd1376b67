"""What the commands print: tables (rich), CSV, JSON lines, progress bars."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from ocpp_pipeline.output import Rows, progress, render


def test_table_aligns_numbers_right_and_counts_rows() -> None:
    result = Rows(["charge_point_id", "kwh", "flags"], [["CP-1", 12.5, ["a", "b"]], ["CP-22", None, []]])
    assert render(result).splitlines() == [
        "charge_point_id │  kwh │ flags",
        "────────────────┼──────┼───────",
        "CP-1            │ 12.5 │ [a, b]",
        "CP-22           │ NULL │ []",
        "(2 rows)",
    ]


def test_values_are_never_read_as_markup() -> None:
    text = render(Rows(["v"], [["[bold]x[/bold]"], ["[/]"]]))
    assert "[bold]x[/bold]" in text and "[/]" in text


def test_wide_rows_are_not_wrapped() -> None:
    wide = "x" * 500
    assert render(Rows(["a", "b"], [[wide, 1]])).splitlines()[2].startswith(wide)


def test_csv_and_json_lines() -> None:
    result = Rows(["a", "t", "n"], [[1, datetime(2025, 1, 2, 3, 4, 5), None], [2, "x", 0.5]])
    assert render(result, "csv") == "a,t,n\n1,2025-01-02 03:04:05,\n2,x,0.5"
    # one JSON object per line, as `sql --format json` has always printed (other tools parse it)
    assert render(result, "json") == '{"a": 1, "t": "2025-01-02 03:04:05", "n": null}\n{"a": 2, "t": "x", "n": 0.5}'
    assert render(Rows(["a"], []), "json") == ""


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="table, csv, json"):
        render(Rows(["a"], []), "xml")


def test_progress_reports_done_of_total() -> None:
    out = io.StringIO()
    with progress("replay", file=out) as report:
        report(0, 10)
        report(10, 10)
    assert "10/10" in out.getvalue() and "100%" in out.getvalue()
