"""Property tests: whatever a charger sends, in whatever order, the correlator never raises,
never reports negative energy, and emits each transaction once (a conflicting duplicate stop may
add one corrected version, never more)."""

from __future__ import annotations

import json
import os
from hypothesis import HealthCheck, example, given, settings, strategies as st

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from schemas.flags import Flag
from processors.state import CorrelatorState
from schemas.envelope import Direction, FrameEnvelope, MessageType
from schemas.records import Session
from tests.processors.script import T0_MS

numbers = st.one_of(st.integers(-2, 5000), st.floats(-2, 5000, allow_nan=False), st.text(max_size=4), st.none())
timestamps = st.one_of(st.sampled_from(["2025-11-24T16:00:00Z", "2025-11-24T18:00:00", "1970-01-01T00:00:00Z", "garbage"]), st.none())
samples = st.lists(st.fixed_dictionaries({"value": st.one_of(numbers, st.integers(0, 10**6).map(str))},
                                         optional={"unit": st.sampled_from(["Wh", "kWh", "W", "V"]),
                                                   "measurand": st.sampled_from(["Energy.Active.Import.Register", "SoC", "Power.Active.Import", "Voltage"]),
                                                   "phase": st.sampled_from(["L1", "L2", "L3", "N"]),
                                                   "format": st.sampled_from(["Raw", "SignedData"]),
                                                   "location": st.sampled_from(["Outlet", "Inlet", "EV"])}), max_size=4)
meter_value = st.lists(st.fixed_dictionaries({"timestamp": timestamps, "sampledValue": samples}), max_size=3)
connectors = st.one_of(st.integers(-1, 3), st.none(), st.just("1"))
tx_ids = st.one_of(st.integers(-1, 6), st.none(), st.just("5"))

calls = st.one_of(
    st.tuples(st.just("StartTransaction"), st.fixed_dictionaries({"connectorId": connectors, "idTag": st.sampled_from(["A", "B"]),
                                                                    "meterStart": numbers, "timestamp": timestamps})),
    st.tuples(st.just("StopTransaction"), st.fixed_dictionaries({"transactionId": tx_ids, "meterStop": numbers, "timestamp": timestamps},
                                                                   optional={"transactionData": meter_value, "reason": st.sampled_from(["Local", "Weird"])})),
    st.tuples(st.just("MeterValues"), st.fixed_dictionaries({"connectorId": connectors, "meterValue": meter_value},
                                                               optional={"transactionId": tx_ids})),
    st.tuples(st.just("StatusNotification"), st.fixed_dictionaries({
        "connectorId": connectors,
        "status": st.sampled_from(["Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Faulted", "Unavailable", "X"]),
        "errorCode": st.sampled_from(["NoError", "GroundFailure", "Error"]),
        "timestamp": timestamps})),
)
steps = st.lists(st.tuples(st.integers(0, 120_000), st.one_of(calls, st.tuples(st.just("answer"), tx_ids), st.just(("garbage", None)))),
                 max_size=40)


def envelopes(plan) -> list[FrameEnvelope]:
    out, now, last_start = [], T0_MS, None
    for n, (gap, (kind, payload)) in enumerate(plan):
        now += gap
        common = dict(charge_point_id="CP", gateway_ts_ms=now, ocpp_version="ocpp1.6", gateway_id="g", connection_id="c", seq=n)
        if kind == "garbage":
            out.append(FrameEnvelope(direction=Direction.IN, frame="[2,", message_type=MessageType.CALL, action="StopTransaction", **common))
        elif kind == "answer":
            if last_start is not None:
                out.append(FrameEnvelope(direction=Direction.OUT, frame=json.dumps([3, last_start, {"transactionId": payload}]),
                                         message_type=MessageType.CALL_RESULT, action="StartTransaction", message_id=last_start, **common))
        else:
            message_id = f"m{n}"
            if kind == "StartTransaction":
                last_start = message_id
            out.append(FrameEnvelope(direction=Direction.IN, frame=json.dumps([2, message_id, kind, payload]),
                                     message_type=MessageType.CALL, action=kind, message_id=message_id, **common))
    return out


KNOWN_FLAGS = {flag.value for flag in Flag}


@settings(max_examples=int(os.environ.get("CORRELATOR_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Found by this property: the stop of a reused id's previous session, then the start that reuses it, in one gateway
# millisecond (an offline queue flushed back to back) gave two sessions one id, and the table kept one of them.
@example(plan=[(0, ('StopTransaction', {'transactionId': '5', 'meterStop': None, 'timestamp': None})),
               (0, ('StartTransaction', {'connectorId': 0, 'idTag': 'A', 'meterStart': 0, 'timestamp': None})),
               (0, ('answer', '5'))])
# A signed reading (here garbage) for a session already written: a revision whose verdict changed, not a flag.
@example(plan=[(32418, ('StopTransaction', {'transactionId': 3, 'meterStop': '', 'timestamp': None})), (60001, ('garbage', None)),
               (10194, ('MeterValues', {'connectorId': '1', 'transactionId': 3, 'meterValue': [{'timestamp': None, 'sampledValue': [
                   {'value': '', 'unit': 'W', 'location': 'EV', 'format': 'SignedData'}]}]}))])
@given(steps)
def test_the_correlator_never_raises_and_never_goes_negative_or_doubles(plan) -> None:
    config = CorrelatorConfig.defaults(status_window_ms=60_000, max_session_age_ms=3600_000)
    state = None
    events = []
    for envelope in envelopes(plan):
        correlator = Correlator("CP", config, state)
        events += correlator.feed(envelope)
        state = state_codec.loads(state_codec.dumps(correlator.state))  # always serialisable
    events += Correlator("CP", config, state).advance(T0_MS + 10**9)
    sessions = [e for e in events if isinstance(e, Session)]
    for event in events:  # every flag is documented in schemas/flags.py (gateway schema flags travel on)
        flags = getattr(event, "flags", ())  # outage and attempt rows have none
        assert all(f in KNOWN_FLAGS or f.startswith(("schema", "error_code_while_")) for f in flags), flags
    for session in sessions:
        assert session.energy_wh is None or session.energy_wh >= 0
    by_session: dict[str, list[Session]] = {}
    for session in sessions:
        by_session.setdefault(session.session_id, []).append(session)
    for sid, emitted in by_session.items():
        # Revision 0 first; each later revision is newer, numbered in order, and names what it replaces.
        assert [s.revision for s in emitted] == list(range(len(emitted))), (sid, emitted)
        for before, after in zip(emitted, emitted[1:]):
            assert after.version > before.version and after.received_at == before.received_at
            assert after.previous_energy_wh == before.energy_wh
            # ... and says why: an amendment's flag, the bay time now known, the stop now known to be a fault, or a
            # signed reading that came after the session was written (its verdict is part of the revisions).
            learnt_bay_time = before.blocked_after_stop_s is None and after.blocked_after_stop_s is not None
            signed = ("signature_status", "signed_start", "signed_stop", "signed_energy_wh")
            learnt_signature = [getattr(before, f) for f in signed] != [getattr(after, f) for f in signed]
            assert {"duplicate_stop_conflict", "late_stop", "late_meter_values", "faulted_at_stop"} & set(after.flags) \
                or learnt_bay_time or learnt_signature, (before, after)
    # After all deadlines passed, nothing is left waiting.
    final = Correlator("CP", config, state)
    final.advance(T0_MS + 10**9)
    assert final.state.sessions == {}
