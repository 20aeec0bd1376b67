"""The inputs of the golden files: frames of every kind a charger or the topic can bring, exclusion events, and
frames for the gateway's handler. Built once (``python -m tests.golden --new-inputs``) with the test helpers and
stored as data: the check reads the stored inputs, never this module.
"""

from __future__ import annotations

import json
import zlib
from datetime import timedelta
from typing import Any

from bench.worker_bench import charger_day
from tests.gateway.samples_v201 import REQUESTS as REQUESTS_V201
from tests.processors.script import T0, T0_MS, Script, energy, iso
from tests.processors.test_ocpp201 import Station, register

PARTITIONS = 3


def _value(data: bytes | None) -> dict[str, str] | None:
    """Record bytes as stored: text when they are UTF-8, else hex."""
    if data is None:
        return None
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def _edge_charger() -> Script:
    """One OCPP 1.6 charger that does most of what OCPP-QUIRKS.md lists, on two connections."""
    s = Script("CP-EDGE")
    s.at(0).connected("c1")
    s.at(1).boot()
    s.at(2).status(1, "Available").status(2, "Available")
    s.at(10).authorize("TAG-A")  # no start follows: authorize_without_start
    s.at(20).status(1, "Preparing").at(40).status(1, "Available")  # plug-in without start
    s.at(400).status(1, "Preparing").start(1, 11, id_tag="TAG-B", meter_start=1000).status(1, "Charging")
    s.at(460).meter(1, 11, energy("1.5", "kWh"), {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"})
    s.at(520).meter(1, 11, energy("2100"), energy("700", phase="L1"))
    s.at(530).status(1, "SuspendedEV").at(540).status(1, "Charging")
    s.at(600).stop(11, 2500, reason="EVDisconnected", transaction_data=[
        {"timestamp": iso(600), "sampledValue": [energy("2500", context="Transaction.End")]}])
    s.at(605).status(1, "Finishing").at(640).status(1, "Available")
    s.at(700).status(1, "Faulted", "GroundFailure", info="RCD tripped", vendorId="ACME", vendorErrorCode="E12")
    s.at(900).status(1, "Available")
    s.at(950).status(0, "Unavailable").at(1000).status(0, "Available")
    s.at(1100).disconnected(close_code=1006)
    s.at(1300).connected("c2").boot()
    s.at(1310).stop(999, 4000, reason="Other")  # a stop without a start
    s.at(1320).start(2, -1, meter_start=0)  # an invalid transaction id
    s.at(1330).stop(-1, 12.5, reason="Local")  # a float meterStop, matched to the one open session
    s.at(1400).start(1, 12, meter_start=5000, ts=iso(1400 + 2 * 86400))  # the charger's clock two days ahead
    s.at(1460).status(1, "Charging")
    s.at(1500).stop(12, 4000, ts=iso(1500 + 2 * 86400), reason="EmergencyStop")  # meterStop below meterStart
    s.at(1501).resend(len(s.envelopes) - 1)  # the same stop again
    s.at(1502).status(1, "Faulted", "ConnectorLockFailure")
    s.at(1600).status(1, "Available", ts="9999-12-31T23:59:59Z")  # a clock far ahead
    s.at(1610).status(1, "Preparing", ts="2025-11-24T16:26:50")  # no zone
    s.at(1620).start(1, 13, meter_start=7000)
    s.at(1630).meter(1, 13, energy("6000"))  # the register went down
    s.at(1640).meter(1, 13, energy("100"))  # a meter reset
    s.at(1700).stop(13, "1e400", reason="Remote")  # not a number a column holds
    s.at(1710).status(4294967296, "Available")  # a connector id beyond UInt32
    s.at(1720).frame('[2,"x1","Authorize",{"idTag":"\\ud800"}]', action="Authorize", message_id="x1")  # a lone surrogate
    s.at(1730).frame("[2,\"x2\",\"StatusNotification\",{", action="StatusNotification")  # not JSON
    s.at(1740).call("StopTransaction", {"transactionId": 13, "meterStop": 9000, "timestamp": iso(1740)},
                    flags=("schema_violation", "schema:meterStop:type"))
    s.at(1750).disconnected(close_code=1000)
    return s


def _station() -> Station:
    """One OCPP 2.0.1 station: a charge, a problem on an EVSE and on the station, a plug-in, an offline event."""
    st = Station("CS-201")
    st.charge(start=0, end=1800)
    st.at(1900).problem(1, "Connector", True, "E-42").at(2000).problem(1, "Connector", False)
    st.at(2100).problem(None, "ChargingStation", True).at(2200).problem(None, "ChargingStation", False)
    st.at(2300).status(1, "Occupied").at(2350).status(1, "Available")
    st.at(2400).event("Started", "TX-2", state="Charging", trigger="Authorized", id_token="",
                      meter=[register(30_000, "Transaction.Begin")])
    st.at(2500).event("Updated", "TX-2", seq_no=st.seq_no + 3)  # a seqNo gap
    st.at(2600).event("Ended", "TX-2", state="Idle", reason="EVDisconnected", offline=True,
                      meter=[register(31.5, "Transaction.End", as_kwh=True)])
    return st


def _poison() -> list[tuple[str | None, bytes | None]]:
    """Records on the frames topic that are not envelopes, or barely are."""
    good = {"v": 1, "charge_point_id": "CP-POISON", "direction": "in", "gateway_ts_ms": T0_MS, "frame": "[2,\"p\",\"Heartbeat\",{}]",
            "ocpp_version": "ocpp1.6", "gateway_id": "gw", "connection_id": "p", "seq": 0, "message_type": 2,
            "action": "Heartbeat", "message_id": "p", "error": None, "flags": []}

    def variant(seq: Any, **change: Any) -> bytes:
        return json.dumps({**good, "seq": seq, **change}).encode()

    return [
        ("CP-POISON", None),  # a tombstone
        ("CP-POISON", b"not json"),
        ("CP-POISON", b"\xff\xfe\x00 not utf-8"),
        ("CP-POISON", variant(1)),
        ("CP-POISON", variant(-1)),  # a negative sequence number
        ("CP-POISON", variant("3")),  # a numeric string, read leniently
        ("CP-POISON", variant(4, gateway_ts_ms=1.5e12)),  # a float time
        ("CP-POISON", variant(5, direction="sideways")),
        ("CP-POISON", variant(6, extra_field="ignored")),
        ("CP-POISON", json.dumps({k: v for k, v in good.items() if k != "v"} | {"seq": 7}).encode()),  # no version
        ("CP-POISON", variant(8, gateway_ts_ms=2**62)),  # beyond what a datetime holds
        (None, variant(9, charge_point_id="CP-NOKEY")),
        ("CP-POISON", variant(10, frame="[2,\"q\",\"StartTransaction\",{\"connectorId\":1,\"idTag\":\"T\",\"meterStart\":0,"
                                    "\"timestamp\":\"2025-11-24T16:00:00Z\"}]", action="StartTransaction", message_id="q")),
    ]


def worker_records() -> list[dict[str, Any]]:
    """Kafka records of the frames topic, each with its partition (by key, as Kafka's would be)."""
    envelopes = []
    for n in range(4):
        envelopes += charger_day(n, 2).envelopes
    envelopes += _edge_charger().envelopes + _station().envelopes
    raw: list[tuple[str | None, bytes | None, int]] = [
        (e.charge_point_id, e.model_dump_json(exclude=None if e.event else {"event", "close_code", "reason"}).encode(),
         e.gateway_ts_ms) for e in envelopes]
    raw.sort(key=lambda r: r[2])  # the fleet interleaved in time, as on the topic
    raw += [(key, value, T0_MS + 10_000_000) for key, value in _poison()]
    return [{"partition": zlib.crc32((key or "").encode()) % PARTITIONS, "key": key, "value": _value(value),
             "timestamp_ms": ts} for key, value, ts in raw]


def exclusion_records() -> list[dict[str, Any]]:
    """Records of ``ocpp.exclusions.v1``: events as ``outages exclude`` writes them, and some that are not."""
    from kpi.exclusions import new_exclusion
    from schemas.records import ExclusionReason

    start = T0 + timedelta(seconds=700)
    good = [
        new_exclusion("CP-EDGE", 1, start, start + timedelta(minutes=5), ExclusionReason.VANDALISM, "cable cut", T0 + timedelta(days=1),
                      recorded_by="ops", reference="TICKET-1"),
        new_exclusion("CP-EDGE", 0, start, start + timedelta(hours=1), "utility_interruption", "", T0 + timedelta(days=2),
                      recorded_by="ops", forced=True),
    ]
    values: list[bytes | None] = [e.model_dump_json().encode() for e in good]
    forged = json.loads(values[0] or b"") | {"exclusion_id": "0" * 16}
    values += [None, b"{}", b"not json", json.dumps(forged).encode(),
               json.dumps(json.loads(values[1] or b"") | {"reason": "bad_luck"}).encode()]
    return [{"offset": n, "value": _value(v)} for n, v in enumerate(values)]


def gateway_frames() -> list[dict[str, Any]]:
    """Frames a charger sends, per OCPP version, in one connection each, with the gateway time they arrive."""
    ts = "2025-11-24T16:00:00Z"
    v16: list[Any] = [
        [2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}],
        [2, "2", "Heartbeat", {}],
        [2, "3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": ts}],
        [2, "4", "Authorize", {"idTag": "TAG"}],
        [2, "5", "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 10, "timestamp": ts}],
        [2, "5", "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 10, "timestamp": ts}],  # resent
        [2, "6", "MeterValues", {"connectorId": 1, "transactionId": 1, "meterValue": [
            {"timestamp": ts, "sampledValue": [{"value": 12, "measurand": "Energy.Active.Import.Register"}]}]}],
        [2, "7", "StopTransaction", {"transactionId": 1, "meterStop": 12.5, "timestamp": ts}],  # a float: flagged
        [2, "8", "StatusNotification", {"connectorId": 1, "errorCode": "Weird", "status": "Faulted"}],
        [2, "9", "DataTransfer", {"vendorId": "acme"}],
        [2, "10", "NoSuchAction", {}],
        [2, "11", "Heartbeat", {"unexpected": 1}],
        [3, "srv-1", {"status": "Accepted"}],
        [4, "srv-2", "NotSupported", "no", {}],
        [5, "12", "Heartbeat", {}],
        '[2,"13","Heartbeat",{}',
        '[2,"\\ud800","Heartbeat",{}]',
        '{"not": "an array"}',
        "[2, \"14\", \"Authorize\", {\"idTag\": \"Ærø-ünïcødé-\u2028\"}]",
    ]
    v201: list[Any] = [[2, f"r{n}", action, payload] for n, (action, payload) in enumerate(sorted(REQUESTS_V201.items()))]
    v201 += [[2, "bad-1", "TransactionEvent", {"eventType": "Started"}], [2, "bad-2", "BootNotification", {}]]
    return [
        {"ocpp_version": version, "frame": frame if isinstance(frame, str) else json.dumps(frame),
         "now_ms": 1_764_000_000_123 + n * 1_001}
        for version, frames in (("ocpp1.6", v16), ("ocpp2.0.1", v201)) for n, frame in enumerate(frames)
    ]
