"""Simulated chargers misbehaving on purpose, in OCPP 1.6 and 2.0.1, over a recording link: each
behaviour goes on the wire as the KPIs expect to read it, and the ground truth the charger records
says what went on the wire, when."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime

import pytest

from simulator import lives
from simulator.charger import Charger, Ledger, Timing, now_ms
from simulator.charger_v201 import Charger201
from simulator.incidents import AttemptKind, Behaviours, ExpectedConnection, OfflineHow
from simulator.link import held_between_calls
from simulator.lives import Ending

TIMING = Timing(time_scale=3000, meter_interval_s=300, heartbeat_interval_s=300, idle_mean_s=300)
QUIET = dict(idle_fault_share=0.0)


class FakeLink:
    """Stands in for :class:`simulator.link.Link`: records each CALL with the time it was answered, answers
    as the gateway does (Authorize: ``reject`` tags refused), keeps the connection log of offline periods."""

    def __init__(self, charge_point_id: str, reject: bool = False) -> None:
        self.charge_point_id = charge_point_id
        self.calls: list[tuple[int, str, dict]] = []
        self.reject = reject
        self._lock = asyncio.Lock()
        self._up = asyncio.Event()
        self._up.set()
        self.connections = [ExpectedConnection(charge_point_id, now_ms())]
        self.next_tx = 100

    async def call(self, action: str, payload: dict) -> dict | None:
        async with self._lock:
            await self._up.wait()
            await asyncio.sleep(0)
            self.calls.append((now_ms(), action, copy.deepcopy(payload)))
            if action == "BootNotification":
                return {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}
            if action == "StartTransaction":
                self.next_tx += 1
                return {"transactionId": self.next_tx, "idTagInfo": {"status": "Accepted"}}
            status = {"status": "Invalid" if self.reject else "Accepted"}
            if action == "Authorize":
                return {"idTokenInfo": status} if "idToken" in payload else {"idTagInfo": status}
            if action == "TransactionEvent" and "idToken" in payload:
                return {"idTokenInfo": status}
            return {}

    def between_calls(self) -> AbstractAsyncContextManager[None]:
        return held_between_calls(self._lock, 5.0)

    @property
    def online(self) -> bool:
        return self._up.is_set()

    def cut_power(self) -> None:
        self._drop(OfflineHow.POWER_LOSS)

    def restore_power(self) -> None:
        self._reconnect()

    async def go_offline(self, how: OfflineHow) -> None:
        async with self._lock:
            self._drop(how)

    async def go_online(self) -> None:
        self._reconnect()

    def _drop(self, how: str) -> None:
        if self._up.is_set():
            self._up.clear()
            self.connections[-1].closed_ms, self.connections[-1].how = now_ms(), how

    def _reconnect(self) -> None:
        if not self._up.is_set():
            self.connections.append(ExpectedConnection(self.charge_point_id, now_ms()))
            self._up.set()

    async def close(self) -> None:
        self._drop(OfflineHow.RUN_END)

    def windows(self, action: str) -> list[tuple[int, int, dict]]:
        """For each CALL of ``action``: (its answer's time, the next call's time, its payload). The charger notes what
        a call caused in its ledger after the answer and before its next call, so the ledger's time lies in that
        window (the same millisecond, or a later one however long the machine stalls in between)."""
        times = [at for at, _, _ in self.calls] + [now_ms()]
        return [(at, times[i + 1], p) for i, (at, a, p) in enumerate(self.calls) if a == action]

    def status_windows(self, connector: int) -> list[tuple[int, int, str]]:
        """:meth:`windows` of a connector's StatusNotifications, with the status (2.0.1: its EVSE's connectorStatus)."""
        return [(at, following, p.get("status") or p["connectorStatus"])
                for at, following, p in self.windows("StatusNotification")
                if p.get("connectorId" if "status" in p else "evseId") == connector]

    def noted_between(self, connector: int, status: str) -> list[tuple[int, int]]:
        """The windows of a connector's StatusNotifications with ``status``."""
        return [(at, following) for at, following, s in self.status_windows(connector) if s == status]

    def statuses(self, connector: int) -> list[tuple[int, str]]:
        """(answered at, status) of a connector's StatusNotifications (2.0.1: the connectorStatus of the EVSE)."""
        return [(at, s) for at, _, s in self.status_windows(connector)]


def charger(version: str, behaviours: Behaviours, *, connectors: int = 1, reject: bool = False, seed: int = 1,
            **profile_changes) -> tuple[Charger, FakeLink, Ledger, asyncio.Event]:
    base = lives.make_profile(random.Random(3), seed, id_prefix="SIM-", connectors=(connectors, connectors), quirky_share=0,
                              ocpp=version)
    profile = replace(base, **profile_changes)
    link, ledger, closing = FakeLink(profile.charge_point_id, reject), Ledger(), asyncio.Event()
    cls = Charger201 if version == "2.0.1" else Charger
    return cls(profile, link, TIMING, ledger, random.Random(seed), closing, behaviours), link, ledger, closing  # type: ignore[arg-type]


async def live_until(c: Charger, closing: asyncio.Event, done: Callable[[], bool], hang_s: float = 120) -> None:
    """Run the charger's life until ``done()`` holds (what the test needs has happened), then close it. No fixed
    real time: a slow machine stretches the run, it does not shorten what the charger did; ``hang_s`` only guards
    against a charger that never gets there."""
    life = asyncio.create_task(c.live())
    deadline = asyncio.get_running_loop().time() + hang_s
    while not done() and not life.done():
        if asyncio.get_running_loop().time() > deadline:
            closing.set()
            await asyncio.wait_for(life, 30)
            pytest.fail(f"the charger did not get there in {hang_s} s")
        await asyncio.sleep(0.01)
    closing.set()
    await asyncio.wait_for(life, 30)


VERSIONS = ("1.6", "2.0.1")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_driver_who_plugs_in_and_leaves_is_a_failed_attempt(version: str) -> None:
    c, link, ledger, closing = charger(version, Behaviours(plugin_only_share=1.0, **QUIET))
    asyncio.run(live_until(c, closing, lambda: sum(a.kind == AttemptKind.PLUGIN_WITHOUT_START for a in ledger.attempts) >= 2))
    plugins = [a for a in ledger.attempts if a.kind == AttemptKind.PLUGIN_WITHOUT_START]
    assert plugins and all(a.failure == "plugin_no_start" and not a.delivered and a.connector_id == 1 for a in plugins)
    assert not [a for _, a, _ in link.calls if a in ("StartTransaction", "TransactionEvent", "Authorize")]
    plugged = "Preparing" if version == "1.6" else "Occupied"
    windows = link.noted_between(1, plugged)[:len(plugins)]
    assert len(windows) == len(plugins)
    assert all(called <= a.started_ms <= following for a, (called, following) in zip(plugins, windows))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("reject", [False, True])
def test_a_card_presented_without_a_start_is_a_failed_attempt(version: str, reject: bool) -> None:
    c, link, ledger, closing = charger(version, Behaviours(authorize_only_share=1.0, **QUIET), reject=reject)
    asyncio.run(live_until(c, closing, lambda: len(ledger.attempts) >= 3))
    authorizes = link.windows("Authorize")
    assert authorizes and len(ledger.attempts) == len(authorizes)
    for attempt, (at, following, payload) in zip(ledger.attempts, authorizes):
        assert attempt.kind == AttemptKind.AUTHORIZE_WITHOUT_START and attempt.connector_id == 0
        assert attempt.failure == ("authorize_rejected" if reject else "authorize_no_start")
        assert attempt.id_tag == (payload.get("idTag") or payload["idToken"]["idToken"])
        assert at <= attempt.started_ms <= following


@pytest.mark.parametrize("version", VERSIONS)
def test_maintenance_windows_and_faults_are_down_intervals_from_status_to_status(version: str) -> None:
    c, link, ledger, closing = charger(version, Behaviours(idle_fault_share=0.5, maintenance_share=0.5), connectors=2)
    asyncio.run(live_until(c, closing, lambda: {d.status for d in ledger.downs if d.ended_ms} == {"Faulted", "Unavailable"}))
    assert {d.status for d in ledger.downs} == {"Faulted", "Unavailable"}
    for d in ledger.downs:
        statuses = link.status_windows(d.connector_id)
        began = next(i for i, (at, following, s) in enumerate(statuses) if at <= d.started_ms <= following and s == d.status)
        after = statuses[began + 1:]
        if d.ended_ms is None:
            assert all(s == d.status for _, _, s in after)
        else:
            at, following, status = after[0]
            assert status != d.status and at <= d.ended_ms <= following
        if d.status == "Faulted" and version == "2.0.1":
            assert d.error_code.endswith("/Problem")


def test_a_16_station_goes_unavailable_or_faulted_on_connector_0_and_serves_nobody_meanwhile() -> None:
    b = Behaviours(station_every_s=600, maintenance_s=1200, **QUIET)
    c, link, ledger, closing = charger("1.6", b, seed=2)
    asyncio.run(live_until(c, closing, lambda: len([d for d in ledger.downs if d.connector_id == 0 and d.ended_ms]) >= 2))
    station = [d for d in ledger.downs if d.connector_id == 0]
    assert station and {d.status for d in station} <= {"Unavailable", "Faulted"}
    for d in station:
        if d.ended_ms is not None:  # no transaction starts while the station is down
            assert not [at for at, a, _ in link.calls if a == "StartTransaction" and d.started_ms < at < d.ended_ms]
    faults = [f for f in ledger.faults if f.connector_id == 0]
    assert len(faults) == sum(d.status == "Faulted" for d in station) and all(f.cleared for f in faults)


def test_a_201_station_says_its_maintenance_and_its_emergency_stop_takes_every_evse_down() -> None:
    """2.0.1 has no connector 0 status: the station says Unavailable as its AvailabilityState, and its Faulted is the
    emergency stop (ChargingStation Problem): every transaction ends with EmergencyStop, every EVSE goes Faulted under
    the station's code, and all are Available when it is released (issue #23)."""
    b = Behaviours(station_every_s=600, maintenance_s=1200, **QUIET)
    c, link, ledger, closing = charger("2.0.1", b, connectors=2, seed=2)

    def station_down_both_ways_and_a_session_stopped() -> bool:
        station = [d for d in ledger.downs if d.connector_id == 0]
        return ({d.status for d in station} == {"Unavailable", "Faulted"} and all(d.ended_ms for d in station)
                and any(e.stop_reason == "EmergencyStop" for e in ledger.sessions))

    asyncio.run(live_until(c, closing, station_down_both_ways_and_a_session_stopped))
    station = [d for d in ledger.downs if d.connector_id == 0]
    assert {d.status for d in station} == {"Unavailable", "Faulted"} and all(d.ended_ms is not None for d in station)
    notified = [(at, p["eventData"][0]) for at, a, p in link.calls if a == "NotifyEvent"
                and p["eventData"][0]["component"]["name"] == "ChargingStation"]
    assert {e["variable"]["name"] for _, e in notified} == {"AvailabilityState", "Problem"}
    for stop in (d for d in station if d.status == "Faulted"):
        during = [(at, a, p) for at, a, p in link.calls if stop.started_ms <= at <= stop.ended_ms]
        assert not [p for _, a, p in during if a == "TransactionEvent" and p["eventType"] == "Started"]
        ended = [p for _, a, p in during if a == "TransactionEvent" and p["eventType"] == "Ended"]
        assert all(p["transactionInfo"]["stoppedReason"] == "EmergencyStop" for p in ended)
        assert {(p["evseId"], p["connectorStatus"]) for _, a, p in during if a == "StatusNotification"} >= {(1, "Faulted"), (2, "Faulted")}
    faults = {(f.connector_id, f.error_code, f.cleared) for f in ledger.faults}
    assert {(0, "ChargingStation/Problem", True), (1, "ChargingStation/Problem", True)} <= faults
    stopped = [e for e in ledger.sessions if e.stop_reason == "EmergencyStop"]
    assert stopped and all(e.ending == "emergency_stop" and e.closed_by == "stop_transaction" for e in stopped)
    assert all(a.failure == "faulted" for a in ledger.attempts if a.transaction_id in {e.transaction_id for e in stopped})


def test_a_201_station_numbering_per_evse_opens_the_same_id_on_two_evses() -> None:
    c, link, ledger, closing = charger("2.0.1", Behaviours(**QUIET), connectors=2, seed=4,
                                       quirks=frozenset({lives.Quirk.PER_EVSE_TRANSACTION_IDS}))
    asyncio.run(live_until(c, closing, lambda: {(1, "1"), (2, "1")} <= {(e.connector_id, e.transaction_id) for e in ledger.sessions}))
    events = [p for _, a, p in link.calls if a == "TransactionEvent"]
    by_tx: dict[tuple[int, str], list[int]] = {}
    evse_of: dict[str, int] = {}
    for p in events:
        tx = p["transactionInfo"]["transactionId"]
        evse = p["evse"]["id"] if "evse" in p else evse_of[tx]
        evse_of[tx] = evse
        by_tx.setdefault((evse, tx), []).append(p["seqNo"])
    assert {tx for _, tx in by_tx} <= {str(n) for n in range(1, 50)} and ("1" in {tx for e, tx in by_tx if e == 2})
    assert all(numbers == list(range(len(numbers))) for numbers in by_tx.values())  # seqNo per transaction
    keys = {(e.connector_id, e.transaction_id) for e in ledger.sessions}
    assert (1, "1") in keys and (2, "1") in keys


@pytest.mark.parametrize("version", VERSIONS)
def test_a_session_queued_before_the_first_connection_goes_out_after_the_boot(version: str) -> None:
    """A charger of ``backlog_share``: the start, samples and stop of a session that ended minutes to hours before the
    first connection, with their own times, before anything else of the connectors' lives (and, in 2.0.1, not
    flagged offline); its expectation is the meter's energy."""
    c, link, ledger, closing = charger(version, Behaviours(backlog_share=1.0, **QUIET), seed=5)
    asyncio.run(live_until(c, closing, lambda: any(e.backlog for e in ledger.sessions)))
    actions = [a for _, a, _ in link.calls]
    assert actions[0] == "BootNotification"
    transaction = "StartTransaction" if version == "1.6" else "TransactionEvent"
    first = next(i for i, a in enumerate(actions) if a == transaction)
    answered_at, _, payload = link.calls[first]
    stamped = payload["timestamp"]
    age_s = answered_at / 1000 - datetime.fromisoformat(stamped.replace("Z", "+00:00")).timestamp()
    assert age_s > 600  # older than the skew limit: only the charger's clock says it is a queue's
    assert "offline" not in payload
    backlog = ledger.sessions[0]
    assert backlog.backlog and not any(e.backlog for e in ledger.sessions[1:])
    assert (backlog.closed_by, backlog.stop_reason, backlog.ending) == ("stop_transaction", "Local", "user_stop")
    assert backlog.energy_wh > 0 and backlog.stop_status == ("" if version == "1.6" else "EVConnected")
    (attempt,) = [a for a in ledger.attempts if a.transaction_id == backlog.transaction_id]
    assert (attempt.delivered, attempt.failure) == (True, "")


@pytest.mark.parametrize("version", VERSIONS)
def test_offline_periods_close_the_connection_and_queue_what_happens_meanwhile(version: str) -> None:
    b = Behaviours(offline_every_s=300, offline_s=600, offline_drop_share=0.5, **QUIET)
    c, link, ledger, closing = charger(version, b, connectors=2)
    asyncio.run(live_until(c, closing, lambda: ledger.offline_periods >= 2 and {x.how for x in link.connections}
                           >= {OfflineHow.CLOSED, OfflineHow.DROPPED}))
    closed = [x for x in ledger.connections if x.closed_ms is not None]
    assert {x.how for x in closed} >= {OfflineHow.CLOSED, OfflineHow.DROPPED} and closed[-1].how == OfflineHow.RUN_END
    assert ledger.offline_periods >= 2
    gaps = [(a.closed_ms, b.opened_ms) for a, b in zip(ledger.connections, ledger.connections[1:])]
    for start, end in gaps:  # nothing reaches the central system while offline
        assert start <= end and not [at for at, _, _ in link.calls if start < at < end]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_long_post_stop_occupancy_holds_finishing_before_available(version: str) -> None:
    b = Behaviours(blocked_share=1.0, blocked_s=1500, **QUIET)
    c, link, ledger, closing = charger(version, b, status_after_stop=False)
    conn = c.connectors[0]
    plan = replace(lives.plan_session(random.Random(1), c.profile), ending=Ending.USER_STOP, charge_s=600, status_gap_s=10,
                   unplug_s=1500)

    async def one() -> None:
        await c._boot()
        await c._session(conn, plan)

    asyncio.run(one())
    (attempt,) = ledger.attempts
    assert attempt.ended_ok and attempt.failure == "" and attempt.stopped_ms and attempt.available_ms
    # 1500 simulated s (0.5 s at 3000x; the clock's ms may tick once in between), and the bay held meanwhile
    assert attempt.available_ms - attempt.stopped_ms >= 1500 / TIMING.time_scale * 1000 - 1
    *_, held, available = [s for at, s in link.statuses(1) if at <= attempt.available_ms]
    assert (held, available) == ("Finishing" if version == "1.6" else "Occupied", "Available")
    called, following = link.noted_between(1, "Preparing" if version == "1.6" else "Occupied")[0]
    assert called <= attempt.started_ms <= following
    assert attempt.start_delay_s is not None and attempt.start_delay_s > 0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ending,failure,reason", [(Ending.EMERGENCY_STOP, "stop_emergency_stop", "EmergencyStop"),
                                                   (Ending.FAULT, "faulted", "Other"),
                                                   (Ending.POWER_LOSS, "stop_power_loss", "PowerLoss"),
                                                   (Ending.CABLE_PULLED, "", "EVDisconnected")])
def test_sessions_that_end_badly_are_failed_attempts(version: str, ending: Ending, failure: str, reason: str) -> None:
    c, link, ledger, closing = charger(version, Behaviours(**QUIET))
    conn = c.connectors[0]
    plan = replace(lives.plan_session(random.Random(1), c.profile), ending=ending, charge_s=600, status_gap_s=10,
                   unplug_s=60, fault_s=300, reboot_s=60)

    async def one() -> None:
        await c._boot()
        await c._session(conn, plan)
        await asyncio.sleep(0.2)  # the reboot after a power loss

    asyncio.run(one())
    (attempt,) = ledger.attempts
    assert (attempt.delivered, attempt.ended_ok, attempt.failure) == (True, failure == "", failure)
    assert ledger.sessions[0].stop_reason == reason and attempt.transaction_id == ledger.sessions[0].transaction_id
    if ending is Ending.POWER_LOSS:
        assert [x.how for x in link.connections if x.closed_ms] == [OfflineHow.POWER_LOSS]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_session_closed_by_available_notes_how_soon_the_connector_was_plugged_in_again(version: str) -> None:
    c, link, ledger, closing = charger(version, Behaviours(**QUIET), quirks=frozenset({lives.Quirk.NEVER_STOPS}))
    conn = c.connectors[0]
    plan = replace(lives.plan_session(random.Random(1), c.profile), ending=Ending.USER_STOP, charge_s=300)

    async def two_sessions() -> None:
        await c._boot()
        await c._session(conn, plan)
        await asyncio.sleep(0.3)
        await c._session(conn, plan)

    asyncio.run(two_sessions())
    first, second = ledger.sessions
    assert (first.closed_by, second.closed_by) == ("available", "available")
    plugged = "Preparing" if version == "1.6" else "Occupied"
    statuses = link.status_windows(1)
    replugged, replugged_next, _ = [w for w in statuses if w[2] == plugged][1]
    available, available_next, _ = max(w for w in statuses if w[2] == "Available" and w[0] < replugged)
    assert first.replugged_after_s is not None and 0.3 <= first.replugged_after_s
    # each noted in its call's window (after the answer, before the next call): no tolerance on real time
    assert (replugged - available_next) / 1000 <= first.replugged_after_s <= (replugged_next - available) / 1000
    assert second.replugged_after_s is None  # not plugged in again
    assert first.to_json()["replugged_after_s"] == first.replugged_after_s
