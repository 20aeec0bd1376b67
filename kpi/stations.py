"""The EV-ChART stations file: what the OCPP stream cannot know about a port.

EV-ChART identifies a port by the ``station_id`` and ``port_id`` registered with the Joint Office
(module 1) and the ``network_provider`` operating it; OCPP only knows charge point ids and connector ids.
The operator maps one to the other in a CSV file, one row per port::

    charge_point_id,connector_id,station_id,port_id,network_provider,charger_id
    CP-0001,1,ST-SPRINGFIELD-01,ST-SPRINGFIELD-01-A,acme_network,CP-0001
    CP-0001,2,ST-SPRINGFIELD-01,ST-SPRINGFIELD-01-B,acme_network,CP-0001

``charger_id`` may be left out (the charge point id is used). ``station_id`` and ``port_id`` are at most
36 characters, ``network_provider`` at most 30 (EV-ChART's column sizes).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kpi.errors import StationsFileError

REQUIRED = ("charge_point_id", "connector_id", "station_id", "port_id", "network_provider")
OPTIONAL = ("charger_id",)
_MAX_LENGTH = {"station_id": 36, "port_id": 36, "network_provider": 30, "charger_id": 36}

PortKey = tuple[str, int]


@dataclass(frozen=True)
class StationPort:
    station_id: str
    port_id: str
    network_provider: str
    charger_id: str


@dataclass(frozen=True)
class Stations:
    ports: dict[PortKey, StationPort]

    def require(self, keys: Iterable[PortKey]) -> None:
        """:class:`StationsFileError` naming every port the export needs that the file lacks."""
        missing = sorted(set(keys) - set(self.ports))
        if missing:
            shown = ", ".join(f"{cp} connector {c}" for cp, c in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise StationsFileError(
                f"the stations file has no row for {len(missing)} port{'s' if len(missing) != 1 else ''} "
                f"in the data: {shown}{more} (add a row per port: {','.join(REQUIRED + OPTIONAL)})")


def parse_stations(text: str, name: str = "stations file") -> Stations:
    """Rows of the CSV above, checked: every error names its line and field."""
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    absent = [f for f in REQUIRED if f not in header]
    if absent:
        raise StationsFileError(f"{name}: missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
                                f"(the header must name {','.join(REQUIRED)}[,charger_id])")
    ports: dict[PortKey, StationPort] = {}
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        if not any(row.values()):
            continue
        empty = [f for f in REQUIRED if not row.get(f)]
        if empty:
            problems.append(f"line {line}: empty {', '.join(empty)}")
            continue
        try:
            connector = int(row["connector_id"])
        except ValueError:
            problems.append(f"line {line}: connector_id {row['connector_id']!r} is not a number")
            continue
        if connector < 1:
            problems.append(f"line {line}: connector_id {connector}: ports are numbered from 1")
            continue
        too_long = [f"{f} longer than {n}" for f, n in _MAX_LENGTH.items() if len(row.get(f, "")) > n]
        if too_long:
            problems.append(f"line {line}: {', '.join(too_long)} characters")
            continue
        key = (row["charge_point_id"], connector)
        if key in ports:
            problems.append(f"line {line}: {key[0]} connector {connector} is listed twice")
            continue
        ports[key] = StationPort(row["station_id"], row["port_id"], row["network_provider"],
                                 row.get("charger_id") or row["charge_point_id"])
    if problems:
        raise StationsFileError(f"{name}: " + "; ".join(problems))
    return Stations(ports)


def load_stations(path: Path | None) -> Stations:
    if path is None:
        raise StationsFileError(
            "EV-ChART needs station_id, port_id and network_provider for every port, which OCPP does not carry: "
            f"pass --stations FILE (CSV, one row per port: {','.join(REQUIRED)}[,charger_id]; see README)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StationsFileError(f"cannot read the stations file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StationsFileError(f"the stations file {path} is not UTF-8 text") from None
    return parse_stations(text, str(path))
