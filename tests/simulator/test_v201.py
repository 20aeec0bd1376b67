"""The simulator in OCPP 2.0.1: every payload it builds validates against the 2.0.1 JSON schemas of the
``ocpp`` package (except where a quirk breaks it on purpose), the mapping of a 1.6 life onto 2.0.1,
the settings and the fleet's version mix, and whole 2.0.1 lives (every ending, both firmware orders,
every 2.0.1 quirk) played over a recording link and held against what the pipeline's own 2.0.1
normalizer and correlator make of them."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from importlib import resources
from typing import Any

import fastjsonschema
import pytest
from pydantic import ValidationError

from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import FaultEvent, Session
from simulator import expectations, lives, v201
from simulator.charger import Ledger, Timing, now_ms
from simulator.charger_v201 import Charger201
from simulator.fleet import make_charger, ocpp_version_of, plan_fleet
from simulator.link import held_between_calls
from simulator.lives import ENDINGS, Ending, Quirk
from simulator.settings import SimulatorSettings

T_MS = 1_764_000_000_000
ACTIONS = ("BootNotification", "Heartbeat", "StatusNotification", "Authorize", "TransactionEvent", "NotifyEvent")


def _validator(action: str):
    text = (resources.files("ocpp") / "v201" / "schemas" / f"{action}Request.json").read_text(encoding="utf-8")
    # use_default=False: the schemas declare defaults; validation must not write them into the payload.
    return fastjsonschema.compile(json.loads(text), use_default=False)


VALIDATORS = {action: _validator(action) for action in ACTIONS}


def valid(action: str, payload: dict) -> bool:
    try:
        VALIDATORS[action](copy.deepcopy(payload))
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def profile(*quirks: Quirk, **overrides: Any) -> lives.Profile:
    base = lives.make_profile(random.Random(3), 1, id_prefix="T-", connectors=(2, 2), quirky_share=0, ocpp="2.0.1")
    return replace(base, quirks=frozenset(quirks), **overrides)


def all_payloads(p: lives.Profile) -> list[tuple[str, str, dict]]:
    """(name, action, payload): every kind of payload a 2.0.1 charger sends."""
    plan = lives.plan_session(random.Random(1), p)
    token = v201.id_token(p, plan)
    tx = "0b8a3c52-5f0e-4c8e-9a53-1c2d3e4f5a6b"

    def event(event_type: str, trigger: str, **kw: Any) -> dict:
        return v201.transaction_event(p, event_type=event_type, ms=T_MS, trigger=trigger, seq_no=7, transaction_id=tx,
                                      evse=2, token=token, **kw)

    out = [("boot", "BootNotification", v201.boot_payload(p)), ("heartbeat", "Heartbeat", {}),
           ("authorize", "Authorize", v201.authorize_payload(token))]
    out += [(f"status {s}", "StatusNotification", v201.status_payload(p, 2, s, T_MS)) for s in sorted(set(v201.CONNECTOR_STATUS.values()))]
    out += [
        ("started", "TransactionEvent", event("Started", "Authorized", charging_state="EVConnected",
                                              meter=v201.meter_value(p, T_MS, 12_345_678, None, None, "Transaction.Begin"))),
        ("charging", "TransactionEvent", event("Updated", "ChargingStateChanged", charging_state="Charging", time_spent_charging_s=0)),
        ("periodic", "TransactionEvent", event("Updated", "MeterValuePeriodic", time_spent_charging_s=60,
                                               meter=v201.meter_value(p, T_MS, 12_346_000, 7400, 55.5))),
        ("offline periodic", "TransactionEvent", event("Updated", "MeterValuePeriodic", offline=True,
                                                       meter=v201.meter_value(p, T_MS, 12_346_000, 0, None))),
    ]
    for reason, trigger in v201.ENDED_TRIGGER.items():
        for state in sorted(set(v201.CHARGING_STATE.values()) - {"Charging"}):
            out.append((f"ended {reason} {state}", "TransactionEvent", event(
                "Ended", trigger, charging_state=state, stopped_reason=reason, time_spent_charging_s=3600,
                meter=v201.meter_value(p, T_MS, 12_400_000, None, None, "Transaction.End"), offline=reason == "PowerLoss")))
    for fault in lives.FAULT_CODES:
        for active in (True, False):
            out.append((f"problem {fault} {active}", "NotifyEvent", v201.notify_event(p, T_MS, 3, 2, fault, active=active)))
    return out


# --- payloads ---------------------------------------------------------------------------------


def test_plain_201_chargers_send_payloads_valid_against_the_201_schemas() -> None:
    for p in (profile(), profile(max_power_w=150_000), profile(status_after_stop=True)):
        for name, action, payload in all_payloads(p):
            assert valid(action, payload), (name, payload)


@pytest.mark.parametrize("quirk", lives.QUIRKS_V201)
def test_201_quirks_break_the_schema_only_where_real_chargers_do(quirk: Quirk) -> None:
    invalid = {name.split()[0] for name, action, payload in all_payloads(profile(quirk)) if not valid(action, payload)}
    assert invalid == ({"ended"} if quirk is Quirk.ENDED_WITHOUT_TRIGGER else set())


def test_transaction_event_fields_and_quirks() -> None:
    plan = lives.plan_session(random.Random(1), profile())

    def events(p: lives.Profile) -> dict[str, dict]:
        token = v201.id_token(p, plan)
        common = {"ms": T_MS, "transaction_id": "T", "evse": 2, "token": token}
        return {t: v201.transaction_event(p, event_type=t, trigger="Trigger", seq_no=1, **common) for t in ("Started", "Updated", "Ended")}

    plain = events(profile())
    assert plain["Started"]["idToken"] == {"idToken": plan.id_tag, "type": "ISO14443"}
    assert "idToken" not in plain["Updated"] and "idToken" not in plain["Ended"]
    assert all(e["evse"] == {"id": 2, "connectorId": 1} and "offline" not in e for e in plain.values())
    assert all("idToken" in e for e in events(profile(Quirk.ID_TOKEN_EVERY_EVENT)).values())
    only_start = events(profile(Quirk.EVSE_ONLY_ON_START))
    assert "evse" in only_start["Started"] and "evse" not in only_start["Updated"] and "evse" not in only_start["Ended"]
    assert "triggerReason" not in events(profile(Quirk.ENDED_WITHOUT_TRIGGER))["Ended"]
    assert v201.id_token(profile(Quirk.NO_AUTHORIZATION), plan) == {"idToken": "", "type": "NoAuthorization"}
    kwh = v201.meter_value(profile(Quirk.KWH_REGISTER), T_MS, 38_123_456, None, None)["sampledValue"][0]
    assert (kwh["value"], kwh["unitOfMeasure"]) == (38123.456, {"unit": "kWh"})  # every Wh survives
    wh = v201.meter_value(profile(), T_MS, 1234, 7400, 50.0, "Transaction.Begin")["sampledValue"]
    assert wh[0] == {"value": 1234, "unitOfMeasure": {"unit": "Wh"}, "context": "Transaction.Begin",
                     "measurand": "Energy.Active.Import.Register", "location": "Outlet"}
    assert [s["measurand"] for s in wh] == ["Energy.Active.Import.Register", "Power.Active.Import", "SoC"]


def test_a_fault_is_a_component_problem_that_begins_and_clears() -> None:
    fault = ("ConnectorLockFailure", "L-2", "")
    began = v201.notify_event(profile(), T_MS, 4, 2, fault, active=True)
    cleared = v201.notify_event(profile(), T_MS, 5, 2, fault, active=False)
    assert began["eventData"][0] | {"timestamp": None} == {
        "eventId": 4, "timestamp": None, "trigger": "Alerting", "actualValue": "true",
        "component": {"name": "ConnectorPlugRetentionLock", "evse": {"id": 2, "connectorId": 1}},
        "variable": {"name": "Problem"}, "eventNotificationType": "HardWiredNotification", "techCode": "L-2"}
    assert cleared["eventData"][0]["actualValue"] == "false" and cleared["eventData"][0]["cleared"] is True
    assert (began["seqNo"], began["tbc"]) == (0, False)
    assert v201.fault_error_code(fault) == "ConnectorPlugRetentionLock/Problem"
    # Every fault the plans draw names its own standardized component.
    assert len({v201.fault_component(f) for f in lives.FAULT_CODES}) == len(lives.FAULT_CODES)
    assert "EVSE" not in {v201.fault_component(f) for f in lives.FAULT_CODES}


def test_every_1_6_transition_out_of_charging_has_its_charging_state() -> None:
    assert {e: v201.charging_state(s.transition) for e, s in ENDINGS.items()} == {
        Ending.USER_STOP: "EVConnected", Ending.EV_FULL: "SuspendedEV", Ending.EVSE_LIMIT: "SuspendedEVSE",
        Ending.REMOTE_STOP: "EVConnected", Ending.CABLE_PULLED: "Idle", Ending.POWER_LOSS: "Idle", Ending.FAULT: "EVConnected",
        Ending.EMERGENCY_STOP: "EVConnected"}
    assert {s.reason for s in ENDINGS.values()} <= set(v201.ENDED_TRIGGER)


# --- profiles, settings, the fleet's mix ------------------------------------------------------------


def test_a_201_charger_is_its_16_twin_with_the_201_counterparts_of_its_quirks() -> None:
    for seed in range(300):
        twin16 = lives.make_profile(random.Random(seed), seed, id_prefix="S-", connectors=(1, 4), quirky_share=0.5)
        twin201 = lives.make_profile(random.Random(seed), seed, id_prefix="S-", connectors=(1, 4), quirky_share=0.5, ocpp="2.0.1")
        # (A station that numbers transactions per EVSE has at least two of them.)
        evses = max(twin16.connectors, 2) if lives.Quirk.PER_EVSE_TRANSACTION_IDS in twin201.quirks else twin16.connectors
        assert replace(twin201, quirks=twin16.quirks, ocpp="1.6", connectors=twin16.connectors) == twin16
        assert twin201.connectors == evses
        assert twin201.quirks <= set(lives.QUIRKS_V201) and twin16.quirks <= set(lives.QUIRKS_V16)
        assert bool(twin201.quirks) == bool(twin16.quirks)
        assert (twin16.subprotocol, twin201.subprotocol) == ("ocpp1.6", "ocpp2.0.1")


def test_every_201_quirk_is_drawn() -> None:
    drawn = set()
    for seed in range(400):
        drawn |= lives.make_profile(random.Random(seed), 1, id_prefix="S-", connectors=(1, 1), quirky_share=1, ocpp="2.0.1").quirks
    assert drawn == set(lives.QUIRKS_V201)


def test_ocpp_settings_read_versions_and_mixes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SimulatorSettings().ocpp_shares() == (("1.6", 1.0),)
    assert SimulatorSettings(ocpp="ocpp2.0.1").ocpp == "2.0.1"
    assert SimulatorSettings(ocpp_mix="1.6:1,2.0.1:3").ocpp_shares() == (("1.6", 0.25), ("2.0.1", 0.75))
    assert SimulatorSettings(ocpp="1.6", ocpp_mix="2.0.1:1").ocpp_shares() == (("2.0.1", 1.0),)  # the mix wins
    assert SimulatorSettings(ocpp_mix="1.6:0,2.0.1:0.2").ocpp_shares() == (("2.0.1", 1.0),)
    monkeypatch.setenv("OCPP_SIMULATOR_OCPP", "2.0.1")
    assert SimulatorSettings().ocpp_shares() == (("2.0.1", 1.0),)
    monkeypatch.setenv("OCPP_SIMULATOR_OCPP_MIX", "1.6:0.5,2.0.1:0.5")
    assert SimulatorSettings().ocpp_shares() == (("1.6", 0.5), ("2.0.1", 0.5))


@pytest.mark.parametrize("field,value", [("ocpp", "2.0"), ("ocpp", "1.5"), ("ocpp_mix", "1.6"), ("ocpp_mix", "1.6:x"),
                                         ("ocpp_mix", "2.1:1"), ("ocpp_mix", "1.6:0"), ("ocpp_mix", "1.6:-1,2.0.1:2"),
                                         ("ocpp_mix", "1.6:1,1.6:1"), ("ocpp_mix", "1.6:nan")])
def test_bad_ocpp_settings_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="OCPP"):
        SimulatorSettings(**{field: value})


def test_the_mix_is_held_per_charger_whatever_the_fleet_size() -> None:
    settings = SimulatorSettings(chargers=1000, seed=4, ocpp_mix="1.6:0.5,2.0.1:0.5")
    versions = [p.ocpp for p in plan_fleet(settings)]
    for n in (12, 100, 1000):  # any run of chargers holds the shares within a charger or two
        assert abs(versions[:n].count("2.0.1") - n / 2) <= 2, n
    small = plan_fleet(settings.model_copy(update={"chargers": 12}))
    assert [p.ocpp for p in small] == versions[:12]
    assert plan_fleet(settings) == plan_fleet(settings)
    other = [ocpp_version_of(settings.model_copy(update={"seed": 5}), n) for n in range(1, 1001)]
    assert other != versions
    assert {p.ocpp for p in plan_fleet(settings.model_copy(update={"ocpp_mix": None, "ocpp": "2.0.1"}))} == {"2.0.1"}
    tilted = [ocpp_version_of(settings.model_copy(update={"ocpp_mix": "1.6:0.9,2.0.1:0.1"}), n) for n in range(1, 1001)]
    assert 95 <= tilted.count("2.0.1") <= 105
    # The same seed, one fleet in 1.6 and one in 2.0.1: the same chargers, apart from quirks and version.
    one = plan_fleet(settings.model_copy(update={"ocpp_mix": None, "quirky_share": 0}))
    two = plan_fleet(settings.model_copy(update={"ocpp_mix": "2.0.1:1", "quirky_share": 0}))
    assert [replace(p, ocpp="1.6") for p in two] == one


def test_201_chargers_get_their_own_class_and_offer() -> None:
    settings = SimulatorSettings(chargers=2, ocpp="2.0.1")
    p = profile(Quirk.EMPTY_FIRST_SUBPROTOCOL)
    charger = make_charger(settings, p, Timing(), Ledger(), None, asyncio.Event())  # type: ignore[arg-type]
    assert isinstance(charger, Charger201)
    assert charger.link.subprotocols == ["ocpp2.0.1"] and charger.link.speaks == "ocpp2.0.1"
    assert charger.link.empty_first_subprotocol
    p16 = replace(p, ocpp="1.6", quirks=frozenset({Quirk.OFFERS_TWO_PROTOCOLS}))
    charger16 = make_charger(settings, p16, Timing(), Ledger(), None, asyncio.Event())  # type: ignore[arg-type]
    assert type(charger16).__name__ == "Charger" and charger16.link.speaks == "ocpp1.6"
    assert charger16.link.subprotocols == ["ocpp2.0.1", "ocpp1.6"]


# --- whole lives over a recording link, through the pipeline's own correlator -------------------------


class RecordingLink:
    """Stands in for :class:`simulator.link.Link`: one CALL at a time, answered as the gateway answers
    2.0.1; while the power is off calls wait (the real link keeps them and resends after the reboot)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, dict]] = []
        self._lock = asyncio.Lock()
        self._power = asyncio.Event()
        self._power.set()
        self._recorded = asyncio.Condition()

    def between_calls(self) -> AbstractAsyncContextManager[None]:
        return held_between_calls(self._lock, 5.0)

    async def call(self, action: str, payload: dict) -> dict | None:
        async with self._lock:
            await self._power.wait()
            self.calls.append((now_ms(), action, copy.deepcopy(payload)))
            async with self._recorded:
                self._recorded.notify_all()
            await asyncio.sleep(0)
            if action == "BootNotification":
                return {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}
            if action == "Authorize" or (action == "TransactionEvent" and "idToken" in payload):
                return {"idTokenInfo": {"status": "Accepted"}}
            return {}

    @property
    def online(self) -> bool:
        return self._power.is_set()

    def cut_power(self) -> None:
        self._power.clear()

    def restore_power(self) -> None:
        self._power.set()

    async def close(self) -> None:
        pass

    async def until(self, sent: Callable[[str, dict], bool]) -> None:
        """Until a CALL for which ``sent(action, payload)`` holds has gone on the wire."""
        async with self._recorded:
            await self._recorded.wait_for(lambda: any(sent(action, payload) for _, action, payload in self.calls))


TIMING = Timing(time_scale=3000, meter_interval_s=120, heartbeat_interval_s=300, idle_mean_s=600)


def charging_sample(action: str, payload: dict) -> bool:
    """A TransactionEvent with a periodic sample: the session charges and has delivered energy."""
    return action == "TransactionEvent" and payload.get("triggerReason") == "MeterValuePeriodic"


async def live(number: int, ending: Ending | None, p: lives.Profile, ledger: Ledger, *, idle_fault: bool = False,
               link: RecordingLink | None = None) -> RecordingLink:
    """One charger: boot, one session with ``ending`` (None: the run ends while it charges), then an idle fault.

    The run ends once the session has sent a periodic sample (it charges), not after a span of real time: a loop
    that gets no CPU for that long (a loaded machine) would end the run before the driver's card."""
    link = link or RecordingLink()
    closing = asyncio.Event()
    charger = Charger201(replace(p, charge_point_id=f"SIM-{number:05d}", number=number, connectors=1), link, TIMING, ledger,  # type: ignore[arg-type]
                         random.Random(number), closing)
    await charger._boot()
    conn = charger.connectors[0]
    plan = replace(lives.plan_session(random.Random(number), charger.profile), ending=ending or Ending.USER_STOP,
                   power_w=150_000, charge_s=1200, suspended_s=600, status_gap_s=30, unplug_s=60, fault_s=300, reboot_s=60)
    if ending is None:
        session = asyncio.create_task(charger._session(conn, plan))
        charging = asyncio.create_task(link.until(charging_sample))
        await asyncio.wait((session, charging), return_when=asyncio.FIRST_COMPLETED)
        charging.cancel()
        closing.set()
        await session
    else:
        await charger._session(conn, plan)
    if idle_fault:
        await charger._status(1, "Faulted", lives.FAULT_CODES[2], conn=conn)
        await charger._status(1, "Available", conn=conn)
    return link


def envelopes(charge_point_id: str, link: RecordingLink) -> list[FrameEnvelope]:
    return [FrameEnvelope(charge_point_id=charge_point_id, direction=Direction.IN, gateway_ts_ms=at,
                          frame=json.dumps([2, str(i), action, payload]), ocpp_version="ocpp2.0.1", gateway_id="gw",
                          connection_id="c", seq=i, message_type=MessageType.CALL, action=action, message_id=str(i))
            for i, (at, action, payload) in enumerate(link.calls)]


def correlate(charge_point_id: str, link: RecordingLink) -> tuple[list[dict], list[dict]]:
    """What the pipeline's correlator makes of the frames: the newest revision of each session, the fault events."""
    correlator = Correlator(charge_point_id, CorrelatorConfig.defaults())
    events = []
    for envelope in envelopes(charge_point_id, link):
        events += correlator.feed(envelope)
    events += correlator.advance(link.calls[-1][0] + 3_600_000)
    newest: dict[str, Session] = {}
    for e in events:
        if isinstance(e, Session) and (e.session_id not in newest or e.version > newest[e.session_id].version):
            newest[e.session_id] = e
    faults = [e.model_dump(mode="json") for e in events if isinstance(e, FaultEvent)]
    return [s.model_dump(mode="json") for s in newest.values()], faults


def check_wire(link: RecordingLink, quirks: frozenset[Quirk]) -> None:
    """Every payload valid (but what a quirk breaks), seqNo +1 per TransactionEvent, one transaction per id."""
    seq_nos, by_tx = [], {}
    for _, action, payload in link.calls:
        breaks = action == "TransactionEvent" and payload["eventType"] == "Ended" and Quirk.ENDED_WITHOUT_TRIGGER in quirks
        assert valid(action, payload) != breaks, (action, payload)
        if action == "TransactionEvent":
            seq_nos.append(payload["seqNo"])
            by_tx.setdefault(payload["transactionInfo"]["transactionId"], []).append(payload)
    assert seq_nos == list(range(len(seq_nos)))
    for events in by_tx.values():
        kinds = [e["eventType"] for e in events]
        replayed = Quirk.UPDATED_AFTER_ENDED in quirks and kinds[-1] == "Updated"
        if replayed:
            assert events[-1]["offline"] is True and kinds[-2] == "Ended"
            kinds = kinds[:-1]
        assert kinds[0] == "Started" and kinds[-1] == "Ended" and set(kinds[1:-1]) <= {"Updated"}
        started, ended = events[0], [e for e in events if e["eventType"] == "Ended"][0]
        assert started["transactionInfo"]["chargingState"] == "EVConnected" and started["evse"]["connectorId"] == 1
        assert started["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.Begin"
        assert ended["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
        assert ended["transactionInfo"]["stoppedReason"] in {"Local", "Remote", "EVDisconnected", "PowerLoss", "Other", "EmergencyStop"}


CASES: list[tuple[Ending | None, frozenset[Quirk], bool]] = (
    [(ending, frozenset(), after) for ending in Ending for after in (False, True)]
    + [(None, frozenset(), after) for after in (False, True)]
    + [(ending, frozenset({quirk}), i % 2 == 0) for i, quirk in enumerate(lives.QUIRKS_V201) for ending in Ending]
)


def test_201_lives_on_the_wire_are_what_the_pipeline_expects() -> None:
    """Every ending in both firmware orders, the end of a run, and each 2.0.1 quirk with every ending:
    valid frames, and the pipeline's own normalizer and correlator produce exactly the expectations."""
    ledgers = [Ledger() for _ in CASES]

    async def run() -> list[RecordingLink]:
        return await asyncio.gather(*(
            live(n, ending, profile(*quirks, status_after_stop=after), ledgers[n - 1], idle_fault=n % 3 == 0)
            for n, (ending, quirks, after) in enumerate(CASES, start=1)))

    links = asyncio.run(run())
    problems: list[str] = []
    seen_endings: Counter[str] = Counter()
    for n, ((ending, quirks, after), link, ledger) in enumerate(zip(CASES, links, ledgers), start=1):
        cp = f"SIM-{n:05d}"
        check_wire(link, quirks)
        assert len(ledger.sessions) == 1, (ending, quirks, ledger.sessions)
        expected = ledger.sessions[0].to_json()
        seen_endings[expected["ending"]] += 1
        assert expected["ocpp_version"] == "ocpp2.0.1" and expected["closed_by"] == "stop_transaction"
        started = next(p for _, a, p in link.calls if a == "TransactionEvent" and p["eventType"] == "Started")
        assert expected["id_tag"] == started["idToken"]["idToken"] == ("" if Quirk.NO_AUTHORIZATION in quirks else expected["id_tag"])
        assert started["triggerReason"] == ("CablePluggedIn" if Quirk.NO_AUTHORIZATION in quirks else "Authorized")
        if ending is not None:
            assert expected["stop_status"] == v201.charging_state(ENDINGS[ending].transition)
            assert expected["stop_reason"] == ENDINGS[ending].reason
        sessions, faults = correlate(cp, link)
        problems += [f"{ending} {sorted(quirks)} after={after}: {p}" for p in
                     expectations.session_mismatches([expected], sessions)]
        problems += [f"{ending} {sorted(quirks)} after={after}: {p}" for p in
                     expectations.fault_mismatches([f.to_json() for f in ledger.faults], faults)]
        assert all(f.ocpp_version == "ocpp2.0.1" and f.error_code.endswith("/Problem") for f in ledger.faults)
    assert problems == [], "\n".join(problems)
    assert set(seen_endings) == {e.value for e in Ending}
    assert all(e.energy_wh > 0 for ledger in ledgers for e in ledger.sessions)  # the run ends while it charges, too


def test_the_run_ends_while_the_session_charges_however_busy_the_machine() -> None:
    """The end of a run in :func:`live` comes while the session charges even when the loop gets no CPU for longer
    than any span of real time a harness might wait (here 0.4 s, twice the 600 simulated seconds it once waited,
    right after the plug-in): the session started, charged, and its driver stopped it at the run's end."""
    link, ledger = RecordingLink(), Ledger()

    async def busy_machine() -> None:
        await link.until(lambda action, payload: payload.get("connectorStatus") == "Occupied")  # plugged in: the card next
        time.sleep(2 * TIMING.real(600))  # blocks the loop, as a loaded machine does

    async def run() -> None:
        await asyncio.gather(live(1, None, profile(), ledger, link=link), busy_machine())

    asyncio.run(run())
    events = [(p["eventType"], p["triggerReason"]) for _, a, p in link.calls if a == "TransactionEvent"]
    assert events[:3] == [("Started", "Authorized"), ("Updated", "ChargingStateChanged"), ("Updated", "MeterValuePeriodic")]
    assert events[-1] == ("Ended", "StopAuthorized") and len(ledger.sessions) == 1
    session = ledger.sessions[0]
    assert (session.ending, session.stop_reason, session.closed_by) == ("user_stop", "Local", "stop_transaction")
    assert session.energy_wh > 0


def test_a_power_loss_sends_the_ended_from_the_offline_queue_after_the_reboot() -> None:
    ledger = Ledger()
    link = asyncio.run(live(1, Ending.POWER_LOSS, profile(), ledger))
    actions = [(a, p.get("eventType") or p.get("reason") or p.get("connectorStatus")) for _, a, p in link.calls]
    boots = [i for i, (a, _) in enumerate(actions) if a == "BootNotification"]
    ended = actions.index(("TransactionEvent", "Ended"))
    assert len(boots) == 2 and boots[1] < ended and actions[ended + 1] == ("StatusNotification", "Available")
    assert link.calls[boots[1]][2]["reason"] == "PowerUp"
    payload = link.calls[ended][2]
    assert payload["offline"] is True and payload["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert payload["triggerReason"] == "AbnormalCondition" and payload["transactionInfo"]["chargingState"] == "Idle"
    assert payload["timestamp"] < lives.timestamp(link.calls[boots[1]][0], profile())  # the moment the power went
    assert ledger.sessions[0].stop_status == "Idle" and ledger.sessions[0].stop_reason == "PowerLoss"


def test_a_fault_ending_faults_the_evse_and_clears_it() -> None:
    ledger = Ledger()
    link = asyncio.run(live(1, Ending.FAULT, profile(status_after_stop=False), ledger))
    sequence = [(a, p.get("connectorStatus") or p.get("eventType") or p["eventData"][0]["actualValue"])
                for _, a, p in link.calls if a not in ("BootNotification", "Authorize")]
    faulted = sequence.index(("StatusNotification", "Faulted"))
    assert sequence[faulted + 1] == ("NotifyEvent", "true")
    assert sequence[faulted + 2][0] == "TransactionEvent" and sequence[-2:] == [("NotifyEvent", "false"), ("StatusNotification", "Available")]
    component = next(p for _, a, p in link.calls if a == "NotifyEvent")["eventData"][0]["component"]
    assert component["evse"] == {"id": 1, "connectorId": 1}
    assert [f.to_json() for f in ledger.faults] == [
        {"kind": "fault", "charge_point_id": "SIM-00001", "connector_id": 1, "error_code": f"{component['name']}/Problem",
         "cleared": True, "ocpp_version": "ocpp2.0.1"}]
    assert ledger.sessions[0].stop_status == "EVConnected" and ledger.sessions[0].stop_reason == "Other"
