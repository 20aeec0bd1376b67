"""EV-ChART's upload validator for modules 2, 3 and 4, as ``<repo>/../shared/evchart/README.md`` states its rules,
over the official module definitions read from that folder at test time (never copied into the project).

The deployed EV-ChART validates against its central config (``central_config_modules_2_4.json``) with the flags
``database-central-config``, ``biz-magic`` and ``async-biz-magic-module-2/3/4`` on (the README): so a required
field may be empty where it says ``required_empty_allowed`` (datetimes and decimals in modules 2-4, strings in
module 2 only), module 2 rows are all-or-nothing, module 4's outage pair goes together, and the unique keys hold.
The file is read as EV-ChART reads it: ``str.splitlines``, a leading non-ASCII character (a byte order mark)
dropped, ``csv.reader``, blank rows dropped; a file without rows is refused (``check_df_required_fields``).
Module 3's "uptime empty only within a year of operation" needs the station registration and is not checked.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

EVCHART = Path(__file__).resolve().parents[2].parent / "shared" / "evchart"
MODULES = (2, 3, 4)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")
_NOT_VALIDATED = {"station_id", "station_uuid", "network_provider"}  # read by registration checks, not by type
_STATION_KEY = ("station_id", "network_provider")  # station_uuid: the registered station (id + provider)


@dataclass(frozen=True)
class Problem:
    module: int
    row: int | None  # 1-based data row (the header is row 0); None: the whole file
    column: str
    what: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        return f"module {self.module} {where} {self.column}: {self.what}"


@cache
def definitions(module: int) -> dict[str, dict[str, Any]]:
    """``field -> module_validation.default`` of the central config (what the deployed validator reads)."""
    if not EVCHART.is_dir():
        raise FileNotFoundError(f"EV-ChART's module definitions are not at {EVCHART}: the repository must sit beside "
                                f"shared/ (../shared/evchart)")
    config = json.loads((EVCHART / "central_config_modules_2_4.json").read_text())[f"module{module}_data_v3"]
    return {name: spec["module_validation"]["default"] for name, spec in config["schema"].items()
            if spec.get("module_validation", {}).get("default")}


@cache
def unique_key(module: int) -> tuple[str, ...]:
    config = json.loads((EVCHART / "central_config_modules_2_4.json").read_text())[f"module{module}_data_v3"]
    return tuple(config["unique_key_constraints"])


def module_json(module: int) -> dict[str, dict[str, Any]]:
    """``module_definitions/module{n}.json`` (the file the validator reads without the central config)."""
    fields = json.loads((EVCHART / f"module{module}.json").read_text())["fields"]
    return {f["field_name"]: {k: v for k, v in f.items() if k != "field_name"} for f in fields}


def read(text: str) -> list[list[str]]:
    lines = text.splitlines()
    if lines and lines[0] and not lines[0][0].isascii():
        lines[0] = lines[0][1:]
    return list(csv.reader(lines))


def _empty_allowed(module: int, datatype: str) -> bool:
    """Where the validator honours ``required_empty_allowed`` with the async-biz-magic flags of modules 2-4."""
    return datatype in ("datetime", "decimal") or (datatype == "string" and module == 2)


def validate(module: int, text: str) -> list[Problem]:
    """Every rule the file breaks; ``[]`` when EV-ChART would accept it."""
    fields = definitions(module)
    table = read(text)
    if not table:
        return [Problem(module, None, "", "no header")]
    header, rows = table[0], [r for r in table[1:] if "".join(r) != ""]
    problems = [Problem(module, None, c, "column missing") for c in ("station_id", "network_provider") if c not in header]
    problems += [Problem(module, None, name, "required column missing")
                 for name, spec in fields.items() if spec.get("required") and name not in header]
    problems += [Problem(module, None, c, "column twice") for c, n in Counter(header).items() if n > 1]
    problems += [Problem(module, None, c, "unknown column") for c in header if c not in fields and c not in _NOT_VALIDATED]
    if not rows:
        problems.append(Problem(module, None, "", "no rows (EV-ChART refuses an empty file)"))
    records = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            problems.append(Problem(module, number, "", f"{len(row)} cells for {len(header)} columns"))
            continue
        record = dict(zip(header, row))
        records.append((number, record))
        for name, value in record.items():
            if name in fields:
                problems += [Problem(module, number, name, what) for what in _cell(module, fields[name], value)]
    problems += _row_rules(module, records)
    problems += _unique(module, records)
    return problems


def _cell(module: int, spec: dict[str, Any], value: str) -> list[str]:
    datatype = spec["datatype"]
    if value == "":
        required = spec.get("required", datatype == "integer")  # the integer check's default is required
        allowed = spec.get("required_empty_allowed", False) and _empty_allowed(module, datatype)
        return ["required value empty"] if required and not allowed else []
    if datatype == "string":
        out = []
        if len(value) > spec.get("max_length", float("inf")):
            out.append(f"longer than {spec['max_length']}")
        if len(value) < spec.get("min_length", 1):
            out.append("too short")
        if spec.get("required") and value.isspace():
            out.append("only whitespace")
        return out
    if datatype == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return ["not an ISO 8601 time"]
        return [] if _DATETIME.match(value) else ["not YYYY-MM-DDTHH:MM:SS[.f][Z]"]
    if datatype == "decimal":
        try:
            number = float(value)
        except ValueError:
            return ["not a decimal"]
        integer_part, _, fraction = value.partition(".")
        digits = len(integer_part) - (1 if integer_part[:1] in ("-", "+") else 0)
        precision, scale = spec.get("max_precision", 11), spec.get("max_scale", 2)
        out = _range(spec, number)
        if digits > precision - scale:
            out.append(f"more than {precision - scale} digits before the point")
        if len(fraction) > scale:
            out.append(f"more than {scale} decimals")
        return out
    if datatype == "integer":
        try:
            return _range(spec, int(value))
        except ValueError:
            return ["not an integer"]
    if datatype == "boolean":
        return [] if value.upper() in ("TRUE", "FALSE") else ["not TRUE or FALSE"]
    return [f"unknown datatype {datatype}"]


def _range(spec: dict[str, Any], number: float) -> list[str]:
    out = []
    if number < spec.get("min_value", float("-inf")):
        out.append(f"below {spec['min_value']}")
    if number > spec.get("max_value", float("inf")):
        out.append(f"above {spec['max_value']}")
    return out


def _row_rules(module: int, records: list[tuple[int, dict[str, str]]]) -> list[Problem]:
    out = []
    if module == 2:  # validate_m2.validate_empty_session
        required = [n for n, s in definitions(2).items() if s.get("required") and s.get("required_empty_allowed")]
        for number, record in records:
            rest = [v for k, v in record.items() if k not in ("station_id", "port_id", "network_provider", "station_uuid",
                                                              "upload_id")]
            no_data = len(set(rest)) == 1 and record.get("session_id") == ""
            if not no_data:
                out += [Problem(2, number, n, "empty in a session row (all of them or none)")
                        for n in required if record.get(n, "") == ""]
    if module == 4:  # validate_m4.validate_empty_outage
        for number, record in records:
            if (record.get("outage_id", "") == "") != (record.get("outage_duration", "") == ""):
                out.append(Problem(4, number, "outage_id", "outage_id and outage_duration go together"))
    return out


def _unique(module: int, records: list[tuple[int, dict[str, str]]]) -> list[Problem]:
    key = [*_STATION_KEY, *(k for k in unique_key(module) if k != "station_uuid")]
    seen: dict[tuple[str, ...], int] = {}
    out = []
    for number, record in records:
        value = tuple(record.get(k, "") for k in key)
        if value in seen:
            out.append(Problem(module, number, ",".join(key), f"same key as row {seen[value]}"))
        seen.setdefault(value, number)
    return out


def module_of(path: Path) -> int:
    """The module a file of the export holds (``module2_sessions_2026Q3.csv`` -> 2)."""
    return int(path.name.removeprefix("module")[0])


def problems_in(files: list[Path] | tuple[Path, ...]) -> list[Problem]:
    return [p for f in files for p in validate(module_of(f), f.read_text(encoding="utf-8"))]
