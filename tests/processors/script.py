"""A small language for charger conversations, for correlator tests: each call appends the
envelopes the gateway would have written, at a gateway time the test controls."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from processors import state_codec
from processors.correlator import Correlator
from processors.settings import CorrelatorConfig
from processors.events import Event
from processors.state import CorrelatorState
from schemas.envelope import ConnectionEvent, Direction, FrameEnvelope, MessageType
from schemas.records import ChargeAttempt, FaultEvent, PortOutage, Session, StatusChange

T0 = datetime(2025, 11, 24, 16, 0, 0, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)


def iso(seconds: float, zone: bool = True) -> str:
    text = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if zone else "")


def energy(value: float | str, unit: str | None = None, *, as_number: bool = False, **extra: Any) -> dict[str, Any]:
    """An Energy.Active.Import.Register sampledValue (value as a string, as the spec wants, unless ``as_number``)."""
    sample: dict[str, Any] = {"value": value if as_number else str(value), "measurand": "Energy.Active.Import.Register"}
    if unit:
        sample["unit"] = unit
    return sample | extra


class Script:
    def __init__(self, charge_point_id: str = "CP-1") -> None:
        self.charge_point_id = charge_point_id
        self.envelopes: list[FrameEnvelope] = []
        self.now = 0.0  # gateway time, seconds after T0
        self._ids = 0
        self.connection = "conn"  # the connection frames come on (``connected`` opens another)

    def at(self, seconds: float) -> "Script":
        self.now = seconds
        return self

    def _env(self, direction: Direction, frame: list[Any], message_type: MessageType, action: str, message_id: str,
             flags: tuple[str, ...] = ()) -> None:
        self.envelopes.append(FrameEnvelope(
            charge_point_id=self.charge_point_id, direction=direction, gateway_ts_ms=T0_MS + int(self.now * 1000),
            frame=json.dumps(frame), ocpp_version="ocpp1.6", gateway_id="gw", connection_id=self.connection,
            seq=len(self.envelopes), message_type=message_type, action=action, message_id=message_id, flags=flags,
        ))

    def _event(self, event: ConnectionEvent, connection_id: str, close_code: int | None = None) -> None:
        self.envelopes.append(FrameEnvelope(
            charge_point_id=self.charge_point_id, direction=Direction.IN, gateway_ts_ms=T0_MS + int(self.now * 1000),
            frame="", ocpp_version="ocpp1.6", gateway_id="gw", connection_id=connection_id, seq=len(self.envelopes),
            event=event, close_code=close_code,
        ))

    def connected(self, connection_id: str) -> "Script":
        """The gateway's ``connected`` event; later frames come on this connection."""
        self.connection = connection_id
        self._event(ConnectionEvent.CONNECTED, connection_id)
        return self

    def disconnected(self, connection_id: str | None = None, close_code: int = 1006) -> "Script":
        """The gateway's ``disconnected`` event (of the current connection unless named)."""
        self._event(ConnectionEvent.DISCONNECTED, connection_id or self.connection, close_code)
        return self

    def resend(self, index: int) -> "Script":
        """The envelope ``index`` sent again now on the current connection: same frame, same message id (a
        charger resending what it got no answer for, after a reconnect)."""
        self.envelopes.append(self.envelopes[index].model_copy(update={
            "gateway_ts_ms": T0_MS + int(self.now * 1000), "connection_id": self.connection, "seq": len(self.envelopes)}))
        return self

    def play(self, steps: Iterable[tuple[int, str]]) -> float:
        """Hypothesis' charger: each step waits ``gap`` seconds, then does ``what`` (a connector 1 status, ``st0_``
        and a connector 0 status, ``start`` / ``stop`` / ``meter`` of transaction 101, 102, ..., ``authorize`` /
        ``authorize_bad``, ``meter2`` (connector 2, no transaction), ``boot``, ``resend_last``, ``disconnect`` /
        ``connect``; nothing is sent while disconnected). Returns the time of the last step."""
        t, tx, connections, online = self.now, 100, 0, True
        for gap, what in steps:
            t += gap
            self.at(t)
            if what == "disconnect":
                if online:
                    self.disconnected()
                    online = False
            elif what == "connect":
                connections += 1
                self.connected(f"c{connections}")
                online = True
            elif not online:
                continue
            elif what == "resend_last":
                if self.envelopes and self.envelopes[-1].event is None:
                    self.resend(len(self.envelopes) - 1)
            elif what.startswith("st0_"):
                self.status(0, what[4:], "OtherError" if what[4:] == "Faulted" else "NoError")
            elif what == "boot":
                self.boot()
            elif what == "authorize":
                self.authorize("TAG")
            elif what == "authorize_bad":
                self.authorize("BAD", "Invalid")
            elif what == "start":
                tx += 1
                self.start(1, tx, id_tag="TAG")
            elif what == "stop":
                self.stop(tx, 5000)
            elif what == "meter":
                self.meter(1, tx)
            elif what == "meter2":
                self.meter(2, None, {"value": "10", "measurand": "Energy.Active.Import.Register"})
            else:
                self.status(1, what, "OtherError" if what == "Faulted" else "NoError")
        return t

    def authorize(self, id_tag: str, status: str | None = "Accepted") -> "Script":
        """An Authorize and, unless ``status`` is None (no answer seen), its answer."""
        message_id = self.call("Authorize", {"idTag": id_tag})
        if status is not None:
            self._env(Direction.OUT, [3, message_id, {"idTagInfo": {"status": status}}], MessageType.CALL_RESULT,
                      "Authorize", message_id)
        return self

    def call(self, action: str, payload: dict[str, Any], flags: tuple[str, ...] = ()) -> str:
        self._ids += 1
        message_id = f"m{self._ids}"
        self._env(Direction.IN, [2, message_id, action, payload], MessageType.CALL, action, message_id, flags)
        return message_id

    def start(self, connector: int, tx: int | None, *, id_tag: str = "TAG", meter_start: Any = 1000,
              ts: str | None = None, answer: str = "result") -> "Script":
        payload = {"connectorId": connector, "idTag": id_tag, "meterStart": meter_start,
                   "timestamp": ts if ts is not None else iso(self.now)}
        message_id = self.call("StartTransaction", payload)
        if answer == "result":
            self._env(Direction.OUT, [3, message_id, {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}],
                      MessageType.CALL_RESULT, "StartTransaction", message_id)
        elif answer == "error":
            self._env(Direction.OUT, [4, message_id, "InternalError", "", {}], MessageType.CALL_ERROR, "StartTransaction", message_id)
        return self

    def stop(self, tx: Any, meter_stop: Any = 5000, *, reason: str | None = None, ts: str | None = None,
             transaction_data: list[Any] | None = None, omit_meter: bool = False) -> "Script":
        payload: dict[str, Any] = {"transactionId": tx, "timestamp": ts if ts is not None else iso(self.now)}
        if not omit_meter:
            payload["meterStop"] = meter_stop
        if reason is not None:
            payload["reason"] = reason
        if transaction_data is not None:
            payload["transactionData"] = transaction_data
        self.call("StopTransaction", payload)
        return self

    def status(self, connector: int, status: str, error_code: str = "NoError", *, ts: str | None = None, **extra: Any) -> "Script":
        payload = {"connectorId": connector, "errorCode": error_code, "status": status, **extra}
        payload["timestamp"] = ts if ts is not None else iso(self.now)
        self.call("StatusNotification", payload)
        return self

    def meter(self, connector: int, tx: int | None, *samples: dict[str, Any], ts: str | None = None) -> "Script":
        payload: dict[str, Any] = {"connectorId": connector,
                                   "meterValue": [{"timestamp": ts if ts is not None else iso(self.now), "sampledValue": list(samples)}]}
        if tx is not None:
            payload["transactionId"] = tx
        self.call("MeterValues", payload)
        return self

    def boot(self, **payload: Any) -> "Script":
        """A BootNotification (the charger restarted)."""
        self.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "AC-22", **payload})
        return self

    def frame(self, frame: Any, *, action: str | None, message_type: MessageType | None = MessageType.CALL,
              direction: Direction = Direction.IN, message_id: str | None = None) -> "Script":
        """Any frame at all, enveloped as the gateway would have (a ``str`` is kept as is, anything else
        JSON-encoded): for content the gateway lets through whatever it is."""
        self.envelopes.append(FrameEnvelope(
            charge_point_id=self.charge_point_id, direction=direction, gateway_ts_ms=T0_MS + int(self.now * 1000),
            frame=frame if isinstance(frame, str) else json.dumps(frame), ocpp_version="ocpp1.6", gateway_id="gw",
            connection_id=self.connection, seq=len(self.envelopes), message_type=message_type, action=action, message_id=message_id,
        ))
        return self

    def run(self, config: CorrelatorConfig | None = None, *, until: float | None = None, roundtrip_state: bool = True) -> list[Event]:
        """Feed every envelope; with ``until``, let gateway time reach T0 + until seconds.
        ``roundtrip_state`` passes the state through JSON between frames, as the Faust table does."""
        config = config or CorrelatorConfig.defaults()
        state = None
        events: list[Event] = []
        for envelope in self.envelopes:
            correlator = Correlator(self.charge_point_id, config, state)
            events += correlator.feed(envelope)
            state = state_codec.loads(state_codec.dumps(correlator.state)) if roundtrip_state else correlator.state
        if until is not None:
            correlator = Correlator(self.charge_point_id, config, state)
            events += correlator.advance(T0_MS + int(until * 1000))
        return events


def sessions(events: list[Event]) -> list[Session]:
    return [e for e in events if isinstance(e, Session)]


def faults(events: list[Event]) -> list[FaultEvent]:
    return [e for e in events if isinstance(e, FaultEvent)]


def statuses(events: list[Event]) -> list[StatusChange]:
    return [e for e in events if isinstance(e, StatusChange)]


def newest_rows(events: list[Event], kind: type, key: str) -> dict[str, Any]:
    """The newest row of each ``kind`` of event by its ``key`` field (what the table keeps, FINAL)."""
    out: dict[str, Any] = {}
    for e in events:
        if isinstance(e, kind) and (getattr(e, key) not in out or e.version >= out[getattr(e, key)].version):
            out[getattr(e, key)] = e
    return out


def outages(events: list[Event]) -> dict[str, PortOutage]:
    """``port_outages FINAL``: the newest row of each outage."""
    return newest_rows(events, PortOutage, "outage_id")


def attempts(events: list[Event]) -> dict[str, ChargeAttempt]:
    """``charge_attempts FINAL``: the newest row of each attempt."""
    return newest_rows(events, ChargeAttempt, "attempt_id")


def only_session(events: list[Event]) -> Session:
    """The newest row of the one session the events hold (a revision that only learnt how long the bay
    stayed blocked after the stop follows many first rows: KPIS.md)."""
    found = newest(events)
    assert len(found) == 1, found
    return next(iter(found.values()))


def revisions(events: list[Event]) -> dict[str, list[Session]]:
    """Every emitted row of each session (by ``session_id``), oldest version first."""
    out: dict[str, list[Session]] = {}
    for session in sessions(events):
        out.setdefault(session.session_id, []).append(session)
    return {key: sorted(rows, key=lambda s: s.version) for key, rows in out.items()}


def newest(events: list[Event]) -> dict[str, Session]:
    """The row a consumer keeps for each session: the highest ``version`` per ``session_id``."""
    return {key: rows[-1] for key, rows in revisions(events).items()}
