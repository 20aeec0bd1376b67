"""Thousands of simulated chargers in one process: ramp up, live, stop, summarise, write expectations.

The run lasts ``duration_s`` real seconds (or until Ctrl-C / SIGTERM); then every charger ends
what is open the way a driver would (a Local stop; a charger that never sends StopTransaction
just goes Available) and the fleet waits for the answers before it closes. What each charger did
is written as JSON lines (``--expected``): one ``session`` line per session, one ``fault`` line per
fault, and the KPI ground truth (``connection``, ``down``, ``port``, ``attempt`` lines, see
:mod:`simulator.incidents`), so a test can hold ClickHouse and ``ocpp.faults.v1`` against them.

Each charger speaks OCPP 1.6J or 2.0.1 (``ocpp`` / ``ocpp_mix``); which one depends only on the seed and
its number, and its profile and plans are those its 1.6 twin would have. A share of them carry signing meters
(:mod:`simulator.signing_plan`); their public keys are written before the run (:func:`write_meter_keys`), and
each session's expectation says what the pipeline must make of its signed readings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from infra.limits import raise_open_files_limit
from simulator import lives, signing_plan
from simulator.charger import Charger, Ledger, Timing
from simulator.charger_v201 import Charger201
from simulator.link import Link, LinkStats, Refused
from simulator.settings import SimulatorSettings

CHARGERS_PER_SOURCE_ADDRESS = 20_000  # below the ~28k ephemeral ports of one source address
CLOSE_TIMEOUT_S = 90.0
GOLDEN = 0.6180339887498949  # a low-discrepancy sequence: any run of chargers holds the mix closely


@dataclass
class FleetRun:
    """A fleet in progress or done: its chargers, what they did, and the shared link counters."""

    settings: SimulatorSettings
    profiles: list[lives.Profile]
    ledger: Ledger
    stats: LinkStats
    started_at: float
    ended_at: float | None = None
    unfinished: int = 0
    refused: str = ""

    @property
    def elapsed_s(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at

    def progress_line(self) -> str:
        s, ledger = self.settings, self.ledger
        total = f"/{s.duration_s:.0f}" if s.duration_s else ""
        width = 20
        done = min(1.0, self.elapsed_s / s.duration_s) if s.duration_s else 0.0
        bar = "#" * int(done * width) + "." * (width - int(done * width))
        errors = sum(self.stats.call_errors.values())
        return (f"[{bar}] {self.elapsed_s:4.0f}{total} s  chargers {self.stats.connected}/{len(self.profiles)}  "
                f"sessions {ledger.started} started {len(ledger.sessions)} ended  faults {len(ledger.faults)}  "
                f"calls {self.stats.calls_answered:,}  errors {errors}  reconnects {self.stats.reconnects}")

    def summary(self) -> str:
        s, ledger, stats = self.settings, self.ledger, self.stats
        connectors = sum(p.connectors for p in self.profiles)
        quirky = sum(1 for p in self.profiles if p.quirks)
        signing = [p for p in self.profiles if p.meter is not None]
        v201 = sum(1 for p in self.profiles if p.ocpp == "2.0.1")
        endings = ", ".join(f"{k} {v}" for k, v in sorted(ledger.endings.items(), key=lambda kv: -kv[1])) or "none"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(stats.call_errors.items())) or "none"
        failures = Counter(a.failure or "ok" for a in ledger.attempts)
        lat = sorted(stats.latencies_ms)
        pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
        lines = [
            f"simulated {len(self.profiles)} chargers ({connectors} connectors, {quirky} quirky, "
            f"{len(self.profiles) - v201} OCPP 1.6 / {v201} OCPP 2.0.1) for {self.elapsed_s:.1f} s "
            f"at time scale {s.time_scale:g} (seed {s.seed})",
            f"  sessions  {ledger.started} started, {len(ledger.sessions)} ended: {endings}",
            f"  faults    {len(ledger.faults)} ({sum(f.cleared for f in ledger.faults)} cleared); power losses {ledger.power_losses}",
            f"  outages   {ledger.offline_periods} offline periods, {ledger.maintenance_windows} maintenance windows, "
            f"{ledger.station_outages} station outages",
            f"  attempts  {len(ledger.attempts)}: " + (", ".join(f"{k} {v}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1]))
                                                       or "none"),
            f"  calls     {stats.calls_sent:,} sent, {stats.calls_answered:,} answered, {stats.resends} resent; CALLERRORs: {errors}",
            f"  links     {stats.connects} connects, {stats.reconnects} reconnects, {stats.connect_failures} failed attempts",
            f"  answers   p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms",
        ]
        if signing:
            verdicts = Counter(e.signature_status for e in ledger.sessions if e.signature_status != "unsigned")
            signing_quirky = sum(1 for p in signing if p.quirks & set(lives.SIGNING_QUIRKS))
            lines.append(f"  signed    {len(signing)} signing chargers ({signing_quirky} with signing faults); sessions: "
                         + (", ".join(f"{k} {v}" for k, v in sorted(verdicts.items(), key=lambda kv: -kv[1])) or "none"))
        if ledger.start_refused:
            lines.append(f"  refused   {ledger.start_refused} StartTransaction without a transactionId")
        if self.unfinished:
            lines.append(f"  WARNING   {self.unfinished} chargers did not finish within {CLOSE_TIMEOUT_S:.0f} s of the end")
        if self.refused:
            lines.append(f"  REFUSED   {self.refused}")
        return "\n".join(lines)

    def write_expected(self, path: Path) -> int:
        """Write the expectations as JSON lines; returns the number of lines."""
        rows = self.ledger.expectation_rows()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        tmp.replace(path)
        return len(rows)


def plan_fleet(settings: SimulatorSettings) -> list[lives.Profile]:
    return [
        signing_plan.with_meter(
            lives.make_profile(random.Random(f"{settings.seed}:{n}:profile"), n, id_prefix=settings.id_prefix,
                               connectors=settings.connector_range(), quirky_share=settings.quirky_share,
                               ocpp=ocpp_version_of(settings, n)),
            seed=settings.seed, share=settings.signing_share, quirky_share=settings.signing_quirky_share)
        for n in range(1, settings.chargers + 1)
    ]


def write_meter_keys(settings: SimulatorSettings, path: Path) -> tuple[int, int]:
    """Write the public keys of the fleet's signing meters to ``path`` (the keys import CSV) before the run, so
    an operator can register them while it goes; returns (keys, signing chargers). Nothing is written when no
    charger signs."""
    profiles = [p for p in plan_fleet(settings) if p.meter is not None]
    if not profiles:
        return 0, 0
    return signing_plan.write_key_file(path, profiles), len(profiles)


def ocpp_version_of(settings: SimulatorSettings, number: int) -> str:
    """The OCPP version charger ``number`` speaks: fixed by the seed and the number (not the fleet size);
    the shares of the mix hold within a charger or two over any run of chargers."""
    shares = settings.ocpp_shares()
    if len(shares) == 1:
        return shares[0][0]
    point = (random.Random(f"{settings.seed}:ocpp").random() + number * GOLDEN) % 1.0
    cumulative = 0.0
    for version, share in shares:
        cumulative += share
        if point < cumulative:
            return version
    return shares[-1][0]


def make_charger(settings: SimulatorSettings, profile: lives.Profile, timing: Timing, ledger: Ledger, stats: LinkStats,
                 closing: asyncio.Event, local_addr: tuple[str, int] | None = None) -> Charger:
    """A charger of ``profile``'s OCPP version on its own link, offering what its firmware offers."""
    rng = random.Random(f"{settings.seed}:{profile.number}:life")
    if profile.ocpp == "2.0.1":
        protocols, cls = [profile.subprotocol], Charger201
    else:
        protocols = ["ocpp2.0.1", "ocpp1.6"] if profile.has(lives.Quirk.OFFERS_TWO_PROTOCOLS) else ["ocpp1.6"]
        cls = Charger
    link = Link(settings.url, profile.charge_point_id, stats, subprotocols=protocols,
                answer_timeout_s=settings.answer_timeout_s, rng=rng, local_addr=local_addr, speaks=profile.subprotocol,
                empty_first_subprotocol=profile.has(lives.Quirk.EMPTY_FIRST_SUBPROTOCOL))
    return cls(profile, link, timing, ledger, rng, closing, settings.behaviours())


def timing_for(settings: SimulatorSettings, profiles: list[lives.Profile]) -> Timing:
    idle_mean_s = settings.idle_mean_s
    if settings.rate:
        # Each connector cycles idle -> session; to start `rate` sessions per second fleet-wide a
        # connector must cycle every connectors/rate real seconds, of which a session takes ~its mean.
        connectors = sum(p.connectors for p in profiles)
        busy_real_s = 4000 / settings.time_scale  # mean planned session incl. stop and unplug (simulated ~4000 s)
        idle_mean_s = max(1.0, (connectors / settings.rate - busy_real_s)) * settings.time_scale
    return Timing(time_scale=settings.time_scale, meter_interval_s=settings.meter_interval_s, idle_mean_s=idle_mean_s)


def source_address(url: str, number: int, chargers: int) -> tuple[str, int] | None:
    """Spread a big fleet over loopback source addresses (127.0.0.x), each under the ephemeral-port limit."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback and ipaddress.ip_address(host).version == 4
    except ValueError:
        loopback = host == "localhost"
    if chargers <= CHARGERS_PER_SOURCE_ADDRESS or not loopback:
        return None
    return (f"127.0.{number // CHARGERS_PER_SOURCE_ADDRESS // 250}.{2 + number // CHARGERS_PER_SOURCE_ADDRESS % 250}", 0)


async def run_fleet(settings: SimulatorSettings, *, stop: asyncio.Event | None = None,
                    report: Callable[[FleetRun], None] | None = None, report_every_s: float = 1.0,
                    record_acknowledged: bool = False, stats: LinkStats | None = None) -> FleetRun:
    """Run the fleet until ``duration_s`` passes or ``stop`` is set; return what it did."""
    profiles = plan_fleet(settings)
    raise_open_files_limit(len(profiles) + 1024)
    stats = stats or LinkStats()
    if record_acknowledged:
        stats.acknowledged = []
    run = FleetRun(settings, profiles, Ledger(), stats, time.monotonic())
    timing = timing_for(settings, profiles)
    closing = asyncio.Event()
    stop = stop or asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def ramp_up() -> None:
        for profile in profiles:
            if closing.is_set():
                return
            charger = make_charger(settings, profile, timing, run.ledger, run.stats, closing,
                                   source_address(settings.url, profile.number, len(profiles)))
            tasks.append(asyncio.create_task(charger.live(), name=profile.charge_point_id))
            await asyncio.sleep(1 / settings.ramp)

    async def progress() -> None:
        while True:
            await asyncio.sleep(report_every_s)
            if report is not None:
                report(run)

    ramp = asyncio.create_task(ramp_up())
    reporter = asyncio.create_task(progress())
    try:
        timers = [asyncio.ensure_future(stop.wait())]
        if settings.duration_s:
            timers.append(asyncio.ensure_future(asyncio.sleep(settings.duration_s)))
        watcher = asyncio.ensure_future(_first_refusal(tasks, run))
        await asyncio.wait([*timers, watcher], return_when=asyncio.FIRST_COMPLETED)
        for t in (*timers, watcher):
            t.cancel()
        closing.set()
        await ramp
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            run.unfinished = len(pending)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and isinstance(task.exception(), Refused) and not run.refused:
                    run.refused = str(task.exception())
    finally:
        reporter.cancel()
        ramp.cancel()
        run.ended_at = time.monotonic()
    return run


async def _first_refusal(tasks: list[asyncio.Task[None]], run: FleetRun) -> None:
    """Ends the run early when the gateway refuses chargers (wrong URL, credentials): no point going on."""
    while True:
        await asyncio.sleep(0.5)
        for task in list(tasks):
            if task.done() and not task.cancelled() and isinstance(task.exception(), Refused):
                run.refused = str(task.exception())
                return


def stderr_progress(run: FleetRun) -> None:
    if sys.stderr.isatty():
        print("\r" + run.progress_line(), end="", file=sys.stderr, flush=True)
    elif int(run.elapsed_s) % 10 == 0:
        print(run.progress_line(), file=sys.stderr, flush=True)
