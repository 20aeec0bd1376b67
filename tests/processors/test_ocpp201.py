"""OCPP 2.0.1 conversations through the same correlator: TransactionEvent sequences (table-driven), the
quirks of OCPP-QUIRKS.md's 2.0.1 section, faults from NotifyEvent, and a mixed 1.6 / 2.0.1 charger park."""

from __future__ import annotations

import json
from typing import Any

import pytest

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from processors.events import Event
from schemas.flags import Flag
from processors.state import CorrelatorState
from schemas.base import ms_to_datetime
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import AttemptKind, EnergySource, FaultEvent, FaultEventKind, Session, StatusChange
from tests.processors.script import T0_MS, attempts, iso, outages

WINDOW = 60
TX = "4c1d3b8e-8f4a-4a55-9d0e-3a1f7f2b6c01"


def register(wh: float, context: str, unit: str = "Wh", *, as_kwh: bool = False) -> dict[str, Any]:
    value = wh / 1000 if as_kwh else wh
    return {"value": value, "context": context, "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "kWh" if as_kwh else unit}}


class Station:
    """A 2.0.1 charging station's side of the conversation, at gateway times the test controls."""

    def __init__(self, charge_point_id: str = "CS-1") -> None:
        self.charge_point_id = charge_point_id
        self.envelopes: list[FrameEnvelope] = []
        self.now = 0.0
        self.seq_no = 0

    def at(self, seconds: float) -> "Station":
        self.now = seconds
        return self

    def call(self, action: str, payload: dict[str, Any]) -> "Station":
        message_id = f"m{len(self.envelopes)}"
        self.envelopes.append(FrameEnvelope(
            charge_point_id=self.charge_point_id, direction=Direction.IN, gateway_ts_ms=T0_MS + int(self.now * 1000),
            frame=json.dumps([2, message_id, action, payload]), ocpp_version="ocpp2.0.1", gateway_id="gw",
            connection_id="c", seq=len(self.envelopes), message_type=MessageType.CALL, action=action, message_id=message_id,
        ))
        return self

    def event(self, event_type: str, tx: str = TX, *, state: str | None = None, evse: int | None = 1,
              meter: list[dict[str, Any]] | None = None, reason: str | None = None, trigger: str | None = "MeterValuePeriodic",
              ts: float | None = None, offline: bool = False, id_token: str | None = None, seq_no: int | None = None) -> "Station":
        info: dict[str, Any] = {"transactionId": tx}
        if state:
            info["chargingState"] = state
        if reason:
            info["stoppedReason"] = reason
        payload: dict[str, Any] = {"eventType": event_type, "timestamp": iso(self.now if ts is None else ts),
                                   "seqNo": self.seq_no if seq_no is None else seq_no, "transactionInfo": info}
        self.seq_no += 1
        if trigger:
            payload["triggerReason"] = trigger
        if evse is not None:
            payload["evse"] = {"id": evse, "connectorId": 1}
        if id_token is not None:
            payload["idToken"] = {"idToken": id_token, "type": "ISO14443" if id_token else "NoAuthorization"}
        if meter:
            payload["meterValue"] = [{"timestamp": iso(self.now if ts is None else ts), "sampledValue": meter}]
        if offline:
            payload["offline"] = True
        return self.call("TransactionEvent", payload)

    def status(self, evse: int, status: str) -> "Station":
        return self.call("StatusNotification", {"timestamp": iso(self.now), "connectorStatus": status, "evseId": evse,
                                                "connectorId": 1})

    def problem(self, evse: int | None, component: str, active: bool, tech_code: str = "") -> "Station":
        data: dict[str, Any] = {"eventId": len(self.envelopes), "timestamp": iso(self.now), "trigger": "Delta",
                                "actualValue": "true" if active else "false", "eventNotificationType": "HardWiredNotification",
                                "component": {"name": component}, "variable": {"name": "Problem"}}
        if evse is not None:
            data["component"]["evse"] = {"id": evse, "connectorId": 1}
        if tech_code:
            data["techCode"] = tech_code
        return self.call("NotifyEvent", {"generatedAt": iso(self.now), "seqNo": 0, "eventData": [data]})

    def charge(self, *, start_wh: float = 10_000, end_wh: float = 24_300, start: float = 0, end: float = 3600,
               out_state: str = "EVConnected", reason: str | None = "Local", id_token: str = "TOKEN-1", evse: int = 1,
               tx: str = TX) -> "Station":
        self.at(start).status(evse, "Occupied")
        self.at(start + 1).event("Started", tx, state="EVConnected", evse=evse, trigger="CablePluggedIn", id_token=id_token,
                                 meter=[register(start_wh, "Transaction.Begin")])
        self.at(start + 2).event("Updated", tx, state="Charging", evse=evse, trigger="ChargingStateChanged")
        self.at((start + end) / 2).event("Updated", tx, evse=evse,
                                         meter=[register((start_wh + end_wh) / 2, "Sample.Periodic")])
        self.at(end).event("Ended", tx, state=out_state, evse=evse, reason=reason, trigger="StopAuthorized",
                           meter=[register(end_wh, "Transaction.End")])
        return self

    def run(self, config: CorrelatorConfig | None = None, *, until: float | None = None) -> list[Event]:
        config = config or CorrelatorConfig.defaults()
        state: CorrelatorState | None = None
        events: list[Event] = []
        for envelope in self.envelopes:
            correlator = Correlator(self.charge_point_id, config, state)
            events += correlator.feed(envelope)
            state = state_codec.loads(state_codec.dumps(correlator.state))
        if until is not None:
            events += Correlator(self.charge_point_id, config, state).advance(T0_MS + int(until * 1000))
        return events


def sessions(events: list[Event]) -> list[Session]:
    return [e for e in events if isinstance(e, Session)]


def newest(events: list[Event]) -> dict[str, Session]:
    out: dict[str, Session] = {}
    for s in sessions(events):
        if s.session_id not in out or s.version > out[s.session_id].version:
            out[s.session_id] = s
    return out


def only(events: list[Event]) -> Session:
    rows = list(newest(events).values())
    assert len(rows) == 1, rows
    return rows[0]


# --- the mapping, field by field --------------------------------------------------------------------

def test_a_transaction_event_sequence_is_a_session_mapped_field_by_field() -> None:
    station = Station().charge()
    session = only(station.run(until=3600 + WINDOW + 1))
    assert (session.transaction_id, session.connector_id, session.id_tag) == (TX, 1, "TOKEN-1")
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (10_000.0, 24_300.0, 14_300.0)
    assert session.energy_source == EnergySource.METER_STOP
    assert (session.stop_reason, session.stop_status, session.closed_by) == ("Local", "EVConnected", "stop_transaction")
    assert (session.duration_s, session.ocpp_version) == (3599.0, "ocpp2.0.1")
    assert session.flags == []


@pytest.mark.parametrize("out_state", ["EVConnected", "SuspendedEV", "SuspendedEVSE", "Idle"])
def test_the_charging_state_out_of_charging_is_the_stop_status(out_state: str) -> None:
    session = only(Station().charge(out_state=out_state).run(until=3700))
    assert session.stop_status == out_state


def test_the_move_out_of_charging_before_the_ended_counts() -> None:
    """The EV is full (SuspendedEV) in an Updated; the Ended comes when the cable goes (Idle)."""
    station = Station()
    station.at(1).event("Started", state="EVConnected", id_token="T", meter=[register(0, "Transaction.Begin")])
    station.at(2).event("Updated", state="Charging", trigger="ChargingStateChanged")
    station.at(1800).event("Updated", state="SuspendedEV", trigger="ChargingStateChanged")
    station.at(2400).event("Ended", state="Idle", reason="EVDisconnected", meter=[register(9000, "Transaction.End")])
    session = only(station.run(until=2500))
    assert (session.stop_status, session.stop_reason, session.energy_wh) == ("SuspendedEV", "EVDisconnected", 9000.0)


@pytest.mark.parametrize("reason, expected", [("Remote", "Remote"), ("EVDisconnected", "EVDisconnected"),
                                              ("PowerLoss", "PowerLoss"), (None, "Local")])
def test_stopped_reason_is_the_stop_reason_and_local_when_absent(reason: str | None, expected: str) -> None:
    assert only(Station().charge(reason=reason).run(until=3700)).stop_reason == expected


def test_no_authorization_starts_have_an_empty_id_tag() -> None:
    assert only(Station().charge(id_token="").run(until=3700)).id_tag == ""


def test_registers_in_kwh_and_as_lifetime_totals_in_the_mwh_range() -> None:
    station = Station()
    station.at(1).event("Started", state="Charging", id_token="T", meter=[register(12_345_678, "Transaction.Begin", as_kwh=True)])
    station.at(1800).event("Updated", meter=[register(12_352_800, "Sample.Periodic", as_kwh=True)])
    station.at(3600).event("Ended", state="EVConnected", meter=[register(12_359_978, "Transaction.End", as_kwh=True)])
    session = only(station.run(until=3700))
    assert session.energy_wh == pytest.approx(14_300.0)
    assert Flag.ENERGY_MISMATCH not in session.flags


def test_evses_number_their_connectors_from_one() -> None:
    """Connector 1 of EVSE 2 is not connector 1 of EVSE 1: the session's connector is the EVSE."""
    station = Station()
    station.charge(evse=1, tx="A", start=0, end=1000)
    station.charge(evse=2, tx="B", start=10, end=900, start_wh=500, end_wh=900)
    rows = {s.transaction_id: s for s in newest(station.run(until=2000)).values()}
    assert (rows["A"].connector_id, rows["B"].connector_id) == (1, 2)
    assert (rows["A"].energy_wh, rows["B"].energy_wh) == (14_300.0, 400.0)


# --- the 2.0.1 quirks of OCPP-QUIRKS.md --------------------------------------------------------------

def test_an_ended_without_trigger_reason_still_closes_the_session_flagged() -> None:
    station = Station()
    station.at(1).event("Started", state="Charging", id_token="T", meter=[register(0, "Transaction.Begin")])
    station.at(600).event("Ended", state="EVConnected", trigger=None, meter=[register(2000, "Transaction.End")])
    session = only(station.run(until=700))
    assert session.energy_wh == 2000.0 and Flag.TRIGGER_REASON_MISSING in session.flags


def test_an_updated_replayed_after_the_ended_does_not_reopen_the_session() -> None:
    """It changes nothing but leaves its trace (issue #23, class 9; it used to leave none): a revision flagged."""
    station = Station().charge()
    station.at(3700).event("Updated", state="Charging", offline=True, ts=1800, seq_no=2,
                           meter=[register(17_150, "Sample.Periodic")])
    events = station.run(until=5000)
    session = only(events)
    assert (session.energy_wh, session.closed_by, session.revision) == (14_300.0, "stop_transaction", 1)
    assert Flag.SEQ_NO_REPEATED in session.flags


def test_a_resent_ended_never_doubles() -> None:
    """One session, its energy once; the resend is flagged on it (a revision: issue #23, class 9)."""
    station = Station().charge()
    station.envelopes.append(station.envelopes[-1].model_copy(update={"seq": 99, "gateway_ts_ms": T0_MS + 3610_000}))
    events = station.run(until=5000)
    assert only(events).energy_wh == 14_300.0 and Flag.SEQ_NO_REPEATED in only(events).flags


def test_evse_and_id_token_omitted_from_later_events() -> None:
    station = Station()
    station.at(1).event("Started", state="EVConnected", evse=2, id_token="T", meter=[register(100, "Transaction.Begin")])
    station.at(2).event("Updated", state="Charging", evse=None)
    station.at(900).event("Ended", state="EVConnected", evse=None, reason="Local", meter=[register(1100, "Transaction.End")])
    session = only(station.run(until=1000))
    assert (session.connector_id, session.id_tag, session.energy_wh, session.stop_status) == (2, "T", 1000.0, "EVConnected")


def test_offline_events_are_flagged_and_a_transaction_first_seen_ended_is_a_stop_only_session() -> None:
    station = Station()
    station.at(500).event("Ended", state="Idle", reason="PowerLoss", offline=True, ts=100,
                          meter=[register(3000, "Transaction.End")])
    session = only(station.run(until=1000))
    assert {Flag.OFFLINE_EVENT, Flag.STOP_WITHOUT_START, Flag.TRANSACTION_ID_UNKNOWN} <= set(session.flags)
    assert (session.transaction_id, session.connector_id, session.stop_reason) == (TX, 1, "PowerLoss")


def test_registers_sent_as_json_numbers_are_not_flagged_as_a_quirk() -> None:
    session = only(Station().charge().run(until=3700))
    assert Flag.SAMPLE_VALUE_NOT_STRING not in session.flags


# --- status and faults ------------------------------------------------------------------------------

def test_status_notifications_feed_the_timeline_and_notify_event_names_the_fault() -> None:
    """The EVSE is in fault from its Faulted status (issue #23, class 6: it used to begin at the NotifyEvent) until
    it says Available, the problem ending a second before; the NotifyEvent names it."""
    station = Station()
    station.at(0).status(1, "Available").at(10).status(1, "Faulted")
    station.at(11).problem(1, "ConnectorPlugRetentionLock", True, tech_code="E42")
    station.at(70).problem(1, "ConnectorPlugRetentionLock", False).at(71).status(1, "Available")
    events = station.run()
    timeline = [(e.connector_id, e.status) for e in events if isinstance(e, StatusChange)]
    assert timeline == [(1, "Available"), (1, "Faulted"), (1, "Available")]
    faults = [e for e in events if isinstance(e, FaultEvent)]
    assert [(f.event, f.error_code, f.connector_id) for f in faults] == [
        (FaultEventKind.BEGAN, "ConnectorPlugRetentionLock/Problem", 1),
        (FaultEventKind.CLEARED, "ConnectorPlugRetentionLock/Problem", 1),
    ]
    assert faults[0].vendor_error_code == "E42" and faults[1].duration_s == 61.0
    assert faults[0].occurred_at == faults[1].began_at == ms_to_datetime(T0_MS + 10_000)
    assert all(f.ocpp_version == "ocpp2.0.1" for f in faults)


def test_a_station_level_problem_is_on_connector_zero_and_other_variables_are_not_faults() -> None:
    station = Station()
    station.at(0).problem(None, "PowerContactor", True)
    station.at(1).call("NotifyEvent", {"generatedAt": iso(1), "seqNo": 1, "eventData": [
        {"eventId": 9, "timestamp": iso(1), "trigger": "Periodic", "actualValue": "41.5", "eventNotificationType": "CustomMonitor",
         "component": {"name": "TempSensor"}, "variable": {"name": "Temperature"}}]})
    faults = [e for e in station.run() if isinstance(e, FaultEvent)]
    assert [(f.connector_id, f.error_code, f.event) for f in faults] == [(0, "PowerContactor/Problem", FaultEventKind.BEGAN)]


def test_a_mixed_park_gives_each_session_its_protocol() -> None:
    from tests.processors.script import Script, only_session

    v16 = Script("CP-16")
    v16.at(0).status(1, "Preparing").at(1).start(1, 5, meter_start=0).at(2).status(1, "Charging")
    v16.at(600).status(1, "Finishing").at(601).stop(5, 1000)
    assert only_session(v16.run()).ocpp_version == "ocpp1.6"
    assert only(Station("CS-201").charge().run(until=3700)).ocpp_version == "ocpp2.0.1"


@pytest.mark.parametrize("payload", [
    {"eventType": "Started"}, {"transactionInfo": "x"}, {"eventType": "Ended", "transactionInfo": {"transactionId": ""}},
    {"eventType": "Updated", "transactionInfo": {"transactionId": 5}, "meterValue": "x"},
    {"eventType": "Started", "transactionInfo": {"transactionId": "\ud800"}, "evse": {"id": 2**70},
     "meterValue": [{"timestamp": "10000-01-01T00:00:00Z", "sampledValue": [{"value": 1e308, "unitOfMeasure": {"multiplier": 400}}]}]},
])
def test_broken_transaction_events_never_raise(payload: dict[str, Any]) -> None:
    station = Station()
    station.at(1).call("TransactionEvent", payload)
    station.at(2).call("StatusNotification", {"evseId": "²", "connectorStatus": 5})
    station.at(3).call("NotifyEvent", {"eventData": [{"variable": {"name": "Problem"}, "component": 7}]})
    for event in station.run(until=10**6):
        if isinstance(event, Session):
            event.model_dump_json()


def test_a_gap_in_seq_no_is_flagged_and_a_repeated_one_too() -> None:
    station = Station()
    station.at(1).event("Started", state="Charging", id_token="T", meter=[register(0, "Transaction.Begin")], seq_no=0)
    station.at(60).event("Updated", meter=[register(500, "Sample.Periodic")], seq_no=1)
    station.at(120).event("Updated", meter=[register(1000, "Sample.Periodic")], seq_no=4)  # 2 and 3 never came
    station.at(121).event("Updated", meter=[register(500, "Sample.Periodic")], seq_no=1, offline=True, ts=60)
    station.at(600).event("Ended", state="EVConnected", meter=[register(5000, "Transaction.End")], seq_no=5)
    session = only(station.run(until=700))
    assert {Flag.SEQ_NO_GAP, Flag.SEQ_NO_REPEATED} <= set(session.flags) and session.energy_wh == 5000.0


def test_a_station_wide_seq_no_over_two_evses_is_no_gap() -> None:
    """Some chargers count seqNo per station: two transactions interleave, each sees jumps, none is missing."""
    station = Station()  # ``event`` numbers every TransactionEvent of the station in sending order
    station.at(1).event("Started", "A", state="Charging", evse=1, id_token="T", meter=[register(0, "Transaction.Begin")])
    station.at(2).event("Started", "B", state="Charging", evse=2, id_token="U", meter=[register(0, "Transaction.Begin")])
    station.at(60).event("Updated", "A", evse=1, meter=[register(500, "Sample.Periodic")])
    station.at(61).event("Updated", "B", evse=2, meter=[register(300, "Sample.Periodic")])
    station.at(600).event("Ended", "A", state="EVConnected", evse=1, meter=[register(5000, "Transaction.End")])
    station.at(601).event("Ended", "B", state="EVConnected", evse=2, meter=[register(3000, "Transaction.End")])
    rows = newest(station.run(until=700)).values()
    assert len(rows) == 2 and all(Flag.SEQ_NO_GAP not in row.flags for row in rows)


# --- reliability KPIs (KPIS.md): attempts, phase times, outages ------------------------------------

def answer_authorize(station: Station, status: str | None) -> Station:
    """The gateway's answer to the last Authorize (``None``: a CALLERROR)."""
    call = station.envelopes[-1]
    frame = [3, call.message_id, {"idTokenInfo": {"status": status}}] if status else [4, call.message_id, "InternalError", "", {}]
    station.envelopes.append(call.model_copy(update={
        "direction": Direction.OUT, "frame": json.dumps(frame), "seq": len(station.envelopes),
        "message_type": MessageType.CALL_RESULT if status else MessageType.CALL_ERROR}))
    return station


@pytest.mark.parametrize(("status", "failure"), [("Accepted", "authorize_no_start"), ("Invalid", "authorize_rejected"),
                                                 ("Unknown", "authorize_rejected"), (None, "authorize_no_start")])
def test_an_authorize_without_a_transaction_is_an_attempt(status: str | None, failure: str) -> None:
    station = Station().at(10).call("Authorize", {"idToken": {"idToken": "CARD-9", "type": "ISO14443"}})
    (attempt,) = attempts(answer_authorize(station, status).run(until=400)).values()
    assert (attempt.kind, attempt.id_tag, attempt.failure, attempt.ocpp_version) == (
        AttemptKind.AUTHORIZE_WITHOUT_START, "CARD-9", failure, "ocpp2.0.1")


def test_a_transaction_is_one_attempt_from_its_plug_in_with_charging_time_from_its_charging_state() -> None:
    station = Station().charge(start=0, end=3600, id_token="TOKEN-1")
    station.at(3700).status(1, "Available")
    events = station.run(until=5000)
    (attempt,) = attempts(events).values()
    session = only(events)
    assert (attempt.kind, attempt.failure, attempt.delivered, attempt.start_delay_s) == (
        AttemptKind.START_TRANSACTION, "", True, 2.0)
    assert (session.charging_s, session.suspended_ev_s, session.blocked_after_stop_s) == (3598.0, 0.0, 100.0)


def test_occupied_and_back_to_available_without_a_transaction_is_a_plug_in_attempt() -> None:
    station = Station().at(0).status(1, "Available").at(5).status(1, "Occupied").at(40).status(1, "Available")
    (attempt,) = attempts(station.run(until=1000)).values()
    assert (attempt.kind, attempt.connector_id, attempt.failure) == (AttemptKind.PLUGIN_WITHOUT_START, 1, "plugin_no_start")


def test_a_faulted_evse_is_an_outage_with_its_problems_code() -> None:
    station = Station().at(0).status(1, "Available").at(10).problem(1, "ChargingCable", True, "E42")
    station.at(11).status(1, "Faulted").at(100).problem(1, "ChargingCable", False).at(101).status(1, "Available")
    (outage,) = outages(station.run()).values()
    assert (outage.cause, outage.error_code, outage.vendor_error_code, outage.duration_s) == (
        "faulted", "ChargingCable/Problem", "E42", 90.0)


@pytest.mark.parametrize("after_ended", [False, True], ids=["faulted_then_ended", "ended_then_faulted"])
def test_a_transaction_that_ends_in_a_fault_is_a_failed_attempt(after_ended: bool) -> None:
    """2.0.1 says the fault in the EVSE's StatusNotification (its chargingState has no Faulted), before the
    Ended or a few seconds after it: the attempt fails with ``faulted`` either way."""
    station = Station().at(0).status(1, "Occupied")
    station.at(1).event("Started", state="Charging", trigger="CablePluggedIn", id_token="T",
                        meter=[register(1000, "Transaction.Begin")])
    if not after_ended:
        station.at(99).status(1, "Faulted")
    station.at(100).event("Ended", state="EVConnected", reason="Other", meter=[register(5000, "Transaction.End")])
    if after_ended:
        station.at(103).status(1, "Faulted")
    events = station.run(until=1000)
    (attempt,) = attempts(events).values()
    assert (attempt.failure, attempt.ended_ok, attempt.delivered) == ("faulted", False, True)
    assert Flag.FAULTED_AT_STOP in only(events).flags
