"""Hold the reliability tables against what the simulated chargers did (``KPIS.md``).

Pure functions over the ground truth of :mod:`simulator.incidents` (read back from ``--expected``
with :func:`load_truth`) and plain rows read from ClickHouse (``port_outages FINAL``,
``charge_attempts FINAL``, ``sessions FINAL``). They return typed :class:`Mismatch` values, an empty
list when the pipeline agrees.

**Clocks.** The truth is stamped by the simulator's clock when a message was answered or a
connection opened or closed; the pipeline stamps the gateway's clock when the frame or connection
event arrived. On one machine these differ by the answer latency and scheduling delays, so every
boundary is compared within :attr:`Tolerance.time_s`. Down intervals closer than
:attr:`Tolerance.merge_gap_s` (a status queued while offline arrives a few ms after the reconnect)
are merged on both sides before the comparison, since which side of such a gap a frame fell is
a matter of milliseconds, not of the rules. A gap close to that limit is measured differently by the two
clocks: when it is within :attr:`Tolerance.merge_slack_s` of the limit, the truth is merged there as
the rows have it (the port down in the gap's middle, or not), and only gaps clearly on one side decide.

**Outages** are derived from the truth by KPIS.md's rule, independently of the worker: a port is down
while its charger is offline (between a connection's close and the next open; after the last close,
still), while it reports Faulted / Unavailable, or while connector 0 does; the union of these is one
outage named by its first cause; a port counts from its first report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from simulator.expectations import MismatchKind, by_transaction, pair
from simulator.incidents import (AUTHORIZE_WINDOW_S, AttemptKind, ExpectedAttempt, ExpectedConnection, ExpectedDown,
                                 ExpectedPort)

# KPIS.md: when several causes begin at the same frame, the first of these names the outage.
CAUSE_ORDER = ("offline", "faulted", "unavailable", "station_faulted", "station_unavailable")
DOWN_CAUSE = {(False, "Faulted"): "faulted", (False, "Unavailable"): "unavailable",
              (True, "Faulted"): "station_faulted", (True, "Unavailable"): "station_unavailable"}


@dataclass(frozen=True)
class Tolerance:
    time_s: float = 2.0  # a boundary by the simulator's clock vs the gateway's (latency, a busy machine)
    merge_gap_s: float = 1.0  # down intervals this close are one outage on both sides
    # ... and a gap this close to merge_gap_s may fall on either side of it: its two ends are stamped by two
    # clocks, with two messages' latencies (the pipeline saw 1.006 s where the simulator had 0.998 s).
    merge_slack_s: float = 0.5

    @property
    def time_ms(self) -> int:
        return int(self.time_s * 1000)


@dataclass(frozen=True)
class Mismatch:
    table: str
    kind: MismatchKind
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.table}: {self.kind} {self.key}: {self.detail}"


@dataclass
class Truth:
    """The KPI ground truth of a simulator run."""

    connections: list[ExpectedConnection] = field(default_factory=list)
    downs: list[ExpectedDown] = field(default_factory=list)
    ports: list[ExpectedPort] = field(default_factory=list)
    attempts: list[ExpectedAttempt] = field(default_factory=list)

    @property
    def charge_point_ids(self) -> set[str]:
        return {p.charge_point_id for p in self.ports} | {c.charge_point_id for c in self.connections}


def load_truth(path: Path) -> Truth:
    """The KPI lines of an expectations file (``simulate --expected``)."""
    truth = Truth()
    for line in path.read_text().splitlines():
        row = json.loads(line)
        kind = row.pop("kind")
        if kind == "connection":
            truth.connections.append(ExpectedConnection(**row))
        elif kind == "down":
            truth.downs.append(ExpectedDown(**row))
        elif kind == "port":
            truth.ports.append(ExpectedPort(**row))
        elif kind == "attempt":
            truth.attempts.append(ExpectedAttempt.from_json(row | {"kind": kind}))
    return truth


# --- outages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """One outage of one port: ``end_ms`` None while open; ``causes`` the names it may carry (several when
    causes began within the tolerance of each other: which frame came first is not the simulator's to know)."""

    charge_point_id: str
    connector_id: int
    start_ms: int
    end_ms: int | None
    causes: frozenset[str]
    error_code: str = ""  # of the fault that began it (OCPP 1.6 only; '' = not compared)

    @property
    def key(self) -> str:
        return f"{self.charge_point_id}/{self.connector_id}@{_iso(self.start_ms)}"


@dataclass(frozen=True)
class _Span:
    start_ms: int
    end_ms: int | None
    cause: str
    error_code: str = ""


def offline_spans(connections: Iterable[ExpectedConnection]) -> list[_Span]:
    """A charger's offline intervals: from each close to the next open (after the last close: open)."""
    ordered = sorted(connections, key=lambda c: c.opened_ms)
    spans = []
    for i, c in enumerate(ordered):
        if c.closed_ms is None:
            continue
        reopened = ordered[i + 1].opened_ms if i + 1 < len(ordered) else None
        spans.append(_Span(c.closed_ms, reopened, "offline"))
    return spans


def expected_outages(truth: Truth, tolerance: Tolerance = Tolerance(),
                     down_at: Callable[[tuple[str, int], int], bool] | None = None) -> list[Outage]:
    """The outages the pipeline must find, by KPIS.md's rule applied to what the chargers did. A gap within
    :attr:`Tolerance.merge_slack_s` of the merge limit is merged when ``down_at`` says the port was down in
    its middle (by the rows under comparison), else by the limit."""
    offline: dict[str, list[_Span]] = defaultdict(list)
    by_charger: dict[str, list[ExpectedConnection]] = defaultdict(list)
    for c in truth.connections:
        by_charger[c.charge_point_id].append(c)
    for cp, connections in by_charger.items():
        offline[cp] = offline_spans(connections)
    downs: dict[tuple[str, int], list[_Span]] = defaultdict(list)
    for d in truth.downs:
        error_code = d.error_code if d.status == "Faulted" and d.ocpp_version == "ocpp1.6" else ""
        downs[(d.charge_point_id, d.connector_id)].append(
            _Span(d.started_ms, d.ended_ms, DOWN_CAUSE[(d.connector_id == 0, d.status)], error_code))
    outages = []
    for port in truth.ports:
        cp, n = port.charge_point_id, port.connector_id
        spans = [*offline[cp], *downs[(cp, n)], *downs[(cp, 0)]]
        clipped = [_Span(max(s.start_ms, port.first_reported_ms), s.end_ms, s.cause, s.error_code) for s in spans
                   if s.end_ms is None or s.end_ms > port.first_reported_ms]
        outages += _union(cp, n, clipped, tolerance,
                          None if down_at is None else lambda ms, port=(cp, n): down_at(port, ms))
    return outages


def _union(cp: str, port: int, spans: list[_Span], tolerance: Tolerance,
           down_at: Callable[[int], bool] | None = None) -> list[Outage]:
    """Overlapping spans (or closer than the merge gap) as one outage each, named by the first cause; a gap
    near the merge gap is merged as ``down_at`` its middle says, when given."""
    order = {c: i for i, c in enumerate(CAUSE_ORDER)}
    spans = sorted(spans, key=lambda s: (s.start_ms, order[s.cause]))
    limit_ms, slack_ms = tolerance.merge_gap_s * 1000, tolerance.merge_slack_s * 1000

    def joins(end: int | None, start: int) -> bool:
        if end is None:
            return True
        if down_at is not None and abs(start - end - limit_ms) <= slack_ms:
            return down_at((start + end) // 2)
        return start <= end + limit_ms

    merged: list[list[_Span]] = []
    end: int | None = None
    for s in spans:
        if merged and joins(end, s.start_ms):
            merged[-1].append(s)
            end = None if end is None or s.end_ms is None else max(end, s.end_ms)
        else:
            merged.append([s])
            end = s.end_ms
    outages = []
    for group in merged:
        first = group[0]
        ends = [s.end_ms for s in group]
        causes = frozenset(s.cause for s in group if s.start_ms - first.start_ms <= tolerance.time_ms)
        error_code = first.error_code if len(causes) == 1 else ""
        outages.append(Outage(cp, port, first.start_ms, None if None in ends else max(e for e in ends if e is not None),
                              causes, error_code))
    return outages


def row_outages(rows: Iterable[Mapping[str, Any]], tolerance: Tolerance = Tolerance()) -> list[Outage]:
    """``port_outages`` rows as outages, those closer than the merge gap merged as the truth is."""
    by_port: dict[tuple[str, int], list[_Span]] = defaultdict(list)
    for r in rows:
        ended = r.get("ended_at")
        by_port[(r["charge_point_id"], int(r["connector_id"]))].append(
            _Span(to_ms(r["started_at"]), None if ended is None else to_ms(ended), str(r["cause"]), str(r.get("error_code") or "")))
    outages = []
    for (cp, port), spans in by_port.items():
        for o in _union(cp, port, spans, tolerance):
            first = min((s for s in spans if s.start_ms == o.start_ms), key=lambda s: CAUSE_ORDER.index(s.cause))
            outages.append(Outage(cp, port, o.start_ms, o.end_ms, frozenset({first.cause}), first.error_code))
    return outages


def outage_mismatches(truth: Truth, rows: Iterable[Mapping[str, Any]], tolerance: Tolerance = Tolerance()) -> list[Mismatch]:
    """Every difference between the outages the chargers had and ``port_outages`` rows (FINAL). A gap of the
    truth close to the merge limit is merged as the rows have it (see the module)."""
    got = _by_port(row_outages(rows, tolerance))

    def down_at(port: tuple[str, int], ms: int) -> bool:
        return any(o.start_ms <= ms and (o.end_ms is None or ms <= o.end_ms) for o in got.get(port, []))

    want = _by_port(expected_outages(truth, tolerance, down_at=down_at))
    problems = []
    for port in sorted(want.keys() | got.keys()):
        expected, actual = want.get(port, []), list(got.get(port, []))
        for e in expected:
            match = next((a for a in actual if abs(a.start_ms - e.start_ms) <= tolerance.time_ms), None)
            if match is None:
                problems.append(Mismatch("port_outages", MismatchKind.MISSING, e.key,
                                         f"{'/'.join(sorted(e.causes))} until {_iso(e.end_ms)}"))
                continue
            actual.remove(match)
            diffs = []
            if (e.end_ms is None) != (match.end_ms is None) or (
                    e.end_ms is not None and match.end_ms is not None and abs(e.end_ms - match.end_ms) > tolerance.time_ms):
                diffs.append(f"ended_at {_iso(match.end_ms)} != {_iso(e.end_ms)}")
            cause = next(iter(match.causes))
            if cause not in e.causes:
                diffs.append(f"cause {cause!r} not in {sorted(e.causes)}")
            if e.error_code and match.error_code != e.error_code:
                diffs.append(f"error_code {match.error_code!r} != {e.error_code!r}")
            if diffs:
                problems.append(Mismatch("port_outages", MismatchKind.DIFFERS, e.key, "; ".join(diffs)))
        problems += [Mismatch("port_outages", MismatchKind.UNEXPECTED, a.key, f"{next(iter(a.causes))} until {_iso(a.end_ms)}")
                     for a in actual]
    return problems


def _by_port(outages: Iterable[Outage]) -> dict[tuple[str, int], list[Outage]]:
    ports: dict[tuple[str, int], list[Outage]] = defaultdict(list)
    for o in sorted(outages, key=lambda o: o.start_ms):
        ports[(o.charge_point_id, o.connector_id)].append(o)
    return ports


# --- attempts and blocked time -----------------------------------------------------------------------


def attempt_mismatches(truth: Truth, rows: Iterable[Mapping[str, Any]], *, as_of_ms: int,
                       tolerance: Tolerance = Tolerance(), authorize_window_s: float = AUTHORIZE_WINDOW_S) -> list[Mismatch]:
    """Every difference between the attempts drivers made and ``charge_attempts`` rows (FINAL).

    An Authorize without a start is only an attempt once ``authorize_window_s`` passed without a start
    (gateway clock): those younger than that at ``as_of_ms`` (the newest frame the pipeline saw) may be
    missing, and may be there (a worker closing them on a timer)."""
    rows = [dict(r) for r in rows]
    problems: list[Mismatch] = []
    tx_rows = by_transaction(r for r in rows if r["transaction_id"])
    tx_row_of = _paired((a for a in truth.attempts if a.kind == AttemptKind.START_TRANSACTION), tx_rows)
    others: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if not r["transaction_id"]:
            others[(r["charge_point_id"], r["kind"], int(r["connector_id"]))].append(r)
    for e in sorted(truth.attempts, key=lambda a: a.started_ms):
        key = f"{e.charge_point_id}/{e.transaction_id or e.connector_id}@{_iso(e.started_ms)} ({e.kind})"
        if e.kind == AttemptKind.START_TRANSACTION:
            row = tx_row_of.get(id(e))
        else:
            candidates = others[(e.charge_point_id, e.kind, e.connector_id)]
            row = next((r for r in candidates if abs(to_ms(r["started_at"]) - e.started_ms) <= tolerance.time_ms), None)
            if row is not None:
                candidates.remove(row)
        pending = e.kind == AttemptKind.AUTHORIZE_WITHOUT_START and e.started_ms + authorize_window_s * 1000 > as_of_ms
        if row is None:
            if not pending and not _joined_a_plugin(e, truth, authorize_window_s, tolerance):
                problems.append(Mismatch("charge_attempts", MismatchKind.MISSING, key, f"failure {e.failure!r}"))
            continue
        diffs = [f"{name} {row.get(name)!r} != {want!r}" for name, want in (
            ("kind", str(e.kind)), ("connector_id", e.connector_id), ("delivered", e.delivered), ("ended_ok", e.ended_ok),
            ("failure", e.failure)) if _value(row.get(name)) != want]
        if e.id_tag and row.get("id_tag") not in (None, e.id_tag):
            diffs.append(f"id_tag {row['id_tag']!r} != {e.id_tag!r}")
        if abs(to_ms(row["started_at"]) - e.started_ms) > tolerance.time_ms:
            diffs.append(f"started_at {row['started_at']} != {_iso(e.started_ms)}")
        delay = row.get("start_delay_s")
        if (delay is None) != (e.start_delay_s is None) or (
                delay is not None and e.start_delay_s is not None and abs(float(delay) - e.start_delay_s) > tolerance.time_s):
            diffs.append(f"start_delay_s {delay!r} != {e.start_delay_s!r}")
        if diffs:
            problems.append(Mismatch("charge_attempts", MismatchKind.DIFFERS, key, "; ".join(diffs)))
    leftovers = [r for candidates in (*tx_rows.values(), *others.values()) for r in candidates]
    problems += [Mismatch("charge_attempts", MismatchKind.UNEXPECTED,
                          f"{r['charge_point_id']}/{r['transaction_id'] or r['connector_id']}@{r['started_at']} ({r['kind']})",
                          f"failure {r.get('failure')!r}") for r in leftovers]
    return problems


def _joined_a_plugin(authorize: ExpectedAttempt, truth: Truth, window_s: float, tolerance: Tolerance) -> bool:
    """An Authorize near a plug-in of its charger (within the window, either side: the simulator's driver who only
    shows a card walks past a bay someone plugs into) that the pipeline may, by KPIS.md's "one driver, one attempt",
    have taken as that plug-in's driver's card: then it is no attempt of its own. The simulator does not know whose
    card it was; the rule's window does, so such an Authorize may be missing."""
    if authorize.kind != AttemptKind.AUTHORIZE_WITHOUT_START:
        return False
    reach_ms = window_s * 1000 + tolerance.time_ms
    return any(a.charge_point_id == authorize.charge_point_id and a.kind != AttemptKind.AUTHORIZE_WITHOUT_START
               and abs(a.started_ms - authorize.started_ms) <= reach_ms for a in truth.attempts)


def _paired(attempts: Iterable[ExpectedAttempt], rows: dict[tuple[str, str], list[Mapping[str, Any]]]
            ) -> dict[int, Mapping[str, Any]]:
    """Each transaction's attempt (by ``id``) and its row, told apart by connector where one id names several
    (stations that number transactions per EVSE); paired rows leave ``rows``."""
    by_key: dict[tuple[str, str], list[ExpectedAttempt]] = defaultdict(list)
    for a in attempts:
        by_key[(a.charge_point_id, a.transaction_id)].append(a)
    out: dict[int, Mapping[str, Any]] = {}
    for key, wanted in by_key.items():
        pairs, _ = pair(wanted, rows.get(key, []), lambda a: a.connector_id)
        out.update((id(a), row) for a, row in pairs)
    return out


def expected_blocked_s(attempt: ExpectedAttempt) -> float | None:
    """``blocked_after_stop_s`` of a transaction's session: from the stop until Available (0 when the
    connector was Available before the stop went out); None while the bay is still occupied."""
    if attempt.stopped_ms is None or attempt.available_ms is None:
        return None
    return max(0.0, (attempt.available_ms - attempt.stopped_ms) / 1000)


def blocked_mismatches(truth: Truth, rows: Iterable[Mapping[str, Any]], tolerance: Tolerance = Tolerance()) -> list[Mismatch]:
    """``sessions.blocked_after_stop_s`` (FINAL) against the post-stop occupancy the chargers had. Sessions
    never stopped (closed on a guess) are not compared: the contract measures from the stop."""
    stopped = [e for e in truth.attempts if e.kind == AttemptKind.START_TRANSACTION and e.stopped_ms is not None]
    row_of = _paired(stopped, by_transaction(rows))
    problems = []
    for e in stopped:
        key = f"{e.charge_point_id}/{e.transaction_id}"
        row = row_of.get(id(e))
        if row is None:
            problems.append(Mismatch("sessions", MismatchKind.MISSING, key, "no session row"))
            continue
        want, have = expected_blocked_s(e), row.get("blocked_after_stop_s")
        if (want is None) != (have is None) or (want is not None and have is not None
                                                and abs(float(have) - want) > tolerance.time_s):
            problems.append(Mismatch("sessions", MismatchKind.DIFFERS, key, f"blocked_after_stop_s {have!r} != {want!r}"))
    return problems


# --- the KPIs themselves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortUptime:
    charge_point_id: str
    connector_id: int
    period_s: float
    outage_s: float

    @property
    def uptime_pct(self) -> float:
        """NEVI's formula, without exclusions (the simulator records none)."""
        return 100.0 if self.period_s <= 0 else (self.period_s - self.outage_s) / self.period_s * 100


def uptime(truth: Truth, from_ms: int, to_ms: int, tolerance: Tolerance = Tolerance()) -> dict[tuple[str, int], PortUptime]:
    """Per port, the span [max(from, first report), to) and the outage time inside it (open outages run to its end)."""
    outages = _by_port(expected_outages(truth, tolerance))
    result = {}
    for port in truth.ports:
        key = (port.charge_point_id, port.connector_id)
        start = max(from_ms, port.first_reported_ms)
        down = sum(max(0, min(to_ms, o.end_ms if o.end_ms is not None else to_ms) - max(start, o.start_ms))
                   for o in outages.get(key, []))
        result[key] = PortUptime(*key, max(0, to_ms - start) / 1000, down / 1000)
    return result


def uptime_tolerance_pct(port: PortUptime, outages: int, tolerance: Tolerance = Tolerance()) -> float:
    """How far a pipeline's uptime may be from the truth's: each outage has two boundaries, and the period one."""
    if port.period_s <= 0:
        return 100.0
    return (2 * outages + 1) * tolerance.time_s / port.period_s * 100


@dataclass(frozen=True)
class SuccessRates:
    """ChargeX rates (KPIS.md): charge-start = delivered / attempts, charge-end = ok / delivered,
    session = ok / attempts (None when there is nothing to divide by)."""

    attempts: int
    delivered: int
    ended_ok: int

    @staticmethod
    def _pct(part: int, whole: int) -> float | None:
        return None if whole == 0 else part / whole * 100

    @property
    def charge_start_pct(self) -> float | None:
        return self._pct(self.delivered, self.attempts)

    @property
    def charge_end_pct(self) -> float | None:
        return self._pct(self.ended_ok, self.delivered)

    @property
    def session_pct(self) -> float | None:
        return self._pct(self.ended_ok, self.attempts)


def success_rates(attempts: Iterable[ExpectedAttempt | Mapping[str, Any]]) -> SuccessRates:
    """Rates over truth attempts or ``charge_attempts`` rows alike."""
    counts = [0, 0, 0]
    for a in attempts:
        delivered = a.delivered if isinstance(a, ExpectedAttempt) else _value(a["delivered"])
        ok = a.ended_ok if isinstance(a, ExpectedAttempt) else _value(a["ended_ok"])
        counts[0] += 1
        counts[1] += bool(delivered)
        counts[2] += bool(ok)
    return SuccessRates(*counts)


def decided_attempts(truth: Truth, as_of_ms: int, authorize_window_s: float = AUTHORIZE_WINDOW_S,
                     rows: Iterable[Mapping[str, Any]] | None = None, tolerance: Tolerance = Tolerance()) -> list[ExpectedAttempt]:
    """The attempts the pipeline can know of at ``as_of_ms`` (an Authorize waits out its window); with ``rows``
    (``charge_attempts``), an Authorize the pipeline took as a plug-in's driver's card (no row of its own, a plug-in
    within the window: :func:`attempt_mismatches`) is none."""
    authorize_rows = defaultdict(list)
    for r in rows or ():
        if r["kind"] == AttemptKind.AUTHORIZE_WITHOUT_START:
            authorize_rows[r["charge_point_id"]].append(to_ms(r["started_at"]))

    def joined(a: ExpectedAttempt) -> bool:
        has_row = any(abs(ms - a.started_ms) <= tolerance.time_ms for ms in authorize_rows[a.charge_point_id])
        return rows is not None and not has_row and _joined_a_plugin(a, truth, authorize_window_s, tolerance)

    return [a for a in truth.attempts if a.kind != AttemptKind.AUTHORIZE_WITHOUT_START
            or (a.started_ms + authorize_window_s * 1000 <= as_of_ms and not joined(a))]


# --- values from rows --------------------------------------------------------------------------------


def to_ms(value: Any) -> int:
    """Epoch ms of a timestamp as rows carry it: a datetime, ISO / ClickHouse text (UTC when no zone), or ms."""
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    raise TypeError(f"not a timestamp: {value!r}")


def _value(value: Any) -> Any:
    """Bools as ClickHouse's JSON output may give them ("true" / "false"; 0 / 1 equal False / True anyway)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _iso(ms: int | None) -> str:
    if ms is None:
        return "open"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
