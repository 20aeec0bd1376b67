"""The EV-ChART stations file: what the OCPP stream cannot know about a port.

EV-ChART identifies a port by the ``station_id`` and ``port_id`` registered with the Joint Office
(module 1) and the ``network_provider`` operating it; OCPP only knows charge point ids and connector ids.
The operator maps one to the other in a CSV file, one row per port::

    charge_point_id,connector_id,station_id,port_id,network_provider,charger_id,default_payment_method
    CP-0001,1,ST-SPRINGFIELD-01,ST-SPRINGFIELD-01-A,acme_network,CP-0001,credit_card
    CP-0001,2,ST-SPRINGFIELD-01,ST-SPRINGFIELD-01-B,acme_network,CP-0001,credit_card

``charger_id`` may be left out (the charge point id is used). ``station_id`` and ``port_id`` are at most
36 characters, ``network_provider`` at most 30, ``charger_id`` 36 (EV-ChART's column sizes). A port is named
once: two rows naming the same EV-ChART port (``station_id``, ``network_provider``, ``port_id``) would give
EV-ChART two uptime rows for it.

``default_payment_method`` (optional, one of :class:`~kpi.ev_chart_codes.PaymentMethod`) is the port's EV-ChART
``payment_method`` for the sessions whose charger does not say how the driver paid (OCPP 1.6 idTags; 2.0.1
tokens of type Local): a station with a card reader, a free one. ``other`` needs ``default_payment_other`` (what
it is, at most 255 characters). Columns the file does not know are an error (a misspelt one would be ignored).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kpi.errors import StationsFileError
from kpi.ev_chart_codes import MAX_TEXT, Payment, PaymentMethod

REQUIRED = ("charge_point_id", "connector_id", "station_id", "port_id", "network_provider")
OPTIONAL = ("charger_id", "default_payment_method", "default_payment_other")
_MAX_LENGTH = {"station_id": 36, "port_id": 36, "network_provider": 30, "charger_id": 36,
               "default_payment_other": MAX_TEXT}
_HEADER = f"{','.join(REQUIRED)}[,{','.join(OPTIONAL)}]"

PortKey = tuple[str, int]


@dataclass(frozen=True)
class StationPort:
    station_id: str
    port_id: str
    network_provider: str
    charger_id: str
    default_payment: Payment | None = None  # payment_method where the charger does not tell


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
                f"in the data: {shown}{more} (add a row per port: {_HEADER})")


def parse_stations(text: str, name: str = "stations file") -> Stations:
    """Rows of the CSV above, checked: every error names its line and field."""
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    absent = [f for f in REQUIRED if f not in header]
    if absent:
        raise StationsFileError(f"{name}: missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
                                f"(the header must name {_HEADER})")
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL]
    if unknown:
        raise StationsFileError(f"{name}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                                f"(the columns are {_HEADER})")
    ports: dict[PortKey, StationPort] = {}
    lines: dict[tuple[str, str, str], int] = {}  # EV-ChART's port -> the line naming it
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        if not any(row.values()):
            continue
        problem = _row_problem(row)
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        key = (row["charge_point_id"], int(row["connector_id"]))
        if key in ports:
            problems.append(f"line {line}: {key[0]} connector {key[1]} is listed twice")
            continue
        port = (row["station_id"], row["network_provider"], row["port_id"])
        if port in lines:
            problems.append(f"line {line}: station {port[0]} port {port[2]} ({port[1]}) is already line {lines[port]}'s "
                            f"(one row per EV-ChART port)")
            continue
        lines[port] = line
        ports[key] = StationPort(row["station_id"], row["port_id"], row["network_provider"],
                                 row.get("charger_id") or row["charge_point_id"], _default_payment(row))
    if problems:
        raise StationsFileError(f"{name}: " + "; ".join(problems))
    return Stations(ports)


def _row_problem(row: dict[str, str]) -> str:
    """What is wrong with a row, '' if nothing."""
    empty = [f for f in REQUIRED if not row.get(f)]
    if empty:
        return f"empty {', '.join(empty)}"
    try:
        connector = int(row["connector_id"])
    except ValueError:
        return f"connector_id {row['connector_id']!r} is not a number"
    if connector < 1:
        return f"connector_id {connector}: ports are numbered from 1"
    too_long = [f"{f} longer than {n}" for f, n in _MAX_LENGTH.items() if len(row.get(f, "")) > n]
    if too_long:
        return f"{', '.join(too_long)} characters"
    if not row.get("charger_id") and len(row["charge_point_id"]) > _MAX_LENGTH["charger_id"]:
        return (f"charger_id longer than {_MAX_LENGTH['charger_id']} characters: it is the charge point id when "
                f"left out; give one")
    control = [f for f, v in row.items() if any(not c.isprintable() for c in v)]
    if control:
        return f"{', '.join(control)}: control characters"
    method = row.get("default_payment_method", "")
    if method and method not in set(PaymentMethod):
        return (f"default_payment_method {method!r} is not one of {', '.join(PaymentMethod)} "
                f"(EV-ChART's payment methods)")
    if (method == PaymentMethod.OTHER) != bool(row.get("default_payment_other")):
        return ("default_payment_method other needs default_payment_other (what it is)"
                if method == PaymentMethod.OTHER else "default_payment_other describes default_payment_method other "
                                                      "only")
    return ""


def _default_payment(row: dict[str, str]) -> Payment | None:
    method = row.get("default_payment_method")
    return Payment(PaymentMethod(method), row.get("default_payment_other", "")) if method else None


def load_stations(path: Path | None) -> Stations:
    if path is None:
        raise StationsFileError(
            "EV-ChART needs station_id, port_id and network_provider for every port, which OCPP does not carry: "
            f"pass --stations FILE (CSV, one row per port: {_HEADER}; see README)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StationsFileError(f"cannot read the stations file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StationsFileError(f"the stations file {path} is not UTF-8 text") from None
    return parse_stations(text, str(path))
