"""Port outages (KPIS.md, Outages): when a charger's ports are out of service, pure, one charger at a time.

A port is **down** while its charger is offline, while its status is Faulted or Unavailable, or while the
station's (connector 0) is; the outage spans the union of these causes and is named by the first one
(:data:`CAUSE_ORDER` when several begin at one frame). The :class:`OutageTracker` is told what happened
(a connection opened or closed, a frame came on a connection, a port was first reported, a status
changed) and answers with the :class:`~schemas.records.PortOutage` rows to write: one when an outage
begins (``ended_at`` NULL), one when a fault's error code joins it, one when it ends, and one more when a
cause begins within :data:`REJOIN_MS` of its end (it goes on: open again, same ``outage_id``). Its state
(:class:`OutageState`) lives in the correlator's, so a replay of the same frames writes the same rows.

**Online** (KPIS.md, Connection events): a charger is online while any of its connections is open. A
``disconnected`` of an older connection does not make it offline while a newer one is open (a reconnect
to another gateway replica can come first). A gateway killed without writing ``disconnected`` leaves its
connections "open": when the newest connection closes, an older one that carried no frame since the
newest opened is taken as dead. A frame on a connection never seen open (data written before connection
events existed) opens it, so such chargers are never counted offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from processors.state import ConnectorState, OpenOutage, OutageState
from processors.vocabulary import Status
from schemas.base import ms_to_datetime
from schemas.records import OutageCause, PortOutage

CAUSE_ORDER = (OutageCause.OFFLINE, OutageCause.FAULTED, OutageCause.UNAVAILABLE, OutageCause.STATION_FAULTED,
               OutageCause.STATION_UNAVAILABLE)
"""KPIS.md's order: when several causes begin at the same frame, the first of these names the outage."""
_PORT_CAUSE = {Status.FAULTED: OutageCause.FAULTED, Status.UNAVAILABLE: OutageCause.UNAVAILABLE}
_STATION_CAUSE = {Status.FAULTED: OutageCause.STATION_FAULTED, Status.UNAVAILABLE: OutageCause.STATION_UNAVAILABLE}
_FAULT_CAUSES = frozenset({OutageCause.FAULTED, OutageCause.STATION_FAULTED})
STATION = 0
REJOIN_MS = 1000
"""A cause that begins this soon after the port's last outage ended continues that outage (a charger that
reconnects reports the fault it had while offline a moment later: one outage, not two)."""
MAX_PORTS = 64  # ports of one charger tracked: a charger inventing connector ids must not grow its state forever
OPEN_CONNECTIONS_KEPT = 8  # connections never seen close (data older than connection events): the newest kept
CLOSED_CONNECTIONS_KEPT = 4  # recently closed ids: a late frame of one does not reopen it


def outage_id(charge_point_id: str, connector_id: int, started_ms: int) -> str:
    """Stable across replays: the charger, the port and the gateway time the outage began."""
    return hashlib.sha256(f"{charge_point_id}|{connector_id}|{started_ms}".encode()).hexdigest()[:16]


def down_causes(offline: bool, port_status: Status, station_status: Status) -> list[OutageCause]:
    """The causes that hold for a port, in :data:`CAUSE_ORDER`."""
    causes = [OutageCause.OFFLINE] if offline else []
    if port_status in _PORT_CAUSE:
        causes.append(_PORT_CAUSE[port_status])
    if station_status in _STATION_CAUSE:
        causes.append(_STATION_CAUSE[station_status])
    return causes


@dataclass(frozen=True, slots=True)
class PortCondition:
    """What a port's outage depends on besides the charger being online: its status and the station's, and
    the error code of the fault open on each (``("", "")`` when none)."""

    status: Status = Status.NONE
    fault: tuple[str, str] = ("", "")
    station_status: Status = Status.NONE
    station_fault: tuple[str, str] = ("", "")


def port_condition(connectors: Mapping[int, ConnectorState], port: int) -> PortCondition:
    """A port's :class:`PortCondition`, read from the charge point's connector states (statuses and faults are
    kept in one place, there). An OCPP 2.0.1 station-level problem (an emergency stop) takes every port down: the
    station reads as Faulted while one is active."""
    own, station = connectors.get(port), connectors.get(STATION)
    station_status = station.status if station is not None else Status.NONE
    if station is not None and station.problems:
        station_status = Status.FAULTED
    return PortCondition(status=own.status if own is not None else Status.NONE, fault=_fault_codes(own),
                         station_status=station_status, station_fault=_fault_codes(station))


def _fault_codes(state: ConnectorState | None) -> tuple[str, str]:
    fault = state.fault if state is not None else None
    return (fault.error_code, fault.vendor_error_code) if fault is not None else ("", "")


class OutageTracker:
    """One charger's outages: its :class:`~processors.state.OutageState`, and its connectors' states to read each
    port's condition from (:func:`port_condition`)."""

    def __init__(self, charge_point_id: str, state: OutageState, connectors: Mapping[int, ConnectorState]) -> None:
        self.charge_point_id = charge_point_id
        self.state = state
        self.connectors = connectors

    @property
    def offline(self) -> bool:
        return self.state.offline_ms is not None

    # --- connections -----------------------------------------------------------------------------

    def connected(self, connection_id: str, now_ms: int) -> list[PortOutage]:
        state = self.state
        if connection_id in state.closed:
            return []  # a late duplicate of an event already followed by its close
        self._open(connection_id, now_ms)
        return self._online(now_ms)

    def disconnected(self, connection_id: str, now_ms: int) -> list[PortOutage]:
        state = self.state
        if connection_id not in state.connections:
            if connection_id in state.closed or state.connections:
                return []  # closed twice, or an unknown connection while another is open
            # Closed without being seen open (its opening is older than the data): the charger is offline now.
        state.connections.pop(connection_id, None)
        state.closed.append(connection_id)
        del state.closed[:-CLOSED_CONNECTIONS_KEPT]
        if connection_id == state.newest:
            # The charger's newest socket closed: an older one silent since that socket opened was dead already.
            for other, last_ms in list(state.connections.items()):
                if last_ms <= state.newest_ms:
                    del state.connections[other]
        if state.connections or self.offline:
            return []
        state.offline_ms = now_ms
        return self._refresh_all(now_ms)

    def frame_on(self, connection_id: str, now_ms: int) -> list[PortOutage]:
        """A frame came on ``connection_id``: cheap for the newest connection (nearly every frame)."""
        state = self.state
        if connection_id == state.newest:
            return []
        if connection_id in state.connections:
            state.connections[connection_id] = now_ms
            return []
        if connection_id in state.closed or not connection_id:
            return []
        self._open(connection_id, now_ms)  # first frame of a connection never seen open (older data)
        return self._online(now_ms)

    def _open(self, connection_id: str, now_ms: int) -> None:
        state = self.state
        state.connections[connection_id] = now_ms
        while len(state.connections) > OPEN_CONNECTIONS_KEPT:
            del state.connections[next(iter(state.connections))]
        state.newest, state.newest_ms = connection_id, now_ms

    def _online(self, now_ms: int) -> list[PortOutage]:
        if not self.offline:
            return []
        self.state.offline_ms = None
        return self._refresh_all(now_ms)

    # --- ports and statuses ----------------------------------------------------------------------

    def port_seen(self, port: int, now_ms: int) -> list[PortOutage]:
        """A connector id >= 1 the charger named (a status, a transaction, meter values): a port from now on."""
        ports = self.state.ports
        if port < 1 or port in ports or len(ports) >= MAX_PORTS:
            return []
        ports.append(port)
        return self.refresh(port, now_ms)

    def station_changed(self, now_ms: int) -> list[PortOutage]:
        """Connector 0's status or fault changed: every port may go down or come back."""
        return self._refresh_all(now_ms)

    def refresh(self, port: int, now_ms: int) -> list[PortOutage]:
        """Open, amend or end the port's outage as its causes now say."""
        if port not in self.state.ports:
            return []
        condition = port_condition(self.connectors, port)
        causes = down_causes(self.offline, condition.status, condition.station_status)
        current = self.state.open.get(port)
        if current is None:
            if not causes:
                return []
            last = self.state.last.pop(port, None)
            if last is not None and last.ended_ms is not None and now_ms - last.ended_ms <= REJOIN_MS:
                current, current.ended_ms = last, None  # it goes on: written open again
                current.version = max(now_ms, current.version + 1)
                self.state.open[port] = current
                self._join_fault(current, causes, condition)
                return [self._row(port, current)]
            error_code, vendor = _fault_code(causes, condition)
            current = self.state.open[port] = OpenOutage(outage_id(self.charge_point_id, port, now_ms), now_ms,
                                                         causes[0].value, error_code, vendor, now_ms)
            return [self._row(port, current)]
        if not causes:
            del self.state.open[port]
            # Gateway replicas' clocks interleave on a partition (one replica's `disconnected` can be written
            # after another's `connected` and still read before it): an outage never ends before it began.
            current.version, current.ended_ms = max(now_ms, current.version + 1), max(now_ms, current.started_ms)
            self.state.last[port] = current
            return [self._row(port, current)]
        if self._join_fault(current, causes, condition):  # a fault joined the outage: the row says which
            current.version = max(now_ms, current.version + 1)
            return [self._row(port, current)]
        return []

    @staticmethod
    def _join_fault(outage: OpenOutage, causes: list[OutageCause], condition: PortCondition) -> bool:
        """The first fault to join an outage gives it its error code; True when this one did."""
        if outage.error_code:
            return False
        outage.error_code, outage.vendor_error_code = _fault_code(causes, condition)
        return bool(outage.error_code)

    def _refresh_all(self, now_ms: int) -> list[PortOutage]:
        rows: list[PortOutage] = []
        for port in self.state.ports:
            rows.extend(self.refresh(port, now_ms))
        return rows

    def _row(self, port: int, outage: OpenOutage) -> PortOutage:
        ended_ms = outage.ended_ms
        # Every value is typed here: no validation (the sink's storable check still guards the row).
        return PortOutage.model_construct(
            charge_point_id=self.charge_point_id, connector_id=port, outage_id=outage.outage_id,
            started_at=ms_to_datetime(outage.started_ms),
            ended_at=ms_to_datetime(ended_ms) if ended_ms is not None else None,
            duration_s=(ended_ms - outage.started_ms) / 1000 if ended_ms is not None else None,
            cause=OutageCause(outage.cause), error_code=outage.error_code, vendor_error_code=outage.vendor_error_code,
            excluded_reason="", version=outage.version,
        )


def _fault_code(causes: list[OutageCause], condition: PortCondition) -> tuple[str, str]:
    """The (error code, vendor error code) of the first fault cause that holds, ``("", "")`` if none."""
    for cause in causes:
        if cause in _FAULT_CAUSES:
            return condition.fault if cause == OutageCause.FAULTED else condition.station_fault
    return "", ""
