"""Everything the commands print as rows or progress, in one place, through ``rich`` (tables, progress
bars) and the standard library's ``csv`` / ``json``.

Formats: ``table`` (a rich table, for people), ``csv`` (header + rows), ``json`` (one JSON object per
line, keys in column order; the format ``sql --format json`` has always printed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Rows:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def cell(value: Any, null: str = "NULL") -> str:
    """A value as text: floats with at most 3 decimals, times ISO 8601 with a space, lists in brackets."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cell(v) for v in value) + "]"
    return str(value)


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def render_table(result: Rows) -> str:
    table = Table(box=box.SQUARE, pad_edge=False, show_edge=False, header_style="bold")
    for i, name in enumerate(result.columns):
        numeric = _numeric([row[i] for row in result.rows])
        table.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    for row in result.rows:
        table.add_row(*(Text(cell(v)) for v in row))  # Text: values are never read as rich markup
    buffer = io.StringIO()
    # A wide virtual terminal: rows are never wrapped or cut, whatever the real one's width.
    Console(file=buffer, width=10_000, color_system=None, legacy_windows=False).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines() if line.strip()]
    count = len(result.rows)
    return "\n".join(lines + [f"({count} row{'s' if count != 1 else ''})"])


def render_csv(result: Rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([[cell(v, null="") for v in row] for row in result.rows])
    return buffer.getvalue().rstrip("\n")


def render_json(result: Rows) -> str:
    return "\n".join(json.dumps(dict(zip(result.columns, row)), default=str) for row in result.rows)


_RENDERERS: dict[str, Callable[[Rows], str]] = {"table": render_table, "csv": render_csv, "json": render_json}


def render(result: Rows, fmt: str = "table") -> str:
    try:
        return _RENDERERS[fmt](result)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}") from None


def print_rows(result: Rows, fmt: str = "table", file: TextIO | None = None) -> None:
    text = render(result, fmt)
    if not text:
        return
    try:
        print(text, file=file or sys.stdout, flush=True)
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Point stdout at /dev/null so that the interpreter's
        # own flush at exit does not fail the same way.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@contextmanager
def progress(what: str, file: TextIO | None = None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on ``file`` (stderr): yields ``report(done, total)``. Redrawn in place on a
    terminal; elsewhere (a log, CI) drawn once when it ends."""
    console = Console(file=file or sys.stderr)
    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task(what, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report
